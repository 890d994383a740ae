"""install()/uninstall(): post-import hooks that patch each Keras flavour once it is imported.

We never import TensorFlow or Keras ourselves.  A hook that fails logs on the
``keras_bn_patch`` logger, leaves that Keras untouched, and shows up in
``status()``; it never raises into the user's ``import``.
"""
import importlib
import sys
import threading
import warnings

import wrapt

from . import log, patching, support, views
from .flavours import keras2, tf_keras
from .versions import version_tuple

_lock = threading.RLock()
_installed = False
_hooks_registered = False
_status = {}  # label -> {"version_of": package, "state": text or callable giving it}
_warned = set()
_left_alone = set()  # packages (``keras``, ``tensorflow.python.keras``) found unsupported: untouched


def _leave_alone(package):
    """An unsupported Keras stays exactly as it was: its Model hooks too, before or after."""
    _left_alone.add(package)
    patching.restore_under(package)
    for owner in [owner for owner in views.bn_classes if owner.__module__.startswith(package + ".")]:
        del views.bn_classes[owner]


def _record(label, version_of, state, package=None):
    _status[label] = {"version_of": version_of, "state": state}
    if package is not None and isinstance(state, str) and state.startswith("unsupported"):
        _leave_alone(package)
    if isinstance(state, str) and state.startswith("unsupported") and label not in _warned:
        _warned.add(label)
        version = _version(version_of)  # unknown while the package is still being imported
        message = "keras_bn_patch: %s%s is %s; it is left untouched" % (
            label, "" if version == "unknown" else " " + version, state)
        log.logger().warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)


def _version(package):
    module = sys.modules.get(package)
    version = getattr(module, "__version__", None)
    if version is None and module is not None:  # still importing: Keras 3 sets it last, from src/version.py
        try:
            version = importlib.import_module(package + ".src.version").__version__
        except Exception:  # no such module: the version is unknown
            pass
    return str(version or "unknown")


def _guarded(label, version_of, function):
    """Run a hook body all or nothing; any error is logged once and reported, never raised."""
    def hook(module):
        if not _installed:
            return
        with _lock:
            classes = set(views.bn_classes)
            try:
                with patching.all_or_nothing():  # a hook that fails partway leaves Keras as it was
                    function(module)
            except Exception as error:  # a hook must never break the user's import
                for added in set(views.bn_classes) - classes:
                    del views.bn_classes[added]
                log.logger().exception("keras_bn_patch: could not patch %s", module.__name__)
                _record(label, version_of, "unsupported: error while patching %s: %r"
                        % (module.__name__, error))
    return hook


def _patch_models(module):
    model = getattr(module, "Model", None)
    if model is None or any(module.__name__.startswith(package + ".") for package in _left_alone):
        return
    patching.patch(model, "compile", views.on_compile)
    for name in views.ENTRY_POINTS:
        if hasattr(model, name):
            patching.patch(model, name, views.on_entry)


def _tf_keras_hook(family):
    flavour = tf_keras.TfKerasFlavour(family)

    def patch_bn(module):
        names = [name for name in support.TF_KERAS_BN_CLASSES if hasattr(module, name)]
        one_class, stop = support.TF_KERAS_ONE_CLASS
        if not names and family.version_of == "tensorflow" and \
                support.flavour("tf.keras").first <= _tensorflow_version() < stop:
            names = [one_class]
            flavour.tags_learning_phase = True
        if not names:
            keras3 = support.flavour("keras3")
            if family.version_of == keras3.package and version_tuple(_version(keras3.package)) >= \
                    keras3.native_from:  # Keras 3: `call` checks `training and self.trainable` itself
                _record(keras3.name, keras3.package, "native")
            else:
                _record(family.label, family.version_of, "unsupported: %s has no %s to hook (a BatchNormalization "
                        "this package does not know; supported: %s)" % (
                            module.__name__, " or ".join(support.TF_KERAS_BN_CLASSES),
                            support.flavour(family.label).what), package=family.backend_module.rsplit(".", 1)[0])
            return
        owner = patching.patch(getattr(module, names[0]), "call", tf_keras.make_bn_call(flavour))
        views.bn_classes[owner] = flavour
        tf_keras.quiet_autograph_notice()
        _record(family.label, family.version_of, flavour.state)  # known only once TF is imported

    return _guarded(family.label, family.version_of, patch_bn)


def _tensorflow_version():
    """TensorFlow's version, known while ``tensorflow`` itself is still importing (TF 1 imports
    its Keras from ``tensorflow/__init__`` before setting ``__version__`` there)."""
    versions = sys.modules.get("tensorflow.python.framework.versions")
    return version_tuple(getattr(versions, "__version__", "") or _version("tensorflow"))


def _patch_keras2(keras):
    version = version_tuple(getattr(keras, "__version__", ""))
    standalone = support.flavour("keras")
    if version >= standalone.stop:
        return  # keras 2.4+ is tf.keras underneath (patched by the tf.keras hooks); Keras 3: native
    if version < standalone.first:
        _record("keras", "keras", "unsupported: keras %s has another BatchNormalization (supported: %s)"
                % (keras.__version__, standalone.what), package="keras")
        return
    module_name, class_name = support.KERAS2_BN
    __import__(module_name)
    backend = sys.modules[support.KERAS2_BACKEND]
    owner = patching.patch(getattr(sys.modules[module_name], class_name), "call", keras2.bn_call)
    views.bn_classes[owner] = keras2.FLAVOUR
    patching.patch(backend, "normalize_batch_in_training", keras2.normalize_batch_in_training)
    if version < support.KERAS2_UPDATES_FROZEN_STATS_BEFORE:
        patching.patch(backend, "moving_average_update", keras2.moving_average_update)
    _record("keras", "keras", "patched")


def _patch_saved_model_save(module):
    if hasattr(module, "save"):
        patching.patch(module, "save", views.on_saved_model_save)


def _check_tensorflow(tf):
    """TF older than any tf.keras the hooks know: say so, rather than nothing."""
    version = version_tuple(getattr(tf, "__version__", ""))
    if version and version < support.flavour("tf.keras").first:
        _record("tf.keras", "tensorflow", "unsupported: tf.keras of TensorFlow %s predates the "
                "BatchNormalization this package fixes (supported: %s)" % (tf.__version__,
                                                                          support.flavour("tf.keras").what),
                package="tensorflow.python.keras")


def _hooks():
    hooks = [("tensorflow", _guarded("tf.keras", "tensorflow", _check_tensorflow))]
    hooks += [(family.bn_module, _tf_keras_hook(family)) for family in support.TF_KERAS_FAMILIES]
    hooks.append((support.KERAS2_PACKAGE, _guarded("keras", "keras", _patch_keras2)))
    hooks += [(name, _guarded(name, name.split(".")[0], _patch_models))
              for name in support.MODEL_MODULES]
    hooks += [(name, _guarded("tf.keras", name.split(".")[0], _patch_saved_model_save))
              for name in support.KERAS_SAVED_MODEL_SAVE]
    return hooks


def install():
    """Patch every Keras flavour imported now or later.  A second call does nothing."""
    global _installed, _hooks_registered
    with _lock:
        if _installed:
            return
        _installed = True
        if not _hooks_registered:
            _hooks_registered = True
            for name, hook in _hooks():  # wrapt runs a hook at once if its module is imported
                wrapt.register_post_import_hook(hook, name)
        else:
            for name, hook in _hooks():
                if name in sys.modules:
                    hook(sys.modules[name])


def uninstall():
    """Put back everything we replaced; graphs built meanwhile behave as plain Keras."""
    global _installed
    with _lock:
        if not _installed:
            return
        _installed = False
        views.release_all()
        patching.restore_all()
        views.bn_classes.clear()
        _status.clear()
        _left_alone.clear()
        keras2.FLAVOUR.failed = None  # a new install tries again (tf.keras flavours are made anew)


def is_installed():
    return _installed


def status():
    """{flavour: {"version": ..., "state": "patched" | "native" | "unsupported: why"}}, and, where
    frozen layers of a model being trained were built before the patch (so are not held),
    "not_held": ["model: layer", ...]."""
    with _lock:
        report = {label: {"version": _version(entry["version_of"]),
                          "state": entry["state"]() if callable(entry["state"]) else entry["state"]}
                  for label, entry in _status.items()}
        for flavour in set(views.bn_classes.values()):
            if flavour.failed is not None and flavour.label in report:
                report[flavour.label]["state"] = "unsupported: " + flavour.failed
        for label, layers in views.not_held.items():
            if label in report:
                report[label]["not_held"] = list(layers)
        return report
