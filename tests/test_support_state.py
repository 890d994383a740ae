"""A Keras this package cannot fix is reported ``unsupported: <why>`` with one warning, and left
exactly as it was; never guessed ``native`` (a false all-clear while the trap is there).

Runs where the stack lists such a flavour (``KBP_EXPECT_UNSUPPORTED``, from the support table):
each label in a fresh interpreter, importing Keras as a script would.
"""
import json
import os

import pytest

from helpers import run_python

UNSUPPORTED = [label for label in os.environ.get("KBP_EXPECT_UNSUPPORTED", "").split(",") if label]
IMPORT = {"keras": "import keras", "tf.keras": "import tensorflow as tf; tf.keras.layers.BatchNormalization"}

CHECK = """
import json, warnings, wrapt
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import keras_bn_patch
    %s
from keras_bn_patch.core import patching, registry
print(json.dumps({
    "status": keras_bn_patch.status(),
    "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)
                 and "keras_bn_patch" in str(w.message)],
    "patched": sorted("%%s.%%s" %% (getattr(owner, "__name__", owner), name) for owner, name in patching._patches),
    "bn_classes": len(registry.classes())}))
"""


def check_unsupported(label):
    found = json.loads(run_python(CHECK % IMPORT[label]).stdout.strip().splitlines()[-1])
    state = found["status"][label]["state"]
    assert state.startswith("unsupported: "), found
    assert len(found["warnings"]) == 1 and label in found["warnings"][0], found
    assert found["patched"] == [] and found["bn_classes"] == 0, found


if UNSUPPORTED:  # only where the stack has such a flavour: no empty test elsewhere
    @pytest.mark.parametrize("label", UNSUPPORTED)
    def test_an_unknown_layout_is_unsupported_with_one_warning_and_untouched(label):
        check_unsupported(label)
