"""Third-party Keras 2 model code from PyPI, end to end, offline, random weights.

- image-classifiers 1.0.0 (``classification_models``): builds its ResNets from the keras module
  it is handed;
- keras-resnet 0.2.0: its own ``BatchNormalization`` subclass (``freeze`` forces training=False).

They are installed in the keras224 session only (noxfile: ``ZOOS``), which sets KBP_EXPECT_ZOOS=1:
there a missing package fails; elsewhere these tests are skipped.
"""
import os

import numpy as np
import pytest

import keras_bn_patch
from helpers import moving_stats, sgd, train_minus_test_loss

RNG = np.random.RandomState(11)
X = (RNG.uniform(0, 255, size=(16, 32, 32, 3))).astype("float32")  # raw pixels: far from (0, 1)
Y = np.eye(3, dtype="float32")[RNG.randint(0, 3, 16)]


def classification_models_resnet18(api):
    from classification_models.keras import Classifiers
    ResNet18, _ = Classifiers.get("resnet18")
    return ResNet18(input_shape=(32, 32, 3), weights=None, include_top=False)


def keras_resnet18(api):
    import keras_resnet.models
    inputs = api.keras.layers.Input((32, 32, 3))
    return keras_resnet.models.ResNet18(inputs, include_top=False, freeze_bn=False)


@pytest.mark.parametrize("build", [classification_models_resnet18, keras_resnet18])
def test_a_frozen_zoo_backbone_stays_frozen(api, build):
    if os.environ.get("KBP_EXPECT_ZOOS") != "1" or api.name != "keras":
        pytest.skip("the model zoos are installed in the keras224 session, for standalone Keras")
    layers, models = api.keras.layers, api.keras.models
    base = build(api)
    bn_layers = [layer for layer in base.layers if hasattr(layer, "moving_mean")]
    assert len(bn_layers) > 10
    for layer in base.layers:
        layer.trainable = False
    features = base.outputs[-1]
    output = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(features))
    model = models.Model(base.inputs, output)
    model.compile(sgd(api, 1e-4), "categorical_crossentropy")

    held = train_minus_test_loss(model, X, Y)
    with keras_bn_patch.disabled():
        plain = train_minus_test_loss(model, X, Y)
    assert abs(held) < 1e-5 and abs(plain) > 0.1, (held, plain)
    before = moving_stats(api, bn_layers)
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, moving_stats(api, bn_layers)))
    report = keras_bn_patch.diagnose(model, X)  # and the tools find their layers
    assert len(report.rows) == len(bn_layers) and {row["state"] for row in report.rows} == {"frozen"}
