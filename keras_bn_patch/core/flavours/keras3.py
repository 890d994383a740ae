"""Keras 3: its BatchNormalization ``call`` checks ``training and self.trainable`` itself, so it
is left alone, and reported ``native``.  It shares its module path with keras 2.13-2.15
(``keras.src``), which the tf.keras flavour patches: the version decides."""
from .. import status, support
from ..versions import version_tuple
from .base import Flavour


def is_keras3(package):
    """Whether ``package`` (imported, or importing) is Keras 3."""
    keras3 = support.flavour("keras3")
    return package == keras3.package and version_tuple(status.version(package)) >= keras3.native_from


class Keras3Flavour(Flavour):
    label = "keras3"
    version_of = support.flavour("keras3").package

    def hooks(self):
        return [(support.KERAS3_BN, self._report)]

    def _report(self, module):
        if is_keras3(self.version_of):
            status.native(self.label, self.version_of)


def flavours():
    return [Keras3Flavour()]


def natively_frozen(layer):
    return is_keras3(type(layer).__module__.split(".")[0])
