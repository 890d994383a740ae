"""Keras 3: its BatchNormalization ``call`` checks ``training and self.trainable`` itself, so it
is left alone, and reported ``native``.  It shares its module path with keras 2.13-2.15
(``keras.src``), which the tf.keras flavour patches: the version decides."""
from .. import status, support, versions
from . import base

_KERAS3 = support.flavour("keras3")


def is_keras3(package):
    """Whether ``package`` (imported, or importing) is Keras 3."""
    return package == _KERAS3.package and \
        support.within(versions.version_tuple(versions.of(package)), (_KERAS3.native_from, None))


class Keras3Flavour(base.Flavour):
    label = _KERAS3.name
    version_of = _KERAS3.package

    def hooks(self):
        return [base.Hook(support.KERAS3_BN, self.version_of, (((_KERAS3.native_from, None), self._report),))]

    def _report(self, module):
        status.native(self.label, self.version_of)


def flavours():
    return [Keras3Flavour()]


def natively_frozen(layer):
    return is_keras3(type(layer).__module__.split(".")[0])
