"""The ``keras_bn_patch`` logger, made on first use.

Importing ``logging`` costs about 8 ms, a sixth of the package's import-time
budget, and the logger is only needed when something goes wrong.
"""


def logger():
    import logging
    return logging.getLogger("keras_bn_patch")
