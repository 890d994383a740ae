"""recalibrate's staged method against the real Keras of this environment: exact at any batch
size and memory limit, the data read once, temporary files always removed, and the models it
cannot cut into stages named."""
import gc
import os
import tempfile
import weakref

import numpy as np
import pytest

import keras_bn_patch
from keras_bn_patch.cli import demo as _demo
from helpers import backend, convolves, features, get_value, largest_difference, small_resnet, statistics, traces

RNG = np.random.RandomState(3)
IMAGES = RNG.uniform(0, 255, size=(40, 12, 12, 3)).astype("float32")


def random_resnet(api):
    """small_resnet with random (Glorot) weights: statistics far from the initial ones, errors that
    grow from layer to layer."""
    model = small_resnet(api)
    rng = np.random.RandomState(5)
    model.set_weights([_demo.glorot(rng, w.shape) if w.ndim > 1 else w for w in model.get_weights()])
    return model


@pytest.fixture
def temporary(tmp_path, monkeypatch):
    """The temporary directory recalibrate's files go to, for this test alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def left_behind(directory):
    """What recalibrate left in the temporary directory (AutoGraph writes its own files there)."""
    return [name for name in os.listdir(str(directory)) if name.startswith("keras_bn_patch")]


def layer_by_layer(api, model, x):
    """The exact reference: one pass per layer, each from the layers before it settled."""
    initial = model.get_weights()
    keras_bn_patch.recalibrate(model, x, verbose=0, method="layer_by_layer", batch_size=16)
    exact = statistics(api, model)
    model.set_weights(initial)
    return exact


def test_batch_size_and_memory_limit_change_neither_statistics_nor_passes(api, temporary):
    """batch_size 8, 32 and None, and a memory limit far below what the data's activations take
    (then kept in temporary files): the layer-by-layer statistics within 1e-5, one pass over
    the data, the same stages; no file left behind."""
    model = random_resnet(api)
    initial = model.get_weights()
    exact = layer_by_layer(api, model, IMAGES)
    found = {}
    for batch_size, memory_limit in ((8, None), (32, None), (None, None), (8, 200)):
        model.set_weights(initial)
        summary = keras_bn_patch.recalibrate(model, IMAGES, verbose=0, batch_size=batch_size, method="staged",
                                             memory_limit=memory_limit)
        print(summary, summary.to_dict()["kept"])
        assert summary.method == "staged" and summary.note is None
        assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5
        assert [row["values_seen"] for row in summary.rows] == [
            IMAGES.shape[0] * (1 if api.name == "keras" and api.keras.backend.backend() == "theano" else 144)] * 2
        found[batch_size, memory_limit] = (summary.passes, summary.stages, summary.kept)
        assert left_behind(temporary) == []
    assert set(passes for passes, _, _ in found.values()) == {1}
    assert set(stages for _, stages, _ in found.values()) == {2}  # the block's two BN layers, one after the other
    assert found[8, 200][2]["disk_bytes"] > 0 and found[8, 200][2]["memory_bytes"] <= 200
    assert found[8, None][2]["disk_bytes"] == 0


def test_an_expansion_memory_cannot_hold_is_computed_again_from_its_input(api, temporary):
    """A 1x1 convolution that widens a BN layer's 4 channels to 32 for the next BN layer, whose
    input a third stage reads: within the memory limit, the second stage keeps the 32 channels
    themselves (36 held at once with the first stage's 4, in memory); where the 32 channels of all
    the data exceed it, the convolution's input (4 channels), and the third stage computes it
    again, so at most 8 are held and not 36.  (tf.keras 1.5 builds the inference graph twice, so
    twice as much either way.)  The layer-by-layer statistics every time."""
    layers = api.keras.layers
    inputs = layers.Input((6, 6, 3))
    narrow = layers.Activation("relu")(api.bn(name="bn_a")(features(api, 4)(inputs)))
    widen = layers.Conv2D(32, 1) if convolves(api) else layers.Dense(32)
    wide = layers.Activation("relu")(api.bn(name="bn_b")(widen(narrow)))
    model = api.keras.models.Model(inputs, layers.GlobalAveragePooling2D()(api.bn(name="bn_c")(features(api, 4)(wide))))
    x = np.random.RandomState(7).normal(size=(96, 6, 6, 3)).astype("float32")
    channel = x.shape[0] * 6 * 6 * 4  # the bytes of one channel of the data's activations
    initial = model.get_weights()
    exact = layer_by_layer(api, model, x)

    class Batches(api.keras.utils.Sequence):  # its size: 3 batches of its first one's 32 samples
        def __len__(self):
            return 3

        def __getitem__(self, index):
            return x[index * 32:(index + 1) * 32]

    whole = None  # the bytes held at once within memory
    for data, memory_limit in ((x, None), (x, 20000), (Batches(), 20000)):
        model.set_weights(initial)
        summary = keras_bn_patch.recalibrate(model, data, verbose=0, batch_size=32, method="staged",
                                             memory_limit=memory_limit)
        assert (summary.method, summary.stages) == ("staged", 3), summary.note
        assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5, memory_limit
        held = summary.kept["memory_bytes"] + summary.kept["disk_bytes"]
        if memory_limit is None:
            whole = held
            assert summary.kept["disk_bytes"] == 0 and whole in (36 * channel, 72 * channel), summary.kept
        else:
            assert summary.kept["disk_bytes"] > 0 and held <= whole * 8 // 36, (type(data).__name__, summary.kept)
        assert left_behind(temporary) == []


def test_a_later_call_on_other_data_is_exact_and_keeps_no_model_alive(api):
    """recalibrate twice on one model, the second time on other data: the second call gives that
    data's layer-by-layer statistics.  Keras 3 on JAX or PyTorch keeps each stage's function per
    model (JAX compiles it when it first runs): a third call runs the very same functions, and
    what is kept lets the model go."""
    model = random_resnet(api)
    other = IMAGES[::-1] * 0.5 + 40
    exact = layer_by_layer(api, model, other)
    for x in (IMAGES, other):
        summary = keras_bn_patch.recalibrate(model, x, verbose=0, batch_size=8, method="staged")
    assert summary.method == "staged" and summary.note is None
    assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5
    if traces(api):
        return  # TensorFlow and Theano: each call builds its graph's functions (session callables, pruned traces)
    from keras_bn_patch.tools import staged
    first = dict(staged._STAGE_FUNCTIONS[model])
    assert len(first) == summary.stages
    keras_bn_patch.recalibrate(model, other, verbose=0, batch_size=8, method="staged")
    assert all(staged._STAGE_FUNCTIONS[model][key] is function for key, function in first.items())
    assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5
    kept = weakref.ref(model)
    del model, first
    gc.collect()
    assert kept() is None


def test_auto_reads_arrays_that_fit_in_one_batch_in_one_pass_and_stages_the_rest(api):
    """The default: no batch_size and arrays that fit in one batch: the passes method's first
    pass, exact; with a batch_size, or data Keras yields in batches: staged.  Both exact."""
    model = random_resnet(api)
    initial = model.get_weights()
    exact = layer_by_layer(api, model, IMAGES)
    for batch_size, method in ((None, "passes"), (8, "staged")):
        model.set_weights(initial)
        summary = keras_bn_patch.recalibrate(model, IMAGES, verbose=0, batch_size=batch_size)
        assert (summary.method, summary.passes) == (method, 1)
        assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5
        assert ("1 pass over the data (%s" % method) in str(summary)


def test_a_generator_is_read_once_and_not_kept(api, temporary):
    """Data larger than memory comes as a generator: staged reads its batches once, as they come
    (steps of them), keeps only activations (here in files, the limit being tiny), and gives
    the exact statistics."""
    model = random_resnet(api)
    exact = layer_by_layer(api, model, IMAGES)
    served = []

    def generator():
        while True:
            for start in range(0, 40, 8):
                served.append(start)
                yield IMAGES[start:start + 8]

    summary = keras_bn_patch.recalibrate(model, generator(), steps=5, verbose=0, memory_limit=200)
    assert summary.method == "staged" and served == [0, 8, 16, 24, 32]
    assert summary.kept["disk_bytes"] > 0
    assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5
    assert left_behind(temporary) == []


def test_a_failure_midway_leaves_no_file_and_every_weight_as_it_was(api, temporary):
    """Bad data in the last batch, after the first batches' activations went to files: the
    error names the data, the files are gone, the weights unchanged."""
    model = random_resnet(api)
    initial = model.get_weights()

    def generator():
        for start in range(0, 32, 8):
            yield IMAGES[start:start + 8]
        yield IMAGES[:8, :6]  # the wrong image size

    with pytest.raises(ValueError, match="data"):
        keras_bn_patch.recalibrate(model, generator(), steps=5, verbose=0, memory_limit=200)
    assert left_behind(temporary) == []
    for before, after in zip(initial, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_a_shared_layer_is_staged_and_one_fed_its_own_output_falls_back_named(api):
    """A BN layer called on two branches is settled once both calls are measured: staged, exact.
    A BN layer called on its own output cannot be settled before it is used: the passes method
    runs instead, the summary says why, and its statistics describe what the layer receives."""
    layers = api.keras.layers
    x = (RNG.normal(size=(64, 8)) * 3 + 5).astype("float32")
    inputs = layers.Input((8,))
    shared = api.bn(name="shared_bn")
    output = layers.concatenate([shared(layers.Dense(4)(inputs)), shared(layers.Dense(4)(inputs))])
    model = api.keras.models.Model(inputs, layers.Dense(2)(api.bn(name="after")(output)))
    exact = layer_by_layer(api, model, x)
    summary = keras_bn_patch.recalibrate(model, x, verbose=0, batch_size=16)
    assert (summary.method, summary.stages, summary.note) == ("staged", 2, None)
    assert summary.rows[0]["values_seen"] == 128  # both calls
    assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5

    inputs = layers.Input((8,))
    again = api.bn(name="again_bn")
    looped = api.keras.models.Model(inputs, layers.Dense(2)(again(layers.Dense(8)(again(inputs)))))
    summary = keras_bn_patch.recalibrate(looped, x, verbose=0, batch_size=16)
    assert summary.method == "passes" and summary.note.startswith(
        "the model cannot be cut into stages: a BN layer receives its own output")
    assert "(passes: the model cannot be cut into stages" in str(summary)
    check = keras_bn_patch.recalibrate(looped, x, verbose=0, batch_size=16, method="layer_by_layer")
    assert check.rows[0]["mean_shift"] <= 1e-3 and abs(np.log(check.rows[0]["variance_ratio"])) <= 1e-3


def test_sequential_and_nested_models_are_staged_on_every_backend(api):
    """A Sequential model, and a functional one with a nested model called on two branches and a
    nested Sequential model: cut into stages on every backend (Keras 3 on JAX and PyTorch joins
    each nested model's graph of layers into the model's own), one pass, exact."""
    layers, models = api.keras.layers, api.keras.models
    shape = (12, 12, 3) if convolves(api) else (12 * 12 * 3,)
    x = IMAGES.reshape((len(IMAGES),) + shape)

    def flat():
        return layers.Flatten() if convolves(api) else layers.Activation("linear")

    sequential = models.Sequential([features(api, 8, input_shape=shape), api.bn(), layers.Activation("relu"),
                                    features(api, 8), api.bn(), flat(), layers.Dense(3)])
    block_shape = (12, 12, 8) if convolves(api) else (8,)
    block_inputs = layers.Input(block_shape)
    block = models.Model(block_inputs, api.bn()(features(api, 8)(layers.Activation("relu")(
        api.bn()(features(api, 8)(block_inputs))))), name="block")
    tail = models.Sequential([features(api, 8, input_shape=block_shape), api.bn()], name="tail")
    inputs = layers.Input(shape)
    stem = api.bn()(features(api, 8)(inputs))
    branches = layers.add([block(stem), block(layers.Lambda(lambda t: t * 0.5 + 1.0)(stem))])
    nested = models.Model(inputs, layers.Dense(3)(flat()(tail(branches))))
    for model, bn_layers, stages in ((sequential, 2, 2), (nested, 4, 4)):
        exact = layer_by_layer(api, model, x)
        summary = keras_bn_patch.recalibrate(model, x, verbose=0, batch_size=8)
        assert (summary.method, summary.passes, summary.stages, summary.note) == ("staged", 1, stages, None)
        assert len(summary.rows) == bn_layers
        assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5
    if not api.eager:
        return  # graph mode: a subclassed model has no input tensors (test_a_subclassed_model_is_staged_in_tf2)

    class Subclassed(api.keras.Model):
        def __init__(self):
            super(Subclassed, self).__init__()
            self.norm = api.bn(name="sub_bn")

        def call(self, inputs, training=None):
            return self.norm(inputs, training=training)

    inputs = layers.Input(shape)
    model = models.Model(inputs, layers.Dense(3)(flat()(Subclassed()(api.bn()(features(api, 8)(inputs))))))
    exact = layer_by_layer(api, model, x)
    summary = keras_bn_patch.recalibrate(model, x, verbose=0, batch_size=8)
    if traces(api):
        assert (summary.method, summary.passes, summary.stages) == ("staged", 1, 2)
    else:
        assert summary.method == "passes" and summary.note == (
            "the model cannot be cut into stages: BN layer 'sub_bn' is not called in the model's graph of layers: "
            "inside a subclassed model, whose Python code Keras 3 on %s runs without one, or on no way to the "
            "model's outputs" % backend(api))
    assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5


def test_a_subclassed_model_is_staged_in_tf2(api):
    """TF 2 traces a subclassed model into one graph like any other: staged, its statistics
    those NumPy computes.  Keras 3 on JAX or PyTorch runs it as Python code, with no graph of
    layers to cut: the passes method then, the summary saying why, the same statistics."""
    if not api.eager:
        pytest.skip("graph mode: a subclassed model has no input tensors, which every method needs")
    keras = api.keras
    x = (RNG.normal(size=(48, 8)) * 3 + 5).astype("float32")

    class Subclassed(keras.Model):
        def __init__(self):
            super(Subclassed, self).__init__()
            self.norm = api.bn(name="sub_bn")
            self.dense = keras.layers.Dense(2)

        def call(self, inputs, training=None):
            return self.dense(self.norm(inputs, training=training))

    model = Subclassed()
    model(x[:2])
    summary = keras_bn_patch.recalibrate(model, x, verbose=0, batch_size=16)
    if traces(api):
        assert summary.method == "staged" and summary.stages == 1
    else:
        assert summary.method == "passes" and summary.note == (
            "the model cannot be cut into stages: a subclassed model has no graph of layers to cut "
            "(Keras 3 on %s runs it as Python code)" % backend(api))
    np.testing.assert_allclose(get_value(api, model.norm.moving_mean), x.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(get_value(api, model.norm.moving_variance), x.var(axis=0), rtol=1e-5, atol=1e-5)


def test_the_estimate_is_one_pass_and_exact_only_in_one_batch(api):
    """method="estimate" (PyTorch's update_bn): one pass, whatever the batches; exact when all of
    the data is one batch, off the exact statistics in batches of 8 (this network's second layer
    receives what the first, normalised batch by batch, gives it)."""
    model = random_resnet(api)
    initial = model.get_weights()
    exact = layer_by_layer(api, model, IMAGES)
    summary = keras_bn_patch.recalibrate(model, IMAGES, verbose=0, method="estimate")  # 40 samples: one batch
    assert (summary.method, summary.passes) == ("estimate", 1)
    assert largest_difference(api, model, statistics(api, model), exact) <= 1e-5
    model.set_weights(initial)
    summary = keras_bn_patch.recalibrate(model, IMAGES, verbose=0, method="estimate", batch_size=8)
    assert "1 pass over the data (estimate)." in str(summary)
    assert largest_difference(api, model, statistics(api, model), exact) > 1e-3


def test_memory_limit_named_when_wrong(api):
    model = random_resnet(api)
    for wrong in (0, -1, 1.5, "1G", True):
        with pytest.raises(ValueError, match=r"memory_limit must be a number of bytes > 0, got %s" % repr(wrong)):
            keras_bn_patch.recalibrate(model, IMAGES, verbose=0, memory_limit=wrong)
