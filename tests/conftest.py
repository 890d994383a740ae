"""Which Keras flavours this environment must test.

``KBP_EXPECT_FLAVOURS`` (set by noxfile.py) lists them; a listed flavour that
does not import fails the run instead of being skipped.  Without it (plain
``pytest`` in any environment) every flavour found is tested.
"""
import os
import subprocess
import sys

import pytest

ALL_FLAVOURS = ("keras", "tf.keras", "tf_keras", "keras3")
TESTS = os.path.dirname(os.path.abspath(__file__))


def expected_flavours():
    listed = os.environ.get("KBP_EXPECT_FLAVOURS")
    if listed is not None:
        return [name for name in listed.split(",") if name]
    found = []
    for name in ALL_FLAVOURS:
        code = "import keras_bn_patch.keras_api as k; k.load(%r)" % name
        if subprocess.call([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0:
            found.append(name)
    return found


FLAVOURS = expected_flavours()


def pytest_generate_tests(metafunc):
    if "flavour" in metafunc.fixturenames:
        metafunc.parametrize("flavour", FLAVOURS)


@pytest.fixture
def api(flavour):
    import keras_bn_patch  # noqa: F401  (installs, as a user's script would)
    from keras_bn_patch import keras_api
    loaded = keras_api.load(flavour)  # ImportError here fails the test: never a silent skip
    yield loaded
    keras_bn_patch.enable()
    if hasattr(loaded.keras.backend, "clear_session"):  # not in Theano's backend
        loaded.keras.backend.clear_session()


def run_python(code, *args, env=None, check=True):
    """Run ``code`` in a fresh interpreter of this venv: a script path, "-m", or inline source."""
    environment = dict(os.environ, **(env or {}))
    is_script = code == "-m" or code.endswith(".py")
    command = [sys.executable] + ([code] if is_script else ["-c", code]) + list(args)
    process = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, env=environment, cwd=TESTS)
    if check and process.returncode != 0:
        raise AssertionError("subprocess failed (%d):\n%s\n%s" % (process.returncode, process.stdout,
                                                                 process.stderr[-4000:]))
    return process
