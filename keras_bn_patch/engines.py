"""The one line per engine for workers started elsewhere, which do not inherit this process's
environment (those started from a patched process start patched by themselves).  Each needs keras-bn-patch
installed in the workers' environment; the site switch (``keras-bn-patch site install`` in the
image) covers every engine at once.

- Ray (``ray start``): ``ray.init(address=..., runtime_env={"worker_process_setup_hook":
  keras_bn_patch.engines.ray_worker_setup})``; a worker without the package cannot load the
  hook, and Ray raises that error.
- Spark (a standalone or YARN worker): ``.config("spark.python.daemon.module", SPARK_DAEMON)``;
  a worker without the package cannot start its Python daemon, and the job fails saying so.
- Dask (``dask worker``): ``keras_bn_patch.engines.dask(client)``; workers without the package
  are named in one warning and keep running plain.

A driver without that line, on a cluster started elsewhere, gets one ``RuntimeWarning`` naming
it (Ray, Spark).
"""
from .reach.engines import SPARK_DAEMON, dask, ray_worker_setup

__all__ = ["SPARK_DAEMON", "dask", "ray_worker_setup"]
