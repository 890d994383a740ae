"""MultiWorkerMirroredStrategy with 2 worker processes on localhost (``TF_CONFIG``), in the TF >= 2.4
flavours with the V1 class and tf_keras: the frozen layer held on every worker (fit loss at
learning rate 0 == evaluate loss, statistics bit-identical), every worker ends with the same
weights, bit for bit, and those equal one worker's trained on the same global batches (to float
rounding: the held layer normalises each half-batch as it does the whole; batch statistics would not)."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from helpers import TESTS, script, with_test_path

from keras_bn_patch.core.versions import version_tuple


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def test_two_workers_hold_the_frozen_layer_and_agree(api):
    tf = api.name in ("tf.keras", "tf_keras") and __import__("tensorflow")  # Theano has no TensorFlow
    if not tf or version_tuple(tf.__version__) < (2, 4):
        pytest.skip("%s %s: MultiWorkerMirroredStrategy is tested from TF 2.4, V1 class and tf_keras" % (
            api.name, api.version))
    two = run_workers(api, 2)
    for result in two:
        assert abs(result["fit"] - result["evaluate"]) <= 1e-5 * max(1.0, abs(result["evaluate"])), result
        assert result["statistics_kept"], result
    first, second = ([np.array(w) for w in result["weights"]] for result in two)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, [np.array(w) for w in two[0]["start"]]))  # it trained
    alone, = run_workers(api, 1)
    assert abs(alone["fit"] - two[0]["fit"]) <= 1e-6 * max(1.0, abs(alone["fit"])), (alone["fit"], two[0]["fit"])
    for a, b in zip(first, alone["weights"]):
        np.testing.assert_allclose(a, np.array(b), rtol=0, atol=1e-6)


def run_workers(api, count):
    """The results of ``count`` worker processes of one cluster on localhost."""
    ports = [free_port() for _ in range(count)]
    workers = [subprocess.Popen([sys.executable, script("multiworker_run.py"), api.name, str(index)] + ports,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                cwd=TESTS, env=with_test_path(dict(os.environ)))
               for index in range(count)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
