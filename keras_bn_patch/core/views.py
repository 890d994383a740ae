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
import contextlib
import sys
import threading
import weakref

from . import log, support, switch
from .context import ContextVar
from .versions import tf_v1, version_tuple

bn_classes = {}  # the BN classes whose call we wrap -> their flavour (filled by install)

_flags = weakref.WeakKeyDictionary()  # layer -> _Flag
_seen = weakref.WeakSet()  # BN layers whose call went through the wrapper since install
_checked = weakref.WeakSet()  # models already checked for layers built without the patch
_unheld = weakref.WeakSet()  # layers found so: later calls (a new graph) do not mend the old one
not_held = {}  # flavour label -> ["model: layer path", ...]: frozen, yet built without the patch
_views = weakref.WeakKeyDictionary()  # model -> its compile-time view
_active_view = ContextVar("keras_bn_patch_active_view", default=None)
# True inside an entry point of a model whose traced functions we swap on toggles (below).
_retraces = ContextVar("keras_bn_patch_retraces", default=False)
_saving = ContextVar("keras_bn_patch_saving", default=False)  # inside Keras's SavedModel save
_enabled_at_trace = weakref.WeakKeyDictionary()  # model -> the switch when its functions were traced
# {switch: the model's functions traced with that switch}, kept in the model's own __dict__
# (a global dict would keep every model alive: the functions refer to it) and set without
# its __setattr__, so Keras does not track it as part of the model.
_PUT_ASIDE = "_keras_bn_patch_put_aside"


class _Flag(object):
    __slots__ = ("variable", "value", "flavour")

    def __init__(self, variable, value, flavour):
        self.variable, self.value, self.flavour = variable, value, flavour

    def set(self, value):
        if value != self.value:
            self.flavour.set_flag(self.variable, value)
            self.value = value


def _is_layer(value):
    return hasattr(value, "trainable") and hasattr(value, "call") and hasattr(value, "get_weights")


def _sublayers(layer):
    """The layers ``layer`` runs: a model's ``layers``; for any other layer, the layers it holds
    as attributes (a wrapper's ``layer``, Bidirectional's two, a user layer's ``self.bn``, alone
    or in a list), as TF 2 tracks them.  Keras 2.x tracks none of these, yet a frozen layer
    encloses the BN layers its own ``call`` runs."""
    if getattr(layer, "layers", None) is not None:
        return list(layer.layers)
    children = []
    for value in list(getattr(layer, "__dict__", {}).values()):
        for item in (value if isinstance(value, (list, tuple)) else (value,)):
            if item is not layer and _is_layer(item):
                children.append(item)
    return children


def reachable_layers(model):
    """[(path, layer, frozen)] for every layer nested in ``model``, in the order first reached.

    ``path`` names the layer through its enclosing models (``backbone/bn_conv1``).
    ``frozen``: its own ``trainable`` is False or an enclosing model is not trainable.
    A layer reached through several paths keeps its first path and counts as frozen
    only if it is frozen on all of them, as Keras trains a weight reachable through
    any trainable path.
    """
    found = {}  # id(layer) -> [path, layer, frozen]
    seen = set()

    def walk(layer, path, frozen_above):
        frozen = frozen_above or not getattr(layer, "trainable", True)
        entry = found.get(id(layer))
        if entry is None:
            found[id(layer)] = [path, layer, frozen]
        else:
            entry[2] = entry[2] and frozen
        if (id(layer), frozen) in seen:
            return
        seen.add((id(layer), frozen))
        for child in _sublayers(layer):
            name = str(getattr(child, "name", type(child).__name__))
            walk(child, path + "/" + name if path else name, frozen)

    walk(model, "", False)
    return [tuple(entry) for entry in found.values() if entry[1] is not model]


def compute_view(model):
    """{bn_layer: frozen} for every patched BN layer reachable from ``model``."""
    classes = tuple(bn_classes)
    view = weakref.WeakKeyDictionary()
    if classes:
        for _, layer, frozen in reachable_layers(model):
            if isinstance(layer, classes):
                view[layer] = frozen
    return view


def falls_back(flavour, patched_call):
    """A BN ``call`` wrapper that never fails where plain Keras runs: if the patched call raises,
    the plain call runs instead (its own error, if it has one, is the one raised); the first
    such failure is logged and warned, and the flavour runs plain Keras from then on, reported
    ``unsupported`` by status()."""
    def call(wrapped, layer, args, kwargs):
        if flavour.failed is not None:
            return wrapped(*args, **kwargs)
        try:
            return patched_call(wrapped, layer, args, kwargs)
        except Exception as error:
            result = wrapped(*args, **kwargs)
            _machinery_failed(flavour, error)
            return result
    return call


def _machinery_failed(flavour, error):
    if flavour.failed is not None:
        return
    flavour.failed = "the patch failed on a BatchNormalization call (%s: %s); plain Keras runs from now on" % (
        type(error).__name__, error)
    message = "keras_bn_patch: %s: frozen BN layers are not held" % flavour.failed
    log.logger().error(message, exc_info=error)
    import warnings
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def session_exists(graph, *backends):
    """Whether TF has a default session, or one of these Keras backends made its own, for
    ``graph``: without making one (``get_session()`` would)."""
    tf = sys.modules.get("tensorflow")
    v1 = tf_v1(tf)
    sessions = [v1.get_default_session()] if v1 is not None else []
    for backend in backends:
        session = getattr(backend, "_SESSION", None)  # a session, or a thread-local holding one
        if isinstance(session, threading.local):
            session = getattr(session, "session", None)
        sessions.append(session)
    return any(session is not None and session.graph is graph for session in sessions)


def on_saved_model_save(wrapped, instance, args, kwargs):
    """Wrapper of Keras's SavedModel ``save`` (TF 2.0-2.3): functions traced inside are saved."""
    token = _saving.set(True)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _saving.reset(token)


def saving_saved_model():
    return _saving.get()


def saw(layer):
    """Called by the wrappers on every BN call: this layer's graph goes through the patch."""
    _seen.add(layer)


def _flavour_of(layer):
    for cls, flavour in bn_classes.items():
        if isinstance(layer, cls):
            return flavour
    return None


def built_without_patch(layer, flavour):
    """Called (its graph built) before the patch was installed, in a flavour whose graph is
    built once at call time (Keras 2, TF 1): that graph never reads a flag."""
    if layer in _unheld:
        return True
    called = getattr(layer, "_inbound_nodes", None) or getattr(layer, "inbound_nodes", None)
    return bool(called) and layer not in _seen and flavour.builds_graph_at_call()


def handled_by(layer):
    """How a BN layer is run now: "patched" (held when frozen), "native" (Keras holds it
    itself) or "unpatched" (frozen or not, plain Keras trains it with batch statistics)."""
    flavour = _flavour_of(layer)
    if flavour is not None:
        if flavour.is_native(layer):
            return "native"
        if built_without_patch(layer, flavour):
            return "unpatched"
        return "patched" if switch.is_enabled() else "unpatched"
    return "native" if _natively_frozen(layer) else "unpatched"


def _natively_frozen(layer):
    """For BN classes we did not patch (not installed): Keras 3, and the V2 class of the
    BatchNormalizationBase family where its TensorFlow honours `trainable` by itself."""
    package = type(layer).__module__.split(".")[0]
    keras3 = support.flavour("keras3")
    if package == keras3.package and version_tuple(getattr(sys.modules.get(package), "__version__", "")) >= \
            keras3.native_from:
        return True
    tf_version = version_tuple(getattr(sys.modules.get("tensorflow"), "__version__", ""))
    native_from = support.TF_KERAS_FAMILIES[0].native_v2_from
    return bool(getattr(layer, "_USE_V2_BEHAVIOR", False)) and bool(tf_version) and tf_version >= native_from


def _wanted(layer):
    if not switch.is_enabled():
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


def _sync(view, make_session=True):
    """Write the view into its layers' flags.  Where a flag lives in a TF 1 session, every
    flag of the view is written, in one run, whatever was written before: the session may be
    another one than last time (``K.set_session``, one per thread from TF 1.14) or may have
    re-initialised its variables, and no cache can see either.  ``make_session=False``
    (at compile): write only into a session Keras already has; making one earlier than
    Keras would changes which variables Keras marks initialised (an Estimator's global
    step, for one), and every entry point writes again anyway."""
    enabled = switch.is_enabled()
    per_session = {}  # flavour -> [flag]
    for layer, frozen in list(view.items()):
        flag = _flags.get(layer)
        if flag is None:
            continue
        if flag.flavour.in_session(flag.variable):
            flag.value = enabled and frozen
            per_session.setdefault(flag.flavour, []).append(flag)
        else:
            flag.set(enabled and frozen)
    for flavour, flags in per_session.items():
        if make_session or flavour.has_session(flags[0].variable.graph):
            flavour.set_flags([(flag.variable, flag.value) for flag in flags])


def release_all():
    """Set every flag to 'not held' so graphs built while installed behave as plain Keras.
    Layers called so far count as built without the patch from now on."""
    _seen.clear()
    _checked.clear()
    _unheld.clear()
    not_held.clear()
    for layer, flag in list(_flags.items()):
        try:
            flag.set(False)
        except Exception:  # its graph or session is gone (clear_session): nothing runs it any more
            log.logger().debug("keras_bn_patch: dropped the flag of %r", layer, exc_info=True)
        del _flags[layer]


def _warn_unheld(model, view):
    """Once per model: name its frozen BN layers whose graph was built before the patch."""
    _checked.add(model)
    unheld = {}
    for layer, frozen in list(view.items()):
        flavour = _flavour_of(layer)
        if frozen and flavour is not None and not flavour.is_native(layer) and built_without_patch(layer, flavour):
            unheld.setdefault(flavour.label, []).append(str(getattr(layer, "name", layer)))
            _unheld.add(layer)
    for label, names in unheld.items():
        model_name = str(getattr(model, "name", type(model).__name__))
        not_held.setdefault(label, []).extend("%s: %s" % (model_name, name) for name in names)
        message = ("keras_bn_patch: model %r has %d frozen BatchNormalization layer(s) built before "
                   "keras_bn_patch was installed (%s): their graph was made without the patch, so they "
                   "still train on batch statistics. Fix: import keras_bn_patch before building the model "
                   "(first line of the script or notebook, or run it with keras_bn_patch installed from the "
                   "start), then build it again" % (model_name, len(names), ", ".join(names)))
        log.logger().warning(message)
        import warnings
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def on_compile(wrapped, model, args, kwargs):
    result = wrapped(*args, **kwargs)
    vars(model).pop(_PUT_ASIDE, None)  # traced for the previous compile: never to come back
    _views[model] = view = compute_view(model)
    _sync(view, make_session=False)
    if model not in _checked:
        _warn_unheld(model, view)
    return result


_TRACED = ("train_function", "test_function", "predict_function")


def _swap_traced_functions(model):
    """Whether BN calls traced in this entry point may decide in Python (see ``decides_at_trace``).

    Keras of TF >= 2.2 (and tf_keras) traces its train/test/predict functions once and
    caches them in ``model.train_function`` etc. (``compile()`` clears them).  A trace
    that decided from the switch goes stale when the switch flips: then the model's
    functions are put aside under the switch they were traced with, and those traced
    with the switch as it is now come back (or none, and Keras traces anew).  So
    toggling back and forth traces each state once: no retrace per toggle, and memory
    holds at most two sets.  The view itself only changes at ``compile()``, which also
    forgets the sets put aside.  Older Keras has no such cache.
    """
    if not hasattr(model, "make_train_function"):
        return False
    enabled = switch.is_enabled()
    traced_with = _enabled_at_trace.get(model, enabled)
    if traced_with != enabled:
        aside = vars(model).setdefault(_PUT_ASIDE, {})
        aside[traced_with] = [getattr(model, name, None) for name in _TRACED]
        for name, function in zip(_TRACED, aside.pop(enabled, [None] * len(_TRACED))):
            if getattr(model, name, None) is not function:
                setattr(model, name, function)
    _enabled_at_trace[model] = enabled
    return True


def decides_at_trace():
    """True when a BN call being traced now is inside an entry point that swaps its traces
    on toggles: it can then be traced with its decision as a constant, like a hand-written
    ``training=False`` (no runtime flag, no conditional, no momentum-1.0 update)."""
    return _retraces.get()


def _enter(model):
    """Make ``model``'s view the active one, its flags written; returns (view, reset token)."""
    view = _views.get(model)
    if view is None:  # never compiled (predict on a loaded or fresh model): its view now
        view = compute_view(model)
    _sync(view)
    if model not in _checked:
        _warn_unheld(model, view)
    return view, _active_view.set(view)


@contextlib.contextmanager
def running(model):
    """Run BN layers as ``model``'s entry points do: flags written from its view, which
    calls traced inside also see.  Yields the view."""
    view, token = _enter(model)
    try:
        yield view
    finally:
        _active_view.reset(token)


def on_entry(wrapped, model, args, kwargs):
    # Only the outermost entry point may swap cached functions: inside fit(), Keras calls
    # self.train_function again after its nested evaluate().  Nested ones keep the flag.
    # Plain try/finally rather than running(): this is on every train_on_batch step.
    outermost = _active_view.get() is None
    retraces = _retraces.set(_swap_traced_functions(model) if outermost else False)
    try:
        _, token = _enter(model)
        try:
            return wrapped(*args, **kwargs)
        finally:
            _active_view.reset(token)
    finally:
        _retraces.reset(retraces)


ENTRY_POINTS = ("fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch",
                "fit_generator", "evaluate_generator", "predict_generator")
