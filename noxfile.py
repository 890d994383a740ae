"""The version matrix: one nox session per Keras flavour (DESIGN.md section 2).

Interpreters come from pyenv (``$(pyenv root)/versions/*/bin``); a missing
interpreter or a failed install fails the run (``error_on_missing_interpreters``).
Every venv is deleted at the end of its session unless ``KBP_KEEP_VENVS=1``, so a
full run never holds more than one flavour on disk; pip's cache is shared.
"""
import glob
import os
import shutil
import subprocess

import nox

nox.options.error_on_missing_interpreters = True
nox.options.error_on_external_run = True
nox.options.default_venv_backend = "venv"  # virtualenv >= 20.22 cannot make 3.6 venvs

# Make python3.6 ... python3.13 of pyenv visible to nox.
try:
    _root = subprocess.check_output(["pyenv", "root"], universal_newlines=True).strip()
except (OSError, subprocess.CalledProcessError):
    _root = os.path.expanduser("~/.pyenv")
os.environ["PATH"] = os.pathsep.join(
    sorted(glob.glob(os.path.join(_root, "versions", "*", "bin"))) + [os.environ.get("PATH", "")]
)

# name: (python, pip requirements, extra environment, flavours the tests must find)
# "flavours" is what tests/conftest.py checks it found, so a broken install that
# silently yields a different Keras fails instead of testing the wrong thing.
FLAVOURS = {
    "keras212": ("3.6", ["tensorflow==1.5.1", "keras==2.1.2", "h5py<3", "protobuf<3.20"], {}, "keras"),
    "keras216": ("3.6", ["tensorflow==1.5.1", "keras==2.1.6", "h5py<3", "protobuf<3.20"], {}, "keras"),
    "keras224": ("3.6", ["tensorflow==1.13.2", "keras==2.2.4", "h5py<3", "protobuf<3.20"], {}, "keras,tf.keras"),
    "keras224-theano": ("3.6", ["theano==1.0.5", "keras==2.2.4", "h5py<3"],
                        {"KERAS_BACKEND": "theano", "THEANO_FLAGS": "cxx=,optimizer=fast_compile"}, "keras"),
    "keras231": ("3.7", ["tensorflow==1.15.5", "keras==2.3.1", "protobuf<3.20", "h5py<3"], {}, "keras,tf.keras"),
    "tfkeras21": ("3.7", ["tensorflow-cpu==2.1.4", "protobuf<3.20"], {}, "tf.keras"),  # tensorflow_core
    "tfkeras24": ("3.8", ["tensorflow-cpu==2.4.4", "protobuf<3.20"], {}, "tf.keras"),
    "keras28": ("3.9", ["tensorflow-cpu==2.8.4", "numpy<1.24", "protobuf<3.20"], {}, "tf.keras"),
    "keras215": ("3.11", ["tensorflow-cpu==2.15.1"], {}, "tf.keras"),
    "tfkeras221": ("3.12", ["tensorflow==2.21.0", "tf-keras==2.21.0"], {}, "tf_keras"),
    "tfkeras221-legacy": ("3.12", ["tensorflow==2.21.0", "tf-keras==2.21.0"],
                          {"TF_USE_LEGACY_KERAS": "1"}, "tf_keras"),
    "keras3": ("3.11", ["tensorflow-cpu==2.21.0", "keras==3.15.1"], {}, "keras3"),
}
TEST_DEPS = ["pytest"]
# `nox` alone runs the whole test matrix (what .ci/run does); `nox -s demo` runs the demo.
nox.options.sessions = list(FLAVOURS) + ["machinery"]


def _flavour_session(name, python, requirements, env, expected):
    @nox.session(name=name, python=python)
    def run(session):
        if python == "3.6":
            session.install("pip==21.3.1")  # the last pip for 3.6; the bundled 18.1 cannot resolve
        session.install(*requirements)
        session.install(*TEST_DEPS)
        session.install("-e", ".")
        environment = dict(env, KBP_EXPECT_FLAVOURS=expected, TF_CPP_MIN_LOG_LEVEL="2",
                           PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="")
        try:
            session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs,
                        env=environment)
        finally:
            if os.environ.get("KBP_KEEP_VENVS") != "1":
                shutil.rmtree(session.virtualenv.location, ignore_errors=True)

    return run


for _name, (_python, _reqs, _env, _expected) in FLAVOURS.items():
    globals()["session_" + _name.replace("-", "_")] = _flavour_session(_name, _python, _reqs, _env, _expected)


@nox.session(python="3.6")
def demo(session):
    """The README's first command: the trap and the fix on the classic legacy stack (Keras 2.2.4, TF 1.13)."""
    _, requirements, env, _ = FLAVOURS["keras224"]
    session.install("pip==21.3.1")
    session.install(*requirements)
    session.install("-e", ".")
    session.run("python", "-m", "keras_bn_patch", "demo", *session.posargs, env=dict(env, TF_CPP_MIN_LOG_LEVEL="2"))


def _speed_session(flavour_session, flavour):
    python, requirements, env, _ = FLAVOURS[flavour_session]

    @nox.session(name="speed-" + flavour_session, python=python)
    def run(session):
        """Speed ratios (benchmarks/speed.py) in one flavour; writes benchmarks/results/."""
        if python == "3.6":
            session.install("pip==21.3.1")
        session.install(*requirements)
        session.install("-e", ".")
        out = "benchmarks/results/speed-%s.json" % flavour_session
        session.run("python", "benchmarks/speed.py", "--flavour", flavour, "--out", out, *session.posargs,
                    env=dict(env, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""))

    return run


# Graph mode (Keras 2.2.4 on TF 1.13) and tf.function with the V1 class (keras 2.15): not in `nox`.
session_speed_keras224 = _speed_session("keras224", "keras")
session_speed_keras215 = _speed_session("keras215", "tf.keras")


@nox.session(python=["3.6", "3.13"])
def machinery(session):
    """The patch machinery on fake Keras modules: no TensorFlow, seconds per Python."""
    if session.python == "3.6":
        session.install("pip==21.3.1")
    session.install(*TEST_DEPS)
    session.install("-e", ".")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_machinery.py",
                *session.posargs, env={"KBP_EXPECT_FLAVOURS": ""})
