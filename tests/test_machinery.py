"""The patch machinery, on fake Keras packages (no TensorFlow): runs in seconds on every Python.

The fakes only have the names the installer looks for; they stand for no Keras
behaviour.  Each import-order scenario runs in a fresh interpreter.
"""
import asyncio
import itertools
import json
import os
import sys
import textwrap
import threading

import pytest

import keras_bn_patch
from keras_bn_patch.core import layers as _layers, registry as _registry
from helpers import run_python, script

FAKE_KERAS = {
    "keras/__init__.py": "from . import backend, layers, engine\n__version__ = %(version)r\n",
    "keras/backend.py": (
        "def moving_average_update(x, value, momentum):\n    return (x, value, momentum)\n"
        "def normalize_batch_in_training(x, gamma, beta, axes, epsilon=1e-3):\n    return (x, gamma, beta)\n"),
    "keras/layers/__init__.py": "from .normalization import *\nfrom . import wrappers\n",
    "keras/layers/wrappers.py": (
        "class Wrapper(object):\n"
        "    trainable = True\n"
        "    def __init__(self, layer):\n        self.layer = layer\n"
        "    @property\n    def trainable_weights(self):\n        return ['inner trainable']\n"
        "    @property\n    def non_trainable_weights(self):\n        return ['inner statistics']\n"),
    "keras/layers/normalization.py": (
        "class BatchNormalization(object):\n"
        "    trainable = True\n"
        "    def call(self, inputs, training=None):\n"
        "        return inputs\n"),
    "keras/engine/__init__.py": "from . import training\n",
    "keras/engine/training.py": (
        "class Model(object):\n"
        "    def compile(self, *args, **kwargs):\n        pass\n"
        "    def fit(self, *args, **kwargs):\n        return 'fitted'\n"),
}


@pytest.fixture
def fake_keras(tmp_path):
    def make(version="2.2.4", broken=False):
        for name, text in FAKE_KERAS.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if broken and name.endswith("normalization.py"):
                text = "class SomethingElse(object):\n    pass\n"
            path.write_text(text % {"version": version})
        return str(tmp_path)
    return make


def run_with(path, *parts, env=None):
    environment = {"PYTHONPATH": path + ":" + ":".join(p for p in sys.path if p)}
    environment.update(env or {})
    return run_python("".join(textwrap.dedent(part) for part in parts), env=environment).stdout


CHECK = """
    import wrapt, keras
    from keras.layers.normalization import BatchNormalization as BN
    from keras.engine.training import Model
    assert isinstance(vars(BN)["call"], wrapt.FunctionWrapper)
    assert not isinstance(vars(BN)["call"].__wrapped__, wrapt.FunctionWrapper)  # wrapped once
    assert isinstance(vars(Model)["fit"], wrapt.FunctionWrapper)
    assert isinstance(vars(keras.backend)["normalize_batch_in_training"], wrapt.FunctionWrapper)
    assert keras.backend.normalize_batch_in_training(1, 2, 3, [0]) == (1, 2, 3)  # outside a BN call: as is
    assert keras_bn_patch.status()["keras"] == {"version": "2.2.4", "state": "patched"}
    wrapper = vars(BN)["call"]
    keras_bn_patch.install()
    assert vars(BN)["call"] is wrapper  # install twice: no-op
    keras_bn_patch.uninstall(); keras_bn_patch.uninstall()
    assert vars(BN)["call"] is original_call and vars(Model)["fit"] is original_fit
    assert not isinstance(vars(keras.backend)["normalize_batch_in_training"], wrapt.FunctionWrapper)
    assert keras_bn_patch.status() == {}
    keras_bn_patch.install()
    assert vars(BN)["call"] is not original_call  # re-install patches again
    print("OK")
"""


def test_patch_imported_after_keras(fake_keras):
    path = fake_keras()
    out = run_with(path, """
        import keras
        original_call = vars(keras.layers.normalization.BatchNormalization)["call"]
        original_fit = vars(keras.engine.training.Model)["fit"]
        import keras_bn_patch
    """, CHECK)
    assert out.strip().endswith("OK")


def test_patch_imported_before_keras(fake_keras):
    path = fake_keras()
    out = run_with(path, """
        import keras_bn_patch
        import sys
        assert "keras" not in sys.modules and "tensorflow" not in sys.modules
        keras_bn_patch.uninstall()
        import keras
        original_call = vars(keras.layers.normalization.BatchNormalization)["call"]
        original_fit = vars(keras.engine.training.Model)["fit"]
        keras_bn_patch.install()
    """, CHECK)
    assert out.strip().endswith("OK")
    out = run_with(path, """
        import keras_bn_patch, keras, wrapt
        assert isinstance(vars(keras.layers.normalization.BatchNormalization)["call"], wrapt.FunctionWrapper)
        print("OK")
    """)
    assert out.strip().endswith("OK")


def test_keras_2_1_2_also_gates_the_moving_average_update(fake_keras):
    out = run_with(fake_keras("2.1.2"), """
        import keras_bn_patch, keras, wrapt
        assert isinstance(vars(keras.backend)["moving_average_update"], wrapt.FunctionWrapper)
        assert keras.backend.moving_average_update(1, 2, 3) == (1, 2, 3)  # outside a BN call: as is
        # 2.1.2's wrappers keep `trainable` to themselves: a frozen wrapper of a BN trains nothing
        from keras.layers.wrappers import Wrapper
        from keras.layers.normalization import BatchNormalization
        patched = vars(Wrapper)["trainable_weights"]  # our getter
        bn, other = Wrapper(BatchNormalization()), Wrapper(object())
        bn.layer.trainable_weights, bn.layer.non_trainable_weights = ["gamma"], ["moving_mean"]
        assert bn.trainable_weights == ["inner trainable"]  # trainable wrapper: as is
        bn.trainable = other.trainable = False
        assert bn.trainable_weights == [] and bn.non_trainable_weights == ["gamma", "moving_mean"]
        assert other.trainable_weights == ["inner trainable"]  # not a BN inside: as plain Keras
        with keras_bn_patch.disabled():
            assert bn.trainable_weights == ["inner trainable"]
        keras_bn_patch.uninstall()
        assert not isinstance(vars(keras.backend)["moving_average_update"], wrapt.FunctionWrapper)
        assert vars(Wrapper)["trainable_weights"] is not patched and bn.trainable_weights == ["inner trainable"]
        print("OK")
    """)
    assert out.strip().endswith("OK")


def test_unsupported_version_warns_once_and_leaves_keras_untouched(fake_keras):
    out = run_with(fake_keras("1.2.2"), """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import keras_bn_patch, keras
            keras_bn_patch.uninstall(); keras_bn_patch.install()  # the hook runs again: no 2nd warning
        import wrapt
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert len(messages) == 1, messages
        assert "1.2.2" in messages[0] and "unsupported" in messages[0], messages
        assert not isinstance(vars(keras.layers.normalization.BatchNormalization)["call"], wrapt.FunctionWrapper)
        assert keras_bn_patch.status()["keras"]["state"].startswith("unsupported: keras 1.2.2 has another")
        print("OK")
    """)
    assert out.strip().endswith("OK")


def test_an_error_inside_a_hook_is_logged_never_raised(fake_keras):
    out = run_with(fake_keras(broken=True), """
        import logging, io
        stream = io.StringIO()
        logging.getLogger("keras_bn_patch").addHandler(logging.StreamHandler(stream))
        import warnings; warnings.simplefilter("ignore")
        import keras_bn_patch
        import keras  # must not raise
        state = keras_bn_patch.status()["keras"]["state"]
        assert state.startswith("unsupported: error while patching keras"), state
        assert "BatchNormalization" in stream.getvalue(), stream.getvalue()
        print("OK")
    """)
    assert out.strip().endswith("OK")


@pytest.mark.parametrize("version,missing", [("2.2.4", "normalize_batch_in_training"),
                                             ("2.1.2", "moving_average_update")])
def test_a_hook_failing_partway_undoes_what_it_patched(fake_keras, version, missing):
    """Each step of the standalone Keras hook fails in turn (a backend without the function it
    wraps next): BN ``call``, wrapped before, is put back, and status says why."""
    path = fake_keras(version)
    backend = os.path.join(path, "keras", "backend.py")
    with open(backend) as handle:
        text = handle.read()
    with open(backend, "w") as handle:
        handle.write(text.replace("def %s(" % missing, "def _no_%s(" % missing))
    out = run_with(path, """
        import warnings; warnings.simplefilter("ignore")
        import keras
        original_call = vars(keras.layers.normalization.BatchNormalization)["call"]
        import keras_bn_patch, wrapt
        from keras_bn_patch.core import patching, registry
        assert vars(keras.layers.normalization.BatchNormalization)["call"] is original_call
        assert not any(isinstance(value, wrapt.FunctionWrapper) for value in vars(keras.backend).values())
        assert not any(owner.__module__.startswith("keras.layers") for owner, _ in patching._patches)
        assert registry.classes() == ()
        state = keras_bn_patch.status()["keras"]["state"]
        assert state.startswith("unsupported: error while patching keras") and "%s" in state, state
        print("OK")
    """ % missing)
    assert out.strip().endswith("OK")


# Every order of the six steps in which keras_bn_patch is imported before its functions are
# called: 6! / 5 = 144, each in a fresh interpreter, checked after every step (import_walk.py).
CALLS = ("install", "uninstall", "enable", "disable")
EVERY_ORDER = [order for order in itertools.permutations(("keras", "patch") + CALLS)
               if order.index("patch") < min(order.index(call) for call in CALLS)]
FAKE_TARGETS = ["keras.layers.normalization:BatchNormalization.call", "keras.engine.training:Model.fit",
                "keras.engine.training:Model.compile", "keras.backend:normalize_batch_in_training"]


@pytest.mark.parametrize("order", EVERY_ORDER, ids="-".join)
def test_every_order_of_import_install_uninstall_enable_disable(fake_keras, order):
    setup = {"keras": "import keras", "targets": FAKE_TARGETS, "patched": True, "flavour": None}
    out = run_python(script("import_walk.py"), json.dumps(setup), *order,
                     env={"PYTHONPATH": fake_keras() + ":" + ":".join(p for p in sys.path if p)}).stdout
    assert out.split()[-2:] == ["OK", "6"], out


def test_environment_variable_turns_the_import_into_a_no_op(fake_keras):
    out = run_with(fake_keras(), """
        import keras_bn_patch, keras, wrapt
        assert not keras_bn_patch.is_installed()
        assert not isinstance(vars(keras.layers.normalization.BatchNormalization)["call"], wrapt.FunctionWrapper)
        print("OK")
    """, env={"KERAS_BN_PATCH": "0"})
    assert out.strip().endswith("OK")


def test_the_import_itself_imports_no_tensorflow_or_keras():
    out = run_python("import sys, keras_bn_patch; print(sorted(m for m in sys.modules "
                     "if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'theano')))")
    assert out.stdout.strip() == "[]"


# --- the on/off switch -------------------------------------------------------------------------

def test_enable_disable_and_nested_context_managers():
    assert keras_bn_patch.is_enabled()
    with keras_bn_patch.disabled():
        assert not keras_bn_patch.is_enabled()
        with keras_bn_patch.enabled():
            assert keras_bn_patch.is_enabled()
        assert not keras_bn_patch.is_enabled()
    assert keras_bn_patch.is_enabled()
    keras_bn_patch.disable()
    try:
        assert not keras_bn_patch.is_enabled()
        with keras_bn_patch.enabled():
            assert keras_bn_patch.is_enabled()
    finally:
        keras_bn_patch.enable()
    assert keras_bn_patch.is_enabled()


def test_context_managers_work_as_decorators_and_reentrantly():
    @keras_bn_patch.disabled()
    def off(depth):
        assert not keras_bn_patch.is_enabled()
        return off(depth - 1) if depth else "done"

    assert off(3) == "done"
    assert keras_bn_patch.is_enabled()


def test_threads_do_not_see_each_others_blocks():
    seen, barrier = {}, threading.Barrier(8)

    def worker(index):
        block = keras_bn_patch.disabled() if index % 2 else keras_bn_patch.enabled()
        for step in range(200):
            with block:
                barrier.wait() if step == 0 else None
                seen.setdefault(index, set()).add(keras_bn_patch.is_enabled())
    with keras_bn_patch.disabled():  # the main thread's block does not leak into the workers
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert seen == {i: {i % 2 == 0} for i in range(8)}


@pytest.mark.skipif(sys.version_info < (3, 7), reason="asyncio tasks carry contextvars from Python 3.7 on")
def test_asyncio_tasks_do_not_see_each_others_blocks():
    async def task(index):
        values = set()
        block = keras_bn_patch.disabled() if index % 2 else keras_bn_patch.enabled()
        for _ in range(50):
            with block:
                await asyncio.sleep(0)
                values.add(keras_bn_patch.is_enabled())
        return values

    async def main():
        return await asyncio.gather(*(task(i) for i in range(8)))

    loop = asyncio.new_event_loop()
    try:
        results = loop.run_until_complete(main())
    finally:
        loop.close()
    assert results == [{i % 2 == 0} for i in range(8)]
    assert keras_bn_patch.is_enabled()


# --- views: which BN layers count as frozen -----------------------------------------------------

class FakeBN(object):
    def __init__(self, trainable=True):
        self.trainable = trainable


class FakeModel(object):
    def __init__(self, layers, trainable=True):
        self.layers, self.trainable = layers, trainable


def test_view_follows_enclosing_models_and_all_paths(monkeypatch):
    monkeypatch.setattr(_registry, "_classes", {FakeBN: None})
    own, nested, shared, free = FakeBN(False), FakeBN(), FakeBN(), FakeBN()
    frozen_inner = FakeModel([nested, shared], trainable=False)
    top = FakeModel([own, frozen_inner, shared, free])
    view = _layers.view_of(top)
    assert view[own] is True  # its own trainable
    assert view[nested] is True  # an enclosing model is not trainable
    assert view[shared] is False  # also reachable through a trainable path: Keras trains it
    assert view[free] is False
    assert len(view) == 4


def test_status_says_why_nothing_is_installed_and_is_enabled_agrees(fake_keras):
    path = fake_keras()
    out = run_with(path, "import keras_bn_patch, keras; print(keras_bn_patch.is_enabled(), keras_bn_patch.status())",
                   env={"KERAS_BN_PATCH": "0"})
    # No flavour patched; processes started from here inherit the setting, and status() says so.
    assert out.strip() == "False %s" % {"processes": {"state": "none: KERAS_BN_PATCH=0 is set, and processes "
                                                                "started from here inherit it", "reach": []}}
    environment = {"PYTHONPATH": path + ":" + ":".join(p for p in sys.path if p), "KERAS_BN_PATCH": "0"}
    shown = run_python("-m", "keras_bn_patch", "status", env=environment).stdout
    assert "not installed in this process (KERAS_BN_PATCH=0 is set)" in shown, shown


def test_a_warning_is_printed_once(fake_keras):
    """An unsupported Keras is said once on stderr (a RuntimeWarning), not also by logging's
    last-resort handler; with logging configured, the logger gets it too."""
    path = {"PYTHONPATH": fake_keras("1.2.2") + ":" + ":".join(p for p in sys.path if p)}
    code = "import keras_bn_patch, keras; print('OK')"
    process = run_python(code, env=path)
    assert process.stderr.count("keras 1.2.2 is unsupported") == 1, process.stderr
    configured = run_python("import logging, sys; logging.basicConfig(stream=sys.stdout); " + code, env=path)
    assert "WARNING:keras_bn_patch:keras_bn_patch: keras 1.2.2 is unsupported" in configured.stdout, configured.stdout
    assert configured.stderr.count("keras 1.2.2 is unsupported") == 1, configured.stderr


def test_recalibrate_progress_names_the_stage_and_batch_and_estimates_the_rest():
    import io
    from keras_bn_patch.tools.progress import Progress
    stream = io.StringIO()
    progress = Progress("recalibrate (staged)", 3, 1, stream)
    for stage in range(3):
        for _ in range(4):
            progress.batch()
        progress.update(stage + 1)
    lines = [line.strip() for line in stream.getvalue().replace("\r", "\n").splitlines() if line.strip()]
    assert lines[0] == "recalibrate (staged): stage 1/3, batch 1 - time left known after the first stage"
    assert lines[5].startswith("recalibrate (staged): stage 2/3, batch 1/4 - about ") and lines[5].endswith(" s left")
    assert len(lines) == 3 * 4 + 3 and lines[-1].startswith("recalibrate (staged): 3/3 stages done in ")
    quiet = io.StringIO()
    Progress("recalibrate (passes)", 2, 0, quiet).update(2)
    assert quiet.getvalue() == ""
    per_stage = io.StringIO()
    progress = Progress("recalibrate (passes)", 2, 2, per_stage, unit="pass")
    progress.batch()
    progress.update(1)
    progress.update(2)
    assert per_stage.getvalue().count("\n") == 2 and "\r" not in per_stage.getvalue()
    assert "recalibrate (passes): pass 2/2" in per_stage.getvalue() and "2/2 passes done in" in per_stage.getvalue()
