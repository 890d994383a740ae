"""The ``keras_bn_patch`` logger, made on first use.

Importing ``logging`` would be a large share of the package's import time (benchmarks/speed.py's
``import_seconds`` and its target), and the logger is only needed when something goes wrong.
"""


def logger():
    import logging
    return logging.getLogger("keras_bn_patch")


def warn(message, stacklevel=1):
    """Say ``message`` once, as a RuntimeWarning (shown on stderr, filterable like any warning),
    and in the ``keras_bn_patch`` logger when logging is configured: without a handler, logging's
    last-resort handler would print it to stderr a second time."""
    import warnings
    found = logger()
    if found.hasHandlers():
        found.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)
