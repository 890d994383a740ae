"""Per-channel statistics of what a BN layer receives, and how far its moving ones are from them.

Population statistics are accumulated batch by batch in float64 with Chan's
pairwise update (exact up to rounding, independent of batch size): the variance
is the population one (divided by the count), as the statistics describe all of
the data rather than estimate them from a sample.
"""
import numpy as np

from . import keras_api


def _axes(layer, ndim):
    axis = layer.axis
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    return sorted(a % ndim for a in axes)


class Moments(object):
    """Running per-channel count, mean and sum of squared deviations over a layer's inputs."""

    def __init__(self, layer):
        self._layer = layer
        self.count, self.mean, self._m2 = 0, None, None

    def add(self, inputs):
        inputs = np.asarray(inputs, dtype="float64")
        channels = _axes(self._layer, inputs.ndim)
        moved = np.moveaxis(inputs, channels, list(range(inputs.ndim - len(channels), inputs.ndim)))
        flat = moved.reshape((-1, int(np.prod(moved.shape[inputs.ndim - len(channels):]))))
        count = flat.shape[0]
        if count == 0:
            return
        mean = flat.mean(axis=0)
        m2 = np.square(flat - mean).sum(axis=0)
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


def layer_values(api, layer):
    """{moving_mean, moving_variance, gamma (ones without scale)} as flat float64 arrays."""
    def value(variable):
        return np.asarray(keras_api.get_value(api, variable)).astype("float64").ravel()

    mean = value(layer.moving_mean)
    gamma = getattr(layer, "gamma", None)
    return {"moving_mean": mean,
            "moving_variance": value(layer.moving_variance),
            "gamma": np.ones_like(mean) if gamma is None else value(gamma)}


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
