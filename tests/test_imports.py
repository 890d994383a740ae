"""Import orders against the real Keras of this environment, each in a fresh interpreter."""
import textwrap

import pytest

from conftest import run_python

IMPORT = {"keras": "import keras", "tf.keras": "import tensorflow as tf; tf.keras.layers.Dense",
          "tf_keras": "import tf_keras", "keras3": "import keras"}

CHECK = """
    import wrapt
    from keras_bn_patch import keras_api
    api = keras_api.load({flavour!r})
    owner = next(k for k in api.bn.__mro__ if "call" in vars(k))
    native = {flavour!r} == "keras3"
    def wrapped():
        slot = vars(owner)["call"]
        return isinstance(slot, wrapt.FunctionWrapper) and not isinstance(slot.__wrapped__, wrapt.FunctionWrapper)
    assert wrapped() != native, "patched exactly once (or left alone when native)"
    before = vars(owner)["call"]
    keras_bn_patch.install()
    assert vars(owner)["call"] is before, "install() twice is a no-op"
    keras_bn_patch.uninstall()
    assert not isinstance(vars(owner)["call"], wrapt.FunctionWrapper), "uninstall() restores"
    keras_bn_patch.install()
    assert wrapped() != native
    print("OK", sorted(keras_bn_patch.status()))
"""


@pytest.mark.parametrize("order", ["keras_first", "patch_first"])
def test_import_order(flavour, order):
    first, second = "import keras_bn_patch", IMPORT[flavour]
    if order == "keras_first":
        first, second = second, first
    code = first + "\n" + second + "\nimport keras_bn_patch\n" + textwrap.dedent(CHECK.format(flavour=flavour))
    out = run_python(code).stdout
    assert "OK" in out, out
