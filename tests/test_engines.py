"""Training in the workers of an engine (tests/scripts/engine_run.py: the legacy fine-tuning flow
in 2 tasks, from a function in the driver's ``__main__``).  Engines started from the driver
(multiprocessing's three start methods, concurrent.futures, subprocess, joblib's loky, a local
Ray instance, Spark ``local[2]``, a Dask ``LocalCluster``) are reached by the import line, the
launcher and the site switch; clusters started elsewhere by the one line per engine
(keras_bn_patch.engines).  Every worker: training-mode loss == inference loss at lr 0 and the
frozen statistics unmoved; the plain trap where KERAS_BN_PATCH=0 turns the patch off.

Runs where engines are installed (conftest.ENGINES; nox installs them in two sessions).
"""
import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import ENGINES, FLAVOURS
from helpers import TESTS, plain_environment, run_python, script

ENGINE_RUN = script("engine_run.py")
STDLIB = ["fork", "spawn", "forkserver", "futures", "subprocess"]
LOCAL = STDLIB + ENGINES
# The launcher and the site switch reach a worker as the import line does, but for how the
# driver's __main__ and a new interpreter start: each runs on the engines where that differs.
# The launcher: engines whose workers rebuild the driver's __main__ (a fork inherits it, a
# subprocess runs its own script, scikit-learn's jobs are loky's).
REBUILD_MAIN = [name for name in LOCAL if name in ("spawn", "forkserver", "loky", "ray", "spark", "dask")]
# The site switch: engines whose workers are new interpreters, of each kind of launcher (a fork
# is the driver, patched by the switch as the import line patches it).
NEW_INTERPRETER = [name for name in LOCAL if name in ("spawn", "subprocess", "ray", "spark", "dask")]
FLAVOUR = FLAVOURS[0] if FLAVOURS else None  # Keras 2.3.1's keras, TF 2.15's tf.keras (V1 class)


@pytest.fixture(autouse=True)
def one_engine_test_on_the_machine_at_a_time():
    """Two Ray instances on one machine (CI runs two test sessions at once, both with engines)
    hand their workers ports from the same default range (10002-19999), each unaware of the
    other's, and a worker dies on a port the other took ("Failed to start the grpc server"):
    so the engine tests of every process on this machine take turns."""
    with open(os.path.join(tempfile.gettempdir(), "keras-bn-patch-engine-tests.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # the lock goes with the file's closing


def engine_results(*args, env=None):
    process = run_python(*args, env=dict(TF_CPP_MIN_LOG_LEVEL="2", **(env or {})), check=False)
    assert process.returncode == 0, process.stderr[-4000:]
    found = {}
    for line in process.stdout.splitlines():
        if line.startswith('{"engine"'):
            entry = json.loads(line)
            found[entry["engine"]] = entry["workers"]
    return found, process.stderr


def held(worker):
    return worker["patch_imported"] and abs(worker["gap"]) < 1e-5 and not worker["moved"]


def trapped(worker):
    return not worker["patch_imported"] and abs(worker["gap"]) > 0.1


def assert_every_worker(found, engines, predicate):
    assert sorted(found) == sorted(engines), found
    for engine, workers in found.items():
        assert len(workers) == (1 if engine == "subprocess" else 2), (engine, workers)
        assert all(predicate(worker) for worker in workers), (engine, workers)


STARTED_ELSEWHERE = "started elsewhere"  # the driver's warning about a Ray or Spark cluster


def test_the_import_line_reaches_every_engine_started_from_the_driver():
    found, stderr = engine_results(ENGINE_RUN, FLAVOUR, ",".join(LOCAL), "--import")
    assert_every_worker(found, LOCAL, held)
    assert STARTED_ELSEWHERE not in stderr  # engines started from here need no line


def test_the_launcher_reaches_the_engines_that_rebuild_main():
    found, _ = engine_results("-m", "keras_bn_patch", "run", ENGINE_RUN, FLAVOUR, ",".join(REBUILD_MAIN))
    assert_every_worker(found, REBUILD_MAIN, held)


def test_the_site_switch_reaches_the_engines_that_start_new_interpreters():
    run_python("-m", "keras_bn_patch", "site", "install")
    try:
        found, _ = engine_results(ENGINE_RUN, FLAVOUR, ",".join(NEW_INTERPRETER))
    finally:
        run_python("-m", "keras_bn_patch", "site", "uninstall")
    assert_every_worker(found, NEW_INTERPRETER, held)


def test_keras_bn_patch_0_wins_in_every_engine():
    """The driver imports the patch and every worker inherits KERAS_BN_PATCH=0: each shows the
    trap (a gap over 0.1), which is also this flow's proof that it can show it."""
    found, _ = engine_results(ENGINE_RUN, FLAVOUR, ",".join(LOCAL), "--import", env={"KERAS_BN_PATCH": "0"})
    for workers in found.values():
        for worker in workers:
            worker["patch_imported"] = False  # imported by the driver's line, installed nowhere: the gap says so
    assert_every_worker(found, LOCAL, trapped)


# ---------------------------------------------------------------- clusters started elsewhere
def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, what, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError("timed out waiting for " + what)


def listening(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Services(object):
    """Processes of a cluster started as an operator would, not from the driver: a plain
    environment, logs in files, stopped at the end of the test."""

    def __init__(self, directory):
        self.directory, self.processes = directory, []

    def start(self, name, command, env=None):
        log = open(os.path.join(str(self.directory), name + ".log"), "w")
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=TESTS,
                                               env=plain_environment(**(env or {})), start_new_session=True))
        return log.name

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)


@pytest.fixture
def services(tmp_path):
    started = Services(tmp_path)
    yield started
    started.stop()


def tool(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def start_ray(services):
    """A head node in the foreground (--block), in its own process group: stopping it stops this
    cluster only (``ray stop`` would stop every Ray of the machine, another test session's too)."""
    port = free_port()
    services.start("ray-head", [tool("ray"), "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
                                "--include-dashboard=false", "--disable-usage-stats"])
    wait_for(lambda: listening(port), "the Ray head node")
    return "127.0.0.1:%d" % port


def start_spark(services):
    import pyspark
    home = os.path.dirname(pyspark.__file__)
    port = free_port()
    env = {"SPARK_HOME": home, "SPARK_LOCAL_IP": "127.0.0.1"}
    spark_class = os.path.join(home, "bin", "spark-class")
    services.start("master", [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                              "--port", str(port), "--webui-port", str(free_port())], env)
    wait_for(lambda: listening(port), "the Spark master")
    log = services.start("worker", [spark_class, "org.apache.spark.deploy.worker.Worker", "spark://127.0.0.1:%d" % port,
                                    "--cores", "2", "--memory", "2g", "--host", "127.0.0.1",
                                    "--webui-port", str(free_port())], env)
    wait_for(lambda: "Successfully registered with master" in open(log).read(), "the Spark worker")
    return "spark://127.0.0.1:%d" % port


def start_dask(services, env=None, workers=2, port=None):
    if port is None:
        port = free_port()
        services.start("scheduler", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                     "--port", str(port), "--dashboard-address", ":0"])
        wait_for(lambda: listening(port), "the Dask scheduler")
    address = "tcp://127.0.0.1:%d" % port
    services.start("workers-%d" % len(services.processes), [
        sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", str(workers), "--nthreads", "1",
        "--host", "127.0.0.1", "--dashboard-address", ":0", "--local-directory", str(services.directory)], env)
    return address, port


CLUSTERS = {"ray": start_ray, "spark": start_spark, "dask": start_dask}


@pytest.mark.parametrize("engine", [name for name in ENGINES if name in CLUSTERS])
def test_a_cluster_started_elsewhere_takes_the_one_line(engine, services):
    address = CLUSTERS[engine](services)
    if engine == "dask":
        address = address[0]
        from distributed import Client
        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
    found, stderr = engine_results(ENGINE_RUN, FLAVOUR, engine, "--import", "--address", address)
    assert_every_worker(found, [engine], trapped)  # the import line does not reach them ...
    if engine != "dask":  # ... and the driver says so (a Dask client is judged by the docs: see engines.py)
        warned = [line for line in stderr.splitlines() if STARTED_ELSEWHERE in line and "RuntimeWarning" in line]
        assert len(warned) == 1 and "Fix: " in warned[0] and "keras_bn_patch." in warned[0], stderr[-3000:]
    found, stderr = engine_results(ENGINE_RUN, FLAVOUR, engine, "--import", "--address", address, "--hook")
    assert_every_worker(found, [engine], held)
    assert STARTED_ELSEWHERE not in stderr


@pytest.mark.parametrize("engine", [name for name in ENGINES if name in CLUSTERS])
def test_the_site_switch_reaches_a_cluster_started_elsewhere(engine, services):
    """The recipe for images and shared clusters: the switch installed in the workers' environment
    before the cluster starts; the driver is a plain script, with no line of ours."""
    run_python("-m", "keras_bn_patch", "site", "install")
    try:
        address = CLUSTERS[engine](services)
        if engine == "dask":
            address = address[0]
        found, _ = engine_results(ENGINE_RUN, FLAVOUR, engine, "--address", address)
    finally:
        run_python("-m", "keras_bn_patch", "site", "uninstall")
    assert_every_worker(found, [engine], held)


@pytest.mark.parametrize("engine", [name for name in ENGINES if name == "dask"])
def test_dask_names_the_workers_that_lack_the_package(engine, services, tmp_path):
    """A worker whose environment lacks keras-bn-patch: here the package cannot be imported there
    (a stand-in module that fails as a missing one does)."""
    lacking = tmp_path / "lacking" / "keras_bn_patch"
    lacking.mkdir(parents=True)
    (lacking / "__init__.py").write_text("raise ImportError('No module named keras_bn_patch')\n")
    address, port = start_dask(services, workers=1)
    start_dask(services, env={"PYTHONPATH": str(lacking.parent)}, workers=1, port=port)
    code = ("import warnings, json, keras_bn_patch, keras_bn_patch.engines\n"
            "from distributed import Client\n"
            "client = Client(%r); client.wait_for_workers(2, timeout=120)\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    reached = keras_bn_patch.engines.dask(client)\n"
            "missing = sorted(set(client.scheduler_info()['workers']) - set(reached))\n"
            "print(json.dumps({'reached': reached, 'missing': missing, 'warnings': [str(w.message) for w in caught],\n"
            "                  'processes': keras_bn_patch.status()['processes']['reach']}))\n" % address)
    found = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    assert len(found["reached"]) == 1 and len(found["missing"]) == 1, found
    messages = [message for message in found["warnings"] if "Dask worker(s) run without the patch" in message]
    assert len(messages) == 1 and found["missing"][0] in messages[0], found
    assert any(line.startswith("Dask: worker plugin") for line in found["processes"]), found
