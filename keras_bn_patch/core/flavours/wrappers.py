"""Frozen wrappers of BN layers, where Keras keeps a wrapper's ``trainable`` to the wrapper.

Standalone Keras 2.0-2.1.3 and tf.keras of TF 1.4-1.6 (their ``Wrapper``: TimeDistributed,
Bidirectional) let ``wrapper.trainable = False`` leave the layer inside trainable, and list its
weights as the wrapper's trainable weights all the same: a frozen ``TimeDistributed(
BatchNormalization())`` still trained its gamma and beta.  Keras 2.1.4 and TF 1.7 made the
wrapper's ``trainable`` the inner layer's.  There, while the patch is enabled, a frozen wrapper
of a patched BN layer lists its weights as non-trainable, as those releases do; other
wrappers' layers are left as plain Keras trains them.
"""
import sys

from .. import patching, registry, switch


def freeze_with_their_wrapper(module_name, class_name):
    """Wrap the weight lists of the ``Wrapper`` class ``class_name`` of ``module_name``."""
    __import__(module_name)
    wrapper_class = getattr(sys.modules[module_name], class_name)
    patching.patch_getter(wrapper_class, "trainable_weights", _trainable_weights)
    patching.patch_getter(wrapper_class, "non_trainable_weights", _non_trainable_weights)


def _holds_frozen_bn(wrapper):
    return not wrapper.trainable and isinstance(getattr(wrapper, "layer", None), registry.classes()) and \
        switch.is_enabled()


def _trainable_weights(getter, wrapper):
    return [] if _holds_frozen_bn(wrapper) else getter(wrapper)


def _non_trainable_weights(getter, wrapper):
    if _holds_frozen_bn(wrapper):
        return wrapper.layer.trainable_weights + wrapper.layer.non_trainable_weights
    return getter(wrapper)
