"""MirroredStrategy over 2 logical CPUs, and mixed precision, each in a fresh
interpreter (tests/scripts/distributed_run.py).  TF 2 flavours: standalone Keras 2 and TF 1 tf.keras
have no Keras support for tf.distribute."""
import json

import pytest

from helpers import backend, run_python, script

PLAIN_TF21_FAILURE = "`handle` is not available outside the replica context"


@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_mirrored_strategy_holds_frozen_layers_and_matches_one_device(api, precision):
    if not api.eager:
        pytest.skip("%s %s: no tf.distribute support in Keras here" % (api.name, api.version))
    if backend(api) != "tensorflow":
        pytest.skip("tf.distribute is TensorFlow's: Keras 3 on %s has its own distribution API" % backend(api))
    if api.version.startswith("2.1."):
        # Plain TF 2.1 Keras cannot train a V1 BN layer under MirroredStrategy: the patch
        # must fail exactly as plain Keras does, and add nothing of its own.
        for env in ({}, {"KERAS_BN_PATCH": "0"}):
            process = run_python(script("distributed_run.py"), api.name, precision, env=env, check=False)
            assert process.returncode != 0 and PLAIN_TF21_FAILURE in process.stderr, process.stderr[-2000:]
        return
    result = json.loads(run_python(script("distributed_run.py"), api.name, precision).stdout.splitlines()[-1])
    for run in ("mirrored", "single"):
        assert result[run]["held_gap"] == 0.0  # training-mode loss == inference-mode loss
        assert result[run]["stats_moved"] == 0.0  # frozen statistics bit-identical after fit
    assert result["mirrored"]["replicas"] == 2
    if api.name != "keras3":  # the unpatched arm shows the trap, on each device count
        assert result["mirrored"]["plain_gap"] > 1 and result["single"]["plain_gap"] > 1
    # the same training on 2 replicas as on one: float32 to rounding, float16 to its precision
    assert result["weights_difference"] < (1e-6 if precision == "float32" else 2e-2)
