"""The data forms diagnose() and recalibrate() take (arrays, lists, dicts by input name,
generators, Sequences, Datasets), and bad input named, with the model left as it was."""
import numpy as np
import pytest

import keras_bn_patch
from helpers import backend, backend_forms
from helpers.tools import X, nested_model


def test_every_kind_of_data_gives_the_same_statistics(api):
    """In batches of 50 as each kind yields them, and joined into one batch of 200 (no
    batch_size: as many samples as memory holds), by the passes and the staged methods."""
    model, backbone = nested_model(api)
    initial = model.get_weights()
    expected = {}
    for method in ("passes", "staged"):
        for batch_size in (50, None):
            model.set_weights(initial)
            keras_bn_patch.recalibrate(model, X, batch_size=batch_size, verbose=0, method=method)
            expected[method, batch_size] = model.get_weights()

    class Batches(api.keras.utils.Sequence):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return X[index * 50:(index + 1) * 50], np.zeros((50, 2))

    def generator():
        while True:  # as Keras generators do: never ends
            for start in range(0, 200, 50):
                yield X[start:start + 50], np.zeros((50, 2))

    sources = [("Sequence", Batches(), None), ("generator", generator(), 4)]
    sources += [(name, data, None) for name, data in backend_forms(api, X)]  # graph mode too
    for name, data, steps in sources:
        for method in ("passes", "staged"):
            for batch_size in (50, None):  # a kind yielding its own batches ignores batch_size
                model.set_weights(initial)
                summary = keras_bn_patch.recalibrate(model, data, steps=steps, verbose=0, batch_size=batch_size,
                                                     method=method)
                for a, b in zip(expected[method, batch_size], model.get_weights()):
                    np.testing.assert_array_equal(a, b, err_msg="%s, %s, batch_size %s" % (name, method, batch_size))
                assert summary.passes == (1 if batch_size is None or method == "staged" else 3), name


def test_data_keyed_by_input_name_as_predict_takes_it(api):
    """A model with two named inputs: a dict of arrays, and a generator or Dataset yielding
    ({name: batch}, y), give the statistics a list of arrays gives, whatever the dict's order;
    a dict without one of the inputs is an error naming it."""
    layers, models = api.keras.layers, api.keras.models
    left, right = layers.Input((8,), name="left"), layers.Input((4,), name="right")
    merged = layers.concatenate([api.bn(name="bn_left")(left), layers.Dense(4, name="dense_right")(right)])
    model = models.Model([left, right], layers.Dense(2, name="head")(api.bn(name="bn_out")(merged)))
    right_x = X[:, :4] * 2 - 1
    initial = model.get_weights()
    keras_bn_patch.recalibrate(model, [X, right_x], verbose=0, batch_size=50)
    expected = model.get_weights()
    named = {"right": right_x, "left": X}

    def generator():
        while True:
            for start in range(0, 200, 50):
                yield {"right": right_x[start:start + 50], "left": X[start:start + 50]}, np.zeros((50, 2))

    sources = [("dict", named, None), ("generator", generator(), 4)]
    if backend(api) == "tensorflow":
        import tensorflow as tf
        sources.append(("Dataset", tf.data.Dataset.from_tensor_slices((named, np.zeros((200, 2)))).batch(50), None))
    for name, data, steps in sources:
        model.set_weights(initial)
        keras_bn_patch.recalibrate(model, data, steps=steps, verbose=0, batch_size=50)
        for a, b in zip(expected, model.get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=name)
    model.set_weights(initial)
    assert keras_bn_patch.diagnose(model, named).rows == keras_bn_patch.diagnose(model, [X, right_x]).rows
    with pytest.raises(ValueError, match=r"x has no array for the model's input 'right' \(its inputs: "
                                         r"\['left', 'right'\]; x has: \['left'\]\)"):
        keras_bn_patch.diagnose(model, {"left": X})


def test_bad_input_is_named_and_changes_nothing(api):
    model, backbone = nested_model(api)
    before = model.get_weights()
    cases = [
        (lambda: keras_bn_patch.diagnose([model], X), TypeError, "model must be a Keras Model"),
        (lambda: keras_bn_patch.diagnose(model, X[:, :5]), ValueError, "x has shape (200, 5), but the model expects"),
        (lambda: keras_bn_patch.diagnose(model, X[:0]), ValueError, "x is empty"),
        (lambda: keras_bn_patch.diagnose(model, np.array([["a"] * 8])), TypeError, "x must hold numbers"),
        (lambda: keras_bn_patch.diagnose(model, "x.npy"), TypeError, "x must be data, not a str"),
        (lambda: keras_bn_patch.diagnose(model, X, batch_size=0), ValueError, "batch_size must be a positive int"),
        (lambda: keras_bn_patch.diagnose(model, X, tolerance=-1), ValueError, "tolerance must be a positive"),
        (lambda: keras_bn_patch.recalibrate(model, X, layers="some"), ValueError, "layers must be 'all'"),
        (lambda: keras_bn_patch.recalibrate(model, X, layers=["bn_nope"]), ValueError,
         "no BN layer named 'bn_nope'; its BN layers are: backbone/bn_in, backbone/bn_mid"),
        (lambda: keras_bn_patch.recalibrate(model, X, layers=3), TypeError, "layers must be"),
        (lambda: keras_bn_patch.recalibrate(model, X, steps="2"), TypeError, "steps must be a positive int"),
        (lambda: keras_bn_patch.recalibrate(model, X, verbose=5), ValueError, "verbose must be 0, 1 or 2"),
        (lambda: keras_bn_patch.recalibrate(model, iter([X]), verbose=0), ValueError, "steps is required"),
        (lambda: keras_bn_patch.recalibrate(model, 12, verbose=0), TypeError, "data must be a NumPy array"),
    ]
    for call, error, message in cases:
        with pytest.raises(error) as raised:
            call()
        assert message in str(raised.value)

    def failing_midway():
        yield X[:50]
        yield X[50:100]
        raise RuntimeError("the disk went away")

    with pytest.raises(ValueError) as raised:  # bn_in is recalibrated before the second pass fails
        keras_bn_patch.recalibrate(model, failing_midway(), steps=4, verbose=0)
    assert "RuntimeError: the disk went away" in str(raised.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_labels_that_do_not_fit_x_are_named(api):
    model, _ = nested_model(api)
    with pytest.raises(ValueError, match=r"y must hold one numeric label per sample of x \(200\), got .* shape \(199,\)"):
        keras_bn_patch.diagnose(model, X, y=np.zeros(199))
    with pytest.raises(TypeError, match="y is taken with x as an array"):
        keras_bn_patch.diagnose(model, (X[start:start + 50] for start in range(0, 200, 50)), steps=4,
                                y=np.zeros(200))
    with pytest.raises(ValueError, match=r"y has 200 labels, but the model ran on 64 samples of x \(steps\?\)"):
        keras_bn_patch.diagnose(model, X, y=np.zeros(200), steps=2)


def test_a_model_that_never_ran_is_named(api):
    """A Sequential model without an input shape has no BN statistics until it is built: both
    tools name the model instead of finding no BN layer in it.  Keras 2.0/2.1 refuse such a model;
    theirs, given an input shape, has its layers built but itself only when compiled: no error."""
    layers, models = api.keras.layers, api.keras.models
    x = np.random.RandomState(0).normal(size=(64, 3)).astype("float32")
    try:
        model = models.Sequential([layers.Dense(4), api.bn(name="bn_unbuilt"), layers.Dense(2)], name="unbuilt")
    except ValueError as error:
        assert "must get an `input_shape`" in str(error)
        model = models.Sequential([layers.Dense(4, input_shape=(3,)), api.bn(name="bn_unbuilt"), layers.Dense(2)])
        assert not model.built
    else:
        for tool, call in (("diagnose", lambda: keras_bn_patch.diagnose(model, x)),
                           ("recalibrate", lambda: keras_bn_patch.recalibrate(model, x, verbose=0))):
            with pytest.raises(ValueError) as raised:
                call()
            assert str(raised.value) == (
                "model 'unbuilt' is not built, so its BN layers (bn_unbuilt) have no statistics yet: run it once "
                "(model.predict on a sample builds it) and load its weights before %s()" % tool)
        assert not model.built
        model.predict(x[:1])
    assert [row["path"] for row in keras_bn_patch.diagnose(model, x).rows] == ["bn_unbuilt"]
    assert len(keras_bn_patch.recalibrate(model, x, verbose=0).rows) == 1
