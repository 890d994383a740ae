"""The Model wrappers: ``compile()`` snapshots the model's view, each entry point writes it.

``compile()`` snapshots the view (Keras snapshots trainable weights there too); each entry
point (fit, evaluate, predict, *_on_batch, *_generator) writes that view into the flags
before it runs and has the flags follow it while it runs, calls traced inside included.

Keras of TF >= 2.2 (and tf_keras) traces its train/test/predict functions once and caches
them on the model (``compile()`` clears them).  Such a model keeps its *traces per switch*:
when the switch has flipped since they were traced, they are put aside under the switch they
were traced with, and those traced with the switch as it is now come back (or none, and
Keras traces anew).  So toggling back and forth traces each state once, and memory holds at
most two sets; BN calls traced inside may then decide in Python (``traces_per_switch``).
"""
import contextlib
import weakref

from . import flags, held, layers, switch

ENTRY_POINTS = ("fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch",
                "fit_generator", "evaluate_generator", "predict_generator")
_TRACED = ("train_function", "test_function", "predict_function")

_views = weakref.WeakKeyDictionary()  # model -> its compile-time view
# True inside an entry point of a model that keeps its traces per switch.
_switch_at_trace = weakref.WeakKeyDictionary()  # model -> the switch when its functions were traced
# {switch: the model's functions traced with that switch}, kept in the model's own __dict__
# (a global dict would keep every model alive: the functions refer to it) and set without
# its __setattr__, so Keras does not track it as part of the model.
_PUT_ASIDE = "_keras_bn_patch_put_aside"


def _keep_traces_per_switch(model):
    """Put the model's traces aside / back for the switch as it is now; whether it has any."""
    if not hasattr(model, "make_train_function"):
        return False  # older Keras caches no traced functions
    enabled = switch.is_enabled()
    traced_with = _switch_at_trace.get(model, enabled)
    if traced_with != enabled:
        aside = vars(model).setdefault(_PUT_ASIDE, {})
        aside[traced_with] = [getattr(model, name, None) for name in _TRACED]
        for name, function in zip(_TRACED, aside.pop(enabled, [None] * len(_TRACED))):
            if getattr(model, name, None) is not function:
                setattr(model, name, function)
    _switch_at_trace[model] = enabled
    return True


def on_compile(wrapped, model, args, kwargs):
    result = wrapped(*args, **kwargs)
    vars(model).pop(_PUT_ASIDE, None)  # traced for the previous compile: never to come back
    _views[model] = view = layers.view_of(model)
    flags.write(view, make_session=False)
    held.check(model, view)
    return result


def _enter(model):
    """Write ``model``'s view into the flags and have them follow it; returns (view, token)."""
    view = _views.get(model)
    if view is None:  # never compiled (predict on a loaded or fresh model): its view now
        view = layers.view_of(model)
    flags.write(view)
    held.check(model, view)
    return view, flags.follow(view)


@contextlib.contextmanager
def running(model):
    """Run BN layers as ``model``'s entry points do: flags written from its view, which
    calls traced inside also see.  Yields the view."""
    view, token = _enter(model)
    try:
        yield view
    finally:
        flags.unfollow(token)


def on_entry(wrapped, model, args, kwargs):
    # Only the outermost entry point may swap cached functions: inside fit(), Keras calls
    # self.train_function again after its nested evaluate().  Nested ones keep the flag.
    # Plain try/finally rather than running(): this is on every train_on_batch step.
    outermost = flags.followed() is None
    per_switch = flags.keep_traces_per_switch(_keep_traces_per_switch(model) if outermost else False)
    try:
        _, token = _enter(model)
        try:
            return wrapped(*args, **kwargs)
        finally:
            flags.unfollow(token)
    finally:
        flags.left_entry_point(per_switch)
