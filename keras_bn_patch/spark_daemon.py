"""``spark.python.daemon.module=keras_bn_patch.spark_daemon``: a Spark worker's Python daemon,
patched.  Spark starts it as ``python -m`` on each executor; the patch installs here (unless
``KERAS_BN_PATCH=0``), and every Python worker the daemon forks inherits it."""
import keras_bn_patch  # noqa: F401
from keras_bn_patch.reach.engines import run_spark_daemon

if __name__ == "__main__":
    run_spark_daemon()
