"""What ``status()`` says of each flavour: one ledger, which only reports.

Hooks report here what they found: ``patched`` (a flavour object, whose state may be known
only later), ``native`` or ``unsupported`` with why (the package itself is left as it was by
``patching.leave_alone``).
"""
from . import log, registry, versions

_entries = {}  # label -> (package whose version is reported, a flavour object or a state text)
_warned = set()  # labels already warned about


def patched(flavour):
    _entries[flavour.label] = (flavour.version_of, flavour)


def native(label, version_of):
    _entries[label] = (version_of, "native")


def unsupported(label, version_of, why):
    """``label`` is not fixed here, for ``why``: one warning, and status() says so."""
    state = "unsupported: " + why
    _entries[label] = (version_of, state)
    if label not in _warned:
        _warned.add(label)
        found = versions.of(version_of)
        message = "keras_bn_patch: %s%s is %s; it is left untouched" % (
            label, "" if found == "unknown" else " " + found, state)
        log.warn(message, stacklevel=2)


def report(not_held):
    """{label: {"version", "state"[, "not_held"]}}; ``not_held``: {label: [layers]}."""
    found = {}
    for label, (version_of, state) in _entries.items():
        if not isinstance(state, str):  # a flavour: its state may change (TensorFlow imported, a failure)
            state = "unsupported: " + state.failed if state.failed is not None else state.state()
        found[label] = {"version": versions.of(version_of), "state": state}
    for flavour in registry.flavours():  # another family of the same label may have failed
        if flavour.failed is not None and flavour.label in found:
            found[flavour.label]["state"] = "unsupported: " + flavour.failed
    for label, layers in not_held.items():
        if label in found:
            found[label]["not_held"] = layers
    return found


def clear():
    _entries.clear()
