"""The support table: every fact about which Keras this package fixes, and where.

Names and numbers only, no imports: each flavour (``flavours/``) takes its module paths,
classes and supported range from it, ``tools/keras_api`` decides flavours from it, the CLI
takes its flavour names, and README's supported-versions table is generated from it and the
tested stacks (``compat/stacks.py``: what CI installs; ``nox -s support-table``; a test fails
when README drifts from them).
"""
from collections import namedtuple

# ---------------------------------------------------------------- flavours a script can use
# name: how status(), the CLI and the tools call it; package: whose __version__ decides;
# first / stop: supported versions [first, stop) of that package (None: open);
# native_from: first version whose BN honours `trainable` by itself (left alone there);
# untouched_below: the package tree left untouched, and reported unsupported, when the version is
# below `first` (None: older versions are another flavour's).
SupportRow = namedtuple("SupportRow", "name package first stop native_from untouched_below what")
# Releases (first, stop) of a package where something holds: first included, stop not, None open.
ALL_RELEASES = (None, None)

FLAVOURS = (  # in the order a legacy script would find them when none is named
    SupportRow("keras", "keras", (2, 0, 0), (2, 4), None, "keras",
               "standalone Keras 2.0-2.3, TensorFlow or Theano backend"),
    SupportRow("tf_keras", "tf_keras", (2, 15), None, None, None,
               "tf_keras (TF >= 2.16), V1 class (``tf.compat.v1.keras.layers.BatchNormalization``)"),
    SupportRow("tf.keras", "tensorflow", (1, 4), (2, 16), None, "tensorflow.python.keras",
               "tf.keras of TF 1.4-2.15 (TF 2: the V1 class), and the keras 2.4-2.15 packages under it"),
    SupportRow("keras3", "keras", (3,), None, (3,), None, "Keras 3: natively correct, left alone"),
)
FLAVOUR_NAMES = tuple(flavour.name for flavour in FLAVOURS)


def flavour(name):
    for found in FLAVOURS:
        if found.name == name:
            return found
    raise ValueError("unknown Keras flavour %r (expected one of %s)" % (name, ", ".join(FLAVOUR_NAMES)))


def within(version, releases):
    """Whether ``version`` (a tuple; () when unknown) is in ``releases`` (first, stop): the one
    place a version is compared with the table."""
    first, stop = releases
    return (first is None or version >= first) and (stop is None or version < stop)


def supports(name, version):
    """Whether ``version`` (a tuple) of flavour ``name``'s package is in its supported range."""
    found = flavour(name)
    return within(version, (found.first, found.stop))


# ---------------------------------------------------------------- standalone Keras 2.0-2.3
KERAS2_PACKAGE = "keras"
KERAS2_BN = ("keras.layers.normalization", "BatchNormalization")
KERAS2_BACKEND = "keras.backend"
# 2.0.0-2.1.2 still update frozen moving statistics (their updates are not filtered).
KERAS2_UPDATES_FROZEN_STATS_BEFORE = (2, 1, 3)
# 2.0.0-2.1.3's wrappers (TimeDistributed, Bidirectional) keep `trainable` to themselves: a frozen
# wrapper still trains the weights of the layer inside (Keras 2.1.4 made it the inner layer's;
# flavours/wrappers.py).
KERAS2_WRAPPER = ("keras.layers.wrappers", "Wrapper")
KERAS2_WRAPPER_FREEZES_FROM = (2, 1, 4)

# ---------------------------------------------------------------- the BatchNormalizationBase family
# label: how status() names it; version_of: the package whose __version__ it reports;
# native_v2_from: first TensorFlow version whose V2 BN class honours `trainable` by itself
# (None: every version of that package does).  TF 1.15/2.0/2.1 ship their code as
# `tensorflow_core` and alias it as `tensorflow`, so both spellings are listed.
TfKerasFamily = namedtuple("TfKerasFamily", "label version_of bn_module backend_module native_v2_from")

TF_KERAS_FAMILIES = (
    TfKerasFamily("tf.keras", "tensorflow", "tensorflow.python.keras._impl.keras.layers.normalization",  # TF 1.4-1.8
                  "tensorflow.python.keras._impl.keras.backend", (2, 2)),
    TfKerasFamily("tf.keras", "tensorflow", "tensorflow.python.keras.layers.normalization",
                  "tensorflow.python.keras.backend", (2, 2)),
    TfKerasFamily("tf.keras", "tensorflow", "tensorflow_core.python.keras.layers.normalization",
                  "tensorflow_core.python.keras.backend", (2, 2)),
    TfKerasFamily("tf.keras", "keras", "keras.layers.normalization.batch_normalization",  # keras 2.6-2.12
                  "keras.backend", None),
    TfKerasFamily("tf.keras", "keras", "keras.src.layers.normalization.batch_normalization",  # 2.13-2.15, Keras 3
                  "keras.src.backend", None),
    TfKerasFamily("tf_keras", "tf_keras", "tf_keras.src.layers.normalization.batch_normalization",
                  "tf_keras.src.backend", None),
)
# Keras 3's BN module: the same path as keras 2.13-2.15's (the row above); the version decides.
KERAS3_BN = "keras.src.layers.normalization.batch_normalization"
# The class that defines BN `call`: the first of these names found in the module.
# TF 1.13 defines it on BatchNormalizationV2; later versions on BatchNormalizationBase.
# A module with neither is Keras 3 (native) when its package is, and otherwise a layout
# this package does not know: reported unsupported, never guessed.
TF_KERAS_BN_CLASSES = ("BatchNormalizationBase", "BatchNormalizationV2")
# TF 1.4-1.12 define the same `call` (training as a tensor, smart_cond, no moving-average step
# when not training) on their one class: TF 1.9-1.12 in the module above, TF 1.4-1.8 in
# `_impl` (a Keras layer over tf.layers' BatchNormalization).  Hooked there, for these releases
# only: from tf.keras's first supported release (FLAVOURS; older ones are reported unsupported
# on import) up to this one.
TF_KERAS_ONE_CLASS = ("BatchNormalization", (1, 13))
# Before TF 1.14 BN `call` runs its moving-average update whenever `training` is a tensor, with
# momentum 1.0 when it is false, on the statistics of the branch taken.  In the fused branch those
# are FusedBatchNorm's batch_mean / batch_variance outputs, which its CPU kernel leaves
# uninitialised in inference (TF 1.12 and 1.13 return memory garbage, NaN included), and
# x - (x - NaN) * 0 is NaN.  TF 1.14+ gate the update itself on `training`.
TF_KERAS_UPDATES_UNGATED_BEFORE = (1, 14)
# tf.keras of TF 1.4-1.6: its wrappers keep `trainable` to themselves, as standalone Keras < 2.1.4
# (above); TF 1.7 made it the inner layer's.
TF_KERAS_WRAPPER = ("tensorflow.python.keras._impl.keras.layers.wrappers", "Wrapper")
TF_KERAS_WRAPPER_FREEZES_FROM = (1, 7)

# TF 2.0-2.3 have no `save_context`, and their Keras forgets its "saving" marker in nested
# layer calls: there Keras's SavedModel `save` is wrapped to say that a save is under way.
KERAS_SAVED_MODEL_SAVE = ("tensorflow.python.keras.saving.saved_model.save",
                          "tensorflow_core.python.keras.saving.saved_model.save")

# Modules whose `Model` gets the compile snapshot and the entry-point sync (every flavour).
MODEL_MODULES = tuple(
    prefix + suffix
    for prefix in ("keras.engine.", "keras.src.engine.", "tf_keras.src.engine.", "tensorflow.python.keras.engine.",
                   "tensorflow_core.python.keras.engine.", "tensorflow.python.keras._impl.keras.engine.")
    for suffix in ("training", "training_v1")
)
