"""Post-import hooks: the one place that registers them, and their one error guard.

wrapt cannot forget a hook, so each module name is registered once per process and runs the
hooks of the current install from a table: ``activate`` fills it (and runs at once the hooks
of modules imported already), ``deactivate`` empties it.  Every hook runs guarded: all or
nothing (what it patched before failing is put back), logged once, reported through its
``on_error``, never raised into the user's ``import``.
"""
import sys
import threading

import wrapt

from . import log, patching, registry

TYPE_CHECKING = False  # mypy reads these; at run time typing stays unimported (`import keras_bn_patch` is timed)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Callable, Dict, List, Set

_lock = threading.RLock()
_table: "Dict[str, List[Callable[[ModuleType], None]]]" = {}  # module name -> its hooks: this install's
_registered: "Set[str]" = set()  # module names wrapt calls us for: once per process


def guarded(function, on_error=None):
    """``function(module)`` as a hook that never raises: on an error, what it patched and the
    BN classes it registered are undone, the error logged, and ``on_error(module, error)`` told."""
    def hook(module):
        classes = registry.classes()
        try:
            with patching.all_or_nothing():
                function(module)
        except Exception as error:  # a hook must never break the user's import
            registry.keep_only(classes)
            log.logger().exception("keras_bn_patch: could not patch %s", module.__name__)
            if on_error is not None:
                on_error(module, error)
    return hook


def _run(name):
    def run(module):
        with _lock:
            for hook in list(_table.get(name, ())):
                hook(module)
    return run


def activate(pairs):
    """Run each of [(module name, hook)] once that module is imported: at once if it is already."""
    with _lock:
        _table.clear()
        for name, hook in pairs:
            _table.setdefault(name, []).append(hook)
        for name in _table:
            if name not in _registered:
                _registered.add(name)
                wrapt.register_post_import_hook(_run(name), name)  # runs at once if imported
            elif name in sys.modules:
                _run(name)(sys.modules[name])


def deactivate():
    """No hook runs from now on (until ``activate``)."""
    with _lock:
        _table.clear()
