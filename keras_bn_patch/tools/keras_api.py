"""Find the Keras a script would use, and the BatchNormalization class this package fixes there.

Used by the demo, the tools, the tests and the benchmarks.  Imports Keras only when called.
"""
import os
import sys
from collections import namedtuple

import numpy as np

from ..core import support
from ..core.versions import version_tuple

# name: a flavour of the support table; keras: the module with .layers/.models/.backend/
# .optimizers; bn: the BN class that is not native
KerasApi = namedtuple("KerasApi", "name version keras bn eager")
FLAVOURS = support.FLAVOUR_NAMES  # in the order a legacy script would find them


def load(name=None):
    """The Keras flavour ``name``, or the one a legacy script would get (standalone keras first)."""
    names = [name] if name else FLAVOURS
    errors = []
    for candidate in names:
        try:
            api = _load(candidate)
        except ImportError as error:
            errors.append("%s: not installed here (%s)" % (candidate, error))
            continue
        if api is not None:
            return api
        errors.append("%s: not installed here (%s)" % (candidate, support.flavour(candidate).what))
    raise ImportError("no Keras flavour found (%s)" % "; ".join(errors))


def _load(name):
    support.flavour(name)  # an unknown name: ValueError naming the choices
    if name == "keras":
        import keras
        if not support.supports(name, version_tuple(keras.__version__)):
            return None
        return KerasApi(name, keras.__version__, keras, keras.layers.BatchNormalization, False)
    if name == "keras3":  # on any backend: TensorFlow, JAX or PyTorch (it needs no TensorFlow)
        import keras
        if not support.supports(name, version_tuple(keras.__version__)):
            return None
        return KerasApi(name, keras.__version__, keras, keras.layers.BatchNormalization, True)
    import tensorflow as tf
    eager = getattr(tf, "executing_eagerly", lambda: False)()  # TF 1.5 has no eager mode
    if name == "tf_keras":
        import tf_keras
        from tf_keras.src.layers.normalization.batch_normalization_v1 import BatchNormalization
        if os.environ.get("TF_USE_LEGACY_KERAS") == "1":  # then tf.compat.v1 layers are tf_keras
            BatchNormalization = tf.compat.v1.keras.layers.BatchNormalization
        return KerasApi(name, tf_keras.__version__, tf_keras, BatchNormalization, eager)
    if name == "tf.keras":
        if not support.supports(name, version_tuple(tf.__version__)):
            return None  # TF >= 2.16: tf.keras is Keras 3 or tf_keras there
        if version_tuple(tf.__version__) >= (2,):
            bn = tf.compat.v1.keras.layers.BatchNormalization
        else:
            bn = tf.keras.layers.BatchNormalization  # the V1 class in TF 1.x
        return KerasApi(name, tf.__version__, tf.keras, bn, eager)


def for_model(model):
    """The flavour ``model`` belongs to, from the Keras package its class comes from."""
    for cls in type(model).__mro__:
        package = cls.__module__.split(".")[0]
        if cls.__name__ != "Model" or package not in ("keras", "tensorflow", "tensorflow_core", "tf_keras"):
            continue
        if package == "keras":
            version = version_tuple(sys.modules["keras"].__version__)
            name = "keras" if support.supports("keras", version) else \
                "keras3" if support.supports("keras3", version) else "tf.keras"
        else:
            name = "tf_keras" if package == "tf_keras" else "tf.keras"
        return load(name)
    raise TypeError("model must be a Keras Model (functional, Sequential or subclassed), got %s"
                    % type(model).__name__)


def backend(api):
    """The backend the flavour computes with: "tensorflow", "theano", "jax" or "torch"."""
    return api.keras.backend.backend() if hasattr(api.keras.backend, "backend") else "tensorflow"


def get_values(api, variables):
    """The variables' values, in one session run in graph mode (a run per variable would build
    an executor per variable)."""
    if api.name == "keras3":
        return [variable.numpy() for variable in variables]
    return api.keras.backend.batch_get_value(list(variables))


def set_values(api, pairs):
    """[(variable, NumPy value)]: each value cast and shaped as its variable, in one run."""
    if api.name == "keras3":
        for variable, value in pairs:
            variable.assign(np.reshape(value, tuple(variable.shape)).astype(variable.dtype))
        return
    K = api.keras.backend
    K.batch_set_value([(variable, np.reshape(value, K.int_shape(variable)).astype(K.dtype(variable)))
                       for variable, value in pairs])
