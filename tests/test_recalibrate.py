"""recalibrate() against the real Keras of this environment: exact statistics, layer by layer
and in passes, chosen layers, batch sizes and memory, shared layers, bad method or tolerance."""
import numpy as np
import pytest

import keras_bn_patch
from keras_bn_patch.cli import demo as _demo
from helpers import largest_difference, small_resnet, statistics
from helpers.tools import X, accuracy, assert_statistics, fine_tuned_without_the_patch, inference_bn, nested_model, value


def test_recalibrate_sets_exact_statistics_layer_by_layer_and_nothing_else(api):
    model, backbone = nested_model(api)
    bn_in, bn_mid, dense = (backbone.get_layer(name) for name in ("bn_in", "bn_mid", "dense"))
    config, before = model.to_json(), [value(api, w) for w in model.weights]
    summary = keras_bn_patch.recalibrate(model, X, verbose=0)

    assert [row["path"] for row in summary.rows] == ["backbone/bn_in", "backbone/bn_mid"]
    assert summary.rows[0]["values_seen"] == 200
    assert summary.rows[0]["mean_shift"] > 1  # the initial statistics (0, 1) were far off
    x64 = X.astype("float64")
    assert_statistics(api, bn_in, x64)
    # bn_mid sees what inference gives it: dense(bn_in with its *new* statistics)
    kernel, bias = (np.asarray(w, dtype="float64") for w in dense.get_weights())
    assert_statistics(api, bn_mid, inference_bn(api, bn_in, x64).dot(kernel) + bias)
    moving = {id(layer.moving_mean) for layer in (bn_in, bn_mid)} | {id(layer.moving_variance)
                                                                     for layer in (bn_in, bn_mid)}
    changed = {id(w) for w, old in zip(model.weights, before) if not np.array_equal(old, value(api, w))}
    assert changed == moving
    assert model.to_json() == config  # the model itself is unchanged (no new nodes saved)
    report = keras_bn_patch.diagnose(model, X)
    assert report.healthy and max(row["discrepancy"] for row in report.rows) < 1e-4


def test_recalibrate_chooses_layers_by_state_and_name(api):
    model, backbone = nested_model(api)
    bn_in, bn_mid = backbone.get_layer("bn_in"), backbone.get_layer("bn_mid")
    backbone.trainable = False  # frozen as a whole: both BN layers are frozen in the model's view
    before = model.get_weights()
    assert keras_bn_patch.recalibrate(model, X, layers="trainable", verbose=0).rows == []
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    summary = keras_bn_patch.recalibrate(model, X, layers=["bn_mid"], verbose=0)
    assert [row["path"] for row in summary.rows] == ["backbone/bn_mid"]
    assert np.array_equal(value(api, bn_in.moving_mean), np.zeros(8))  # untouched
    assert not np.array_equal(value(api, bn_mid.moving_mean), np.zeros(16))  # recalibrated
    summary = keras_bn_patch.recalibrate(model, X, layers="frozen", verbose=0)
    assert [row["path"] for row in summary.rows] == ["backbone/bn_in", "backbone/bn_mid"]
    assert_statistics(api, bn_in, X.astype("float64"))


def test_sequential_model(api):
    layers = api.keras.layers
    model = api.keras.models.Sequential([layers.Dense(4, input_shape=(8,)), api.bn(name="bn"), layers.Dense(2)])
    keras_bn_patch.recalibrate(model, X, verbose=0)
    kernel, bias = (np.asarray(w, dtype="float64") for w in model.layers[0].get_weights())
    assert_statistics(api, model.get_layer("bn"), X.astype("float64").dot(kernel) + bias)
    assert [row["path"] for row in keras_bn_patch.diagnose(model, X).rows] == ["bn"]


SEED = 2  # every flavour shows the trap with it; the dense (Theano) variant does not with most seeds


def zero_debiased(api):
    """Keras 2.1.6-2.2.x on TF average moving statistics with zero_debias=True: after a few
    updates they are already the mean of the batch statistics seen, not near their start,
    so the brief-training trap may not appear there (it did in some runs, not in others)."""
    if api.name != "keras" or api.keras.backend.backend() != "tensorflow":
        return False
    import inspect
    return "zero_debias=True" in inspect.getsource(api.keras.backend.moving_average_update)


def test_three_images_predicted_right_after_recalibration(api):
    """The issue's case: a BN ResNet fits 3 images, predict() is wrong until recalibrated."""
    rng = np.random.RandomState(SEED)
    images = rng.uniform(0, 255, size=(3, 12, 12, 3)).astype("float32")  # raw pixels
    labels = np.eye(3, dtype="float32")
    model = small_resnet(api)
    model.set_weights([_demo.glorot(rng, w.shape) if w.ndim > 1 else w for w in model.get_weights()])
    model.compile(api.keras.optimizers.Adam(0.01), "categorical_crossentropy", metrics=["accuracy"])
    fitted = 0
    for _ in range(100):  # train briefly: until training mode has fitted all three 3 times running
        fitted = fitted + 1 if model.train_on_batch(images, labels)[1] == 1.0 else 0
        if fitted == 3:
            break
    assert fitted == 3  # training mode (batch statistics) fits all three
    report = keras_bn_patch.diagnose(model, images)
    print(report)
    if not zero_debiased(api):
        assert not report.healthy and report.model["argmax_agreement"] < 1
        assert list(model.predict(images).argmax(axis=1)) != [0, 1, 2]
    keras_bn_patch.recalibrate(model, images, verbose=0)
    assert list(model.predict(images).argmax(axis=1)) == [0, 1, 2]
    assert keras_bn_patch.diagnose(model, images).healthy


@pytest.mark.parametrize("batch_size", [16, None])
@pytest.mark.parametrize("case", ["demo", "three_images"])
def test_passes_give_the_layer_by_layer_statistics(api, case, batch_size):
    """The default method (every layer in each pass) against one pass per layer, the exact
    reference: statistics within 1e-3, the repaired model's accuracy within 0.1 point.  In
    batches of 16 (passes until nothing moves), and without batch_size: all of the data in one
    batch, where the first pass is exact and the only one."""
    if case == "demo":
        model, x, y, _ = fine_tuned_without_the_patch(api)
    else:
        rng = np.random.RandomState(SEED)
        x = rng.uniform(0, 255, size=(40, 12, 12, 3)).astype("float32")
        y = np.eye(3, dtype="float32")[np.arange(40) % 3]
        model = small_resnet(api)
        model.set_weights([_demo.glorot(rng, w.shape) if w.ndim > 1 else w for w in model.get_weights()])
    initial = model.get_weights()
    exact_summary = keras_bn_patch.recalibrate(model, x, verbose=0, batch_size=16, method="layer_by_layer")
    exact, exact_accuracy = statistics(api, model), accuracy(model, x, y)
    model.set_weights(initial)
    summary = keras_bn_patch.recalibrate(model, x, verbose=0, batch_size=batch_size, method="passes")
    print(summary)
    layers = len(summary.rows)
    assert exact_summary.passes == layers and summary.method == "passes"
    assert summary.passes == 1 if batch_size is None else 2 <= summary.passes <= layers + 4
    assert largest_difference(api, model, statistics(api, model), exact) <= 1e-3
    assert abs(accuracy(model, x, y) - exact_accuracy) <= 0.001
    assert summary.to_dict()["passes"] == summary.passes and "%d pass%s over the data" % (
        summary.passes, "" if summary.passes == 1 else "es") in str(summary)


def test_passes_settle_a_two_layer_model_in_three(api):
    """In batches of 50: the estimate pass, one inference pass that makes both layers exact,
    one that sees no change."""
    model, _ = nested_model(api)
    summary = keras_bn_patch.recalibrate(model, X, verbose=0, batch_size=50, method="passes")
    assert summary.passes == 3


def test_without_batch_size_batches_are_as_large_as_memory_allows(api, monkeypatch):
    """The largest activation here is 16 values a sample: 8 copies in float32 are 512 bytes, so
    a budget of 64 KiB makes batches of 128 samples: the 200 in two, the estimate no longer
    exact, inference passes after it; the statistics still the layer-by-layer ones."""
    from keras_bn_patch.tools import recalibrate as module
    model, _ = nested_model(api)
    initial = model.get_weights()
    keras_bn_patch.recalibrate(model, X, verbose=0, method="layer_by_layer")
    exact = statistics(api, model)
    sizes = []
    monkeypatch.setattr(module, "_counted", lambda batches, seen: [
        seen.append(len(batch[0])) or sizes.append(len(batch[0])) or batch for batch in batches])
    model.set_weights(initial)
    summary = keras_bn_patch.recalibrate(model, X, verbose=0, method="passes", memory_limit=64 * 1024)
    assert sizes == [128, 72] and summary.passes == 3
    assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5


def test_a_model_with_a_fixed_batch_size_keeps_its_batches(api):
    """A model built for batches of 50 is never given a joined batch: the estimate comes from
    four batches, so a second pass checks it (one batch of 200 would be one pass, or an error)."""
    layers = api.keras.layers
    inputs = layers.Input(batch_shape=(50, 8))
    model = api.keras.models.Model(inputs, layers.Dense(2)(api.bn(name="fixed_bn")(inputs)))

    def generator():
        while True:
            for start in range(0, 200, 50):
                yield X[start:start + 50]

    summary = keras_bn_patch.recalibrate(model, generator(), steps=4, verbose=0, method="passes")
    assert summary.passes == 2 and summary.rows[0]["values_seen"] == 200
    assert_statistics(api, model.get_layer("fixed_bn"), X)


def test_a_shared_layer_is_measured_in_inference_mode_too(api):
    """A BN layer called twice has the statistics of both calls, which no call's batch has: one
    batch of all the data is not exact for it, so inference passes follow the estimate."""
    layers = api.keras.layers
    inputs = layers.Input((8,))
    shared = api.bn(name="shared_bn")
    output = layers.concatenate([shared(layers.Dense(4)(inputs)), shared(layers.Dense(4)(inputs))])
    model = api.keras.models.Model(inputs, layers.Dense(2)(api.bn(name="after")(output)))
    initial = model.get_weights()
    keras_bn_patch.recalibrate(model, X, verbose=0, method="layer_by_layer")
    exact = statistics(api, model)
    model.set_weights(initial)
    summary = keras_bn_patch.recalibrate(model, X, verbose=0, method="passes")
    assert summary.passes >= 2
    assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5


def test_recalibrate_method_and_tolerance_named_when_wrong(api):
    model, _ = nested_model(api)
    before = model.get_weights()
    with pytest.raises(ValueError, match="method must be 'auto', 'staged', 'passes', 'layer_by_layer' or 'estimate', got 'fast'"):
        keras_bn_patch.recalibrate(model, X, method="fast")
    with pytest.raises(ValueError, match="tolerance must be a number >= 0, got -1"):
        keras_bn_patch.recalibrate(model, X, tolerance=-1)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
