"""recalibrate(model, data): set BN moving statistics to the exact statistics of ``data``.

Like PyTorch's ``torch.optim.swa_utils.update_bn`` and AdaBN, but exact and in
inference mode: after it, each chosen layer's statistics describe exactly what it
receives in predict().  By default (``method="passes"``) every chosen layer is
measured in each pass over ``data``:

1. a first pass with every chosen layer normalised by its own batch statistics
   (what update_bn and AdaBN do) gives all of them a close estimate at once;
2. passes in inference mode, each layer normalising with the statistics of the
   pass before, correct what is left, until no statistic moves by more than
   ``tolerance`` (in units of the channel's standard deviation).

A layer depends only on the layers the model calls before it, so an inference
pass settles at least the first layer that still moved.  Where errors grow from
layer to layer (deep nets on small batches: on a random-weight ResNet50 with
batches of 32, each pass settled about one more layer), passes alone would take
one per layer; so after ``INFERENCE_PASSES`` the layers after the first one still
moving are done one at a time, each from its own pass, which is exact by
construction.

The estimate is exact where the whole data is one batch (each layer is then
normalised by the statistics of all it receives, which its moving statistics
become), so without a ``batch_size`` the batches are as large as ``BATCH_MEMORY``
holds, and data that fits in one takes that one pass (unless a chosen layer is
called more than once: its statistics are then those of all its calls, which no
call's batch has).  ``method="layer_by_layer"`` does every layer one at a time
(the reference).

Only ``moving_mean`` and ``moving_variance`` of the chosen layers change; if
anything fails, every weight is put back.
"""
import numpy as np

from . import bn_stats as _bn_stats, data as _data, diagnose as _diagnose, forward as _forward, keras_api
from . import table as _table

SELECTIONS = ("all", "frozen", "trainable")
METHODS = ("passes", "layer_by_layer")
DEFAULT_TOLERANCE = 1e-4
# Inference passes before the layers still moving are finished one at a time.  Where statistics
# errors grow from layer to layer (a deep net on small batches), passes settle about one layer
# each, so more of them would cost more than finishing layer by layer.
INFERENCE_PASSES = 3
# Without a batch_size, batches as large as this memory holds (see _samples_in_memory): a forward
# pass keeps a few copies of the model's largest activation alive at its peak, and PEAK_COPIES
# is an upper bound of them (docs/howto/repair.rst gives the peak memory measured).
BATCH_MEMORY = 1 << 30  # bytes
PEAK_COPIES = 8


class Summary(object):
    """What recalibrate() changed: ``rows``, one dict per layer (how far its old moving statistics
    were from the new ones, in the units diagnose() uses)."""

    def __init__(self, rows, method=METHODS[0], passes=0):
        self.rows, self.method, self.passes = rows, method, passes

    def to_dict(self):
        return {"layers": self.rows, "method": self.method, "passes": self.passes}

    def __str__(self):
        if not self.rows:
            return "No BatchNormalization layer recalibrated."
        return _table.format_table(
            ("layer", "values seen", "mean shift", "var ratio", "discrepancy"),
            [(r["path"], r["values_seen"], r["mean_shift"], r["variance_ratio"], r["discrepancy"])
             for r in self.rows]) + "\n%d pass%s over the data (%s)." % (
                 self.passes, "" if self.passes == 1 else "es", self.method)

    def __repr__(self):
        return "<keras_bn_patch recalibration: %d BN layers>" % len(self.rows)


def _choose(found, layers):
    if isinstance(layers, str):
        if layers not in SELECTIONS:
            raise ValueError("layers must be 'all', 'frozen', 'trainable' or a list of BN layer names, "
                             "got %r" % layers)
        return [entry for entry in found if layers == "all" or entry[2] == (layers == "frozen")]
    if not isinstance(layers, (list, tuple)):
        raise TypeError("layers must be 'all', 'frozen', 'trainable' or a list of BN layer names, got %s"
                        % type(layers).__name__)
    chosen = []
    for name in layers:
        if not isinstance(name, str):
            raise TypeError("layers must list BN layer names (str), got %r" % (name,))
        matches = [entry for entry in found if name in (entry[0], entry[1].name)]
        if not matches:
            raise ValueError("the model has no BN layer named %r; its BN layers are: %s"
                             % (name, ", ".join(entry[0] for entry in found) or "none"))
        chosen.extend(entry for entry in matches if entry not in chosen)
    return chosen


def _progress_bar(api, target, verbose):
    utils = api.keras.utils
    progbar = getattr(utils, "Progbar", None) or utils.generic_utils.Progbar
    return progbar(target, verbose=verbose)


def recalibrate(model, data, steps=None, layers="all", batch_size=None, verbose=1, method="passes",
                tolerance=None):
    """Re-estimate ``moving_mean``/``moving_variance`` of the chosen BN layers of ``model`` as the
    population statistics of what they receive from ``data`` in inference mode.

    data: a NumPy array (list of arrays for several inputs), a keras Sequence, a generator
    (``steps`` required) or a tf.data.Dataset.  steps: at most this many batches per pass.
    batch_size: samples per batch of an array; None: as many as BATCH_MEMORY holds (other
    data's batches joined up to that), the whole data when it fits: one exact pass.
    layers: "all", "frozen", "trainable" (frozen: in the model's view, enclosing models
    included) or a list of layer names or paths (``backbone/bn_conv1``).
    method: "passes" (every layer in each pass, until the statistics stop moving by more than
    ``tolerance`` standard deviations, 1e-4 if None) or "layer_by_layer" (one pass per layer).
    Returns a ``Summary`` of how far each layer's statistics moved, and the passes taken.
    """
    api = keras_api.for_model(model)
    if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise ValueError("verbose must be 0, 1 or 2, got %r" % (verbose,))
    if method not in METHODS:
        raise ValueError("method must be 'passes' or 'layer_by_layer', got %r" % (method,))
    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < np.inf:
        raise ValueError("tolerance must be a number >= 0, got %r" % (tolerance,))
    batches = _data.Batches(api, model, data, batch_size=batch_size, steps=steps, name="data")
    found = _diagnose.bn_layers(model)
    chosen = _choose(found, layers)
    if not chosen:
        return Summary([], method)
    paths = {layer: path for path, layer, _ in chosen}
    weights = model.get_weights()
    try:
        with _forward.errors_named("running the model on data"):
            forward = _forward.Forward(api, model, [layer for _, layer, _ in found])
            first_pass = paths if method == "passes" else ()
            order = [layer for layer in forward.call_order(next(iter(batches)), first_pass) if layer in paths]
            if batch_size is None and batches.can_grow():
                batches = batches.joined(_samples_in_memory(forward))
            old = _bn_stats.layer_values(api, order)
            progress = _progress_bar(api, len(order) + (method == "passes"), verbose)
            statistics = _Statistics(api, old)
            if method == "passes":
                taken, measured = _by_passes(statistics, forward, batches, order, tolerance, progress)
            else:
                taken, measured = _layer_by_layer(statistics, forward, batches, order, progress)
    except BaseException:
        model.set_weights(weights)
        raise
    rows = [dict(path=paths[layer], values_seen=moments.count, **_bn_stats.distance(
        moments.mean, moments.variance, old[layer]["moving_mean"], old[layer]["moving_variance"],
        float(layer.epsilon), old[layer]["gamma"])) for layer, moments in measured.items()]
    return Summary(rows, method, taken)


def _samples_in_memory(forward):
    """Samples per batch when the user gives no batch_size: as many as BATCH_MEMORY holds, with
    PEAK_COPIES of the model's largest activation per sample in float32 (what a forward pass
    keeps alive at its peak), and never fewer than Keras's default batch."""
    per_sample = forward.values_per_sample() * 4 * PEAK_COPIES
    return max(_data.DEFAULT_BATCH_SIZE, BATCH_MEMORY // max(per_sample, 1))


class _Statistics(object):
    """The chosen layers' moving statistics.  ``set({layer: Moments})`` writes every chosen
    layer's, changed or not, in one run: in a TF 1 graph, a run that feeds another set of
    variables builds a new executor, which costs more than the run itself in a large graph."""

    def __init__(self, api, old):
        self._api = api
        self._values = dict((layer, [values["moving_mean"], values["moving_variance"]])
                            for layer, values in old.items())

    def set(self, measured):
        for layer, moments in measured.items():
            self._values[layer] = [moments.mean, moments.variance]
        keras_api.set_values(self._api, [pair for layer, (mean, variance) in self._values.items() for pair in (
            (layer.moving_mean, mean), (layer.moving_variance, variance))])


def _layer_by_layer(statistics, forward, batches, order, progress, done=0):
    found = {}
    for count, layer in enumerate(order, done + 1):
        found[layer] = forward.measure(batches, [layer])[1][layer]
        statistics.set({layer: found[layer]})
        progress.update(count)
    return len(order), found


def _by_passes(statistics, forward, batches, order, tolerance, progress):
    """-> (passes, {layer: Moments of its last measurement}); see the module's docstring."""
    sizes = []
    # The batch-statistics estimate; every layer measured, as call_order did with this function.
    estimate = forward.measure(_counted(batches, sizes), forward.bn_layers, normalise=order)[1]
    last = dict((layer, estimate[layer]) for layer in order)
    statistics.set(last)
    if len(sizes) == 1 and all(forward.called_once(layer) for layer in order):
        # One batch held all of the data: each layer was normalised by the statistics of all it
        # receives, which are what its moving statistics now hold, so the estimate is exact.
        progress.update(len(order) + 1)
        return 1, last
    for passes in range(2, INFERENCE_PASSES + 2):
        measured = forward.measure(batches, order)[1]
        moving = [layer for layer in order if _moved(last[layer], measured[layer], float(layer.epsilon)) > tolerance]
        statistics.set(measured)
        last.update(measured)
        progress.update(passes)
        if not moving:
            progress.update(len(order) + 1)
            return passes, last
    # Still moving: every layer before the first that moved was settled, and that one was just
    # measured from settled inputs: the layers after it, one at a time (exact from there).
    rest = order[order.index(moving[0]) + 1:]
    more, found = _layer_by_layer(statistics, forward, batches, rest, progress, len(order) + 1 - len(rest))
    last.update(found)
    return passes + more, last


def _counted(batches, sizes):
    for batch in batches:
        sizes.append(len(batch[0]))
        yield batch


def _moved(before, after, epsilon):
    """The largest change of a channel's mean or standard deviation, in standard deviations."""
    std = np.sqrt(after.variance + epsilon)
    return float(max(np.max(np.abs(after.mean - before.mean) / std),
                     np.max(np.abs(np.sqrt(before.variance + epsilon) - std) / std)))
