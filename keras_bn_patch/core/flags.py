"""Each patched BN layer's runtime flag, and the view the flags follow now.

Every patched BN layer gets one flag (a backend variable, never a layer weight) meaning "hold
this layer frozen now" = patch enabled AND layer frozen in the view of the model being run.
Graphs and traced functions read the flag at run time, so a layer frozen after its graph was
built, or a toggle after a function was traced, needs no rebuild.  Inside an entry point the
flags follow that model's view (``follow``); outside any, a layer's flag follows its own
``trainable`` each time it is called.
"""
import weakref

from . import log, switch
from .context import ContextVar

_flags = weakref.WeakKeyDictionary()  # layer -> _Flag
_followed = ContextVar("keras_bn_patch_active_view", default=None)  # the view of the entry point running
# Whether the entry point running keeps its model's traces per switch (entry.py): a BN call
# traced inside may then decide in Python (flavours/tf_keras.py).
_traces_per_switch = ContextVar("keras_bn_patch_traces_per_switch", default=False)


def traces_per_switch():
    """True when a BN call being traced now is inside an entry point of a model that keeps its
    traces per switch: it can then be traced with its decision as a constant, like a
    hand-written ``training=False`` (no runtime flag, no conditional, no momentum-1.0 update)."""
    return _traces_per_switch.get()


def keep_traces_per_switch(value):
    """Entering an entry point: whether it keeps its traces per switch; returns the token."""
    return _traces_per_switch.set(value)


def left_entry_point(token):
    _traces_per_switch.reset(token)


class _Flag(object):
    __slots__ = ("variable", "value", "flavour")

    def __init__(self, variable, value, flavour):
        self.variable, self.value, self.flavour = variable, value, flavour

    def set(self, value):
        if value != self.value:
            self.flavour.set_flag(self.variable, value)
            self.value = value


def follow(view):
    """From now on in this context, flags follow ``view``; returns the token for ``unfollow``."""
    return _followed.set(view)


def unfollow(token):
    _followed.reset(token)


def followed():
    """The view the flags follow now (an entry point's), or None outside any entry point."""
    return _followed.get()


def _wanted(layer):
    if not switch.is_enabled():
        return False
    view = _followed.get()
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


def write(view, make_session=True):
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
    """Set every flag to 'not held' so graphs built while installed behave as plain Keras."""
    for layer, flag in list(_flags.items()):
        try:
            flag.set(False)
        except Exception:  # its graph or session is gone (clear_session): nothing runs it any more
            log.logger().debug("keras_bn_patch: dropped the flag of %r", layer, exc_info=True)
        del _flags[layer]
