"""The one line per engine for workers started elsewhere, which do not inherit this process's
environment (``children.py`` covers every worker started from here).  Each needs keras-bn-patch
installed in the workers' environment; the site switch (``keras-bn-patch site install`` in the
image) covers every engine at once.

- Ray (``ray start``): ``ray.init(address=..., runtime_env={"worker_process_setup_hook":
  keras_bn_patch.engines.ray_worker_setup})``; a worker without the package cannot load the
  hook, and Ray raises that error.
- Spark (a standalone or YARN worker): ``.config("spark.python.daemon.module", SPARK_DAEMON)``;
  a worker without the package cannot start its Python daemon, and the job fails saying so.
- Dask (``dask worker``): ``keras_bn_patch.engines.dask(client)``; workers without the package
  are named in one warning and keep running plain.
"""
import warnings

from . import children

SPARK_DAEMON = "keras_bn_patch.spark_daemon"
DASK_PLUGIN_NAME = "keras-bn-patch"


def ray_worker_setup():
    """Ray's ``worker_process_setup_hook``: Ray loads it by reference in each worker, which imports
    this package and so installs the patch there (unless ``KERAS_BN_PATCH=0``)."""


def dask(client):
    """Start the patch in every worker of ``client``'s cluster, and in workers that join later.
    Returns the addresses of the workers where it is installed; the others are named in one
    warning (keras-bn-patch missing there, or ``KERAS_BN_PATCH=0``)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    # Both defined here, so that they travel by value: a worker lacking the package can load them.
    class KerasBnPatch(WorkerPlugin):
        name = DASK_PLUGIN_NAME

        def setup(self, worker):
            import keras_bn_patch  # noqa: F401  (installs unless KERAS_BN_PATCH=0)

    def installed():
        import sys
        module = sys.modules.get("keras_bn_patch")
        return bool(module is not None and module.is_installed())

    register = getattr(client, "register_plugin", None) or client.register_worker_plugin
    try:
        register(KerasBnPatch(), name=DASK_PLUGIN_NAME)
    except ImportError:  # Dask raises the first worker's error: each worker is asked below
        pass
    found = client.run(installed)
    missing = sorted(address for address, ok in found.items() if not ok)
    if missing:
        warnings.warn("keras_bn_patch: %d Dask worker(s) run without the patch and train frozen BN layers on "
                      "batch statistics: %s. Fix: install keras-bn-patch in the workers' environment (and "
                      "leave KERAS_BN_PATCH unset there)" % (len(missing), ", ".join(missing)),
                      RuntimeWarning, stacklevel=2)
    children.engine_reached("Dask: worker plugin %r on the cluster at %s (workers that join later too)"
                            % (DASK_PLUGIN_NAME, client.scheduler.address))
    return sorted(address for address, ok in found.items() if ok)
