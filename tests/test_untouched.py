"""Everything the patch does not fix is bit-identical to Keras in a process that never imported it.

Keras 2.1/2.2 on TF 1.x train with reference variables, whose reads alias the
buffer, and do not order the optimizer's writes after the backward pass's
reads: plain Keras itself varies from run to run (seen: 2 of 6 runs on TF 1.13),
and any graph change moves the schedule.  plain_run.py therefore switches TF to
resource variables, which removes that race in both processes.  TF 1.5 (Keras
2.1.x) cannot do that for ``tf.Variable``: there the bit-identity test is an
xfail (not strict: it is a race) and the closeness test guards the numbers.
"""
import os

import numpy as np
import pytest

from helpers import run_python, script

_cache = {}


def dumps(flavour, tmp_path_factory):
    """(plain, patched) dumps of tests/scripts/plain_run.py for this flavour, computed once."""
    if flavour not in _cache:
        directory = tmp_path_factory.mktemp("untouched")
        result = []
        for mode in ("plain", "patched"):
            path = str(directory / (mode + ".npz"))
            run_python(script("plain_run.py"), flavour, mode, path)
            with np.load(path) as data:
                result.append({key: data[key] for key in data.files})
        _cache[flavour] = result
    return _cache[flavour]


def _keras_with_reference_variables_only(flavour):
    if flavour != "keras" or "theano" in os.environ.get("KERAS_BACKEND", ""):
        return False
    import tensorflow as tf
    from keras_bn_patch.core.versions import version_tuple
    return version_tuple(tf.__version__) < (1, 13)


def test_disabled_and_trainable_are_bit_identical_to_plain_keras(flavour, tmp_path_factory, request):
    if _keras_with_reference_variables_only(flavour):
        request.applymarker(pytest.mark.xfail(reason="Keras's own read/write race on TF 1.5 (README)"))
    plain, patched = dumps(flavour, tmp_path_factory)
    assert sorted(plain) == sorted(patched)
    different = [key for key in plain if not np.array_equal(plain[key], patched[key])]
    assert different == [], "differs from plain Keras: %s" % different


def test_disabled_and_trainable_match_plain_keras_closely(flavour, tmp_path_factory):
    plain, patched = dumps(flavour, tmp_path_factory)
    for key in plain:
        if plain[key].dtype.kind == "f":
            np.testing.assert_allclose(patched[key], plain[key], rtol=1e-3, atol=1e-3, err_msg=key)
        else:
            assert np.array_equal(plain[key], patched[key]), key
    assert plain["frozen/signature"] == patched["frozen/signature"]
    assert plain["frozen/config"] == patched["frozen/config"]


LOGS = r"""
import logging, sys
import numpy as np
import keras_bn_patch
from keras_bn_patch.tools import keras_api
api = keras_api.load(sys.argv[1])
layers = api.keras.layers
inputs = layers.Input((8, 8, 3))
hidden = api.bn()(layers.Conv2D(4, 3)(inputs))
model = api.keras.models.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling2D()(hidden)))
model.compile("sgd", "mse")
x = np.random.RandomState(0).normal(size=(8, 8, 8, 3)).astype("float32")
model.fit(x, np.zeros((8, 2), "float32"), epochs=1, verbose=0)
model.predict(x, verbose=0)
# A message of the same kind about anything else still reaches TensorFlow's log.
logging.getLogger("tensorflow").warning("<function other> appears to be decorated by wrapt, as a test")
"""


def test_tensorflow_logs_nothing_about_the_patched_call(flavour):
    """A conv model with a patched BN layer built, fitted and predicted: TensorFlow logs no
    warning about the patch (TF 2.15's AutoGraph said the patched call "appears to be decorated
    by wrapt ... will run as-is"), and still logs the same kind of message about anything else."""
    found = run_python(LOGS, flavour, env={"TF_CPP_MIN_LOG_LEVEL": "2"}).stderr
    assert "<function other> appears to be decorated by wrapt, as a test" in found
    assert "call of" not in found and "decorated by wrapt" not in found.replace(
        "<function other> appears to be decorated by wrapt, as a test", "")
