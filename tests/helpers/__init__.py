"""What the tests and the scripts they run in fresh interpreters share (``helpers.tools``: the
models and data of the diagnose and recalibrate tests).

Imports no Keras and not the package: each helper takes the ``api``
(``keras_bn_patch.tools.keras_api.load``) of the flavour under test.  The tests find it, and
benchmarks/ (``pythonpath`` in setup.cfg), as pytest puts them on ``sys.path``; the scripts'
interpreters get the same folders on ``PYTHONPATH`` (``with_test_path``).
"""
import json
import os
import subprocess
import sys

import numpy as np

from determinism import reproducible  # noqa: F401  (benchmarks/: the scripts' and the benchmarks')

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(os.path.dirname(TESTS), "benchmarks")
SCRIPTS = os.path.join(TESTS, "scripts")  # the programs tests run in fresh interpreters

RNG = np.random.RandomState(42)
X = (RNG.normal(size=(32, 8)) * 4 + 20).astype("float32")  # far from the moving stats (0, 1)
Y = np.eye(2, dtype="float32")[RNG.randint(0, 2, 32)]
X_SOURCE = RNG.normal(size=(32, 8)).astype("float32")  # pretraining data: other statistics


def with_test_path(environment):
    """``environment`` with tests/ and benchmarks/ first on PYTHONPATH: a script run in it
    imports these helpers as the tests do."""
    path = [TESTS, BENCHMARKS] + [entry for entry in environment.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return dict(environment, PYTHONPATH=os.pathsep.join(path))


def plain_environment(**extra):
    """This process's environment without the start-up path that ``import keras_bn_patch`` puts
    on PYTHONPATH (the tests import it): a child started with it begins as a user's plain one."""
    from keras_bn_patch.reach.children import without_startup
    return with_test_path(without_startup(dict(os.environ, **extra)))


def run_python(code, *args, env=None, check=True):
    """Run ``code`` in a fresh, plain interpreter of this venv: a script path, "-m", or inline source."""
    environment = plain_environment(**(env or {}))
    is_script = code == "-m" or code.endswith(".py")
    command = [sys.executable] + ([code] if is_script else ["-c", code]) + list(args)
    process = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, env=environment, cwd=TESTS)
    if check and process.returncode != 0:
        raise AssertionError("subprocess failed (%d):\n%s\n%s" % (process.returncode, process.stdout,
                                                                 process.stderr[-4000:]))
    return process


def run_cli(*args, process=False):
    """``keras-bn-patch ARGS`` called in this process: its exit code, stdout and stderr as
    ``run_python`` gives a process's.  For what the CLI computes from a file (a fresh interpreter
    importing TensorFlow costs seconds a call); each test that uses it also runs the command once
    with ``process=True``, as ``python -m keras_bn_patch`` in a fresh interpreter, for its start-up
    and exit code."""
    if process:
        return run_python("-m", "keras_bn_patch", *args, check=False)
    import contextlib
    import io
    from keras_bn_patch.cli.main import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse's usage errors
            code = exit.code
    return subprocess.CompletedProcess(["keras-bn-patch"] + list(args), code, out.getvalue(), err.getvalue())


def script(name):
    return os.path.join(SCRIPTS, name)


def scalar(value):
    return float(np.ravel(value)[0])


def moving_stats(api, layers):
    return [get_value(api, w).copy() for layer in layers for w in (layer.moving_mean, layer.moving_variance)]


def get_value(api, variable):
    """A variable's value in any flavour (Keras 3 has no batch_get_value)."""
    if api.name == "keras3":
        return variable.numpy()
    return api.keras.backend.batch_get_value([variable])[0]


def sgd(api, learning_rate):
    """An SGD optimizer in any flavour (its first positional argument is the rate in all)."""
    return api.keras.optimizers.SGD(learning_rate)


def train_minus_test_loss(model, x=X, y=Y):
    """Training-mode minus inference-mode loss, both before the step's own updates."""
    inference = scalar(model.test_on_batch(x, y))
    return scalar(model.train_on_batch(x, y)) - inference


def frozen_model(api, name="frozen_bn", width=16, **bn_options):
    """(model, bn): dense(width) -> BN ``name``, frozen after it was built -> dense(2); not compiled."""
    layers = api.keras.layers
    inputs = layers.Input((8,))
    bn = api.bn(name=name, **bn_options)
    model = api.keras.models.Model(inputs, layers.Dense(2)(bn(layers.Dense(width)(inputs))))
    bn.trainable = False
    return model, bn


def backend(api):
    """What the flavour computes with: "tensorflow", "theano", "jax" or "torch"."""
    from keras_bn_patch.tools import keras_api
    return keras_api.backend(api)


def sync_batch_normalization_or_skip(api):
    """tf.keras's SyncBatchNormalization (under ``layers`` or, before TF 2.12, ``layers.experimental``),
    or the test is skipped where the flavour has none."""
    import pytest
    layers = api.keras.layers
    found = getattr(layers, "SyncBatchNormalization", None) or getattr(
        getattr(layers, "experimental", None), "SyncBatchNormalization", None)
    if found is None:
        pytest.skip("%s %s has no SyncBatchNormalization" % (api.name, api.version))
    return found


def traces(api):
    """Whether the tools run the model as one graph or trace they can cut (recalibrate's staged
    method), subclassed models too; Keras 3 on JAX or PyTorch runs it eagerly, and the staged
    method cuts a functional or Sequential model's own graph of layers there (nested ones
    joined into it), not a subclassed one's Python code."""
    return backend(api) in ("tensorflow", "theano")


def backend_forms(api, x):
    """[(name, data)]: ``x`` in the backend's own forms, besides NumPy: a tf.data.Dataset
    (TensorFlow), a torch tensor and a DataLoader yielding (x, y) (PyTorch), a JAX array."""
    found = []
    if backend(api) == "tensorflow":
        import tensorflow as tf
        found.append(("Dataset", tf.data.Dataset.from_tensor_slices(x).batch(50)))
    elif backend(api) == "torch":
        import torch
        tensor = torch.from_numpy(x)
        found.append(("torch tensor", tensor))
        dataset = torch.utils.data.TensorDataset(tensor, torch.zeros(len(x)))
        found.append(("DataLoader", torch.utils.data.DataLoader(dataset, batch_size=50)))
    elif backend(api) == "jax":
        import jax.numpy as jnp
        found.append(("JAX array", jnp.asarray(x)))
    return found


def tf1_session(api):
    """Keras's TF 1 session, or None in eager flavours and on Theano."""
    if api.eager or api.name not in ("keras", "tf.keras") or (
            api.name == "keras" and api.keras.backend.backend() != "tensorflow"):
        return None
    return api.keras.backend.get_session()


# Saving: the formats each flavour has, and the expectations a process leaves for another.
def formats(api):
    if api.name == "keras3":
        return ["model.keras", "model.h5"]
    found = ["model.h5"]
    if api.eager:
        found.append("saved_model")  # TF 2: the SavedModel directory format
    return found


def save_every_format(api, model, directory):
    """[(format name, path)] of ``model`` saved in every format this flavour has."""
    saved = []
    for name in formats(api):
        path = os.path.join(str(directory), name)
        if name == "saved_model":
            model.save(path, save_format="tf")
        else:
            model.save(path)
        saved.append((name, path))
    return saved


def same_arrays(first, second):
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


def load(api, path):
    # Keras 3.15 cannot deserialize its own compiled "mse"; TF 2.1 cannot predict with a
    # SavedModel loaded uncompiled: both plain-Keras limits, so load as each one can.
    return api.keras.models.load_model(path, compile=api.name != "keras3")


def write_expected(directory, model, x, loaded_as):
    """DIR/x.npy and DIR/expected.npz: predictions on x, weights, and ``loaded_as``
    ({format: [trainable, class name] of the BN layer as loaded back here})."""
    np.save(os.path.join(str(directory), "x.npy"), x)
    weights = {"weight%d" % i: w for i, w in enumerate(model.get_weights())}
    np.savez(os.path.join(str(directory), "expected.npz"), predict=model.predict(x),
             loaded_as=np.asarray(json.dumps(loaded_as)), **weights)


def read_expected(directory):
    """(x, predictions, weights, loaded_as) as write_expected left them."""
    with np.load(os.path.join(str(directory), "expected.npz")) as expected:
        count = sum(key.startswith("weight") for key in expected.files)
        return (np.load(os.path.join(str(directory), "x.npy")), expected["predict"],
                [expected["weight%d" % i] for i in range(count)], json.loads(str(expected["loaded_as"])))


def convolves(api):
    """Whether the flavour can run convolutions here: not Theano without a C++ compiler (as in CI)."""
    return backend(api) != "theano"


def features(api, filters, **options):
    """A 3x3 Conv2D with ``filters``, or a Dense where the flavour cannot convolve (``convolves``):
    on a 4-D input, a 1x1 convolution."""
    layers = api.keras.layers
    if convolves(api):
        return layers.Conv2D(filters, 3, padding="same", **options)
    return layers.Dense(filters, **options)


def small_resnet(api):
    """One residual block with BN; dense where the flavour cannot convolve."""
    layers = api.keras.layers
    inputs = layers.Input((12, 12, 3))
    hidden = inputs if convolves(api) else layers.Flatten()(inputs)
    hidden = layers.Activation("relu")(api.bn()(features(api, 8)(hidden)))
    branch = api.bn()(features(api, 8)(hidden))
    hidden = layers.Activation("relu")(layers.add([hidden, branch]))
    if convolves(api):
        hidden = layers.GlobalAveragePooling2D()(hidden)
    return api.keras.models.Model(inputs, layers.Dense(3, activation="softmax")(hidden))


def statistics(api, model):
    """Every BN layer's moving mean and variance, in float64, in the model's order."""
    from keras_bn_patch.tools.diagnose import bn_layers
    return [np.asarray(get_value(api, variable), dtype="float64") for _, layer, _ in bn_layers(model)
            for variable in (layer.moving_mean, layer.moving_variance)]


def largest_difference(api, model, found, exact):
    """Over every layer and channel: mean in standard deviations, variance relative to itself."""
    from keras_bn_patch.tools.diagnose import bn_layers
    layers = [layer for _, layer, _ in bn_layers(model)]
    worst = 0.0
    for index, layer in enumerate(layers):
        mean, variance = exact[2 * index], exact[2 * index + 1]
        worst = max(worst, np.max(np.abs(found[2 * index] - mean) / np.sqrt(variance + layer.epsilon)),
                    np.max(np.abs(found[2 * index + 1] - variance) / (variance + layer.epsilon)))
    return worst
