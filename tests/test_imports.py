"""Import orders against the real Keras of this environment, each in a fresh interpreter.

tests/scripts/import_walk.py runs one order of the steps and checks after every step;
the walks below, together, take every step (install, uninstall, enable,
disable) from every state (installed or not x enabled or not) both before and
after Keras is imported, import Keras from each of those four states, and
import the patch before and after Keras.  test_machinery.py runs every order
of the six steps on a fake Keras, under wrapt 1.x and 2.x.
"""
import json

import pytest

from helpers import run_python, script

IMPORT = {"keras": "import keras", "tf.keras": "import tensorflow as tf; tf.keras.layers.Dense",
          "tf_keras": "import tf_keras", "keras3": "import keras"}
WALK = script("import_walk.py")
# From (installed, enabled): every one of the four steps from each of the four states, back
# to the start: a closed walk through all 16 (state, step) pairs.
EVERY_STEP_FROM_EVERY_STATE = ("install enable disable install disable uninstall uninstall disable enable "
                               "uninstall enable disable install enable uninstall install").split()
WALKS = {
    "keras_first": ["keras", "patch"] + EVERY_STEP_FROM_EVERY_STATE,
    "patch_first": ["patch"] + EVERY_STEP_FROM_EVERY_STATE + ["keras"],
    "keras_while_disabled": ["patch", "disable", "keras"],
    "keras_while_uninstalled": ["patch", "uninstall", "keras"],
    "keras_while_both": ["patch", "uninstall", "disable", "keras", "install", "enable"],
}


def walk_setup(api):
    """import_walk.py's setup for this flavour: every slot the patch wrapped in its packages
    here, and the BN class's ``call`` and ``Model.fit`` however it is patched."""
    from keras_bn_patch.core import patching as _patching

    def owner_of(cls, name):
        return next(klass for klass in cls.__mro__ if name in vars(klass))

    def target(owner, name):
        if isinstance(owner, type):
            return "%s:%s.%s" % (owner.__module__, owner.__qualname__, name)
        return "%s:%s" % (owner.__name__, name)

    packages = {cls.__module__.split(".")[0] for cls in (api.bn, api.keras.models.Model)}
    slots = {(owner_of(api.bn, "call"), "call"), (owner_of(api.keras.models.Model, "fit"), "fit")}
    slots.update(key for key in _patching._patches
                 if getattr(key[0], "__module__", getattr(key[0], "__name__", "")).split(".")[0] in packages)
    return {"keras": IMPORT[api.name], "targets": sorted(target(*slot) for slot in slots),
            "patched": api.name != "keras3", "flavour": api.name}


@pytest.mark.parametrize("order", sorted(WALKS))
def test_import_order(api, order):
    setup = walk_setup(api)
    assert len(setup["targets"]) >= 2
    out = run_python(WALK, json.dumps(setup), *WALKS[order]).stdout
    assert out.split()[-2:] == ["OK", str(len(WALKS[order]))], out
