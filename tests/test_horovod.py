"""Horovod with 2 ranks on localhost (``mpirun -np 2``), real MPI: ``horovod.keras`` for standalone
Keras and ``horovod.tensorflow.keras`` for tf.keras (the V1 class in TF 2).  On every rank the
frozen layer is held (fit loss at learning rate 0 == evaluate loss on its shard, statistics
bit-identical), the ranks end with the same weights, bit for bit, and those equal one rank's trained
on the same global batches (to float rounding: batch statistics of half a batch would not).

Horovod is built and installed in the sessions of HOROVOD (noxfile.py), which set
KBP_EXPECT_HOROVOD=1: there a missing Horovod or mpirun fails; elsewhere this test is skipped.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from helpers import TESTS, script, with_test_path


def test_two_ranks_hold_the_frozen_layer_and_agree(api, tmp_path):
    if os.environ.get("KBP_EXPECT_HOROVOD") != "1" or api.name not in ("keras", "tf.keras"):
        pytest.skip("Horovod is installed in the sessions noxfile.py's HOROVOD names, for keras and tf.keras")
    assert shutil.which("mpirun"), "mpirun not found: apt-get install openmpi-bin libopenmpi-dev"
    two = run_ranks(api, 2, tmp_path / "two")
    for result in two:
        assert result["fit"] == pytest.approx(result["evaluate"], rel=1e-6), result
        assert result["statistics_kept"], result
    first, second = ([np.array(w) for w in result["weights"]] for result in two)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, np.array(b)) for a, b in zip(first, two[0]["start"]))  # it trained
    alone, = run_ranks(api, 1, tmp_path / "one")
    for a, b in zip(first, alone["weights"]):
        np.testing.assert_allclose(a, np.array(b), rtol=0, atol=1e-6)


def run_ranks(api, count, out_dir):
    """The results of ``count`` Horovod ranks of one ``mpirun`` on localhost."""
    out_dir.mkdir()
    command = ["mpirun", "--allow-run-as-root", "-np", str(count), sys.executable, script("horovod_run.py"),
               api.name, str(out_dir)]
    process = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                             cwd=TESTS, env=with_test_path(dict(os.environ)), timeout=600)
    assert process.returncode == 0, process.stdout[-4000:]
    return [json.loads((out_dir / ("rank-%d.json" % rank)).read_text()) for rank in range(count)]
