"""diagnose(model, x): which BN layers make predict() differ from fit(), and what to do.

For every BN layer (through nested models) the statistics of what it receives
from ``x`` in inference mode are compared with its moving statistics, and the
difference between its training-mode and inference-mode outputs on ``x`` is
computed from them (see ``_bn_stats.distance``).  The whole model is run twice on
``x``, and only twice (once if every BN layer is held): in inference mode (which
measures every layer's input at the same time), and with each BN layer as fit() in
this process runs it (normalised by its batch's statistics, unless held: frozen and
patched, natively frozen, or called with training=False by the model's own code);
every other layer (Dropout, ...) is in inference mode both times, so only BN can make
the two differ.  The batch statistics are computed by the tool, not by the layers'
training-mode calls, so no moving statistic moves: nothing about the model changes.
"""
import numpy as np

from ..core import entry as _entry, flavours as _flavours, layers as _layers
from . import bn_stats as _bn_stats, data as _data, defaults, forward as _forward, keras_api, table as _table


OK, HELD, NEEDS_PATCH, NEEDS_RECALIBRATION = "ok", "held", "needs patch", "needs recalibration"
ADVICE = {
    OK: "nothing to do",
    HELD: "nothing to do: held frozen, fit() sees these statistics too (recalibrate only if the "
          "model was fine-tuned without the patch)",
    NEEDS_PATCH: "import keras_bn_patch (fit() normalizes this frozen layer with batch statistics); "
                 "recalibrate if the model was already fine-tuned without it",
    NEEDS_RECALIBRATION: "recalibrate: its moving statistics do not describe the data",
}
PROBLEMS = (NEEDS_PATCH, NEEDS_RECALIBRATION)
# The report's verdict, one word each, and the CLI's exit code for it (2 is bad usage).
HEALTHY, ADVISED, NEEDS_ACTION = "healthy", "advice", "needs action"
EXIT_CODES = {HEALTHY: 0, NEEDS_ACTION: 1, ADVISED: 3}
# With labels: batch statistics fit them "clearly better" than the moving ones when the
# accuracy is higher by this much (classification) or the squared error lower by this share.
TRAP_ACCURACY_GAIN = 0.05
TRAP_ERROR_REDUCTION = 0.2
# "handled by" for a layer the model's own code calls with training=False: Keras holds it in
# fit() itself, patched or not, frozen or not.
INFERENCE_CALL = "training=False"
INFERENCE_CALL_ADVICE = ("nothing to do: the model calls it with training=False, so fit() normalizes "
                         "with these statistics too (recalibrating would change what the layers after "
                         "it were trained on)")


def _is_bn(layer):
    return hasattr(layer, "moving_mean") and hasattr(layer, "moving_variance")


def bn_layers(model):
    """[(path, layer, frozen)] of every BN layer in ``model`` (any layer with moving statistics)."""
    return [(path, layer, frozen) for path, layer, frozen in _layers.reachable_layers(model) if _is_bn(layer)]


def require_built(model, tool):
    """A ValueError naming ``model`` where it never ran (a Sequential model without an input
    shape, a subclassed model never called): its BN layers have no statistics yet, and a
    layer without them is no BN layer to ``bn_layers``, so the tool would find none."""
    if getattr(model, "built", True):
        return
    # Its BN layers decide: a Keras 2.0/2.1 Sequential model is not built until compiled, its layers are.
    unbuilt = [path for path, layer, _ in _layers.reachable_layers(model) if not getattr(layer, "built", True)
               and any("BatchNormalization" in cls.__name__ for cls in type(layer).__mro__)]
    if unbuilt:
        raise ValueError("model %r is not built, so its BN layers (%s) have no statistics yet: run it once "
                         "(model.predict on a sample builds it) and load its weights before %s()"
                         % (getattr(model, "name", type(model).__name__), ", ".join(unbuilt), tool))


def _nodes_by_depth(layer):
    """A functional or Sequential model's graph: {depth: [node]} (Keras 2.0/2.1 name it without
    the underscore); empty for any other layer."""
    return getattr(layer, "_nodes_by_depth", None) or getattr(layer, "nodes_by_depth", None) or {}


def _called_in_inference_mode(model):
    """The BN layers that ``model``'s own graph always calls with ``training=False``, given at
    construction to the layer or to a model enclosing it (the transfer-learning recipe
    ``base(inputs, training=False)``): fit() runs them in inference mode too.  Keras 2 and
    tf.keras keep that argument in each node of the model's graph and honour it in fit();
    Keras 3's fit() overrides it (its nodes keep their arguments in another shape, so none is
    found there).  A layer also called without it is not one."""
    pinned, free, layers = set(), set(), {}

    def walk(network, inference):
        for nodes in list(_nodes_by_depth(network).values()):
            for node in nodes:
                layer = getattr(node, "layer", None) or getattr(node, "outbound_layer", None)
                arguments = getattr(node, "call_kwargs", None)
                arguments = getattr(node, "arguments", None) if arguments is None else arguments
                if layer is None or layer is network:
                    continue
                given = arguments.get("training") if isinstance(arguments, dict) else None
                pinned_here = inference or (type(given) in (bool, int) and not given)
                if pinned_here or not _nodes_by_depth(layer):
                    for found in ([layer] if _is_bn(layer) else []) + [entry[1] for entry in bn_layers(layer)]:
                        layers[id(found)] = found
                        (pinned if pinned_here else free).add(id(found))
                else:
                    walk(layer, False)  # a model inside: its own nodes say how it calls its layers

    walk(model, False)
    return [layers[key] for key in pinned - free]


class Report(object):
    """What diagnose() found.  ``rows``: one dict per BN layer; ``model``: the whole model's
    training-mode vs inference-mode comparison; ``healthy``, ``verdict``, ``advice``."""

    def __init__(self, rows, model, tolerance, labels=None):
        self.rows, self.model, self.tolerance, self.labels = rows, model, tolerance, labels
        problems = [row for row in rows if row["verdict"] in PROBLEMS]
        # "advice": only frozen layers that plain Keras would fine-tune on batch statistics,
        # advice about a future fit(), not statistics that are wrong now; where labels showed
        # the model was not fine-tuned so (else they would need recalibration), it is healthy.
        self.verdict = NEEDS_ACTION if any(row["verdict"] == NEEDS_RECALIBRATION for row in problems) else \
            ADVISED if problems and labels is None else HEALTHY
        self.healthy = self.verdict == HEALTHY
        # Held layers normalised with their moving statistics in fit() too: the layers after
        # them were trained on those, so a repair leaves them as they are.
        unheld = [row["path"] for row in rows if row["verdict"] != HELD]
        repair = "keras_bn_patch.recalibrate(model, data%s)" % (
            ", layers=%r" % unheld if len(unheld) < len(rows) else "")
        if any(row["verdict"] == NEEDS_PATCH for row in rows) and labels is not None:
            self.advice = ("nothing to do for the model as it is (its labels show no fine-tune in the trap); "
                           "import keras_bn_patch before fine-tuning it again")
        elif any(row["verdict"] == NEEDS_PATCH for row in rows):
            self.advice = ("import keras_bn_patch before fine-tuning; if this model was already fine-tuned "
                           "without it, %s" % repair)
        elif problems:
            self.advice = repair
        elif any(row["verdict"] == HELD and row["handled_by"] != INFERENCE_CALL for row in rows):
            self.advice = ("nothing to do if fine-tuned with the patch; if not, "
                           "keras_bn_patch.recalibrate(model, data, layers='frozen')")
        else:
            self.advice = "nothing to do"

    def exit_code(self, strict=False):
        """The CLI's exit code: 0 healthy, 1 needs action, 3 advice; ``strict``: 1 for any layer
        that needs the patch."""
        if strict and any(row["verdict"] == NEEDS_PATCH for row in self.rows):
            return EXIT_CODES[NEEDS_ACTION]
        return EXIT_CODES[self.verdict]

    def to_dict(self):
        return {"healthy": self.healthy, "verdict": self.verdict, "advice": self.advice,
                "tolerance": self.tolerance, "model": self.model, "layers": self.rows, "labels": self.labels}

    def __str__(self):
        if not self.rows:
            return "No BatchNormalization layers: nothing to diagnose."
        table = _table.format_table(
            ("layer", "state", "handled by", "mean shift", "var ratio", "discrepancy", "verdict"),
            [(r["path"], r["state"], r["handled_by"], r["mean_shift"], r["variance_ratio"],
              r["discrepancy"], r["verdict"]) for r in self.rows])
        lines = [table, ""]
        if self.model is not None:
            agreement = self.model["argmax_agreement"]
            lines.append("Whole model on %d samples, BN in training vs inference mode: relative output "
                         "difference %.3g%s." % (self.model["samples"], self.model["difference"],
                                                 "" if agreement is None else
                                                 ", same predicted class for %.1f%%" % (100 * agreement)))
        if self.labels is not None:
            lines.append(_labels_line(self.labels))
        lines.append("Verdict: %s (tolerance %g). Advice: %s." % (self.verdict, self.tolerance, self.advice))
        return "\n".join(lines)

    def __repr__(self):
        return "<keras_bn_patch diagnose report: %s, %d BN layers>" % (self.verdict, len(self.rows))


def _verdict(distance, frozen, handled_by, tolerance, fine_tuned_unpatched):
    if distance["discrepancy"] <= tolerance:
        return OK
    if handled_by == INFERENCE_CALL:  # fit() never normalised it with batch statistics
        return HELD
    if not frozen:
        return NEEDS_RECALIBRATION
    if fine_tuned_unpatched:  # its statistics are what is wrong now, patched from here on or not
        return NEEDS_RECALIBRATION
    return NEEDS_PATCH if handled_by == "unpatched" else HELD


def _labels_line(labels):
    figures = ", ".join("%s %.4g with batch statistics vs %.4g with moving statistics" % (
        name, labels["batch_statistics"][name], labels["moving_statistics"][name]) for name in labels["metrics"])
    return "On the labels (%d samples): %s: %s." % (labels["samples"], figures, (
        "the layers after the BN layers were fitted to batch statistics: fine-tuned in the trap"
        if labels["fine_tuned_in_the_trap"] else "no sign of a fine-tune in the trap"))


def diagnose(model, x, batch_size=None, tolerance=defaults.DIAGNOSE_TOLERANCE, fine_tuned_unpatched=False,
             steps=None, y=None):
    """Report, for each BN layer of ``model`` and for the whole model, how far training-mode
    and inference-mode behaviour differ on ``x``, with a verdict and advice (see ``Report``).
    ``x`` and ``steps``: as ``data`` and ``steps`` of recalibrate().

    A frozen layer held by the patch or natively normalizes with its moving statistics in
    fit() too, so statistics far from ``x`` are no problem there ("held")... unless the model
    was already fine-tuned where that layer used batch statistics (plain Keras 2, TF < 2.2,
    or a tf.compat.v1 layer, without the patch; a saved model loaded in TF >= 2.2 comes back
    with native layers): say so with ``fine_tuned_unpatched=True``, and such layers count
    as needing recalibration.

    ``y``: labels of ``x`` (an array, class indices, one-hot rows or regression targets), when
    ``x`` is an array.  The model's fit to them with its BN layers normalised by batch statistics
    (as plain Keras's fit() ran the frozen ones) and by their moving statistics tells which the
    layers after them were fitted to: when batch statistics fit clearly better, the model was
    fine-tuned in the trap (as ``fine_tuned_unpatched=True``); both figures are in
    ``report.labels``."""
    api = keras_api.for_model(model)
    require_built(model, "diagnose")
    tolerance = defaults.DIAGNOSE_TOLERANCE if tolerance is None else tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise ValueError("tolerance must be a positive number, got %r" % (tolerance,))
    batches = _data.Batches(api, model, x, batch_size=batch_size, steps=steps, name="x")
    labels = None if y is None else _labels_for(x, y)
    found = bn_layers(model)
    if not found:
        return Report([], None, tolerance)
    layers = [layer for _, layer, _ in found]
    with _entry.running(model), _forward.errors_named("running the model on x"):
        handled_by = {layer: _flavours.handled_by(layer) for layer in layers}
        handled_by.update((layer, INFERENCE_CALL) for layer in _called_in_inference_mode(model))
        unheld = [layer for _, layer, frozen in found if not (
            frozen and handled_by[layer] in ("patched", "native") or handled_by[layer] == INFERENCE_CALL)]
        # Both passes at once: one function, and TensorFlow runs the two modes side by side.
        # With every layer held, training mode is inference mode: one pass is the whole cost.
        modes = [(layers, (), True)] + ([((), unheld, True)] if unheld else [])
        # With labels, also as plain Keras's fit() ran every layer: on batch statistics, but
        # those the model's own code calls with training=False.
        in_plain_fit = [layer for layer in layers if handled_by[layer] != INFERENCE_CALL]
        if labels is not None and in_plain_fit != unheld:
            modes.append(((), in_plain_fit, True))
        results = _forward.runner(api, model, layers, fused=True).measure_modes(batches, modes)
        (inference, moments), training = results[0], results[1 if unheld else 0][0]
    fit = None
    if labels is not None:
        fit = _fit_to_labels(results[-1][0] if in_plain_fit else inference, inference, labels)
        fine_tuned_unpatched = fine_tuned_unpatched or fit["fine_tuned_in_the_trap"]
    values = _bn_stats.layer_values(api, layers)
    rows = []
    for path, layer, frozen in found:
        if moments[layer].count == 0:
            continue  # not called by the model
        distance = _bn_stats.distance(moments[layer].mean, moments[layer].variance, values[layer]["moving_mean"],
                                      values[layer]["moving_variance"], float(layer.epsilon), values[layer]["gamma"])
        verdict = _verdict(distance, frozen, handled_by[layer], tolerance, fine_tuned_unpatched)
        rows.append(dict(path=path, state="frozen" if frozen else "trainable", handled_by=handled_by[layer],
                         verdict=verdict, advice=INFERENCE_CALL_ADVICE if verdict == HELD and
                         handled_by[layer] == INFERENCE_CALL else ADVICE[verdict], **distance))
    return Report(rows, _compare(training, inference), tolerance, fit)


def _labels_for(x, y):
    """``y`` as an array, one label per sample of array ``x``; anything else is a clear error."""
    if not isinstance(x, np.ndarray):
        raise TypeError("y is taken with x as an array (the labels of its samples in order), got x of type %s"
                        % type(x).__name__)
    try:
        labels = np.asarray(y)
    except Exception as error:
        raise TypeError("y must be an array of labels, got %s (%s)" % (type(y).__name__, error))
    if labels.dtype.kind not in "biuf" or labels.ndim == 0 or len(labels) != len(x):
        raise ValueError("y must hold one numeric label per sample of x (%d), got %s of shape %s"
                         % (len(x), labels.dtype, labels.shape))
    return labels


def _fit_to_labels(batch_statistics, moving_statistics, labels):
    """How well the outputs with batch statistics and with moving statistics fit ``labels``:
    accuracy and cross-entropy for a classifier's outputs (probabilities or logits; labels as
    indices or one-hot), the mean squared error otherwise; and whether batch statistics fit
    clearly better."""
    outputs = {"batch_statistics": np.concatenate(batch_statistics), "moving_statistics": np.concatenate(moving_statistics)}
    first = outputs["batch_statistics"]
    if len(first) != len(labels):
        raise ValueError("y has %d labels, but the model ran on %d samples of x (steps?)" % (len(labels), len(first)))
    classes = first.shape[-1] if first.ndim == 2 and first.shape[-1] > 1 else None
    if classes is not None and (labels.ndim == 1 or labels.shape == first.shape):
        indices = labels.argmax(axis=-1) if labels.ndim == 2 else labels.astype("int64")
        figures = {name: {"accuracy": float(np.mean(output.argmax(axis=-1) == indices)),
                          "cross_entropy": _cross_entropy(output, indices)} for name, output in outputs.items()}
        trap = figures["batch_statistics"]["accuracy"] - figures["moving_statistics"]["accuracy"] >= TRAP_ACCURACY_GAIN
        metrics = ("accuracy", "cross_entropy")
    else:
        target = labels.reshape(first.shape) if labels.size == first.size else labels
        figures = {name: {"mean_squared_error": float(np.mean(np.square(output - target)))}
                   for name, output in outputs.items()}
        trap = figures["batch_statistics"]["mean_squared_error"] <= \
            (1 - TRAP_ERROR_REDUCTION) * figures["moving_statistics"]["mean_squared_error"]
        metrics = ("mean_squared_error",)
    return dict(figures, metrics=metrics, samples=int(len(labels)), fine_tuned_in_the_trap=bool(trap))


def _cross_entropy(output, indices):
    output = output.astype("float64")
    if output.min() < 0 or not np.allclose(output.sum(axis=-1), 1, atol=1e-3):  # logits
        output = np.exp(output - output.max(axis=-1, keepdims=True))
        output /= output.sum(axis=-1, keepdims=True)
    picked = output[np.arange(len(indices)), np.clip(indices, 0, output.shape[-1] - 1)]
    return float(-np.mean(np.log(np.maximum(picked, 1e-12))))


def _compare(training, inference):
    training, inference = np.concatenate(training), np.concatenate(inference)
    difference = np.sqrt(np.mean(np.square(training - inference)) /
                         max(np.mean(np.square(inference - inference.mean(axis=0))), 1e-12))
    agreement = None
    if training.ndim == 2 and training.shape[1] > 1:
        agreement = float(np.mean(training.argmax(axis=1) == inference.argmax(axis=1)))
    return {"samples": int(training.shape[0]), "difference": float(difference), "argmax_agreement": agreement}
