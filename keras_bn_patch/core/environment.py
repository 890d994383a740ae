"""The environment variables this package reads or writes, by name: one place for each."""
import os

# "0" (or false, no, off): `import keras_bn_patch` installs nothing, here and in every process
# started from here, which inherits the variable.
PATCH = "KERAS_BN_PATCH"
# Where a patched process puts the start-up directory for the Python processes it starts.
PYTHONPATH = "PYTHONPATH"
# Set: Python reads no user site-packages (a user site switch would never run).
NO_USER_SITE = "PYTHONNOUSERSITE"
# Where `ray.init()` without an address connects.
RAY_ADDRESS = "RAY_ADDRESS"


def disables(environ=None):
    """Whether ``environ`` (this process's by default) sets ``KERAS_BN_PATCH`` to turn the patch off."""
    return (os.environ if environ is None else environ).get(PATCH, "1").strip().lower() in ("0", "false", "no", "off")


def patch_setting(environ=None):
    """``KERAS_BN_PATCH=value`` as set in ``environ`` (this process's by default), for messages."""
    return "%s=%s" % (PATCH, (os.environ if environ is None else environ).get(PATCH, ""))
