"""Everything the patch does not fix is bit-identical to Keras in a process that never imported it."""
import os

import numpy as np

from conftest import TESTS, run_python


def _dump(flavour, mode, tmp_path):
    path = str(tmp_path / (mode + ".npz"))
    run_python(os.path.join(TESTS, "plain_run.py"), flavour, mode, path)
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_disabled_and_trainable_are_bit_identical_to_plain_keras(flavour, tmp_path):
    plain = _dump(flavour, "plain", tmp_path)
    patched = _dump(flavour, "patched", tmp_path)
    assert sorted(plain) == sorted(patched)
    different = [key for key in plain if not np.array_equal(plain[key], patched[key])]
    assert different == [], "differs from plain Keras: %s" % different
    # The frozen layer really was frozen in that model (so the comparison covers it).
    assert any("frozen/weight" in key for key in plain)
