"""The models and data the diagnose and recalibrate tests share.

Expected statistics are computed with NumPy from the data and the layers' own weights,
independently of the package's accumulation code.
"""
import numpy as np

import keras_bn_patch
from keras_bn_patch.cli import demo as _demo

from . import get_value

RNG = np.random.RandomState(7)


X = (RNG.normal(size=(200, 8)) * 3 + 5).astype("float32")  # far from the initial moving stats (0, 1)


def value(api, variable):
    return np.asarray(get_value(api, variable), dtype="float64")


def nested_model(api):
    """backbone (bn_in -> dense -> bn_mid) nested in a model with a Dropout and a head."""
    layers, models = api.keras.layers, api.keras.models
    inputs = layers.Input((8,))
    hidden = layers.Dense(16, name="dense")(api.bn(name="bn_in")(inputs))
    backbone = models.Model(inputs, api.bn(name="bn_mid")(hidden), name="backbone")
    outer = layers.Input((8,))
    output = layers.Dense(2, activation="softmax", name="head")(layers.Dropout(0.5)(backbone(outer)))
    return models.Model(outer, output), backbone


def inference_bn(api, layer, inputs):
    """What a BN layer outputs in inference mode, in NumPy from its current weights."""
    gamma = value(api, layer.gamma) if layer.gamma is not None else 1.0
    beta = value(api, layer.beta) if layer.beta is not None else 0.0
    return (inputs - value(api, layer.moving_mean)) / np.sqrt(
        value(api, layer.moving_variance) + layer.epsilon) * gamma + beta


def assert_statistics(api, layer, inputs):
    np.testing.assert_allclose(value(api, layer.moving_mean), inputs.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value(api, layer.moving_variance), inputs.var(axis=0), rtol=1e-5, atol=1e-5)


def fine_tuned_without_the_patch(api):
    """The demo's frozen backbone with a head fine-tuned on shifted data in plain Keras."""
    setup = _demo.Setup(api)
    with keras_bn_patch.disabled():
        history = setup.fine_tune(api)
    return setup.model, setup.x, setup.y, history[_demo.accuracy_key(history)][-1]


def accuracy(model, x, y):
    return float(np.mean(model.predict(x).argmax(axis=1) == y.argmax(axis=1)))
