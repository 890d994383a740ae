"""Versions and what differs with them: the bottom module every other one may import."""
import importlib
import re
import sys

# Where TensorFlow keeps its version while it is still importing, when the hooks run: TF 1 imports
# its Keras from ``tensorflow/__init__`` before setting ``__version__`` there (TF 1.15-2.1 from
# ``tensorflow_core``).  Read if imported already, never imported by us.
_TENSORFLOW_VERSIONS = ("tensorflow.python.framework.versions", "tensorflow_core.python.framework.versions")


def version_tuple(text):
    """'2.2.4' -> (2, 2, 4); '2.4.0-rc1' -> (2, 4, 0); anything unreadable -> ()."""
    return tuple(int(part) for part in re.findall(r"\d+", str(text).split("-")[0].split("+")[0])[:3])


def of(package):
    """``package``'s version as text, or "unknown"; read while it is still importing too."""
    module = sys.modules.get(package)
    found = getattr(module, "__version__", None)
    if found is None and module is not None and package == "tensorflow":
        found = next((sys.modules[name].__version__ for name in _TENSORFLOW_VERSIONS
                      if hasattr(sys.modules.get(name), "__version__")), None)
    elif found is None and module is not None:  # Keras 3 and tf_keras set it last, from src/version.py
        try:
            found = importlib.import_module(package + ".src.version").__version__
        except Exception:  # no such module: the version is unknown
            pass
    return str(found or "unknown")


def tf_v1(tf):
    """TensorFlow's 1.x API: ``tf.compat.v1`` where it exists (TF >= 1.13), else ``tf`` itself
    (None stays None: TensorFlow not imported)."""
    return getattr(getattr(tf, "compat", None), "v1", tf)
