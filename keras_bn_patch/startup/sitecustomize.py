# Put on PYTHONPATH by `keras-bn-patch run`: every Python process the program starts begins
# patched (keras_bn_patch_startup), then runs the sitecustomize it would have run anyway.
import os
import sys

try:
    import keras_bn_patch_startup  # noqa: F401
except Exception:
    pass

_here = os.path.dirname(os.path.abspath(__file__))
try:
    import importlib.machinery
    import importlib.util
    _path = [entry for entry in sys.path if os.path.abspath(entry or ".") != _here]
    _spec = importlib.machinery.PathFinder.find_spec("sitecustomize", _path)
    if _spec is not None:
        _module = importlib.util.module_from_spec(_spec)
        sys.modules["sitecustomize"] = _module
        _spec.loader.exec_module(_module)
except Exception:
    pass
