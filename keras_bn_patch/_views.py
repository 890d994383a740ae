"""Which BatchNormalization layers are frozen for the model being run.

Every patched BN layer gets one runtime flag (a backend variable, never a layer
weight) meaning "hold this layer frozen now" = patch enabled AND layer frozen in
the view of the model being run.  Graphs and traced functions read the flag at
run time, so a layer frozen after its graph was built, or a toggle after a
function was traced, needs no rebuild.

A *view* maps each BN layer of a model to "frozen": its own ``trainable`` is
False or any model enclosing it is not trainable.  ``compile()`` snapshots the
view (Keras snapshots trainable weights there too); each entry point (fit,
evaluate, predict, *_on_batch, *_generator) writes that view into the flags
before it runs.  So the same layer can be trainable for one compiled model and
frozen inside another (the GAN pattern).  Outside any entry point, a layer's
flag follows its own ``trainable`` each time it is called.
"""
import weakref

from . import _log, _state
from ._context import ContextVar

bn_classes = []  # the BN classes whose call we wrap (filled by the flavours)

_flags = weakref.WeakKeyDictionary()  # layer -> _Flag
_views = weakref.WeakKeyDictionary()  # model -> its compile-time view
_active_view = ContextVar("keras_bn_patch_active_view", default=None)
# True inside an entry point of a model whose traced train function we can drop (below).
_retraces = ContextVar("keras_bn_patch_retraces", default=False)
_enabled_at_trace = weakref.WeakKeyDictionary()  # model -> the switch when its functions were traced


class _Flag(object):
    __slots__ = ("variable", "value", "flavour")

    def __init__(self, variable, value, flavour):
        self.variable, self.value, self.flavour = variable, value, flavour

    def set(self, value):
        if value != self.value:
            self.flavour.set_flag(self.variable, value)
            self.value = value


def _sublayers(layer):
    children = list(getattr(layer, "layers", None) or ())
    wrapped = getattr(layer, "layer", None)  # TimeDistributed, Bidirectional, ...
    if wrapped is not None and hasattr(wrapped, "trainable"):
        children.append(wrapped)
    return children


def compute_view(model):
    """{bn_layer: frozen} for every BN layer reachable from ``model``.

    A layer reached through several paths counts as frozen only if it is frozen
    on all of them, as Keras trains a weight reachable through any trainable path.
    """
    view = weakref.WeakKeyDictionary()
    classes = tuple(bn_classes)
    seen = set()

    def walk(layer, frozen_above):
        frozen = frozen_above or not getattr(layer, "trainable", True)
        if classes and isinstance(layer, classes):
            view[layer] = view.get(layer, True) and frozen
        if (id(layer), frozen) in seen:
            return
        seen.add((id(layer), frozen))
        for child in _sublayers(layer):
            walk(child, frozen)

    walk(model, False)
    return view


def _wanted(layer):
    if not _state.is_enabled():
        return False
    view = _active_view.get()
    if view is not None and layer in view:
        return view[layer]
    return not layer.trainable


def flag_for(layer, flavour):
    """The layer's runtime flag (``.variable`` for graphs, ``.value`` now), brought up to date."""
    wanted = _wanted(layer)
    flag = _flags.get(layer)
    if flag is None:
        flag = _flags[layer] = _Flag(flavour.new_flag(wanted), wanted, flavour)
    else:
        flag.set(wanted)
    return flag


def _sync(view):
    enabled = _state.is_enabled()
    for layer, frozen in list(view.items()):
        flag = _flags.get(layer)
        if flag is not None:
            flag.set(enabled and frozen)


def release_all():
    """Set every flag to 'not held' so graphs built while installed behave as plain Keras."""
    for layer, flag in list(_flags.items()):
        try:
            flag.set(False)
        except Exception:  # its graph or session is gone (clear_session): nothing runs it any more
            _log.logger().debug("keras_bn_patch: dropped the flag of %r", layer, exc_info=True)
        del _flags[layer]


def on_compile(wrapped, model, args, kwargs):
    result = wrapped(*args, **kwargs)
    _views[model] = view = compute_view(model)
    _sync(view)
    return result


def _drop_stale_functions(model):
    """Whether BN calls traced in this entry point may decide in Python (see ``decides_at_trace``).

    Keras of TF >= 2.2 (and tf_keras) traces its train/test/predict functions once and
    caches them in ``model.train_function`` etc. (``compile()`` clears them).  A trace
    that decided from the switch goes stale when the switch flips: then drop them, and
    Keras traces anew.  The view itself only changes at ``compile()``.  Older Keras has
    no such cache to drop.
    """
    if not hasattr(model, "make_train_function"):
        return False
    enabled = _state.is_enabled()
    if _enabled_at_trace.get(model, enabled) != enabled:
        for name in ("train_function", "test_function", "predict_function"):
            if getattr(model, name, None) is not None:
                setattr(model, name, None)
    _enabled_at_trace[model] = enabled
    return True


def decides_at_trace():
    """True when a BN call being traced now is inside an entry point that retraces on toggles:
    it can then be traced with its decision as a constant, like a hand-written
    ``training=False`` (no runtime flag, no conditional, no momentum-1.0 update)."""
    return _retraces.get()


def on_entry(wrapped, model, args, kwargs):
    view = _views.get(model)
    if view is None:  # never compiled (predict on a loaded or fresh model): its view now
        view = compute_view(model)
    _sync(view)
    # Only the outermost entry point may drop cached functions: inside fit(), Keras calls
    # self.train_function again after its nested evaluate().  Nested ones keep the flag.
    outermost = _active_view.get() is None
    retraces = _retraces.set(_drop_stale_functions(model) if outermost else False)
    token = _active_view.set(view)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _retraces.reset(retraces)
        _active_view.reset(token)


ENTRY_POINTS = ("fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch",
                "fit_generator", "evaluate_generator", "predict_generator")
