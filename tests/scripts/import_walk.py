"""Run one order of import / install / uninstall / enable / disable steps, checking after each.

usage: python import_walk.py SETUP_JSON STEP...

STEP is one of: keras, patch (``import keras_bn_patch``), install, uninstall,
enable, disable.  SETUP_JSON gives:
  keras     the code that imports this Keras
  targets   ["module:Class.attribute" or "module:function"]: slots the patch wraps (of a property,
            its getter)
  patched   whether installing wraps them (false where the flavour is native)
  flavour   a keras_api flavour name: at the end, a frozen BN layer built now must be
            held exactly when the patch is installed and enabled (or natively); null: no check

After every step: is_installed() and is_enabled() (installed and switched on) are what the steps say; every
target is wrapped exactly once when installed, and otherwise is the very object
Keras defined (first seen unwrapped, or as the wrapper's ``__wrapped__``).
Prints "OK" and the number of steps.  tests/test_imports.py and test_machinery.py run it,
each order in a fresh interpreter.
"""
import importlib
import json
import sys

import wrapt

setup, steps = json.loads(sys.argv[1]), sys.argv[2:]
state = {"keras": False, "patch": False, "installed": True, "enabled": True}
originals = {}


def slot(target):
    module, _, path = target.partition(":")
    owner = importlib.import_module(module)
    names = path.split(".")
    for name in names[:-1]:
        owner = getattr(owner, name)
    found = vars(owner)[names[-1]]
    return found.fget if isinstance(found, property) else found  # a property's getter is what is wrapped


def check(step):
    if state["patch"]:
        patch = sys.modules["keras_bn_patch"]
        assert patch.is_installed() is state["installed"], step
        assert patch.is_enabled() is (state["enabled"] and state["installed"]), step
        if not state["installed"]:
            assert patch.status() == {}, (step, patch.status())
    if not state["keras"]:
        return
    wrapped = setup["patched"] and state["installed"] and state["patch"]
    for target in setup["targets"]:
        current = slot(target)
        is_wrapper = isinstance(current, wrapt.FunctionWrapper)
        original = originals.setdefault(target, current.__wrapped__ if is_wrapper else current)
        assert is_wrapper is wrapped, (step, target, current)
        if is_wrapper:  # wrapped once, around what Keras defined
            assert current.__wrapped__ is original and not isinstance(original, wrapt.FunctionWrapper), (step, target)
        else:  # restored exactly
            assert current is original, (step, target)


def held():
    """Whether a frozen BN layer trains on its moving statistics (loss as in inference)."""
    import numpy as np  # here: the fake Keras walks stay fast without it
    from helpers import sgd
    from keras_bn_patch.tools import keras_api
    api = keras_api.load(setup["flavour"])
    layers = api.keras.layers
    inputs = layers.Input((4,))
    bn = api.bn()
    model = api.keras.models.Model(inputs, bn(inputs))
    bn.trainable = False
    model.compile(sgd(api, 0.0), "mse")
    x = (np.random.RandomState(0).normal(size=(8, 4)) * 3 + 5).astype("float32")
    y = np.zeros((8, 4), "float32")
    inference = float(np.ravel(model.test_on_batch(x, y))[0])
    return abs(float(np.ravel(model.train_on_batch(x, y))[0]) - inference) < 1e-5


for step in steps:
    if step == "keras":
        exec(setup["keras"])
    elif step == "patch":
        importlib.import_module("keras_bn_patch")  # installs, as `import keras_bn_patch` does
    else:
        assert state["patch"], "%s() before import keras_bn_patch" % step
        getattr(sys.modules["keras_bn_patch"], step)()
    if step in ("install", "uninstall"):
        state["installed"] = step == "install"
    elif step in ("enable", "disable"):
        state["enabled"] = step == "enable"
    else:
        state[step] = True
    check(step)

if setup["flavour"]:
    expected = not setup["patched"] or (state["installed"] and state["enabled"])
    assert held() is expected, ("frozen BN held", not expected, "after", steps)
print("OK", len(steps))
