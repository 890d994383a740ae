"""One module per family of Keras whose BatchNormalization works alike: the flavour table.

Each module defines a ``Flavour`` subclass (``base.py``: what a flavour gives the patch),
``flavours()``, the instances an install registers, and ``natively_frozen(layer)``, its test
for a BN layer whose class it did not patch.  The support table (``core/support.py``) holds
each family's module paths and versions; a new Keras release is a row there, and a new
module here only if its BatchNormalization works another way.
"""
from .. import held, registry, switch
from . import keras2, keras3, tf_keras

MODULES = (tf_keras, keras2, keras3)  # hooks registered in this order


def all_flavours():
    """New flavour objects for one install: state (a failure, a cached version) starts afresh."""
    return [flavour for module in MODULES for flavour in module.flavours()]


def natively_frozen(layer):
    """Whether a BN layer of a class no flavour patched honours ``trainable`` by itself."""
    return any(module.natively_frozen(layer) for module in MODULES)


def handled_by(layer):
    """How a BN layer is run now: "patched" (held when frozen), "native" (Keras holds it
    itself) or "unpatched" (frozen or not, plain Keras trains it with batch statistics)."""
    flavour = registry.flavour_of(layer)
    if flavour is None:
        return "native" if natively_frozen(layer) else "unpatched"
    if flavour.is_native(layer):
        return "native"
    if held.built_without_patch(layer, flavour):
        return "unpatched"
    return "patched" if switch.is_enabled() else "unpatched"
