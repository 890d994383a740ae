"""Start this interpreter patched, at no cost until Keras is imported.

Imported by the ``.pth`` line of ``keras-bn-patch site install``, by the ``sitecustomize`` that a
patched process puts on ``PYTHONPATH`` for the processes it starts (``keras_bn_patch/reach/children.py``).  It
only adds a finder to ``sys.meta_path``; the first time ``tensorflow``, ``keras`` or
``tf_keras`` is imported, it imports ``keras_bn_patch`` (which installs the patch, unless
``KERAS_BN_PATCH=0``) and lets that import go on through the patch's post-import hooks.
A top-level module, not part of the package: importing the package costs far more
(benchmarks/speed.py measures both: ``import_seconds``, ``startup_pth_seconds``).
"""
import sys

TRIGGERS = ("tensorflow", "keras", "tf_keras")


class _Finder(object):
    """Inert after its first trigger: the patch's own hooks take over from there."""

    fired = False

    def find_spec(self, name, path=None, target=None):
        if self.fired or name not in TRIGGERS:
            return None
        self.fired = True
        try:
            import keras_bn_patch  # noqa: F401  (installs unless KERAS_BN_PATCH=0)
            import importlib.util
            # Found again now that the patch's post-import hooks are registered, so that
            # they see this very import (they register a finder of their own).
            return importlib.util.find_spec(name)
        except Exception:  # start-up must never fail: without the patch, Keras runs plain
            return None


def register():
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


register()
