"""keras-bn-patch: frozen BatchNormalization layers stay frozen in Keras training.

``import keras_bn_patch`` installs the fix (unless ``KERAS_BN_PATCH=0``): a BN
layer whose ``trainable`` is False, or that sits inside a model that is not
trainable, normalizes with its moving statistics in training too, and never
updates them.  Nothing else changes.
"""
import os

from ._install import install, is_installed, status, uninstall
from ._state import disable, disabled, enable, enabled, is_enabled

__version__ = "0.1.0"
__all__ = ["install", "uninstall", "is_installed", "enable", "disable", "is_enabled",
           "enabled", "disabled", "status"]

if os.environ.get("KERAS_BN_PATCH", "1").strip().lower() not in ("0", "false", "no", "off"):
    install()
