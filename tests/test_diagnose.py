"""diagnose() against the real Keras of this environment: a model fine-tuned without the patch
flagged then repaired, its whole-model figure, held layers, a model graph left as it was."""
import json

import numpy as np
import pytest

import keras_bn_patch
from helpers import run_cli
from helpers.tools import RNG, X, accuracy, fine_tuned_without_the_patch, nested_model
from keras_bn_patch.cli import demo as _demo


def test_saved_unpatched_fine_tuned_model_flagged_then_repaired(api, tmp_path):
    model, x, y, train_accuracy = fine_tuned_without_the_patch(api)
    path = str(tmp_path / "fine_tuned.h5")
    model.save(path)
    np.save(str(tmp_path / "x.npy"), x)
    np.savez(str(tmp_path / "labelled.npz"), x=x, y=y)
    loaded = api.keras.models.load_model(path, compile=False)
    broken = accuracy(loaded, x, y)

    with keras_bn_patch.disabled():
        report = keras_bn_patch.diagnose(loaded, x)
    print(report)
    frozen = [row for row in report.rows if row["state"] == "frozen"]
    assert [row["path"] for row in frozen] == ["backbone_bn_0", "backbone_bn_1"]
    cli = ["diagnose", path, "--data", str(tmp_path / "x.npy"), "--flavour", api.name, "--json"]
    labelled = ["diagnose", path, "--data", str(tmp_path / "labelled.npz"), "--flavour", api.name]
    if api.name == "keras3":  # Keras 3 holds frozen BN itself: the trap never happened
        assert report.healthy and {row["verdict"] for row in frozen} == {"held"}
        assert run_cli(*cli, process=True).returncode == 0
        with keras_bn_patch.disabled():
            with_labels = keras_bn_patch.diagnose(loaded, x, y=y)
        assert with_labels.verdict == "healthy" and not with_labels.labels["fine_tuned_in_the_trap"]
        assert run_cli(*labelled).returncode == 0
        assert abs(broken - train_accuracy) < 0.05
        return
    if all(row["handled_by"] == "native" for row in frozen):
        # TF >= 2.2 loads the saved layers as its native class: held from now on, but the
        # head was fitted to batch statistics. Without labels the file does not say so.
        assert report.healthy and report.verdict == "healthy" and {row["verdict"] for row in frozen} == {"held"}
        assert run_cli(*cli, process=True).returncode == 0
    else:
        # Plain Keras would train them on batch statistics: advice about a future fit(), its own
        # word and exit code (3; 1 with --strict), since the file does not say how it was fine-tuned.
        assert all(row["handled_by"] == "unpatched" for row in frozen)
        assert not report.healthy and [row["verdict"] for row in report.rows] == ["needs patch"] * 2
        assert report.verdict == "advice" and "Verdict: advice" in str(report)
        assert "import keras_bn_patch" in report.advice
        process = run_cli(*cli, process=True)
        assert process.returncode == 3 and json.loads(process.stdout)["layers"] == report.to_dict()["layers"]
        assert "give its labels" in process.stderr and "--fine-tuned-unpatched" in process.stderr
        assert run_cli(*cli + ["--strict"]).returncode == 1
    # The labels tell, without a flag: batch statistics fit them far better than the moving ones.
    with keras_bn_patch.disabled():
        with_labels = keras_bn_patch.diagnose(loaded, x, y=y)
    print(with_labels)
    figures = with_labels.labels
    assert figures["fine_tuned_in_the_trap"] and figures["metrics"] == ("accuracy", "cross_entropy")
    assert figures["batch_statistics"]["accuracy"] > figures["moving_statistics"]["accuracy"] + 0.1
    assert figures["moving_statistics"]["accuracy"] == pytest.approx(broken, abs=1e-6)
    assert with_labels.verdict == "needs action" and [row["verdict"] for row in with_labels.rows] == \
        ["needs recalibration"] * 2 and "fine-tuned in the trap" in str(with_labels)
    process = run_cli(*labelled)
    assert process.returncode == 1 and "Verdict: needs action" in process.stdout, process.stdout
    assert "fine-tuned in the trap" in process.stdout

    with keras_bn_patch.disabled():
        report = keras_bn_patch.diagnose(loaded, x, fine_tuned_unpatched=True)
    assert not report.healthy and [row["verdict"] for row in report.rows] == ["needs recalibration"] * 2
    assert "Verdict: needs action" in str(report)
    process = run_cli(*cli + ["--fine-tuned-unpatched"])
    assert process.returncode == 1 and json.loads(process.stdout)["layers"] == report.to_dict()["layers"]
    assert broken < train_accuracy - 0.1  # the trap: predict() far below what fit() reported

    patched_view = keras_bn_patch.diagnose(loaded, x)  # the patch holds them: fit() agrees with predict()
    assert patched_view.healthy and {row["verdict"] for row in patched_view.rows if row["state"] == "frozen"} \
        == {"held"}
    keras_bn_patch.recalibrate(loaded, x, layers="frozen", verbose=0)
    repaired = accuracy(loaded, x, y)
    print("fit() %.3f, predict() before %.3f, after recalibrate %.3f" % (train_accuracy, broken, repaired))
    assert repaired > train_accuracy - 0.03
    with keras_bn_patch.disabled():
        assert keras_bn_patch.diagnose(loaded, x).healthy
        assert not keras_bn_patch.diagnose(loaded, x, y=y).labels["fine_tuned_in_the_trap"]


def test_a_model_fine_tuned_with_the_patch_shows_no_trap_in_its_labels(api, tmp_path):
    """The same fine-tune, held by the patch: its head was fitted to the moving statistics, which
    fit the labels as well as batch statistics or better: no trap, held layers stay held."""
    setup = _demo.Setup(api)
    setup.fine_tune(api)
    path = str(tmp_path / "held.h5")
    setup.model.save(path)
    np.savez(str(tmp_path / "labelled.npz"), x=setup.x, y=setup.y)
    loaded = api.keras.models.load_model(path, compile=False)
    with keras_bn_patch.disabled():
        report = keras_bn_patch.diagnose(loaded, setup.x, y=setup.y)
    print(report)
    figures = report.labels
    assert not figures["fine_tuned_in_the_trap"]
    assert figures["moving_statistics"]["accuracy"] >= figures["batch_statistics"]["accuracy"] - 0.02
    process = run_cli("diagnose", path, "--data", str(tmp_path / "labelled.npz"), "--flavour", api.name,
                      process=True)
    assert report.verdict == "healthy" and report.healthy and process.returncode == 0, process.stdout
    assert "Verdict: healthy" in process.stdout
    frozen = {row["handled_by"] for row in report.rows if row["state"] == "frozen"}
    if not frozen <= {"native", "patched"}:  # plain Keras 2 / TF 1 would trap a future fine-tune: said
        assert "its labels show no fine-tune in the trap" in report.advice
        assert "import keras_bn_patch before fine-tuning it again" in report.advice
        assert "recalibrate" not in report.advice
        strict = run_cli("diagnose", path, "--data", str(tmp_path / "labelled.npz"), "--flavour", api.name,
                         "--strict")
        assert strict.returncode == 1, strict.stdout


def training_mode_outputs(api, model, x, batch_size):
    """The model's own outputs with every BN layer in training mode, batch by batch (weights
    put back: a TF 2 training-mode call moves the moving statistics)."""
    weights = model.get_weights()
    if api.eager:
        convert = api.keras.ops.convert_to_numpy if api.name == "keras3" else np.asarray
        found = [convert(model(x[start:start + batch_size], training=True))
                 for start in range(0, len(x), batch_size)]
    else:
        K = api.keras.backend
        function = K.function([model.input, K.learning_phase()], [model.output])
        found = [function([x[start:start + batch_size], 1])[0] for start in range(0, len(x), batch_size)]
    model.set_weights(weights)
    return np.concatenate(found)


def whole_model_figure(training, inference):
    """diagnose's figure from the two modes' outputs: the RMS difference relative to the spread."""
    return np.sqrt(np.mean(np.square(training - inference)) /
                   np.mean(np.square(inference - inference.mean(axis=0))))


def test_diagnose_whole_model_figure_is_the_models_own_training_mode(api):
    """A BN layer on images (channels last: one fused op in TensorFlow flavours; no gamma) and
    one on a dense layer: diagnose's training-mode vs inference-mode figure equals the one
    computed from the model's own training-mode and predict() outputs.  (No convolution:
    Theano without a C++ compiler has none.)"""
    layers = api.keras.layers
    inputs = layers.Input((6, 6, 3))
    image = layers.Flatten()(api.bn(scale=False, name="bn_image")(inputs))
    dense = api.bn(name="bn_dense")(layers.Dense(8)(image))
    # A linear head: a softmax saturated by the unnormalised inputs gives every sample the same
    # output, and the figure (relative to the outputs' spread) then divides by rounding noise.
    head = layers.Dense(3, name="head")(layers.Concatenate()([image, dense]))
    model = api.keras.models.Model(inputs, head)
    x = (RNG.normal(size=(100, 6, 6, 3)) * 3 + 5).astype("float32")
    training = training_mode_outputs(api, model, x, 25)
    inference = model.predict(x, batch_size=25)
    expected = whole_model_figure(training, inference)
    report = keras_bn_patch.diagnose(model, x, batch_size=25)
    assert expected > 0.1  # the moving statistics (0, 1) are far from the data's
    assert report.model["samples"] == 100
    assert report.model["difference"] == pytest.approx(expected, rel=1e-4)
    assert report.model["argmax_agreement"] == np.mean(training.argmax(axis=1) == inference.argmax(axis=1))


def test_diagnose_runs_a_model_whose_bn_layers_are_all_held_once(api):
    """Held layers normalise with their moving statistics in fit() too, so diagnose's
    training mode is its inference mode: the model is called in one mode, not two (half the
    calls of a model with a layer not held: one trace, or one call per batch), and the
    whole-model figure is exactly 0."""
    model, backbone = nested_model(api)
    original, calls = model.call, []

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    vars(model)["call"] = counted
    try:
        keras_bn_patch.diagnose(model, X)  # trainable layers: two modes
        both = len(calls)
        del calls[:]
        backbone.trainable = False  # both BN layers frozen, held by the patch
        report = keras_bn_patch.diagnose(model, X)
    finally:
        del vars(model)["call"]
    assert [row["verdict"] for row in report.rows] == ["held", "held"]
    assert len(calls) >= 1 and both == 2 * len(calls), (both, len(calls))
    assert report.model["difference"] == 0.0


def test_the_tools_leave_the_model_graph_as_it_was(api):
    """diagnose and recalibrate call the model on inputs of their own; in a graph flavour
    Keras records such a call as a node of the model (and tf.keras in TF 1.15 of each of its
    layers): a second node makes the model's ``input`` and ``output`` ambiguous (an
    AttributeError in Keras 2), TF 1.15's ``model.losses`` would list the call's activity
    losses, and every call of a tool would leave more."""
    layers, models = api.keras.layers, api.keras.models
    inner = layers.Input((8,))
    regularised = layers.Dense(8, activity_regularizer=api.keras.regularizers.l2(0.01), name="regularised")
    backbone = models.Model(inner, api.bn(name="bn_in")(regularised(inner)), name="backbone")
    outer = layers.Input((8,))
    model = models.Model(outer, layers.Dense(2, name="head")(api.bn(name="bn_out")(backbone(outer))))

    def nodes():
        return [(layer.name, len(vars(layer).get("_inbound_nodes", vars(layer).get("inbound_nodes", []))),
                 len(vars(layer).get("_outbound_nodes", vars(layer).get("outbound_nodes", []))))
                for layer in [model, backbone] + model.layers + backbone.layers]

    model.predict(X)  # TF 2: model.losses are those of the model's last call
    before, losses, model_input, model_output = nodes(), len(model.losses), model.input, model.output
    keras_bn_patch.diagnose(model, X)
    keras_bn_patch.recalibrate(model, X, verbose=0, batch_size=50)
    keras_bn_patch.recalibrate(model, X, verbose=0, method="layer_by_layer")
    assert nodes() == before
    assert len(model.losses) == losses
    assert model.input is model_input and model.output is model_output


def test_a_bn_layer_the_model_calls_with_training_false_is_held(api):
    """The model's own code calls a BN layer with training=False (the layer itself, or a model
    around it: the transfer-learning recipe ``base(inputs, training=False)``, where a model
    takes that argument).  fit() then runs it in inference mode, trainable or not, so
    diagnose's training-mode figure does too, and its verdict is held: recalibrating it would
    change what the fine-tuned layers after it were trained on.  Keras 3's fit() overrides
    such an argument: there the layers are what they are without it."""
    layers, models = api.keras.layers, api.keras.models
    outer = layers.Input((8,))
    hidden = api.bn(name="bn_pinned")(layers.Dense(8, name="dense_pinned")(outer), training=False)
    inner = layers.Input((8,))
    base = models.Model(inner, api.bn(name="bn_base")(layers.Dense(8, name="dense_base")(inner)), name="base")
    try:
        hidden = base(hidden, training=False)
        pinned = ["bn_pinned", "base/bn_base"]
    except TypeError:  # Keras 2's and TF 1.5's models take no training argument
        hidden = base(hidden)
        pinned = ["bn_pinned"]
    free = api.bn(name="bn_free")(layers.Dense(8, name="dense_free")(hidden))
    model = models.Model(outer, layers.Dense(3, name="head")(free))
    training = training_mode_outputs(api, model, X, 25)  # what fit() runs
    inference = model.predict(X, batch_size=25)
    expected = whole_model_figure(training, inference)
    report = keras_bn_patch.diagnose(model, X, batch_size=25)
    assert report.model["difference"] == pytest.approx(expected, rel=1e-4)
    rows = {row["path"]: row for row in report.rows}
    honoured = api.name != "keras3"
    for path in pinned:
        assert rows[path]["handled_by"] == ("training=False" if honoured else "native"), path
        assert rows[path]["verdict"] == ("held" if honoured else "needs recalibration"), path
    assert rows["bn_free"]["verdict"] == "needs recalibration"
    if "base/bn_base" not in pinned:  # its model was called without the argument
        assert rows["base/bn_base"]["handled_by"] != "training=False"
    # The repair advised leaves the held layers as they are.
    repaired = [path for path in rows if not honoured or path not in pinned]
    assert report.advice == "keras_bn_patch.recalibrate(model, data%s)" % (
        ", layers=%r" % repaired if honoured else "")


def test_diagnose_changes_no_weight(api):
    model, backbone = nested_model(api)
    before = model.get_weights()
    keras_bn_patch.diagnose(model, X)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_model_without_bn_gives_an_empty_report(api):
    layers = api.keras.layers
    inputs = layers.Input((8,))
    model = api.keras.models.Model(inputs, layers.Dense(2)(inputs))
    report = keras_bn_patch.diagnose(model, X)
    assert report.rows == [] and report.healthy and "No BatchNormalization layers" in str(report)
    assert json.loads(json.dumps(report.to_dict()))["layers"] == []
    assert keras_bn_patch.recalibrate(model, X, verbose=0).rows == []
