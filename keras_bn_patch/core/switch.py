"""The on/off switch.

``enable()``/``disable()`` set the process-wide default.  The context managers
``enabled()``/``disabled()`` override it inside their block only; the override
lives in a ContextVar, so it nests and is isolated per thread and per asyncio
task (each thread and task starts from the process default).

The switch is read when a model's ``fit``/``evaluate``/``predict``/``*_on_batch``
starts (see ``entry``), not when a graph is built: that is what lets a toggle
reach models compiled and functions traced before it.
"""
import contextlib

from .context import ContextVar

_default = True
_override = ContextVar("keras_bn_patch_enabled", default=None)


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


class _Switch(contextlib.ContextDecorator):
    """``with`` block or decorator that sets the switch; reusable, reentrant, thread/task-safe.

    Its tokens are kept in a ContextVar, so one instance can be shared by threads
    and tasks and nested in itself, each entry undone by its own exit.
    """

    def __init__(self, value):
        self._value = value
        self._tokens = ContextVar("keras_bn_patch_tokens", default=())

    def __enter__(self):
        self._tokens.set(self._tokens.get() + (_override.set(self._value),))
        return self

    def __exit__(self, *exc_info):
        tokens = self._tokens.get()
        _override.reset(tokens[-1])
        self._tokens.set(tokens[:-1])
        return False


def enabled():
    """Context manager / decorator: the fix is on inside the block."""
    return _Switch(True)


def disabled():
    """Context manager / decorator: the fix is off inside the block (plain Keras)."""
    return _Switch(False)
