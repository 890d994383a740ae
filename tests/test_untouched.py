"""Everything the patch does not fix is bit-identical to Keras in a process that never imported it.

Known exception (open work, see README "Caveats"): on TensorFlow 1.5 (Keras
2.1.x) the patched process matches plain Keras only to about 1e-5, not bit for
bit; the bit-identity test is a strict xfail there (it fails the day it passes)
and the closeness test still guards against real regressions.
"""
import os
import sys

import numpy as np
import pytest

from conftest import TESTS, run_python

_cache = {}


def dumps(flavour, tmp_path_factory):
    """(plain, patched) dumps of tests/plain_run.py for this flavour, computed once."""
    if flavour not in _cache:
        directory = tmp_path_factory.mktemp("untouched")
        result = []
        for mode in ("plain", "patched"):
            path = str(directory / (mode + ".npz"))
            run_python(os.path.join(TESTS, "plain_run.py"), flavour, mode, path)
            with np.load(path) as data:
                result.append({key: data[key] for key in data.files})
        _cache[flavour] = result
    return _cache[flavour]


def _on_tf_1_5(flavour):
    if flavour != "keras":
        return False
    import tensorflow as tf
    return tf.__version__.startswith("1.5.")


def test_disabled_and_trainable_are_bit_identical_to_plain_keras(flavour, tmp_path_factory, request):
    if "theano" not in os.environ.get("KERAS_BACKEND", "") and _on_tf_1_5(flavour):
        request.applymarker(pytest.mark.xfail(strict=True, reason="TF 1.5: equal to ~1e-5 only (open)"))
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
            assert plain[key] == patched[key], key
    assert plain["frozen/signature"] == patched["frozen/signature"]
    assert plain["frozen/config"] == patched["frozen/config"]
