"""Metadata is in setup.cfg; the extras come from the support table (one place for versions).

No pyproject.toml, on purpose: with one, pip builds in an isolated environment, and on Python 3.6
with enum34 installed (TensorFlow 1.4 requires it) pip 21.3's isolated build fails before it
reads this file ("module 'enum' has no attribute 'IntFlag'": its subprocess puts site-packages,
and so enum34, before the standard library).  Without one, ``pip install`` from a clone works in
every tested stack; ``python -m build`` makes the sdist and wheel all the same.
"""
import importlib.util
import os

from setuptools import setup

_spec = importlib.util.spec_from_file_location(
    "support", os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_bn_patch", "core", "support.py"))
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)

setup(extras_require=support.EXTRAS)
