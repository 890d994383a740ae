"""The ``keras_bn_patch`` logger, made on first use.

Importing ``logging`` would be a large share of the package's import time (benchmarks/speed.py's
``import_seconds`` and its target), and the logger is only needed when something goes wrong.
"""


def logger():
    import logging
    return logging.getLogger("keras_bn_patch")
