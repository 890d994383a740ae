"""The engines' side of reach: the one line per engine for workers started elsewhere (public as
``keras_bn_patch.engines`` and ``keras_bn_patch.spark_daemon``, whose docstrings are the user's
guide), and the driver-side watchers.

Never silent: while the patch is installed, a driver that connects to a Ray cluster or starts a
Spark application on a cluster that were started elsewhere, without that line, gets one
``RuntimeWarning`` naming the line (``WATCHERS``: post-import hooks of ``install()`` on ``ray``
and ``pyspark.context``, which only look at the call's arguments after it returned and never
make it fail).  A Dask client cannot be judged when it connects (the line comes after it):
there the line is documented.
"""
import os
import warnings

from ..core import environment, install as _install, log, patching
from . import children

SPARK_DAEMON = "keras_bn_patch.spark_daemon"
DASK_PLUGIN_NAME = "keras-bn-patch"


def ray_worker_setup():
    """Ray's ``worker_process_setup_hook``: Ray loads it by reference in each worker, which imports
    this package and so installs the patch there (unless ``KERAS_BN_PATCH=0``)."""


def run_spark_daemon():
    """``python -m keras_bn_patch.spark_daemon``: the patch installed (by this package's import),
    then Spark's own daemon, whose forked workers inherit it."""
    import runpy  # here, not at `import keras_bn_patch`: only the daemon needs it
    runpy.run_module("pyspark.daemon", run_name="__main__", alter_sys=True)


_warned = set()  # engines warned about in this process (once each)


def _warn_once(engine, message):
    if engine not in _warned:
        _warned.add(engine)
        log.warn(message, stacklevel=4)


def _watching():
    return _install.is_installed() and not environment.disables()


def _after_ray_init(wrapped, instance, args, kwargs):
    try:  # read before the call: Ray replaces the hook in the caller's dict by its exported name
        hook = (kwargs.get("runtime_env") or {}).get("worker_process_setup_hook")
    except Exception:
        hook = None
    result = wrapped(*args, **kwargs)
    try:
        address = (args[0] if args else kwargs.get("address")) or os.environ.get(environment.RAY_ADDRESS)
        if _watching() and address and address != "local" and hook is not ray_worker_setup:
            _warn_once("ray", "keras_bn_patch: the Ray cluster at %s was started elsewhere: its workers do not "
                       "start patched, and frozen BN layers trained there use batch statistics. Fix: ray.init(..., "
                       "runtime_env={'worker_process_setup_hook': keras_bn_patch.engines.ray_worker_setup}) with "
                       "keras-bn-patch installed in the workers' environment (or, there, `keras-bn-patch site "
                       "install` before the cluster starts)" % address)
    except Exception:  # a check of ours must never fail the user's call
        log.logger().debug("keras_bn_patch: could not check ray.init's arguments", exc_info=True)
    return result


def _after_spark_context_init(wrapped, context, args, kwargs):
    result = wrapped(*args, **kwargs)
    try:
        master = str(context.master)
        daemon = context.getConf().get("spark.python.daemon.module")
        if _watching() and not master.startswith("local") and daemon != SPARK_DAEMON:
            _warn_once("spark", "keras_bn_patch: Spark's workers at %s were started elsewhere: their Python workers "
                       "do not start patched, and frozen BN layers trained there use batch statistics. Fix: "
                       "spark.python.daemon.module=%s (SparkSession.builder.config(...)) with keras-bn-patch "
                       "installed in the workers' environment (or, there, `keras-bn-patch site install`)"
                       % (master, SPARK_DAEMON))
    except Exception:  # a check of ours must never fail the user's call
        log.logger().debug("keras_bn_patch: could not check the SparkContext", exc_info=True)
    return result


def _watch_ray(module):
    patching.patch(module, "init", _after_ray_init)


def _watch_spark(module):
    patching.patch(module.SparkContext, "__init__", _after_spark_context_init)


# The driver-side watchers: post-import hooks of ``install()``, on the modules they watch.
WATCHERS = (("ray", _watch_ray), ("pyspark.context", _watch_spark))


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
                      "leave %s unset there)" % (len(missing), ", ".join(missing), environment.PATCH),
                      RuntimeWarning, stacklevel=2)
    children.engine_reached("Dask: worker plugin %r on the cluster at %s (workers that join later too)"
                            % (DASK_PLUGIN_NAME, client.scheduler.address))
    return sorted(address for address, ok in found.items() if ok)
