# On PYTHONPATH in the processes a patched program starts (keras_bn_patch/reach/children.py).  This
# directory leaves sys.path at once; keras_bn_patch_startup comes from this interpreter's own
# environment, so a process without keras-bn-patch starts untouched.  Then the sitecustomize
# the process would have run anyway runs.  Plain syntax: any interpreter may read this file.
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != _here]
try:
    import keras_bn_patch_startup  # noqa: F401
except Exception:
    pass

try:
    import importlib.machinery
    _spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if _spec is not None:
        import importlib.util
        _module = importlib.util.module_from_spec(_spec)
        sys.modules["sitecustomize"] = _module
        _spec.loader.exec_module(_module)
except Exception:
    pass
