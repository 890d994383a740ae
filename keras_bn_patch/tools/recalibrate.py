"""recalibrate(model, data): set BN moving statistics to the exact statistics of ``data``.

Like PyTorch's ``torch.optim.swa_utils.update_bn`` and AdaBN, but exact and in
inference mode: layers are done one at a time in the order the model calls them,
each from one pass over ``data`` in which every layer above it already runs
with its new statistics, so each layer's statistics describe exactly what it
will receive in predict().  That costs one pass over ``data`` per layer (a pass
stops at the layer being measured).  Only ``moving_mean`` and
``moving_variance`` of the chosen layers change; if anything fails, every
weight is put back.
"""
from . import bn_stats as _bn_stats, data as _data, diagnose as _diagnose, forward as _forward, keras_api
from . import table as _table

SELECTIONS = ("all", "frozen", "trainable")


class Summary(object):
    """What recalibrate() changed: ``rows``, one dict per layer (how far its old moving statistics
    were from the new ones, in the units diagnose() uses)."""

    def __init__(self, rows):
        self.rows = rows

    def to_dict(self):
        return {"layers": self.rows}

    def __str__(self):
        if not self.rows:
            return "No BatchNormalization layer recalibrated."
        return _table.format_table(
            ("layer", "values seen", "mean shift", "var ratio", "discrepancy"),
            [(r["path"], r["values_seen"], r["mean_shift"], r["variance_ratio"], r["discrepancy"])
             for r in self.rows])

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


def _assign(api, variable, value):
    if api.name == "keras3":
        variable.assign(value.reshape(tuple(variable.shape)).astype(variable.dtype))
        return
    K = api.keras.backend
    K.set_value(variable, value.reshape(K.int_shape(variable)).astype(K.dtype(variable)))


def recalibrate(model, data, steps=None, layers="all", batch_size=None, verbose=1):
    """Re-estimate ``moving_mean``/``moving_variance`` of the chosen BN layers of ``model`` as the
    population statistics of what they receive from ``data`` in inference mode.

    data: a NumPy array (list of arrays for several inputs), a keras Sequence, a generator
    (``steps`` required) or a tf.data.Dataset.  steps: at most this many batches per pass.
    layers: "all", "frozen", "trainable" (frozen: in the model's view, enclosing models
    included) or a list of layer names or paths (``backbone/bn_conv1``).
    Returns a ``Summary`` of how far each layer's statistics moved.
    """
    api = keras_api.for_model(model)
    if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise ValueError("verbose must be 0, 1 or 2, got %r" % (verbose,))
    batches = _data.Batches(api, model, data, batch_size=batch_size, steps=steps, name="data")
    found = _diagnose.bn_layers(model)
    chosen = _choose(found, layers)
    if not chosen:
        return Summary([])
    paths = {layer: path for path, layer, _ in chosen}
    weights = model.get_weights()
    rows = []
    try:
        with _forward.errors_named("running the model on data"):
            forward = _forward.Forward(api, model, [layer for _, layer, _ in found])
            order = [layer for layer in forward.call_order(next(iter(batches))) if layer in paths]
            progress = _progress_bar(api, len(order), verbose)
            for done, layer in enumerate(order, 1):
                moments = _bn_stats.Moments(layer)
                for batch in batches:
                    for array in forward.inputs_of(batch, [layer])[layer]:
                        moments.add(array)
                old = _bn_stats.layer_values(api, layer)
                _assign(api, layer.moving_mean, moments.mean)
                _assign(api, layer.moving_variance, moments.variance)
                rows.append(dict(path=paths[layer], values_seen=moments.count, **_bn_stats.distance(
                    moments.mean, moments.variance, old["moving_mean"], old["moving_variance"],
                    float(layer.epsilon), old["gamma"])))
                progress.update(done)
    except BaseException:
        model.set_weights(weights)
        raise
    return Summary(rows)
