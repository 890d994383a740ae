"""Metadata is in setup.cfg; the extras come from the support table (one place for versions)."""
import importlib.util
import os

from setuptools import setup

_spec = importlib.util.spec_from_file_location(
    "support", os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_bn_patch", "core", "support.py"))
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)

setup(extras_require=support.EXTRAS)
