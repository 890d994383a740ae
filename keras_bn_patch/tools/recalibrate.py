"""recalibrate(model, data): set BN moving statistics to the exact statistics of ``data``.

Like PyTorch's ``torch.optim.swa_utils.update_bn`` and AdaBN, but exact and in
inference mode: after it, each chosen layer's statistics describe exactly what it
receives in predict().

By default (``method="auto"``) arrays given without a ``batch_size`` that fit in one batch
of ``memory_limit`` take the passes method's first pass, exact then (below); anything else
takes the staged method (``staged.py``): the layers are settled in order of dependency, the
data is read once, each layer of the model runs once per sample, and the activations that
cross from one stage to the next are kept (in memory up to ``memory_limit``, in temporary
files beyond it).  The statistics and the work do not depend on ``batch_size``, which bounds
the memory of one model call and nothing else.

A model whose graph cannot be cut into stages (a BN layer fed by its own output) falls
back to ``method="passes"`` and says so in the summary: every chosen layer is measured in
each pass over ``data``:

1. a first pass with every chosen layer normalised by its own batch statistics
   (what update_bn and AdaBN do) gives all of them a close estimate at once;
2. passes in inference mode, each layer normalising with the statistics of the
   pass before, correct what is left, until no statistic moves by more than
   ``tolerance`` (in units of the channel's standard deviation).

A layer depends only on the layers the model calls before it, so an inference
pass settles at least the first layer that still moved.  Where errors grow from
layer to layer (deep nets on small batches), passes alone would take one per layer;
so after ``INFERENCE_PASSES`` the layers after the first one still moving are done
one at a time, each from its own pass, which is exact by construction.

The estimate is exact where the whole data is one batch (each layer is then
normalised by the statistics of all it receives, which its moving statistics
become), so without a ``batch_size`` the batches are as large as ``memory_limit``
holds, and data that fits in one takes that one pass (unless a chosen layer is
called more than once: its statistics are then those of all its calls, which no
call's batch has).  ``method="layer_by_layer"`` does every layer one at a time
(the reference); ``method="estimate"`` stops after the first pass, whatever its batches.

Only ``moving_mean`` and ``moving_variance`` of the chosen layers change; if
anything fails, every weight is put back and no temporary file is left.
"""
import numpy as np

from . import bn_stats as _bn_stats, data as _data, defaults, diagnose as _diagnose, forward as _forward, keras_api
from . import staged as _staged, table as _table
from .progress import Progress

SELECTIONS = ("all", "frozen", "trainable")
METHODS = ("auto", "staged", "passes", "layer_by_layer", "estimate")
# Inference passes before the layers still moving are finished one at a time.  Where statistics
# errors grow from layer to layer (a deep net on small batches), passes settle about one layer
# each, so more of them would cost more than finishing layer by layer.
INFERENCE_PASSES = 3
# Without a batch_size, batches as large as this memory holds (see
# _samples_in_memory): a forward pass keeps a few copies of the model's largest activation alive
# at its peak, and PEAK_COPIES is an upper bound of them (docs/howto/repair.rst gives the peak
# memory measured); the staged method keeps up to as much again of activations in memory.
PEAK_COPIES = 8
ACTIVATION_BYTES = 4  # float32: what an activation's value takes, for the sizes above and below


class Summary(object):
    """What recalibrate() changed: ``rows``, one dict per layer (how far its old moving statistics
    were from the new ones, in the units diagnose() uses); the ``method`` that ran, the
    ``passes`` over the data it took, its ``stages`` (staged), the peak bytes of activations it
    kept in memory and on disk (``kept``), and ``note``: why it is not the method asked for."""

    def __init__(self, rows, method=METHODS[0], passes=0, stages=0, kept=None, note=None):
        self.rows, self.method, self.passes, self.stages, self.note = rows, method, passes, stages, note
        self.kept = kept or {"memory_bytes": 0, "disk_bytes": 0}

    def to_dict(self):
        return {"layers": self.rows, "method": self.method, "passes": self.passes, "stages": self.stages,
                "kept": dict(self.kept), "note": self.note}

    def __str__(self):
        if not self.rows:
            return "No BatchNormalization layer recalibrated."
        how = self.method + (", %d stages" % self.stages if self.stages else "") + (
            ": " + self.note if self.note else "")
        return _table.format_table(
            ("layer", "values seen", "mean shift", "var ratio", "discrepancy"),
            [(r["path"], r["values_seen"], r["mean_shift"], r["variance_ratio"], r["discrepancy"])
             for r in self.rows]) + "\n%d pass%s over the data (%s)." % (
                 self.passes, "" if self.passes == 1 else "es", how)

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


def recalibrate(model, data, steps=None, layers="all", batch_size=None, verbose=1, method="auto",
                tolerance=defaults.RECALIBRATE_TOLERANCE, memory_limit=defaults.MEMORY_LIMIT):
    """Re-estimate ``moving_mean``/``moving_variance`` of the chosen BN layers of ``model`` as the
    population statistics of what they receive from ``data`` in inference mode.

    data: a NumPy array (list of arrays for several inputs), a keras Sequence, a generator
    (``steps`` required) or a tf.data.Dataset.  steps: at most this many batches per pass.
    batch_size: samples per model call; None: as many as ``memory_limit`` holds.
    layers: "all", "frozen", "trainable" (frozen: in the model's view, enclosing models
    included) or a list of layer names or paths (``backbone/bn_conv1``).
    method: "auto" ("passes" where no batch_size is given and the data is arrays that fit in
    one batch of ``memory_limit``: its one pass is then exact; "staged" otherwise), "staged"
    (the data read once, each layer run once per sample; a model that cannot be cut into
    stages falls back to "passes", and the summary's note says why), "passes" (every layer in
    each pass, until the statistics stop moving by more than ``tolerance`` standard
    deviations, 1e-4 if None), "layer_by_layer" (one pass per layer) or "estimate" (one pass,
    each layer normalised by its batch's own statistics, as PyTorch's update_bn: not exact
    unless all of the data is one batch).
    memory_limit: bytes (1 GiB if None) for the activations of one model call when no
    batch_size is given, and, as much again, for the activations the staged method keeps in
    memory; beyond that it keeps them in a temporary directory, removed before it returns.
    Returns a ``Summary`` of how far each layer's statistics moved, the method and the passes.
    """
    api = keras_api.for_model(model)
    _diagnose.require_built(model, "recalibrate")
    if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise ValueError("verbose must be 0, 1 or 2, got %r" % (verbose,))
    if method not in METHODS:
        raise ValueError("method must be 'auto', 'staged', 'passes', 'layer_by_layer' or 'estimate', got %r"
                         % (method,))
    tolerance = defaults.RECALIBRATE_TOLERANCE if tolerance is None else tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < np.inf:
        raise ValueError("tolerance must be a number >= 0, got %r" % (tolerance,))
    memory_limit = defaults.MEMORY_LIMIT if memory_limit is None else memory_limit
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, int) or memory_limit <= 0:
        raise ValueError("memory_limit must be a number of bytes > 0, got %r" % (memory_limit,))
    batches = _data.Batches(api, model, data, batch_size=batch_size, steps=steps, name="data")
    found = _diagnose.bn_layers(model)
    chosen = _choose(found, layers)
    if not chosen:
        return Summary([], method)
    paths = {layer: path for path, layer, _ in chosen}
    weights = model.get_weights()
    try:
        with _forward.errors_named("running the model on data"):
            forward = _forward.runner(api, model, [layer for _, layer, _ in found])
            if method == "auto":
                method = "passes" if _fits_one_batch(batches, batch_size, paths, memory_limit) else "staged"
            if method == "staged":
                summary = _staged_or_passes(api, model, forward, batches, paths, batch_size, tolerance,
                                            memory_limit, verbose)
            else:
                summary = _by_method(api, forward, batches, paths, method, batch_size, tolerance, memory_limit,
                                     verbose)
    except BaseException:
        model.set_weights(weights)
        raise
    return summary


def _staged_or_passes(api, model, forward, batches, paths, batch_size, tolerance, memory_limit, verbose):
    first = None if getattr(model, "inputs", None) else next(iter(batches))  # the input shapes it lacks
    try:
        plan, compile_run = _staged.build(api, forward, list(paths), first)
    except _staged.NotStaged as why:
        summary = _by_method(api, forward, batches, paths, "passes", batch_size, tolerance, memory_limit, verbose)
        summary.note = "the model cannot be cut into stages: %s" % why
        return summary
    samples = batches.expected_samples()
    if samples is not None:  # recomputed: what would not fit in memory, kept as a smaller input of it
        plan.recompute(memory_limit // (samples * ACTIVATION_BYTES))
    if first is None:
        batches.single_pass()
    if batch_size is None and batches.can_grow():
        batches = batches.joined(_samples_in_memory(plan.values_per_sample, memory_limit))
    order = []
    for layer, _ in plan.calls:
        if layer not in order:
            order.append(layer)
    old = _bn_stats.layer_values(api, order)
    measured, in_memory, on_disk = _staged.run(plan, compile_run, batches, _Statistics(api, old), memory_limit,
                                               Progress("recalibrate (staged)", plan.runs, verbose))
    return Summary(_rows(paths, old, [(layer, measured[layer]) for layer in order]), "staged", 1, plan.runs,
                   {"memory_bytes": in_memory, "disk_bytes": on_disk})


def _fits_one_batch(batches, batch_size, layers, memory_limit):
    """No batch_size, and arrays whose samples all fit in one batch of memory_limit, by the
    shapes Keras knows of the layers' inputs: one pass of the passes method is then exact."""
    samples = batches.samples()
    if batch_size is not None or samples is None or not batches.can_grow():
        return False
    sizes = [_input_values(layer) for layer in layers]
    return None not in sizes and samples <= _samples_in_memory(max(sizes), memory_limit)


def _input_values(layer):
    """Values per sample of a BN layer's input, where Keras knows its shape; else None."""
    for shape in (lambda: layer.input_shape, lambda: tuple(layer.input.shape)):  # Keras 3: no input_shape
        try:
            found = tuple(shape())
        except Exception:  # never called, called on inputs of several shapes, or no such attribute
            continue
        if found and not isinstance(found[0], (tuple, list)) and None not in found[1:]:
            return int(np.prod(found[1:]))
    return None


def _by_method(api, forward, batches, paths, method, batch_size, tolerance, memory_limit, verbose):
    """The passes, layer_by_layer and estimate methods: every pass reads the data and runs the
    whole model."""
    first_pass = paths if method in ("passes", "estimate") else ()
    survey = forward.survey(next(iter(batches)), first_pass)
    order = [layer for layer in survey.order if layer in paths]
    if batch_size is None and batches.can_grow():
        batches = batches.joined(_samples_in_memory(survey.values_per_sample, memory_limit))
    old = _bn_stats.layer_values(api, order)
    progress = Progress("recalibrate (%s)" % method, len(order) + (method != "layer_by_layer"), verbose, unit="pass")
    statistics = _Statistics(api, old)
    if method == "passes":
        taken, measured = _by_passes(statistics, forward, batches, order, survey, tolerance, progress)
    elif method == "estimate":
        taken, measured = 1, _estimate(statistics, forward, batches, order)[1]
        progress.update(len(order) + 1)
    else:
        taken, measured = _layer_by_layer(statistics, forward, batches, order, progress)
    return Summary(_rows(paths, old, measured.items()), method, taken)


def _rows(paths, old, measured):
    return [dict(path=paths[layer], values_seen=moments.count, **_bn_stats.distance(
        moments.mean, moments.variance, old[layer]["moving_mean"], old[layer]["moving_variance"],
        float(layer.epsilon), old[layer]["gamma"])) for layer, moments in measured]


def _samples_in_memory(values_per_sample, memory_limit):
    """Samples per batch when the user gives no batch_size: as many as ``memory_limit`` holds, with
    PEAK_COPIES of the model's largest activation per sample in float32 (what a forward pass
    keeps alive at its peak), and never fewer than Keras's default batch (nor more where the
    activations' sizes are not known before the data is seen)."""
    if values_per_sample is None:  # a graph without static shapes (Theano's inner tensors)
        return _data.DEFAULT_BATCH_SIZE
    return max(_data.DEFAULT_BATCH_SIZE, memory_limit // max(values_per_sample * ACTIVATION_BYTES * PEAK_COPIES, 1))


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


def _estimate(statistics, forward, batches, order):
    """One pass, each chosen layer normalised by its batch's own statistics (update_bn's
    estimate): (batch sizes, {layer: Moments}), the statistics set."""
    sizes = []
    # Every layer measured, as the survey did with this function.
    estimate = forward.measure(_counted(batches, sizes), forward.bn_layers, normalise=order)[1]
    last = dict((layer, estimate[layer]) for layer in order)
    statistics.set(last)
    return sizes, last


def _by_passes(statistics, forward, batches, order, survey, tolerance, progress):
    """-> (passes, {layer: Moments of its last measurement}); see the module's docstring."""
    sizes, last = _estimate(statistics, forward, batches, order)
    if len(sizes) == 1 and all(survey.calls.get(layer) == 1 for layer in order):
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
