"""The tested stacks: every Keras/TensorFlow release CI installs, with its pins, and the extras.

CI facts, not the package's: the noxfile makes a session of each stack, ``setup.py`` takes the
extras, and ``compat/support_table.py`` renders README's and the docs' version tables from the
stacks and the package's support table (``keras_bn_patch/core/support.py``: the supported
ranges).  Names and numbers only, no imports: each of them imports it as ``compat.stacks``
from the repository's root.
"""
from collections import namedtuple

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
    # Keras 3 without TensorFlow: the tools (diagnose, recalibrate, the callback) on its other
    # backends.  PyTorch's CPU wheel: the default one brings about 4 GB of CUDA libraries.
    Stack("keras3-jax", "3.11", ["keras==3.15.1", "jax[cpu]==0.10.2"], {"KERAS_BACKEND": "jax"}, "keras3",
          "matrix", "Keras 3.15 on JAX (no TensorFlow)"),
    Stack("keras3-torch", "3.11", ["keras==3.15.1", "torch==2.13.0+cpu"], {"KERAS_BACKEND": "torch"}, "keras3",
          "matrix", "Keras 3.15 on PyTorch (no TensorFlow)"),
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
