"""install()/uninstall(): the post-import hooks of every flavour, the Model wrappers and the
callers' own (the engine watchers), through one registry (``hooks``) and one version gate.

The loop knows no Keras: each flavour (``core/flavours``) declares which modules trigger it and
what to do there in which releases; the version gate compares them with the package imported
(``support.within``) and refuses, leaving it untouched, a package older than its support-table
row; the Model hooks put ``entry``'s wrappers on every flavour's ``Model``.  We never import
TensorFlow or Keras ourselves.  A hook that fails logs on the ``keras_bn_patch`` logger, leaves
that Keras untouched, and shows up in ``status()``; it never raises into the user's ``import``.
"""
import threading

from . import entry, flags, held, hooks, patching, registry, status, support, versions
from .flavours import all_flavours, base

_lock = threading.RLock()
_installed = False


def _refuse_older(row):
    """The gate of a support-table row: its package older than the row's first release is
    reported unsupported and left untouched (newer ones are another row's)."""
    def refuse(module):
        found = versions.of(row.package)
        if not support.within(versions.version_tuple(found), (row.first, None)):
            base.leave_alone(row.name, row.package, "%s %s has another BatchNormalization (supported: %s)"
                             % (row.package, found, row.what), row.untouched_below)
    return refuse


def _gated(hook):
    """A flavour's hook: each of its steps in the releases it declares."""
    def run(module):
        version = versions.version_tuple(versions.of(hook.package))
        for releases, step in hook.steps:
            if support.within(version, releases):
                step(module)
    return run


def _reported_as(label, version_of):
    def failed(module, error):
        status.unsupported(label, version_of, "error while patching %s: %r" % (module.__name__, error))
    return failed


def _patch_models(module):
    model = getattr(module, "Model", None)
    if model is None or patching.left_alone(module.__name__):
        return
    patching.patch(model, "compile", entry.on_compile)
    for name in entry.ENTRY_POINTS:
        if hasattr(model, name):
            patching.patch(model, name, entry.on_entry)


def _all_hooks(also):
    """[(module name, hook)]: the version gates, every flavour's, the Model hooks (which skip a
    package found unsupported, so run after them when both modules are imported already), then
    ``also``'s."""
    found = [(row.package, hooks.guarded(_refuse_older(row), _reported_as(row.name, row.package)))
             for row in support.FLAVOURS if row.untouched_below is not None]
    found += [(hook.module, hooks.guarded(_gated(hook), _reported_as(flavour.label, flavour.version_of)))
              for flavour in all_flavours() for hook in flavour.hooks()]
    found += [(name, hooks.guarded(_patch_models, _reported_as(name, name.split(".")[0])))
              for name in support.MODEL_MODULES]
    return found + [(name, hooks.guarded(function)) for name, function in also]


def install(also=()):
    """Patch every Keras flavour imported now or later, and run ``also``'s [(module name,
    function(module))] the same way.  A second call does nothing."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        hooks.activate(_all_hooks(also))


def uninstall():
    """Put back everything we replaced; graphs built meanwhile behave as plain Keras."""
    global _installed
    with _lock:
        if not _installed:
            return
        _installed = False
        hooks.deactivate()
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
