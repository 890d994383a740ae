"""Estimators: ``model_to_estimator`` works patched wherever it works unpatched, and holds the
frozen layer in the estimator's own graph: its training loss on a batch equals its evaluate
loss at learning rate 0, and the moving statistics in its checkpoints do not move.  The flag is
no model state (a local, non-trainable variable), so the estimator's warm start from the Keras
model's checkpoint, and its Savers, never see it.  tf.keras flavours that have the function."""
import json

import pytest

from helpers import run_python, script


def run(tmp_path, **env):
    found = run_python(script("estimator_run.py"), str(tmp_path), env=env).stdout.strip().splitlines()[-1]
    return json.loads(found)


@pytest.fixture
def estimator_flavour(api):
    if api.name != "tf.keras":  # Theano has no TensorFlow to import
        pytest.skip("%s has no tf.keras.estimator.model_to_estimator" % api.name)
    import tensorflow as tf
    if not hasattr(getattr(tf.keras, "estimator", None), "model_to_estimator"):
        pytest.skip("%s %s has no tf.keras.estimator.model_to_estimator" % (api.name, api.version))


def test_model_to_estimator_holds_the_frozen_layer(estimator_flavour, tmp_path):
    patched = run(tmp_path / "patched")
    assert len(patched["train"]) >= 3, patched
    assert all(abs(loss - patched["evaluate"]) <= 1e-5 * abs(patched["evaluate"]) for loss in patched["train"]), patched
    assert patched["first"] and patched["first"] == patched["last"], patched
    plain = run(tmp_path / "plain", KERAS_BN_PATCH="0")  # plain Keras: the trap, in the same flow
    assert max(abs(loss - plain["evaluate"]) for loss in plain["train"]) > 0.01 * abs(plain["evaluate"]), plain
