"""The wrapper never makes a BN call fail that plain Keras runs: an error inside the patch's own
machinery (forced here) falls back to plain Keras for that call and after, is logged and warned
once, and status() reports the flavour ``unsupported``.  In a fresh interpreter per flavour."""
import json

import pytest

from helpers import run_python

CODE = """
import json, warnings
from helpers import X, Y, frozen_model, sgd, train_minus_test_loss
import keras_bn_patch
from keras_bn_patch.core import flags
from keras_bn_patch.tools import keras_api

def broken(layer, flavour):
    raise RuntimeError("forced failure inside the patch")

flags.flag_for = broken
api = keras_api.load(%(flavour)r)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model, bn = frozen_model(api, name="fallback_bn")
    model.compile(sgd(api, 0.0), "mse")
    gaps = [train_minus_test_loss(model, X, Y) for _ in range(2)]
print(json.dumps({"gaps": gaps, "state": keras_bn_patch.status()[%(label)r]["state"],
                  "warnings": [str(w.message) for w in caught if "forced failure" in str(w.message)]}))
"""


def test_an_error_inside_the_patch_falls_back_to_plain_keras(api):
    if api.name == "keras3":
        pytest.skip("Keras 3 is native: the patch wraps none of its calls")
    found = json.loads(run_python(CODE % {"flavour": api.name, "label": api.name})
                       .stdout.strip().splitlines()[-1])
    assert all(abs(gap) > 0.1 for gap in found["gaps"]), found  # plain Keras: the trap, no crash
    assert found["state"].startswith("unsupported: the patch failed on a BatchNormalization call "
                                     "(RuntimeError: forced failure inside the patch)"), found
    assert len(found["warnings"]) == 1, found
