"""The command line: ``main.py`` (``keras-bn-patch`` and ``python -m keras_bn_patch``: run, site,
status, demo, diagnose, recalibrate) and ``demo.py`` (the frozen-BN trap and its fix)."""
