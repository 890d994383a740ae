"""install()/uninstall(): a post-import hook for every module a flavour or the Model wrappers name.

The loop knows no Keras: each flavour (``core/flavours``) says which modules trigger it and
what to do there; the Model hooks put ``entry``'s wrappers on every flavour's ``Model``.  We
never import TensorFlow or Keras ourselves.  A hook that fails logs on the
``keras_bn_patch`` logger, leaves that Keras untouched, and shows up in ``status()``; it never
raises into the user's ``import``.
"""
import sys
import threading

import wrapt

from . import entry, flags, held, log, patching, registry, status, support
from .flavours import all_flavours

_lock = threading.RLock()
_installed = False
_hooks = {}  # module name -> [hook], this install's (rebuilt by each install)
_registered = set()  # module names wrapt calls us for: once per process, as wrapt cannot forget one


def _guarded(label, version_of, function):
    """Run a hook body all or nothing; any error is logged once and reported, never raised."""
    def hook(module):
        classes = registry.classes()
        try:
            with patching.all_or_nothing():  # a hook that fails partway leaves Keras as it was
                function(module)
        except Exception as error:  # a hook must never break the user's import
            registry.keep_only(classes)
            log.logger().exception("keras_bn_patch: could not patch %s", module.__name__)
            status.unsupported(label, version_of, "error while patching %s: %r" % (module.__name__, error))
    return hook


def _patch_models(module):
    model = getattr(module, "Model", None)
    if model is None or status.left_alone(module.__name__):
        return
    patching.patch(model, "compile", entry.on_compile)
    for name in entry.ENTRY_POINTS:
        if hasattr(model, name):
            patching.patch(model, name, entry.on_entry)


def _all_hooks():
    """[(module name, hook)]: every flavour's, then the Model hooks (which skip a package a
    flavour found unsupported, so run after them when both modules are imported already)."""
    found = [(name, _guarded(flavour.label, flavour.version_of, function))
             for flavour in all_flavours() for name, function in flavour.hooks()]
    found += [(name, _guarded(name, name.split(".")[0], _patch_models)) for name in support.MODEL_MODULES]
    return found


def _run_hooks(name):
    def run(module):
        with _lock:
            if _installed:
                for hook in _hooks.get(name, ()):
                    hook(module)
    return run


def install():
    """Patch every Keras flavour imported now or later.  A second call does nothing."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        _hooks.clear()
        for name, hook in _all_hooks():
            _hooks.setdefault(name, []).append(hook)
        for name in _hooks:
            if name not in _registered:
                _registered.add(name)
                wrapt.register_post_import_hook(_run_hooks(name), name)  # runs at once if imported
            elif name in sys.modules:
                _run_hooks(name)(sys.modules[name])


def uninstall():
    """Put back everything we replaced; graphs built meanwhile behave as plain Keras."""
    global _installed
    with _lock:
        if not _installed:
            return
        _installed = False
        held.forget()
        flags.release_all()
        patching.restore_all()
        registry.clear()
        status.clear()


def is_installed():
    """True when the patch is installed in this process (``import keras_bn_patch`` did it, unless
    ``KERAS_BN_PATCH=0``; ``uninstall()`` undoes it); ``is_enabled()`` says whether it is on."""
    return _installed


def status_report():
    """{flavour: {"version": ..., "state": "patched" | "native" | "unsupported: why"}}, and, where
    frozen layers of a model being trained were built before the patch (so are not held),
    "not_held": ["model: layer", ...]."""
    with _lock:
        return status.report(held.not_held())
