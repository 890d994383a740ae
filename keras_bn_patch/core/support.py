"""Where each Keras flavour keeps the classes we patch.  Names only: no imports here.

Hooks are registered on every name below; a name the installed Keras does not
have simply never fires.  TF 1.15/2.0/2.1 ship their code as ``tensorflow_core``
and alias it as ``tensorflow``, so both spellings are listed.
"""
from collections import namedtuple

# label: how status() names it; version_of: the package whose __version__ it reports;
# native_v2_from: first TensorFlow version whose V2 BN class honours `trainable`
# by itself (None: every version of that package does).
TfKerasFamily = namedtuple("TfKerasFamily", "label version_of bn_module backend_module native_v2_from")

TF_KERAS_FAMILIES = (
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

# The class that defines BN `call`: the first of these names found in the module.
# TF 1.13 defines it on BatchNormalizationV2; later versions on BatchNormalizationBase.
# A module with neither (Keras 3) is native.
TF_KERAS_BN_CLASSES = ("BatchNormalizationBase", "BatchNormalizationV2")

# Standalone Keras 2.1-2.3: decided on `keras.__version__`, read once `keras` is imported.
KERAS2_PACKAGE = "keras"
KERAS2_BN = ("keras.layers.normalization", "BatchNormalization")
KERAS2_SUPPORTED = ((2, 1, 0), (2, 4, 0))
KERAS2_UPDATES_FROZEN_STATS_BEFORE = (2, 1, 3)  # 2.1.0-2.1.2 still updated frozen moving stats

# Modules whose `Model` gets the compile snapshot and the entry-point sync (every flavour).
MODEL_MODULES = tuple(
    prefix + suffix
    for prefix in ("keras.engine.", "keras.src.engine.", "tf_keras.src.engine.",
                   "tensorflow.python.keras.engine.", "tensorflow_core.python.keras.engine.")
    for suffix in ("training", "training_v1")
)
