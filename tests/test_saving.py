"""Saving never breaks: h5 everywhere, SavedModel (TF 2 legacy Keras), .keras (Keras 3).

Both ways across the boundary: a model with a frozen BN layer saved by this
patched process loads in a fresh process where the patch installed nothing
(KERAS_BN_PATCH=0, tests/scripts/unpatched_process.py), and one saved there loads here.
Either way: bit-identical predictions and weights, the same ``trainable`` as
plain Keras gives it (False, except in TF 2 SavedModels, which revive BN layers
trainable), and the same BN class (TF 2 would revive a layer whose saved config
it could not deserialize).  Loaded and frozen, the layer behaves frozen here.
The h5 file's config itself is compared with plain Keras's in test_untouched.py.
"""

import numpy as np
import pytest

from keras_bn_patch.core.versions import version_tuple
from helpers import (X, Y, sgd, formats, frozen_model, load, moving_stats, read_expected, run_python, same_arrays,
                     save_every_format, script, train_minus_test_loss, write_expected)

UNPATCHED = script("unpatched_process.py")
NO_PATCH = {"KERAS_BN_PATCH": "0"}  # the import installs nothing: plain Keras


@pytest.fixture
def fine_tuned(api):
    model, _ = frozen_model(api, name="saved_bn")
    model.compile(sgd(api, 1e-4), "mse")
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    return model


def is_revived(layer):
    # TF 2.0 and 2.1 revive a SavedModel as generic layers running their saved functions (TF 2.0
    # names the class after the original, defined in the loader's module): no BN class is left for
    # Keras or the patch to act on (README, Caveats).
    return any(klass.__name__ == "RevivedLayer" or klass.__module__.endswith("saved_model.load")
               for klass in type(layer).__mro__)


def assert_loaded_as_saved(api, loaded, name, x, predictions, weights):
    """Bit-identical predictions and weights; frozen (but in TF 2 SavedModels, which revive BN
    layers trainable by themselves); and, frozen after loading in this patched process, held
    with its statistics untouched."""
    assert np.array_equal(loaded.predict(x), predictions), name
    assert same_arrays(loaded.get_weights(), weights), name
    bn = loaded.get_layer("saved_bn")
    if name != "saved_model":
        assert bn.trainable is False, name
    if is_revived(bn):
        assert version_tuple(api.version)[:2] in ((2, 0), (2, 1)), type(bn)
        return
    bn.trainable = False
    loaded.compile(sgd(api, 0.0), "mse")
    before = moving_stats(api, [bn])
    assert abs(train_minus_test_loss(loaded)) < 1e-5, name
    assert all(np.array_equal(a, b) for a, b in zip(before, moving_stats(api, [bn]))), name


def test_saved_with_the_patch_loads_without_it(api, fine_tuned, tmp_path):
    write_expected(tmp_path, fine_tuned, X, {})
    expected = read_expected(tmp_path)[1]
    for name, path in save_every_format(api, fine_tuned, tmp_path):
        loaded = load(api, path)
        bn = loaded.get_layer("saved_bn")
        out = run_python(UNPATCHED, api.name, "load", path, str(tmp_path), env=NO_PATCH).stdout.split()
        # plain Keras: identical predictions and weights, and the same trainable and BN class
        # as here (TF 2 would revive a layer whose saved config it could not deserialize)
        assert out[-4:] == ["0.0", "True", str(bn.trainable), type(bn).__name__], (name, out)
        assert_loaded_as_saved(api, loaded, name, X, expected, fine_tuned.get_weights())


def test_saved_without_the_patch_loads_with_it(api, tmp_path):
    run_python(UNPATCHED, api.name, "save", str(tmp_path), env=NO_PATCH)
    x, predictions, weights, loaded_there = read_expected(tmp_path)
    assert sorted(loaded_there) == sorted(formats(api))
    for name in formats(api):
        loaded = load(api, str(tmp_path / name))
        bn = loaded.get_layer("saved_bn")
        assert [bn.trainable, type(bn).__name__] == loaded_there[name], name  # as plain Keras loads it
        assert_loaded_as_saved(api, loaded, name, x, predictions, weights)
