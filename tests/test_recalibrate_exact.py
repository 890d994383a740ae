"""recalibrate against a reference computed here, independently of it: each BN layer's population
mean and variance of what it receives in inference mode in the model as recalibrate left it
(each measured by a model cut at its input), on the backend of this
environment (Keras 3 on TensorFlow, JAX or PyTorch; every other flavour).  At batch sizes 8, 32
and None, with a memory limit below the data, from the backend's own data forms; bad data
leaves every weight and no file; diagnose is healthy after."""
import functools
import os
import tempfile

import numpy as np
import pytest

import keras_bn_patch
from helpers import backend, backend_forms, features, sync_batch_normalization_or_skip
from keras_bn_patch.tools import keras_api

RNG = np.random.RandomState(3)
IMAGES = (RNG.normal(size=(96, 6, 6, 3)) * 2 + 1).astype("float32")
SIDE = (RNG.normal(size=(96, 3)) * 3 - 2).astype("float32")


def residual_model(api, bn=None):
    """conv -> BN -> relu, a branch with BN(center=False), their sum through BN(scale=False), a
    Dense with BN on its features, axis=1: every layer's input depends on the one before it.
    ``bn``: the BN class (the flavour's own by default)."""
    layers = api.keras.layers
    bn = bn or api.bn

    inputs = layers.Input((6, 6, 3))
    first = layers.Activation("relu")(bn(name="bn_a")(features(api, 4)(inputs)))
    branch = bn(name="bn_b", center=False)(features(api, 4)(first))
    summed = bn(name="bn_c", scale=False)(layers.add([first, branch]))
    dense = layers.Dense(5)(layers.GlobalAveragePooling2D()(summed))
    return api.keras.models.Model(inputs, layers.Dense(2)(bn(name="bn_d", axis=1)(dense)))


NAMES = ("bn_a", "bn_b", "bn_c", "bn_d")


def received(api, model, x, names=NAMES):
    """{name: (mean, variance)}, float64: the population statistics of what each BN layer
    receives from ``x`` in inference mode, in the model as it is."""
    found = {}
    for name in names:
        layer = model.get_layer(name)
        values = api.keras.models.Model(model.inputs, layer.input).predict(x, batch_size=len(x), verbose=0)
        values = values.astype("float64").reshape(-1, values.shape[-1])
        found[name] = (values.mean(axis=0), values.var(axis=0))
    return found


def ours(directory):
    """What recalibrate left in the temporary directory (TensorFlow's AutoGraph writes its own there)."""
    return [name for name in os.listdir(str(directory)) if name.startswith("keras_bn_patch")]


def statistics(api, model, names=NAMES):
    return {name: tuple(np.asarray(value, "float64") for value in keras_api.get_values(
        api, [model.get_layer(name).moving_mean, model.get_layer(name).moving_variance])) for name in names}


def assert_settled(api, model, x, what, names=NAMES):
    """Every BN layer's statistics are those of what it receives in the model as recalibrate left
    it, within 1e-5 relative: the mean in the channel's standard deviations, the variance of
    itself.  (Float32 moments are off by about 1e-6; a reference settled layer by layer on its own
    would add each earlier layer's rounding, amplified where a layer's input mean cancels to zero,
    as bn_d's does: a Dense of BN-centred features.)"""
    found, expected = statistics(api, model, names), received(api, model, x, names)
    for name in names:
        (mean, variance), (want_mean, want_variance) = found[name], expected[name]
        assert np.max(np.abs(mean - want_mean) / np.sqrt(want_variance)) <= 1e-5, (what, name, mean, want_mean)
        assert np.max(np.abs(variance - want_variance) / want_variance) <= 1e-5, (what, name, variance, want_variance)


def test_exact_at_every_batch_size_memory_limit_and_data_form(api, tmp_path, monkeypatch):
    model = residual_model(api)
    initial = model.get_weights()
    calls = [dict(batch_size=8), dict(batch_size=32), dict(batch_size=None),
             dict(batch_size=32, memory_limit=IMAGES.nbytes // 4)]  # activations kept on disk
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for options in calls:
        model.set_weights(initial)
        summary = keras_bn_patch.recalibrate(model, IMAGES, verbose=0, **options)
        assert_settled(api, model, IMAGES, options)
        assert ours(tmp_path) == [], options
        print(options, summary.method, summary.passes, summary.note)
        if "memory_limit" in options and summary.method == "staged":
            assert summary.kept["disk_bytes"] > 0, summary.kept  # the limit was below the data's activations
    for name, data in backend_forms(api, IMAGES):
        model.set_weights(initial)
        keras_bn_patch.recalibrate(model, data, verbose=0, batch_size=32)
        assert_settled(api, model, IMAGES, name)
    report = keras_bn_patch.diagnose(model, IMAGES)
    assert report.verdict == "healthy" and max(row["discrepancy"] for row in report.rows) < 1e-3, str(report)


def test_model_inputs_read_past_a_bn_layer_are_exact(api, tmp_path, monkeypatch):
    """Model inputs read after a BN layer: the image added to a BN layer's output and fed on
    beside it (an input skip, as in a U-Net), a second input joined after it (as in a
    wide-and-deep model).  Later stages read the input batches themselves, which the first
    keeps, in memory and on disk, as they were when given (a generator may refill one buffer)."""
    layers = api.keras.layers
    inputs, side = layers.Input((6, 6, 3)), layers.Input((3,))
    first = layers.Activation("relu")(api.bn(name="bn_a")(features(api, 3)(inputs)))
    skipped = layers.concatenate([layers.add([first, inputs]), inputs])
    pooled = layers.GlobalAveragePooling2D()(api.bn(name="bn_b")(features(api, 4)(skipped)))
    joined = layers.concatenate([pooled, side])
    model = api.keras.models.Model([inputs, side], layers.Dense(2)(api.bn(name="bn_c")(layers.Dense(4)(joined))))
    initial = model.get_weights()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def refilled():
        batch = [np.empty((32,) + IMAGES.shape[1:], "float32"), np.empty((32, 3), "float32")]
        for start in range(0, len(IMAGES), 32):
            batch[0][...], batch[1][...] = IMAGES[start:start + 32], SIDE[start:start + 32]
            yield batch

    for what, data, options in (("batches of 8", [IMAGES, SIDE], dict(batch_size=8)),
                                ("on disk", [IMAGES, SIDE], dict(batch_size=32, memory_limit=IMAGES.nbytes // 4)),
                                ("one buffer refilled", refilled(), dict(steps=3)),
                                ("one buffer refilled, in batches of 32", refilled(), dict(steps=3, batch_size=32)),
                                ("one buffer refilled, passes", refilled(), dict(steps=3, method="passes"))):
        model.set_weights(initial)
        method = options.pop("method", "staged")
        summary = keras_bn_patch.recalibrate(model, data, verbose=0, method=method, **options)
        assert (summary.method, summary.stages) == (method, 3 if method == "staged" else 0), (what, summary.note)
        assert_settled(api, model, [IMAGES, SIDE], what, names=("bn_a", "bn_b", "bn_c"))
        assert ours(tmp_path) == [], what


def test_bad_data_leaves_every_weight_and_no_file(api, tmp_path, monkeypatch):
    model = residual_model(api)
    initial = model.get_weights()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def batches():
        yield IMAGES[:32]
        yield IMAGES[32:64]
        yield IMAGES[64:, :5]  # the third batch has the wrong shape

    for method in ("auto", "staged", "passes", "estimate"):
        with pytest.raises(ValueError, match=r"data has shape \(32, 5, 6, 3\), but the model expects"):
            keras_bn_patch.recalibrate(model, batches(), steps=3, verbose=0, method=method,
                                       memory_limit=IMAGES.nbytes // 8)
        for before, after in zip(initial, model.get_weights()):
            np.testing.assert_array_equal(before, after)
        assert ours(tmp_path) == [], method


def test_synchronized_bn_is_exact_where_keras_has_it(api):
    """Keras 3's BatchNormalization(synchronized=True) and tf.keras's SyncBatchNormalization, outside
    any distribution strategy: the same exact statistics.  Keras 3 refuses synchronized=True on
    JAX and PyTorch itself, so there is nothing there for the tools to handle."""
    layers = api.keras.layers
    if api.name == "keras3":
        if backend(api) != "tensorflow":
            with pytest.raises(ValueError, match="only supported with the TensorFlow backend"):
                layers.BatchNormalization(synchronized=True)
            return
        bn = functools.partial(layers.BatchNormalization, synchronized=True)
    else:
        bn = sync_batch_normalization_or_skip(api)
    model = residual_model(api, bn)
    initial = model.get_weights()
    for batch_size in (8, None):
        model.set_weights(initial)
        summary = keras_bn_patch.recalibrate(model, IMAGES, verbose=0, batch_size=batch_size)
        assert [row["path"] for row in summary.rows] == list(NAMES)
        assert_settled(api, model, IMAGES, batch_size)
