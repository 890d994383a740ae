"""Metadata is in setup.cfg; the extras come from the tested stacks (compat/stacks.py: one place
for versions), imported from the repository's root, where pip and ``python -m build`` run this file.

No pyproject.toml, on purpose: with one, pip builds in an isolated environment, and on Python 3.6
with enum34 installed (TensorFlow 1.4 requires it) pip 21.3's isolated build fails before it
reads this file ("module 'enum' has no attribute 'IntFlag'": its subprocess puts site-packages,
and so enum34, before the standard library).  Without one, ``pip install`` from a clone works in
every tested stack; ``python -m build`` makes the sdist and wheel all the same.
"""
from setuptools import setup

from compat.stacks import EXTRAS

setup(extras_require=EXTRAS)
