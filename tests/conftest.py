"""Which Keras flavours this environment must test.

``KBP_EXPECT_FLAVOURS`` (set by noxfile.py) lists them; a listed flavour that
does not import fails the run instead of being skipped.  Without it (plain
``pytest`` in any environment) every flavour found is tested.
"""
import os
import subprocess
import sys

import pytest

from keras_bn_patch.core.support import FLAVOUR_NAMES as ALL_FLAVOURS


def expected_flavours():
    listed = os.environ.get("KBP_EXPECT_FLAVOURS")
    if listed is not None:
        return [name for name in listed.split(",") if name]
    found = []
    for name in ALL_FLAVOURS:
        code = "import keras_bn_patch.tools.keras_api as k; k.load(%r)" % name
        if subprocess.call([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0:
            found.append(name)
    return found


FLAVOURS = expected_flavours()

# Engines whose workers tests/test_engines.py trains in (module names: how each imports).
ENGINE_MODULES = {"loky": "joblib", "sklearn": "sklearn", "ray": "ray", "spark": "pyspark", "dask": "distributed"}


def expected_engines():
    """KBP_EXPECT_ENGINES (set by noxfile.py: a listed engine that does not import fails the
    run); without it, the engines installed here."""
    listed = os.environ.get("KBP_EXPECT_ENGINES")
    if listed is not None:
        return [name for name in listed.split(",") if name]
    import importlib.util
    return [name for name, module in ENGINE_MODULES.items() if importlib.util.find_spec(module) is not None]


ENGINES = expected_engines()
# Training in engines' workers is tested where engines are installed (two sessions of the matrix).
collect_ignore = [] if ENGINES else ["test_engines.py"]


def pytest_generate_tests(metafunc):
    if "flavour" in metafunc.fixturenames:
        metafunc.parametrize("flavour", FLAVOURS)


@pytest.fixture
def api(flavour):
    import keras_bn_patch  # noqa: F401  (installs, as a user's script would)
    from keras_bn_patch.tools import keras_api
    loaded = keras_api.load(flavour)  # ImportError here fails the test: never a silent skip
    _seed_random_weights()
    yield loaded
    keras_bn_patch.enable()
    if hasattr(loaded.keras.backend, "clear_session"):  # not in Theano's backend
        loaded.keras.backend.clear_session()


def _seed_random_weights():
    """The same initial weights in every run: a test's figures (the trap's size in the unpatched
    arm) are then the same in CI as where they were measured, not a draw.  Keras 2 draws its
    initializers' seeds from NumPy; tf.keras from TensorFlow's global (or graph) seed."""
    import numpy as np
    np.random.seed(0)
    try:
        import tensorflow as tf
    except ImportError:  # Theano
        return
    random = getattr(tf, "random", None)
    (getattr(random, "set_seed", None) or getattr(random, "set_random_seed", None) or tf.set_random_seed)(0)
