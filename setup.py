"""Metadata is in setup.cfg; the version is the package's own (``__version__``); the extras come
from the tested stacks (compat/stacks.py: one place for versions), imported from the repository's
root, where pip and ``python -m build`` run this file.

No pyproject.toml, on purpose: with one, pip builds in an isolated environment, and on Python 3.6
with enum34 installed (TensorFlow 1.4 requires it) pip 21.3's isolated build fails before it
reads this file ("module 'enum' has no attribute 'IntFlag'": its subprocess puts site-packages,
and so enum34, before the standard library).  Without one, ``pip install`` from a clone works in
every tested stack; ``python -m build`` makes the sdist and wheel all the same.
"""
import re

from setuptools import setup

from compat.stacks import EXTRAS


def version():
    """The one version source, ``keras_bn_patch.__version__``, read as text: importing the package
    would install the patch and needs its dependencies, which a build may not have yet."""
    with open("keras_bn_patch/__init__.py") as handle:
        return re.search(r'^__version__ = "([^"]+)"', handle.read(), re.M).group(1)


setup(version=version(), extras_require=EXTRAS)
