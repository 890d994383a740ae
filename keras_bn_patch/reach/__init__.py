"""Getting the patch into other processes: every way one is reached, in one room.

- ``children``: the Python processes this one starts (the start-up path, ``startup/``), and what
  ``status()`` says of them;
- ``site_switch``: every process of an environment, through one ``.pth`` line;
- ``launcher``: ``keras-bn-patch run``, a program patched without a line of it edited;
- ``engines``: workers started elsewhere (Ray, Spark, Dask): their one line each, and the
  warnings for a driver without it (public as ``keras_bn_patch.engines`` and
  ``keras_bn_patch.spark_daemon``).
"""
