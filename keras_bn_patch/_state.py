"""The on/off switch.

``enable()``/``disable()`` set the process-wide default.  The context managers
``enabled()``/``disabled()`` override it inside their block only; the override
lives in a ContextVar, so it nests and is isolated per thread and per asyncio
task (each thread and task starts from the process default).

The switch is read when a model's ``fit``/``evaluate``/``predict``/``*_on_batch``
starts (see ``_views``), not when a graph is built: that is what lets a toggle
reach models compiled and functions traced before it.
"""
import contextlib
import contextvars

_default = True
_override = contextvars.ContextVar("keras_bn_patch_enabled", default=None)


def enable():
    """Turn the fix on for the whole process (context-manager blocks still win)."""
    global _default
    _default = True


def disable():
    """Turn the fix off for the whole process (context-manager blocks still win)."""
    global _default
    _default = False


def is_enabled():
    """True when frozen BatchNormalization layers are held frozen in this context."""
    value = _override.get()
    return _default if value is None else value


@contextlib.contextmanager
def _overridden(value):
    token = _override.set(value)
    try:
        yield
    finally:
        _override.reset(token)


def enabled():
    """Context manager / decorator: the fix is on inside the block."""
    return _overridden(True)


def disabled():
    """Context manager / decorator: the fix is off inside the block (plain Keras)."""
    return _overridden(False)
