"""``ContextVar``: the standard one on Python >= 3.7 (per thread and per asyncio task).

Python 3.6 has no ``contextvars``, and its asyncio would not carry a context per
task anyway; the PyPI backport's import alone would take a large share of the package's
import-time budget there.  So on 3.6 a per-thread stand-in with the same
``get``/``set``/``reset`` serves.
"""
import sys

if sys.version_info >= (3, 7):
    from contextvars import ContextVar
else:
    import threading

    class ContextVar(object):
        def __init__(self, name, default=None):
            self.name, self._default, self._local = name, default, threading.local()

        def get(self):
            return getattr(self._local, "value", self._default)

        def set(self, value):
            token = (self.get(),)  # what reset() puts back
            self._local.value = value
            return token

        def reset(self, token):
            self._local.value = token[0]
