"""The CLI never runs code from a model file unless told to (keras_bn_patch/tools/model_file.py):
a model whose Lambda layer writes a file when called is refused, exit 2, naming the layer, and
no file is written; with --trust-code it loads (and the Lambda runs, as plain Keras would run it).
Every flavour, with each format it saves (h5, the SavedModel of TF 2, Keras 3's .keras)."""
import os

import numpy as np

from helpers import X, run_cli, run_python, save_every_format, sgd

# A lambda: Keras 3 stores only a lambda's code (a named function by name); Keras 2 either.
WRITES_A_FILE = "writes_a_file = lambda x: (open(%r, 'w').write('ran'), x)[1]\n"


def lambda_model(api, marker):
    namespace = {}
    exec(WRITES_A_FILE % str(marker), namespace)  # stored as bytecode in the file
    layers = api.keras.layers
    inputs = layers.Input((8,))
    hidden = api.bn(name="bn")(layers.Dense(16)(inputs))
    outputs = layers.Dense(2)(layers.Lambda(namespace["writes_a_file"], name="side_effect")(hidden))
    model = api.keras.models.Model(inputs, outputs)
    model.compile(sgd(api, 0.0), "mse")  # TF 1.9-1.10 cannot save an uncompiled model
    return model


def diagnose(path, data, api, *extra, process=False):
    """The CLI's diagnose of ``path``: in this process, or in a fresh interpreter (``process``)."""
    return run_cli("diagnose", path, "--data", data, "--flavour", api.name, *extra, process=process)


def test_a_file_whose_lambda_runs_code_is_refused_unless_trusted(api, tmp_path):
    marker = tmp_path / "ran.txt"
    model = lambda_model(api, marker)
    data = str(tmp_path / "x.npy")
    np.save(data, X)
    (tmp_path / "saved").mkdir()
    saved = save_every_format(api, model, tmp_path / "saved")
    if marker.exists():  # building and saving called it
        marker.unlink()
    for index, (name, path) in enumerate(saved):
        refused = diagnose(path, data, api, process=index == 0)
        assert refused.returncode == 2, (name, refused.stderr[-3000:])
        assert "refused to load" in refused.stderr and "Lambda layer 'side_effect'" in refused.stderr, name
        assert "--trust-code" in refused.stderr and "Traceback" not in refused.stderr, name
        assert not marker.exists(), name  # nothing of the file ran
        trusted = diagnose(path, data, api, "--trust-code")
        if name == "saved_model" and api.version.startswith("2.1."):
            # TF 2.1 revives a SavedModel's layers as generic ones that cannot run as a Keras model
            # (test_cli.py): a usage error saying so, as for any such file
            assert trusted.returncode == 2 and "error: " in trusted.stderr, name
            assert "Traceback" not in trusted.stderr, name
            continue
        assert trusted.returncode in (0, 1) and "Verdict" in trusted.stdout, (name, trusted.stderr[-3000:])
        assert marker.exists(), name  # loading ran the Lambda, as plain Keras does
        marker.unlink()


def test_a_class_keras_does_not_define_is_refused_unless_trusted(api, tmp_path):
    class Doubled(api.keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2

    layers = api.keras.layers
    inputs = layers.Input((8,))
    model = api.keras.models.Model(inputs, layers.Dense(2)(Doubled(name="doubled")(inputs)))
    model.compile(sgd(api, 0.0), "mse")
    path = str(tmp_path / ("model.keras" if api.name == "keras3" else "model.h5"))
    model.save(path)
    np.save(str(tmp_path / "x.npy"), X)
    refused = diagnose(path, str(tmp_path / "x.npy"), api, process=True)
    assert refused.returncode == 2 and "layer 'doubled' of class 'Doubled'" in refused.stderr, refused.stderr[-3000:]
    trusted = diagnose(path, str(tmp_path / "x.npy"), api, "--trust-code")
    # Trusted, Keras itself then says what it cannot load: the class is not importable here.
    assert trusted.returncode == 2 and "refused" not in trusted.stderr and "cannot load" in trusted.stderr, \
        trusted.stderr[-3000:]


def test_run_help_prints_its_usage():
    process = run_python("-m", "keras_bn_patch", "run", "--help")
    assert process.returncode == 0 and process.stdout.startswith("usage: keras-bn-patch run SCRIPT")
    assert "KERAS_BN_PATCH=0" in process.stdout and os.path.basename(__file__) not in process.stdout


def test_the_flavours_own_classes_are_not_refused(api, tmp_path):
    """Classes that share a name (the V1 and V2 BatchNormalization) each count with their
    subclasses: a SyncBatchNormalization (under the V2 class) is the flavour's own."""
    from keras_bn_patch.tools import model_file
    layers = api.keras.layers
    experimental = getattr(layers, "experimental", None)
    own = [api.bn, layers.Dense] + [cls for cls in (getattr(layers, "SyncBatchNormalization", None),
                                                     getattr(experimental, "SyncBatchNormalization", None)) if cls]
    inputs = layers.Input((8,))
    hidden = inputs
    for index, cls in enumerate(own):
        hidden = cls(**({"units": 8} if cls is layers.Dense else {}), name="own_%d" % index)(hidden)
    model = api.keras.models.Model(inputs, hidden)
    model.compile(sgd(api, 0.0), "mse")
    path = str(tmp_path / ("model.keras" if api.name == "keras3" else "model.h5"))
    model.save(path)
    assert model_file.untrusted_layers(path, api) == []
