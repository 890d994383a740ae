"""A driver that trains in the workers of an engine, as a user's script outgrowing one process
does: the legacy fine-tuning flow (legacy_finetune.py) runs in 2 tasks, from a function defined
here in ``__main__`` (engines that pickle functions by value ship it to workers that never run
this file's top level).  Prints one JSON line per engine: {"engine": ..., "workers": [results]}.

usage: python engine_run.py FLAVOUR ENGINE[,ENGINE...] [--import] [--address ADDRESS] [--hook]
  --import    the first line of a patched script: import keras_bn_patch
  --address   the engine's cluster, started elsewhere (ray, dask: its address; spark: master URL)
  --hook      the one line per engine for such clusters (keras_bn_patch.engines)
"""
import sys

if "--import" in sys.argv:
    import keras_bn_patch  # noqa: F401

import json
import os
import tempfile

LEGACY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "legacy_finetune.py")
TASKS = 2


def train(flavour):
    """One worker's run of the flow: its gap, whether the statistics moved, and its process."""
    import runpy
    found = runpy.run_path(LEGACY)["finetune"](flavour)
    found["pid"] = os.getpid()
    return found


class FineTune(object):
    """A scikit-learn estimator whose fit() is the flow, as a user wraps a Keras model for
    GridSearchCV or cross_validate with n_jobs (a class in __main__: it travels by value)."""

    def __init__(self, flavour=None):
        self.flavour = flavour

    def get_params(self, deep=True):
        return {"flavour": self.flavour}

    def set_params(self, **params):
        self.flavour = params.get("flavour", self.flavour)
        return self

    def fit(self, x, y):
        self.found_ = train(self.flavour)
        return self

    def score(self, x, y):
        return -abs(self.found_["gap"])


def option(name):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


def multiprocessing_pool(method, flavour):
    import multiprocessing
    with multiprocessing.get_context(method).Pool(TASKS) as pool:
        return pool.map(train, [flavour] * TASKS)


def futures(flavour):
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(TASKS) as executor:
        return list(executor.map(train, [flavour] * TASKS))


def subprocess_child(flavour):
    import subprocess
    out = subprocess.run([sys.executable, LEGACY, flavour], stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout
    return [json.loads(out.strip().splitlines()[-1])]


def loky(flavour):
    from joblib import Parallel, delayed
    return Parallel(n_jobs=TASKS, backend="loky")(delayed(train)(flavour) for _ in range(TASKS))


def sklearn(flavour):
    from sklearn.model_selection import cross_validate
    import numpy as np
    folds = cross_validate(FineTune(flavour), np.zeros((TASKS * 2, 1)), np.zeros(TASKS * 2), cv=TASKS,
                           n_jobs=TASKS, return_estimator=True)
    return [estimator.found_ for estimator in folds["estimator"]]


def ray(flavour):
    import ray as ray_
    address = option("--address")
    # "local": a new local instance, never a cluster another program started on this machine
    options = {"address": address} if address else {"address": "local", "num_cpus": TASKS,
                                                    "include_dashboard": False}
    if "--hook" in sys.argv:
        import keras_bn_patch.engines
        options["runtime_env"] = {"worker_process_setup_hook": keras_bn_patch.engines.ray_worker_setup}
    ray_.init(log_to_driver=False, **options)
    try:
        remote = ray_.remote(num_cpus=1)(train)
        return ray_.get([remote.remote(flavour) for _ in range(TASKS)])
    finally:
        ray_.shutdown()


def spark(flavour):
    from pyspark.sql import SparkSession
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Spark's default is `python3`, another one here
    builder = SparkSession.builder.master(option("--address") or "local[%d]" % TASKS).appName("engine_run")
    builder = builder.config("spark.ui.enabled", "false")
    if "--hook" in sys.argv:
        import keras_bn_patch.engines
        builder = builder.config("spark.python.daemon.module", keras_bn_patch.engines.SPARK_DAEMON)
    session = builder.getOrCreate()
    try:
        return session.sparkContext.parallelize([flavour] * TASKS, TASKS).map(train).collect()
    finally:
        session.stop()


def dask(flavour):
    from distributed import Client, LocalCluster
    address = option("--address")
    cluster = None if address else LocalCluster(n_workers=TASKS, threads_per_worker=1, processes=True,
                                                dashboard_address=None, local_directory=tempfile.mkdtemp())
    client = Client(address or cluster)
    try:
        if "--hook" in sys.argv:
            import keras_bn_patch.engines
            keras_bn_patch.engines.dask(client)
        futures_ = [client.submit(train, flavour, pure=False) for _ in range(TASKS)]
        return client.gather(futures_)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


ENGINES = {"fork": lambda flavour: multiprocessing_pool("fork", flavour),
           "spawn": lambda flavour: multiprocessing_pool("spawn", flavour),
           "forkserver": lambda flavour: multiprocessing_pool("forkserver", flavour),
           "futures": futures, "subprocess": subprocess_child, "loky": loky, "sklearn": sklearn, "ray": ray,
           "spark": spark, "dask": dask}


if __name__ == "__main__":
    for engine in sys.argv[2].split(","):
        print(json.dumps({"engine": engine, "workers": ENGINES[engine](sys.argv[1])}), flush=True)
