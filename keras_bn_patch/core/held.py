"""Which BN layers the patch really holds, and the warning for frozen ones it cannot.

A layer whose graph was built before the patch was installed, in a flavour that builds its
graph once (Keras 2, TF 1), never reads a flag: frozen in a model being trained, it is named
once per model in a warning and in ``status()``'s ``not_held`` (``flavours.handled_by`` tells
the tools how any BN layer runs now).
"""
import weakref

from . import log, registry

_seen = weakref.WeakSet()  # BN layers whose call went through the wrapper since install
_checked = weakref.WeakSet()  # models already checked for layers built without the patch
_unheld = weakref.WeakSet()  # layers found so: later calls (a new graph) do not mend the old one
_not_held = {}  # flavour label -> ["model: layer path", ...]: frozen, yet built without the patch


def saw(layer):
    """Called by the wrappers on every BN call: this layer's graph goes through the patch."""
    _seen.add(layer)


def built_without_patch(layer, flavour):
    """Called (its graph built) before the patch was installed, in a flavour whose graph is
    built once at call time (Keras 2, TF 1): that graph never reads a flag."""
    if layer in _unheld:
        return True
    called = getattr(layer, "_inbound_nodes", None) or getattr(layer, "inbound_nodes", None)
    return bool(called) and layer not in _seen and flavour.builds_graph_at_call()


def check(model, view):
    """Once per model: name its frozen BN layers whose graph was built before the patch."""
    if model in _checked:
        return
    _checked.add(model)
    unheld = {}
    for layer, frozen in list(view.items()):
        flavour = registry.flavour_of(layer)
        if frozen and flavour is not None and not flavour.is_native(layer) and built_without_patch(layer, flavour):
            unheld.setdefault(flavour.label, []).append(str(getattr(layer, "name", layer)))
            _unheld.add(layer)
    for label, names in unheld.items():
        model_name = str(getattr(model, "name", type(model).__name__))
        _not_held.setdefault(label, []).extend("%s: %s" % (model_name, name) for name in names)
        message = ("keras_bn_patch: model %r has %d frozen BatchNormalization layer(s) built before "
                   "keras_bn_patch was installed (%s): their graph was made without the patch, so they "
                   "still train on batch statistics. Fix: import keras_bn_patch before building the model "
                   "(first line of the script or notebook, or run it with keras_bn_patch installed from the "
                   "start), then build it again" % (model_name, len(names), ", ".join(names)))
        log.warn(message, stacklevel=4)


def not_held():
    """{flavour label: ["model: layer", ...]}: frozen layers found built without the patch."""
    return {label: list(layers) for label, layers in _not_held.items()}


def forget():
    """At uninstall: layers called so far count as built without the patch from now on."""
    _seen.clear()
    _checked.clear()
    _unheld.clear()
    _not_held.clear()
