"""``keras-bn-patch diagnose``, ``recalibrate`` and ``status``: usage errors exit 2, a healthy model
in every saved format exits 0, recalibrate writes what the Python API computes.  Each test runs the
command once in a fresh interpreter (start-up, exit code), the rest of its calls in this process."""
import json
import os

import numpy as np
import pytest

import keras_bn_patch
from helpers import run_cli, run_python, save_every_format, sgd
from helpers.tools import X, nested_model


def test_cli_usage_errors_exit_2(api, tmp_path):
    np.save(str(tmp_path / "x.npy"), X)
    (tmp_path / "not_a_model.h5").write_text("hello")
    args = ["diagnose"]
    missing = run_cli(*args + [str(tmp_path / "nope.h5"), "--data", str(tmp_path / "x.npy")], process=True)
    assert missing.returncode == 2 and "no model file" in missing.stderr
    garbage = run_cli(*args + [str(tmp_path / "not_a_model.h5"), "--data", str(tmp_path / "x.npy"),
                               "--flavour", api.name])
    assert garbage.returncode == 2 and "is not a model file: neither HDF5" in garbage.stderr
    assert "Traceback" not in garbage.stderr and "--trust-code" not in garbage.stderr
    no_data = run_cli(*args + [str(tmp_path / "not_a_model.h5"), "--data", str(tmp_path / "no.npy")])
    assert no_data.returncode == 2 and "no data file" in no_data.stderr
    usage = run_cli(*args)
    assert usage.returncode == 2 and "--data" in usage.stderr
    model, _ = nested_model(api)
    model.compile(sgd(api, 0.0), "mse")  # TF 1.9-1.10 cannot save an uncompiled model
    model.save(str(tmp_path / "model.h5"))
    wrong_kind = run_cli(*args + [str(tmp_path / "model.h5"), "--data", str(tmp_path / "model.h5")])
    assert wrong_kind.returncode == 2 and "--data must be a .npy file" in wrong_kind.stderr
    nan = X.copy()
    nan[3, 2] = np.nan
    np.save(str(tmp_path / "nan.npy"), nan)
    non_finite = run_cli(*args + [str(tmp_path / "model.h5"), "--data", str(tmp_path / "nan.npy")])
    assert non_finite.returncode == 2 and "--data: " in non_finite.stderr and "1 non-finite" in non_finite.stderr
    with pytest.raises(ValueError, match="x holds non-finite values"):
        keras_bn_patch.diagnose(model, nan)
    other = "keras3" if api.name != "keras3" else "keras"
    installed = run_python("from keras_bn_patch.tools import keras_api; keras_api.load(%r)" % other,
                           check=False).returncode == 0  # in its own process: Keras 3 beside tf_keras
    if not installed:
        absent = run_cli(*args + [str(tmp_path / "model.h5"), "--data", str(tmp_path / "x.npy"), "--flavour", other])
        assert absent.returncode == 2, absent.stderr[-2000:]
        assert "--flavour %s: " % other in absent.stderr and "not installed here" in absent.stderr


def test_cli_healthy_model_exits_0_and_status_prints(api, tmp_path):
    model, _ = nested_model(api)
    keras_bn_patch.recalibrate(model, X, verbose=0)
    model.compile(sgd(api, 0.0), "mse")  # TF 1.9-1.10 cannot save an uncompiled model
    np.savez(str(tmp_path / "data.npz"), x=X)
    for index, (name, path) in enumerate(save_every_format(api, model, tmp_path)):
        process = run_cli("diagnose", path, "--data", str(tmp_path / "data.npz"), "--flavour", api.name,
                          process=index == 0)
        if name == "saved_model" and api.version.startswith("2.1."):
            # TF 2.1 cannot load this SavedModel as a Keras model (it revives a subclassed
            # Model without `call`): a usage error naming it, not a traceback
            assert process.returncode == 2 and "cannot load a model from" in process.stderr
            assert "implement a `call` method" in process.stderr
            continue
        assert process.returncode == 0, process.stderr[-2000:]
        assert "backbone/bn_mid" in process.stdout and "Verdict: healthy" in process.stdout, name
    status = run_cli("status", "--json", process=True)
    assert status.returncode == 0 and json.loads(status.stdout)


def test_cli_bad_files_get_messages_naming_the_problem(tmp_path):
    """A wrong file is named for what is wrong with it; --trust-code is offered only for code."""
    np.save(str(tmp_path / "x.npy"), X)
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "empty.h5").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    archive = tmp_path / "other.keras"
    import zipfile
    with zipfile.ZipFile(str(archive), "w") as handle:
        handle.writestr("readme.txt", "no config")
    import h5py
    with h5py.File(str(tmp_path / "whole.h5"), "w") as handle:
        handle.create_dataset("weights", data=np.zeros((64, 64)))
    (tmp_path / "truncated.h5").write_bytes((tmp_path / "whole.h5").read_bytes()[:4000])
    expected = {"notes.txt": "is not a model file: neither HDF5", "empty.h5": "is empty (0 bytes)",
                "truncated.h5": "is an HDF5 file that cannot be read: truncated or damaged",
                "folder": "is a directory without saved_model.pb", "other.keras": "without config.json"}
    for index, (name, message) in enumerate(expected.items()):
        for trust in ([], ["--trust-code"]):
            process = run_cli("diagnose", str(tmp_path / name), "--data", str(tmp_path / "x.npy"), *trust,
                              process=index == 0 and not trust)
            assert process.returncode == 2 and message in process.stderr, (name, trust, process.stderr)
            assert "--trust-code" not in process.stderr, process.stderr
    np.savez(str(tmp_path / "labels_only.npz"), y=np.zeros(3))
    process = run_cli("diagnose", str(tmp_path / "empty.h5"), "--data", str(tmp_path / "labels_only.npz"))
    assert process.returncode == 2 and "has no array named 'x' (the inputs); it holds 'y'" in process.stderr


def test_cli_version():
    from keras_bn_patch import __version__
    process = run_python("-m", "keras_bn_patch", "--version")
    assert process.stdout.strip() == "keras-bn-patch %s" % __version__


def test_cli_recalibrate_writes_a_new_file_equal_to_the_python_api(api, tmp_path):
    """In every saved format of the flavour: the new file's statistics are those the Python API
    gives the loaded model, the input file is not touched, an existing --out is not replaced
    without --overwrite, and a file whose loading would run its code is refused."""
    model, _ = nested_model(api)
    model.compile(sgd(api, 0.0), "mse")  # TF 1.9-1.10 cannot save an uncompiled model
    data = (X * 3 + 2).astype("float32")
    np.save(str(tmp_path / "x.npy"), data)
    for index, (name, path) in enumerate(save_every_format(api, model, tmp_path)):
        if name == "saved_model" and api.version.startswith("2.1."):
            continue  # TF 2.1 cannot load this SavedModel as a Keras model (test above)
        before = _contents(path)
        out = str(tmp_path / ("new_" + name))
        command = ["recalibrate", path, "--data", str(tmp_path / "x.npy"), "--out", out, "--flavour", api.name,
                   "--batch-size", "16"]
        process = run_cli(*command, process=index == 0)
        assert process.returncode == 0, process.stderr[-3000:]
        assert "wrote %s" % out in process.stdout and "backbone/bn_mid" in process.stdout
        assert _contents(path) == before, name
        expected = api.keras.models.load_model(path, compile=False)
        with keras_bn_patch.disabled():
            keras_bn_patch.recalibrate(expected, data, batch_size=16, verbose=0)
        written = api.keras.models.load_model(out, compile=False)
        for a, b in zip(expected.get_weights(), written.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        again = run_cli(*command)
        assert again.returncode == 2 and "pass --overwrite" in again.stderr
        itself = run_cli(*command[:5] + [path] + command[6:])  # --out the model file
        assert itself.returncode == 2 and "pass --overwrite" in itself.stderr and _contents(path) == before
    wrong = run_cli("recalibrate", str(tmp_path / "model.h5"), "--data", str(tmp_path / "x.npy"),
                    "--out", str(tmp_path / "new.keras"), "--flavour", api.name)
    assert wrong.returncode == 2 and "--out " in wrong.stderr and "*.h5" in wrong.stderr

    layers = api.keras.layers
    inputs = layers.Input((8,))
    coded = api.keras.models.Model(inputs, layers.Lambda(lambda t: t * 2.0, name="doubled")(api.bn()(inputs)))
    coded.compile(sgd(api, 0.0), "mse")
    coded_path = str(tmp_path / ("coded.keras" if api.name == "keras3" else "coded.h5"))
    coded.save(coded_path)
    refused = run_cli("recalibrate", coded_path, "--data", str(tmp_path / "x.npy"),
                      "--out", str(tmp_path / ("coded_new" + os.path.splitext(coded_path)[1])), "--flavour", api.name)
    assert refused.returncode == 2 and "refused to load" in refused.stderr and "Lambda" in refused.stderr
    assert not os.path.exists(str(tmp_path / ("coded_new" + os.path.splitext(coded_path)[1])))


def _contents(path):
    """Every byte of a file, or of every file in a directory, by relative path."""
    if os.path.isdir(path):
        found = {}
        for folder, _, names in os.walk(path):
            for name in names:
                with open(os.path.join(folder, name), "rb") as handle:
                    found[os.path.relpath(os.path.join(folder, name), path)] = handle.read()
        return found
    with open(path, "rb") as handle:
        return handle.read()
