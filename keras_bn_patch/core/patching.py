"""Replace an attribute on the object that really defines it, and undo it.

One registry entry per (owner, attribute).  Patching is done on the class in
the MRO that defines the method, never on an alias or subclass, so V1/V2/Sync
classes and user subclasses calling ``super().call()`` all go through one
wrapper.  Patching twice is a no-op; ``restore_all`` only puts back a slot that
still holds our wrapper (someone who patched on top of us keeps theirs).
"""
import contextlib

import wrapt

from . import log

_patches = {}  # (owner, name) -> (original, wrapper)
_left_alone = set()  # packages (``keras``, ``tensorflow.python.keras``) found unsupported: never patched


def _owner(obj, name):
    for klass in getattr(obj, "__mro__", (obj,)):
        if name in vars(klass):
            return klass
    raise AttributeError("%r has no attribute %r to patch" % (obj, name))


def patch(obj, name, wrapper_function):
    """Wrap ``obj.name`` (class or module) with ``wrapper_function(wrapped, instance, args, kwargs)``."""
    owner = _owner(obj, name)
    key = (owner, name)
    if key in _patches:
        return owner
    original = vars(owner)[name]
    _replace(owner, name, original, wrapt.FunctionWrapper(original, wrapper_function))
    return owner


def patch_getter(obj, name, wrapper_function):
    """Wrap the getter of property ``obj.name`` with ``wrapper_function(getter, instance)``: a new
    property, whose getter is a wrapper of the original one, as ``patch`` makes them."""
    owner = _owner(obj, name)
    if (owner, name) in _patches:
        return owner
    original = vars(owner)[name]
    getter = wrapt.FunctionWrapper(original.fget, lambda wrapped, _, args, kwargs: wrapper_function(wrapped, args[0]))
    _replace(owner, name, original, property(getter, original.fset, original.fdel, original.__doc__))
    return owner


def _replace(owner, name, original, wrapper):
    setattr(owner, name, wrapper)
    _patches[(owner, name)] = (original, wrapper)


def _restore(keys):
    for owner, name in keys:
        original, wrapper = _patches.pop((owner, name))
        if vars(owner).get(name) is wrapper:
            setattr(owner, name, original)
        else:
            log.logger().warning("keras_bn_patch: %s.%s was replaced by someone else after we "
                                 "patched it; leaving it as it is", getattr(owner, "__name__", owner), name)


def restore_all():
    _restore(list(_patches))
    _left_alone.clear()


def leave_alone(package):
    """Put back what was patched on classes and modules of ``package`` (``a.b``), found
    unsupported, and patch nothing of it from now on (the Model hooks ask ``left_alone``)."""
    _left_alone.add(package)
    _restore([(owner, name) for owner, name in list(_patches)
              if (getattr(owner, "__module__", None) or getattr(owner, "__name__", "")).startswith(package + ".")])


def left_alone(module_name):
    """Whether ``module_name`` belongs to a package found unsupported."""
    return any(module_name.startswith(package + ".") for package in _left_alone)


@contextlib.contextmanager
def all_or_nothing():
    """Patches made in the block stay only if the block completes: an error undoes them all."""
    before = set(_patches)
    try:
        yield
    except BaseException:
        _restore([key for key in list(_patches) if key not in before])
        raise
