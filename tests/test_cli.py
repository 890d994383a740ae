"""``keras-bn-patch diagnose`` and ``status`` in a fresh interpreter: usage errors exit 2, a
healthy model in every saved format exits 0."""
import json

import numpy as np
import pytest

import keras_bn_patch
from helpers import run_python, save_every_format, sgd
from helpers.tools import X, nested_model


def test_cli_usage_errors_exit_2(api, tmp_path):
    np.save(str(tmp_path / "x.npy"), X)
    (tmp_path / "not_a_model.h5").write_text("hello")
    args = ["-m", "keras_bn_patch", "diagnose"]
    missing = run_python(*args + [str(tmp_path / "nope.h5"), "--data", str(tmp_path / "x.npy")], check=False)
    assert missing.returncode == 2 and "no model file" in missing.stderr
    garbage = run_python(*args + [str(tmp_path / "not_a_model.h5"), "--data", str(tmp_path / "x.npy"),
                                  "--flavour", api.name], check=False)
    assert garbage.returncode == 2 and "is not a model file: neither HDF5" in garbage.stderr
    assert "Traceback" not in garbage.stderr and "--trust-code" not in garbage.stderr
    no_data = run_python(*args + [str(tmp_path / "not_a_model.h5"), "--data", str(tmp_path / "no.npy")],
                         check=False)
    assert no_data.returncode == 2 and "no data file" in no_data.stderr
    usage = run_python(*args, check=False)
    assert usage.returncode == 2 and "--data" in usage.stderr
    model, _ = nested_model(api)
    model.compile(sgd(api, 0.0), "mse")  # TF 1.9-1.10 cannot save an uncompiled model
    model.save(str(tmp_path / "model.h5"))
    wrong_kind = run_python(*args + [str(tmp_path / "model.h5"), "--data", str(tmp_path / "model.h5")], check=False)
    assert wrong_kind.returncode == 2 and "--data must be a .npy file" in wrong_kind.stderr
    nan = X.copy()
    nan[3, 2] = np.nan
    np.save(str(tmp_path / "nan.npy"), nan)
    non_finite = run_python(*args + [str(tmp_path / "model.h5"), "--data", str(tmp_path / "nan.npy")], check=False)
    assert non_finite.returncode == 2 and "--data: " in non_finite.stderr and "1 non-finite" in non_finite.stderr
    with pytest.raises(ValueError, match="x holds non-finite values"):
        keras_bn_patch.diagnose(model, nan)
    other = "keras3" if api.name != "keras3" else "keras"
    installed = run_python("from keras_bn_patch.tools import keras_api; keras_api.load(%r)" % other,
                           check=False).returncode == 0  # in its own process: Keras 3 beside tf_keras
    if not installed:
        absent = run_python(*args + [str(tmp_path / "model.h5"), "--data", str(tmp_path / "x.npy"),
                                     "--flavour", other], check=False)
        assert absent.returncode == 2, absent.stderr[-2000:]
        assert "--flavour %s: " % other in absent.stderr and "not installed here" in absent.stderr


def test_cli_healthy_model_exits_0_and_status_prints(api, tmp_path):
    model, _ = nested_model(api)
    keras_bn_patch.recalibrate(model, X, verbose=0)
    model.compile(sgd(api, 0.0), "mse")  # TF 1.9-1.10 cannot save an uncompiled model
    np.savez(str(tmp_path / "data.npz"), x=X)
    for name, path in save_every_format(api, model, tmp_path):
        process = run_python("-m", "keras_bn_patch", "diagnose", path, "--data", str(tmp_path / "data.npz"),
                             "--flavour", api.name, check=False)
        if name == "saved_model" and api.version.startswith("2.1."):
            # TF 2.1 cannot load this SavedModel as a Keras model (it revives a subclassed
            # Model without `call`): a usage error naming it, not a traceback
            assert process.returncode == 2 and "cannot load a model from" in process.stderr
            assert "implement a `call` method" in process.stderr
            continue
        assert process.returncode == 0, process.stderr[-2000:]
        assert "backbone/bn_mid" in process.stdout and "Verdict: healthy" in process.stdout, name
    status = run_python("-m", "keras_bn_patch", "status", "--json")
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
    for name, message in expected.items():
        for trust in ([], ["--trust-code"]):
            process = run_python("-m", "keras_bn_patch", "diagnose", str(tmp_path / name), "--data",
                                 str(tmp_path / "x.npy"), *trust, check=False)
            assert process.returncode == 2 and message in process.stderr, (name, trust, process.stderr)
            assert "--trust-code" not in process.stderr, process.stderr
    np.savez(str(tmp_path / "labels_only.npz"), y=np.zeros(3))
    process = run_python("-m", "keras_bn_patch", "diagnose", str(tmp_path / "empty.h5"), "--data",
                         str(tmp_path / "labels_only.npz"), check=False)
    assert process.returncode == 2 and "has no array named 'x' (the inputs); it holds 'y'" in process.stderr


def test_cli_version():
    from keras_bn_patch import __version__
    process = run_python("-m", "keras_bn_patch", "--version")
    assert process.stdout.strip() == "keras-bn-patch %s" % __version__
