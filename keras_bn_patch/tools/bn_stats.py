"""Per-channel statistics of what a BN layer receives, and how far its moving ones are from them.

Each batch's per-channel moments are computed in the model's graph (mean, then
squared deviations from it: two passes over the batch, in float32); batches are
merged in float64 with Chan's pairwise update (exact up to rounding, independent
of batch size), so no activation leaves the graph.  The variance
is the population one (divided by the count), as the statistics describe all of
the data rather than estimate them from a sample.
"""
import numpy as np

from . import keras_api


class Moments(object):
    """Running per-channel count, mean and sum of squared deviations over a layer's inputs."""

    def __init__(self):
        self.count, self.mean, self._m2 = 0, None, None

    def add(self, count, mean, m2):
        """Merge one batch's (count, per-channel mean, per-channel sum of squared deviations)."""
        if count == 0:
            return
        mean, m2 = np.asarray(mean, dtype="float64"), np.asarray(m2, dtype="float64")
        if self.count == 0:
            self.count, self.mean, self._m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / float(total))
        self._m2 = self._m2 + m2 + np.square(delta) * (self.count * count / float(total))
        self.count = total

    @property
    def variance(self):
        return self._m2 / self.count


def layer_values(api, layers):
    """{layer: {moving_mean, moving_variance, gamma (ones without scale)}} as flat float64 arrays."""
    variables = [(layer, name, getattr(layer, name, None)) for layer in layers
                 for name in ("moving_mean", "moving_variance", "gamma")]
    present = [entry for entry in variables if entry[2] is not None]
    values = dict(((id(layer), name), np.asarray(value, dtype="float64").ravel()) for (layer, name, _), value
                  in zip(present, keras_api.get_values(api, [variable for _, _, variable in present])))
    found = {}
    for layer in layers:
        mean = values[id(layer), "moving_mean"]
        found[layer] = {"moving_mean": mean, "moving_variance": values[id(layer), "moving_variance"],
                        "gamma": values.get((id(layer), "gamma"), np.ones_like(mean))}
    return found


def distance(mean, variance, moving_mean, moving_variance, epsilon, gamma):
    """How far moving statistics are from the data's, per layer.

    mean_shift: RMS over channels of (mean - moving mean) / moving std.
    variance_ratio: geometric mean over channels of variance / moving variance.
    discrepancy: RMS over the data of (training-mode output - inference-mode output),
    relative to the RMS spread of the training-mode output.  Per channel, in closed
    form: with s = sqrt(variance + eps) and m = sqrt(moving variance + eps), the
    difference has mean gamma (mean - moving mean) / m and variance
    gamma^2 variance (1/s - 1/m)^2; the training-mode output has variance
    gamma^2 variance / s^2.
    """
    s = np.sqrt(variance + epsilon)
    m = np.sqrt(moving_variance + epsilon)
    shift = (mean - moving_mean) / m
    squared_difference = np.square(gamma) * (np.square(shift) + variance * np.square(1.0 / s - 1.0 / m))
    spread = np.square(gamma) * variance / np.square(s)
    return {
        "mean_shift": float(np.sqrt(np.mean(np.square(shift)))),
        "variance_ratio": float(np.exp(np.mean(np.log((variance + epsilon) / (moving_variance + epsilon))))),
        "discrepancy": float(np.sqrt(squared_difference.sum() / max(spread.sum(), 1e-12))),
    }


def channel_axes(layer, ndim):
    axis = layer.axis
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    return sorted(a % ndim for a in axes)


def merge_calls(moments, measured):
    """One batch's {layer: [calls]} (see add_call) into {layer: bn_stats.Moments}."""
    for layer, calls in measured.items():
        for call in calls:
            moments[layer].add(*call)


def add_call(calls, layer, mean, m2, shape):
    """One call's fetched moments (see ops.Ops.moments) into ``calls[layer]``, a list of (count,
    mean, sum of squared deviations).  Keras 2.1 builds a nested model's graph more than once
    per call (for its masks too), so a layer can record the same input several times: each
    value counts once."""
    mean, m2, shape = np.asarray(mean), np.asarray(m2), np.asarray(shape)
    axes = [a for a in range(len(shape)) if a not in channel_axes(layer, len(shape))]
    entry = (int(np.prod([shape[a] for a in axes])), mean.ravel(), m2.ravel())
    kept = calls.setdefault(layer, [])
    if not any(entry[0] == other[0] and np.array_equal(entry[1], other[1]) and np.array_equal(entry[2], other[2])
               for other in kept):
        kept.append(entry)
