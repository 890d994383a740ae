"""The documentation's example scripts (docs/examples/) run as a user would run them, in the
flavour each is written for, and check themselves (status, held, the trap without the patch)."""
import os

from helpers import TESTS, run_python
from keras_bn_patch.core.versions import version_tuple

EXAMPLES = os.path.join(os.path.dirname(TESTS), "docs", "examples")


SAYS = {"verify_keras2.py": "status: patched", "verify_tf2.py": "status: patched",
        "finetune_applications.py": "moving statistics unchanged"}


def examples_for(api):
    if api.name == "keras":
        found = ["verify_keras2.py"]
        if api.keras.backend.backend() == "tensorflow":  # Theano without a compiler: no depthwise conv
            found.append("finetune_applications.py")
        return found
    if api.name == "tf.keras" and version_tuple(api.version) >= (2,):
        return ["verify_tf2.py"]
    return []


def test_the_docs_examples_for_this_flavour_run(api):
    ran = []
    for name in examples_for(api):
        process = run_python(os.path.join(EXAMPLES, name), env={"TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
        assert process.returncode == 0, (name, process.stdout[-2000:], process.stderr[-3000:])
        assert SAYS[name] in process.stdout, (name, process.stdout)
        ran.append(name)
    # Flavours without an example of their own (tf.keras of TF 1, tf_keras, Keras 3) run none.
    assert ran == examples_for(api)
