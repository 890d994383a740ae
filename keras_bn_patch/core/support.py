"""The support table: every fact about which Keras this package fixes, where, and how it is tested.

Names and numbers only, no imports: ``install`` registers its hooks from it, ``views``
and ``tools/keras_api`` decide flavours and native classes from it, the CLI takes its
flavour names, ``setup.py`` its extras, ``noxfile.py`` its test sessions, and README's
supported-versions table is generated from it (``nox -s readme``, compat/readme.py; a test
fails when README drifts from it).
"""
from collections import namedtuple

# ---------------------------------------------------------------- flavours a script can use
# name: how status(), the CLI and the tools call it; package: whose __version__ decides;
# first / stop: supported versions [first, stop) of that package (None: open);
# native_from: first version whose BN honours `trainable` by itself (left alone there).
Flavour = namedtuple("Flavour", "name package first stop native_from what")

FLAVOURS = (  # in the order a legacy script would find them when none is named
    Flavour("keras", "keras", (2, 0, 0), (2, 4), None,
            "standalone Keras 2.0-2.3, TensorFlow or Theano backend"),
    Flavour("tf_keras", "tf_keras", (2, 15), None, None,
            "tf_keras (TF >= 2.16), V1 class (``tf.compat.v1.keras.layers.BatchNormalization``)"),
    Flavour("tf.keras", "tensorflow", (1, 4), (2, 16), None,
            "tf.keras of TF 1.4-2.15 (TF 2: the V1 class), and the keras 2.4-2.15 packages under it"),
    Flavour("keras3", "keras", (3,), None, (3,), "Keras 3: natively correct, left alone"),
)
FLAVOUR_NAMES = tuple(flavour.name for flavour in FLAVOURS)


def flavour(name):
    for found in FLAVOURS:
        if found.name == name:
            return found
    raise ValueError("unknown Keras flavour %r (expected one of %s)" % (name, ", ".join(FLAVOUR_NAMES)))


def supports(name, version):
    """Whether ``version`` (a tuple) of flavour ``name``'s package is in its supported range."""
    found = flavour(name)
    return version >= found.first and (found.stop is None or version < found.stop)


# ---------------------------------------------------------------- standalone Keras 2.0-2.3
KERAS2_PACKAGE = "keras"
KERAS2_BN = ("keras.layers.normalization", "BatchNormalization")
KERAS2_BACKEND = "keras.backend"
# 2.0.0-2.1.2 still update frozen moving statistics (their updates are not filtered).
KERAS2_UPDATES_FROZEN_STATS_BEFORE = (2, 1, 3)

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

# ---------------------------------------------------------------- what is tested, and how to install it
# session: the nox session; python: its interpreter; requirements: pip pins that make a
# working stack; env: extra environment; flavours: what its tests must find (a broken
# install that yields another Keras fails instead of testing the wrong thing); role:
# "matrix" (every CI run) or "compat" (`nox -t compat`, a slice per CI run); shows: the
# README row's label.
# unsupported: the status labels the stack must report `unsupported` (with Keras untouched).
Stack = namedtuple("Stack", "session python requirements env flavours role shows unsupported")
Stack.__new__.__defaults__ = ("",)
_TF1 = ["h5py<3", "protobuf<3.20"]

STACKS = (
    Stack("keras209", "3.6", ["tensorflow==1.4.1", "keras==2.0.9"] + _TF1, {}, "keras,tf.keras", "compat",
          "keras 2.0.9, tf.keras TF 1.4"),
    Stack("keras212", "3.6", ["tensorflow==1.5.1", "keras==2.1.2"] + _TF1, {}, "keras", "matrix",
          "keras 2.1.2"),
    Stack("keras216", "3.6", ["tensorflow==1.5.1", "keras==2.1.6"] + _TF1, {}, "keras,tf.keras", "matrix",
          "keras 2.1.6, tf.keras TF 1.5"),
    Stack("keras224", "3.6", ["tensorflow==1.13.2", "keras==2.2.4"] + _TF1, {}, "keras,tf.keras", "matrix",
          "keras 2.2.4, tf.keras TF 1.13"),
    Stack("keras224-theano", "3.6", ["theano==1.0.5", "keras==2.2.4", "h5py<3"],
          {"KERAS_BACKEND": "theano", "THEANO_FLAGS": "cxx=,optimizer=fast_compile"}, "keras", "matrix",
          "keras 2.2.4 + Theano"),
    Stack("tfkeras16", "3.6", ["tensorflow==1.6.0"] + _TF1, {}, "tf.keras", "compat", "tf.keras TF 1.6"),
    Stack("tfkeras17", "3.6", ["tensorflow==1.7.1"] + _TF1, {}, "tf.keras", "compat", "tf.keras TF 1.7"),
    Stack("tfkeras18", "3.6", ["tensorflow==1.8.0"] + _TF1, {}, "tf.keras", "compat", "tf.keras TF 1.8"),
    Stack("tfkeras19", "3.6", ["tensorflow==1.9.0"] + _TF1, {}, "tf.keras", "matrix", "tf.keras TF 1.9"),
    Stack("tfkeras110", "3.6", ["tensorflow==1.10.1"] + _TF1, {}, "tf.keras", "compat", "tf.keras TF 1.10"),
    Stack("tfkeras111", "3.6", ["tensorflow==1.11.0"] + _TF1, {}, "tf.keras", "compat", "tf.keras TF 1.11"),
    Stack("tfkeras112", "3.6", ["tensorflow==1.12.3"] + _TF1, {}, "tf.keras", "matrix", "tf.keras TF 1.12"),
    Stack("keras225", "3.7", ["tensorflow==1.14.0", "keras==2.2.5"] + _TF1, {}, "keras,tf.keras", "compat",
          "keras 2.2.5, tf.keras TF 1.14"),
    Stack("keras231", "3.7", ["tensorflow==1.15.5", "keras==2.3.1"] + _TF1, {}, "keras,tf.keras", "matrix",
          "keras 2.3.1, tf.keras TF 1.15"),
    Stack("tfkeras21", "3.7", ["tensorflow-cpu==2.1.4", "protobuf<3.20"], {}, "tf.keras", "matrix",
          "tf.keras TF 2.1 (``tensorflow_core``)"),
    Stack("tf20", "3.7", ["tensorflow==2.0.4", "protobuf<3.20", "h5py<3"], {}, "tf.keras", "compat",
          "tf.keras TF 2.0"),
    Stack("tf22", "3.8", ["tensorflow-cpu==2.2.3", "protobuf<3.20", "h5py<3"], {}, "tf.keras", "compat",
          "tf.keras TF 2.2"),
    Stack("tf23", "3.8", ["tensorflow-cpu==2.3.4", "keras==2.4.3", "protobuf<3.20", "h5py<3"], {}, "tf.keras",
          "compat", "tf.keras TF 2.3, keras 2.4.3"),
    Stack("tfkeras24", "3.8", ["tensorflow-cpu==2.4.4", "protobuf<3.20"], {}, "tf.keras", "matrix",
          "tf.keras TF 2.4"),
    Stack("tf25", "3.9", ["tensorflow-cpu==2.5.3", "protobuf<3.20"], {}, "tf.keras", "compat",
          "tf.keras TF 2.5"),
    Stack("tf26", "3.9", ["tensorflow-cpu==2.6.5", "keras==2.6.0", "protobuf<3.20"], {}, "tf.keras", "compat",
          "keras 2.6 (tf.keras)"),
    Stack("tf27", "3.9", ["tensorflow-cpu==2.7.4", "numpy<1.24", "keras==2.7.0", "protobuf<3.20"], {}, "tf.keras", "compat",
          "keras 2.7 (tf.keras)"),
    Stack("keras28", "3.9", ["tensorflow-cpu==2.8.4", "numpy<1.24", "protobuf<3.20"], {}, "tf.keras", "matrix",
          "keras 2.8 (tf.keras)"),
    Stack("tf29", "3.10", ["tensorflow-cpu==2.9.3", "numpy<1.24", "protobuf<3.20"], {}, "tf.keras", "compat",
          "keras 2.9 (tf.keras)"),
    Stack("tf210", "3.10", ["tensorflow-cpu==2.10.1", "numpy<1.24", "protobuf<3.20"], {}, "tf.keras", "compat",
          "keras 2.10 (tf.keras)"),
    Stack("tf211", "3.10", ["tensorflow-cpu==2.11.1", "numpy<1.24"], {}, "tf.keras", "compat",
          "keras 2.11 (tf.keras)"),
    Stack("tf212", "3.11", ["tensorflow-cpu==2.12.1", "numpy<2"], {}, "tf.keras", "compat", "keras 2.12 (tf.keras)"),
    Stack("tf213", "3.11", ["tensorflow-cpu==2.13.1", "numpy<2"], {}, "tf.keras", "compat", "keras 2.13 (tf.keras)"),
    Stack("tf214", "3.11", ["tensorflow-cpu==2.14.1", "numpy<2"], {}, "tf.keras", "compat", "keras 2.14 (tf.keras)"),
    Stack("keras215", "3.11", ["tensorflow-cpu==2.15.1"], {}, "tf.keras", "matrix",
          "keras 2.15 (tf.keras)"),
    Stack("tfkeras215", "3.11", ["tensorflow-cpu==2.15.1", "tf-keras==2.15.1"], {}, "tf_keras,tf.keras", "compat",
          "tf_keras 2.15 (beside tf.keras 2.15)"),
    Stack("tfkeras216", "3.12", ["tensorflow==2.16.2", "tf-keras==2.16.0"], {}, "tf_keras", "compat", "tf_keras 2.16"),
    Stack("tfkeras217", "3.12", ["tensorflow==2.17.1", "tf-keras==2.17.0"], {}, "tf_keras", "compat", "tf_keras 2.17"),
    Stack("tfkeras218", "3.12", ["tensorflow==2.18.1", "tf-keras==2.18.0"], {}, "tf_keras", "compat", "tf_keras 2.18"),
    Stack("tfkeras219", "3.12", ["tensorflow==2.19.1", "tf-keras==2.19.0"], {}, "tf_keras", "compat", "tf_keras 2.19"),
    Stack("tfkeras220", "3.12", ["tensorflow==2.20.0", "tf-keras==2.20.1"], {}, "tf_keras", "compat", "tf_keras 2.20"),
    Stack("tfkeras216-legacy", "3.12", ["tensorflow==2.16.2", "tf-keras==2.16.0"], {"TF_USE_LEGACY_KERAS": "1"},
          "tf_keras", "compat", "tf_keras 2.16, ``TF_USE_LEGACY_KERAS=1``"),
    Stack("tfkeras221", "3.12", ["tensorflow==2.21.0", "tf-keras==2.21.0"], {}, "tf_keras", "matrix",
          "tf_keras 2.21"),
    Stack("tfkeras221-legacy", "3.12", ["tensorflow==2.21.0", "tf-keras==2.21.0"],
          {"TF_USE_LEGACY_KERAS": "1"}, "tf_keras", "matrix", "tf_keras 2.21, ``TF_USE_LEGACY_KERAS=1``"),
    Stack("keras3", "3.11", ["tensorflow-cpu==2.21.0", "keras==3.15.1"], {}, "keras3", "matrix",
          "Keras 3.15"),
)

# Releases a stack showed this package cannot fix, and why: status() says so, with one
# warning, and Keras is left untouched.
UNSUPPORTED = (
    ("tf.keras of TF < 1.4", "TF 1.0-1.3 have ``tf.contrib.keras``, not ``tf.keras``: not tested; "
     "reported ``unsupported`` as soon as TensorFlow is imported, never ``native``"),
    ("standalone keras < 2.0", "Keras 1 has another BatchNormalization (``mode``) and API"),
    ("CNTK backend", "not tested"),
)

# pip extras: a working stack per flavour family (the pins of its tested stacks).
EXTRAS = {
    "keras2-tf1": ["keras>=2.0,<2.4", "tensorflow>=1.4,<2"] + _TF1,
    "tf1": ["tensorflow>=1.4,<2"] + _TF1,
    "tf2": ["tensorflow>=2.0,<2.16", "numpy<1.24"],
    "tf-keras": ["tensorflow>=2.15", "tf-keras>=2.15"],
}


def stack(session):
    for found in STACKS:
        if found.session == session:
            return found
    raise KeyError(session)
