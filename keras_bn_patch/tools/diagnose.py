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

from ..core import entry as _entry, held as _held, layers as _layers
from . import bn_stats as _bn_stats, data as _data, forward as _forward, keras_api, table as _table

DEFAULT_TOLERANCE = 0.2

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

    def __init__(self, rows, model, tolerance):
        self.rows, self.model, self.tolerance = rows, model, tolerance
        problems = [row for row in rows if row["verdict"] in PROBLEMS]
        self.healthy = not problems
        self.verdict = "healthy" if self.healthy else "problems found"
        # Held layers normalised with their moving statistics in fit() too: the layers after
        # them were trained on those, so a repair leaves them as they are.
        unheld = [row["path"] for row in rows if row["verdict"] != HELD]
        repair = "keras_bn_patch.recalibrate(model, data%s)" % (
            ", layers=%r" % unheld if len(unheld) < len(rows) else "")
        if any(row["verdict"] == NEEDS_PATCH for row in rows):
            self.advice = ("import keras_bn_patch before fine-tuning; if this model was already fine-tuned "
                           "without it, %s" % repair)
        elif problems:
            self.advice = repair
        elif any(row["verdict"] == HELD and row["handled_by"] != INFERENCE_CALL for row in rows):
            self.advice = ("nothing to do if fine-tuned with the patch; if not, "
                           "keras_bn_patch.recalibrate(model, data, layers='frozen')")
        else:
            self.advice = "nothing to do"

    def to_dict(self):
        return {"healthy": self.healthy, "verdict": self.verdict, "advice": self.advice,
                "tolerance": self.tolerance, "model": self.model, "layers": self.rows}

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


def diagnose(model, x, batch_size=None, tolerance=None, fine_tuned_unpatched=False, steps=None):
    """Report, for each BN layer of ``model`` and for the whole model, how far training-mode
    and inference-mode behaviour differ on ``x``, with a verdict and advice (see ``Report``).
    ``x`` and ``steps``: as ``data`` and ``steps`` of recalibrate().

    A frozen layer held by the patch or natively normalizes with its moving statistics in
    fit() too, so statistics far from ``x`` are no problem there ("held")... unless the model
    was already fine-tuned where that layer used batch statistics (plain Keras 2, TF < 2.2,
    or a tf.compat.v1 layer, without the patch; a saved model loaded in TF >= 2.2 comes back
    with native layers): say so with ``fine_tuned_unpatched=True``, and such layers count
    as needing recalibration."""
    api = keras_api.for_model(model)
    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise ValueError("tolerance must be a positive number, got %r" % (tolerance,))
    batches = _data.Batches(api, model, x, batch_size=batch_size, steps=steps, name="x")
    found = bn_layers(model)
    if not found:
        return Report([], None, tolerance)
    layers = [layer for _, layer, _ in found]
    with _entry.running(model), _forward.errors_named("running the model on x"):
        handled_by = {layer: _held.handled_by(layer) for layer in layers}
        handled_by.update((layer, INFERENCE_CALL) for layer in _called_in_inference_mode(model))
        unheld = [layer for _, layer, frozen in found if not (
            frozen and handled_by[layer] in ("patched", "native") or handled_by[layer] == INFERENCE_CALL)]
        # Both passes at once: one function, and TensorFlow runs the two modes side by side.
        # With every layer held, training mode is inference mode: one pass is the whole cost.
        modes = [(layers, (), True)] + ([((), unheld, True)] if unheld else [])
        results = _forward.runner(api, model, layers, fused=True).measure_modes(batches, modes)
        (inference, moments), training = results[0], results[-1][0]
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
    return Report(rows, _compare(training, inference), tolerance)


def _compare(training, inference):
    training, inference = np.concatenate(training), np.concatenate(inference)
    difference = np.sqrt(np.mean(np.square(training - inference)) /
                         max(np.mean(np.square(inference - inference.mean(axis=0))), 1e-12))
    agreement = None
    if training.ndim == 2 and training.shape[1] > 1:
        agreement = float(np.mean(training.argmax(axis=1) == inference.argmax(axis=1)))
    return {"samples": int(training.shape[0]), "difference": float(difference), "argmax_agreement": agreement}
