"""What a new Keras release touches: one row of the support table (keras_bn_patch/core/support.py),
and one stack in compat/stacks.py to test it.  Shown on a fake tf_keras release (no TensorFlow)
whose BatchNormalization and Model moved to modules no row names: nothing is hooked until the
row is added, and then everything is, through the flavour that family already has."""
import json
import sys
import textwrap

import pytest

from helpers import run_python

FAKE_TF_KERAS = {
    "tf_keras/__init__.py": "from .src import layers, models\n__version__ = '2.99.0'\n",
    "tf_keras/src/__init__.py": "",
    "tf_keras/src/backend.py": "",
    "tf_keras/src/layers/__init__.py": "from .normalization.batch_norm_v3 import BatchNormalization\n",
    "tf_keras/src/layers/normalization/__init__.py": "",
    "tf_keras/src/layers/normalization/batch_norm_v3.py": (
        "class BatchNormalizationBase(object):\n"
        "    def call(self, inputs, training=None):\n"
        "        return inputs\n"
        "class BatchNormalization(BatchNormalizationBase):\n"
        "    pass\n"),
    "tf_keras/src/models/__init__.py": "from .training import Model\n",
    "tf_keras/src/models/training.py": (
        "class Model(object):\n"
        "    def compile(self, *args, **kwargs):\n        pass\n"
        "    def fit(self, *args, **kwargs):\n        return 'fitted'\n"),
}

# The hypothetical release's row: the family of tf_keras, its new module paths.
NEW_ROW = """
from keras_bn_patch.core import support
support.TF_KERAS_FAMILIES += (support.TfKerasFamily(
    "tf_keras", "tf_keras", "tf_keras.src.layers.normalization.batch_norm_v3", "tf_keras.src.backend", None),)
support.MODEL_MODULES += ("tf_keras.src.models.training",)
"""

CHECK = """
import json, wrapt
import keras_bn_patch
%s
keras_bn_patch.uninstall(); keras_bn_patch.install()  # the hooks, from the table as it is now
import tf_keras
from tf_keras.src.layers.normalization.batch_norm_v3 import BatchNormalizationBase
print(json.dumps({"status": keras_bn_patch.status().get("tf_keras"),
                  "bn_call": isinstance(vars(BatchNormalizationBase)["call"], wrapt.FunctionWrapper),
                  "fit": isinstance(vars(tf_keras.models.Model)["fit"], wrapt.FunctionWrapper)}))
"""


@pytest.fixture
def fake_release(tmp_path):
    for name, text in FAKE_TF_KERAS.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {"PYTHONPATH": str(tmp_path) + ":" + ":".join(entry for entry in sys.path if entry)}


def found(environment, row):
    out = run_python(textwrap.dedent(CHECK % row), env=environment).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_release_whose_modules_moved_is_not_hooked_without_its_row(fake_release):
    assert found(fake_release, "") == {"status": None, "bn_call": False, "fit": False}


def test_its_row_in_the_support_table_is_all_it_takes(fake_release):
    assert found(fake_release, NEW_ROW) == {
        "status": {"version": "2.99.0", "state": "patched (V1 class; the V2 class is native)"},
        "bn_call": True, "fit": True}
