"""``keras_bn_patch.callbacks.Recalibrate`` in the real Keras of this environment: when training
ends (after Keras 3's EMA swap) the model's BN statistics are those ``recalibrate`` gives its
final weights, where fit() alone leaves them stale."""
import numpy as np
import pytest

import keras_bn_patch
from keras_bn_patch.callbacks import Recalibrate
from helpers import sgd
from helpers.tools import X, nested_model

Y = np.eye(2, dtype="float32")[(X[:, 0] > X[:, 1]).astype("int64")]
DATA = (X * 2 + 1).astype("float32")  # the layers' inputs move as the weights do


def statistics(api, model):
    from keras_bn_patch.tools import keras_api
    from keras_bn_patch.tools.diagnose import bn_layers
    return keras_api.get_values(api, [variable for _, layer, _ in bn_layers(model)
                                      for variable in (layer.moving_mean, layer.moving_variance)])


def recorder(api, model, found):
    """A callback, listed before ours, that keeps the statistics fit() alone leaves."""
    class Record(api.keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            found.extend(statistics(api, model))
    return Record()


def assert_same(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def fitted(api, optimizer, callbacks, epochs=3):
    model, _ = nested_model(api)
    model.compile(optimizer, "categorical_crossentropy")
    model.fit(DATA, Y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks(model))
    return model


def test_at_train_end_the_statistics_describe_the_final_weights(api):
    stale, callback = [], Recalibrate(DATA, batch_size=32)
    assert isinstance(callback, api.keras.callbacks.Callback) and isinstance(callback, Recalibrate)
    model = fitted(api, sgd(api, 0.1), lambda model: [recorder(api, model, stale), callback])
    assert len(callback.summaries) == 1
    found = statistics(api, model)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(stale, found)) > 0.05  # fit() left them stale
    expected = [value.copy() for value in found]
    keras_bn_patch.recalibrate(model, DATA, batch_size=32, verbose=0)  # by hand, on the same final weights
    assert_same(statistics(api, model), expected)


def test_every_n_epochs_and_once_at_the_end(api):
    callback = Recalibrate(DATA, every=2, layers="trainable", batch_size=50)
    fitted(api, sgd(api, 0.1), lambda model: [callback], epochs=5)
    assert len(callback.summaries) == 3  # epochs 2 and 4, and the end (not twice for the last epoch)
    callback = Recalibrate(DATA, every=2)
    fitted(api, sgd(api, 0.1), lambda model: [callback], epochs=4)
    assert len(callback.summaries) == 2  # epoch 2, and the end (epoch 4 is the end)


def test_bad_arguments_are_named_before_training():
    with pytest.raises(ValueError, match="every must be a positive number of epochs"):
        Recalibrate(DATA, every=0)
    with pytest.raises(TypeError, match="data must be the data to recalibrate on"):
        Recalibrate("x.npy")


def test_after_keras_3_ema_the_callback_equals_a_manual_recalibrate(api):
    """use_ema=True: fit() ends by swapping the trainable weights for their averages, before
    on_train_end; the statistics Keras gathered belong to the raw weights."""
    if api.name != "keras3":
        pytest.skip("use_ema is Keras 3's (%s %s has no such optimizer option)" % (api.name, api.version))
    stale, callback = [], Recalibrate(DATA, batch_size=8)
    optimizer = api.keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True, ema_momentum=0.9)
    model = fitted(api, optimizer, lambda model: [recorder(api, model, stale), callback], epochs=4)
    found = statistics(api, model)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(stale, found)) > 0.05
    expected = [value.copy() for value in found]
    keras_bn_patch.recalibrate(model, DATA, batch_size=8, verbose=0)
    assert_same(statistics(api, model), expected)
