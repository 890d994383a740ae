"""What ``status()`` says of each flavour, and the packages left untouched: one ledger.

Hooks report here what they found: ``patched`` (a flavour object, whose state may be known
only later), ``native`` or ``unsupported`` with why.  An unsupported package is left exactly
as it was: what was patched under it is put back, its classes leave the registry, and the
Model hooks skip it (``left_alone``).
"""
import importlib
import sys

from . import log, patching, registry

_entries = {}  # label -> (package whose version is reported, a flavour object or a state text)
_warned = set()  # labels already warned about
_left_alone = set()  # packages (``keras``, ``tensorflow.python.keras``) found unsupported


def patched(flavour):
    _entries[flavour.label] = (flavour.version_of, flavour)


def native(label, version_of):
    _entries[label] = (version_of, "native")


def unsupported(label, version_of, why, package=None):
    """``label`` is not fixed here, for ``why``; with ``package``, that package is left untouched."""
    state = "unsupported: " + why
    _entries[label] = (version_of, state)
    if package is not None:
        _left_alone.add(package)
        patching.restore_under(package)
        registry.forget_under(package)
    if label not in _warned:
        _warned.add(label)
        found = version(version_of)  # unknown while the package is still being imported
        message = "keras_bn_patch: %s%s is %s; it is left untouched" % (
            label, "" if found == "unknown" else " " + found, state)
        log.warn(message, stacklevel=2)


def left_alone(module_name):
    """Whether ``module_name`` belongs to a package found unsupported."""
    return any(module_name.startswith(package + ".") for package in _left_alone)


def version(package):
    """``package``'s version, or "unknown"; read while it is still importing too."""
    module = sys.modules.get(package)
    found = getattr(module, "__version__", None)
    if found is None and module is not None:  # still importing: Keras 3 sets it last, from src/version.py
        try:
            found = importlib.import_module(package + ".src.version").__version__
        except Exception:  # no such module: the version is unknown
            pass
    return str(found or "unknown")


def report(not_held):
    """{label: {"version", "state"[, "not_held"]}}; ``not_held``: {label: [layers]}."""
    found = {}
    for label, (version_of, state) in _entries.items():
        if not isinstance(state, str):  # a flavour: its state may change (TensorFlow imported, a failure)
            state = "unsupported: " + state.failed if state.failed is not None else state.state()
        found[label] = {"version": version(version_of), "state": state}
    for flavour in registry.flavours():  # another family of the same label may have failed
        if flavour.failed is not None and flavour.label in found:
            found[flavour.label]["state"] = "unsupported: " + flavour.failed
    for label, layers in not_held.items():
        if label in found:
            found[label]["not_held"] = layers
    return found


def clear():
    _entries.clear()
    _left_alone.clear()
