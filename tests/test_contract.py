"""The contract (README, "What frozen means") against the real Keras of this environment.

"Training mode equals inference mode" is measured at model level, so it holds
for the view of the model being trained: with a zero learning rate,
``train_on_batch`` (training mode) and ``test_on_batch`` (inference mode) must
give the same loss.  Each test also runs the unpatched arm (``disabled()``) and
checks that the trap is really there, so it cannot pass vacuously.
"""
import numpy as np
import pytest

import keras_bn_patch
from keras_bn_patch.core import support
from keras_bn_patch.tools import keras_api
from helpers import (X, X_SOURCE, Y, backend, get_value, moving_stats, scalar, sgd, sync_batch_normalization_or_skip,
                     train_minus_test_loss)

SEQUENCES = np.stack([X, X[::-1], X * 0.5], axis=1)  # (32, 3, 8): three steps a sample
SEQUENCES_SOURCE = np.stack([X_SOURCE] * 3, axis=1)


def build_backbone(api, prefix):
    layers, models = api.keras.layers, api.keras.models
    inputs = layers.Input((8,))
    hidden = layers.Dense(16, name=prefix + "_dense")(inputs)
    hidden = api.bn(name=prefix + "_bn")(hidden)
    hidden = layers.Activation("relu", name=prefix + "_relu")(hidden)
    return models.Model(inputs, hidden, name=prefix)


def head_on(api, inputs, tensor, prefix):
    output = api.keras.layers.Dense(2, name=prefix + "_head")(tensor)  # linear + MSE: sensitive to BN
    model = api.keras.models.Model(inputs, output)
    model.compile(sgd(api, 0.0), "mse")
    return model


def assert_held(api, model, bn_layers, unpatched_gap_expected=True, x=X):
    """Frozen BN behaves frozen in `model`: train loss == test loss, statistics bit-identical."""
    assert abs(train_minus_test_loss(model, x)) < 1e-5
    before = moving_stats(api, bn_layers)
    model.compile(sgd(api, 1e-4), "mse")
    model.fit(x, Y, epochs=2, batch_size=8, verbose=0)
    for b, a in zip(before, moving_stats(api, bn_layers)):
        assert np.array_equal(a, b)
    model.compile(sgd(api, 0.0), "mse")
    with keras_bn_patch.disabled():
        gap = abs(train_minus_test_loss(model, x))
    if api.name == "keras3":
        assert gap < 1e-5  # native: nothing for the patch to fix
    elif unpatched_gap_expected:
        assert gap > 0.1, "the unpatched arm should show the trap (gap %g)" % gap
    assert abs(train_minus_test_loss(model, x)) < 1e-5  # and held again after the block


def test_frozen_after_build_head_on_existing_tensors(api):
    base = build_backbone(api, "base")
    base.compile(sgd(api, 0.1), "mse")
    base.fit(X_SOURCE, np.zeros((32, 16), "float32"), epochs=1, verbose=0)  # built, called, trained
    for layer in base.layers:
        layer.trainable = False
    model = head_on(api, base.inputs, base.get_layer("base_relu").output, "late")
    assert_held(api, model, [base.get_layer("base_bn")])


def test_backbone_frozen_as_a_whole_inside_a_new_model(api):
    base = build_backbone(api, "inner")
    base.trainable = False  # only the enclosing model: Keras 2 does not propagate it
    inputs = api.keras.layers.Input((8,))
    model = head_on(api, inputs, base(inputs), "outer")
    assert_held(api, model, [base.get_layer("inner_bn")])


def test_gan_pattern_each_model_keeps_its_compile_time_view(api):
    discriminator = build_backbone(api, "disc")
    d_inputs = discriminator.inputs
    d_model = head_on(api, d_inputs, discriminator.outputs[0], "d")  # compiled trainable
    bn = discriminator.get_layer("disc_bn")
    d_model.trainable = False
    z = api.keras.layers.Input((8,))
    generated = api.keras.layers.Dense(8, name="generator")(z)
    combined = head_on(api, z, d_model(generated), "combined")  # compiled with D frozen

    before = moving_stats(api, [bn])
    assert abs(train_minus_test_loss(combined)) < 1e-5  # frozen inside the combined model
    for b, a in zip(before, moving_stats(api, [bn])):
        assert np.array_equal(a, b)
    if api.name != "keras3":  # D's own training uses batch statistics, as compiled
        assert abs(train_minus_test_loss(d_model)) > 0.1
    assert abs(train_minus_test_loss(combined)) < 1e-5  # and alternating keeps both views


def test_explicit_training_true_is_overridden(api):
    layers, models = api.keras.layers, api.keras.models
    inputs = layers.Input((8,))
    dense = layers.Dense(16)
    bn = api.bn()
    bn.trainable = False
    forced = models.Model(inputs, bn(dense(inputs), training=True))
    reference = models.Model(inputs, bn(dense(inputs), training=False))
    np.testing.assert_allclose(forced.predict(X), reference.predict(X), rtol=1e-5, atol=1e-5)
    if api.name != "keras3":
        with keras_bn_patch.disabled():
            assert np.abs(forced.predict(X) - reference.predict(X)).max() > 0.1


def test_direct_call_of_a_frozen_layer(api):
    """Outside fit/predict (eager call, or a graph built by hand): the layer's own trainable."""
    bn = api.bn()
    bn.trainable = False
    if api.eager or api.name == "keras3":
        held, inference = (np.asarray(bn(X, training=flag)) for flag in (True, False))
    else:
        K = api.keras.backend
        inputs = api.keras.layers.Input((8,))
        function = K.function([inputs, K.learning_phase()], [bn(inputs)])
        held, inference = function([X, 1])[0], function([X, 0])[0]
    np.testing.assert_allclose(held, inference, rtol=1e-6, atol=1e-6)
    assert np.abs(inference).max() > 10  # the moving statistics (0, 1): far from normalized


def test_user_subclass_calling_super(api):
    class MyBatchNorm(api.bn):
        calls = 0

        def call(self, inputs, training=None):
            MyBatchNorm.calls += 1
            return super(MyBatchNorm, self).call(inputs, training=training)

    layers = api.keras.layers
    inputs = layers.Input((8,))
    bn = MyBatchNorm()
    hidden = bn(layers.Dense(16)(inputs))
    bn.trainable = False
    model = head_on(api, inputs, hidden, "sub")
    assert_held(api, model, [bn])
    assert MyBatchNorm.calls >= 1


def _plain_keras_moves_frozen_statistics(api):
    """Keras 2.0-2.1.2 add the moving-average updates of non-trainable layers to fit()."""
    return api.name == "keras" and keras_api.version_tuple(api.version) < support.KERAS2_UPDATES_FROZEN_STATS_BEFORE


def test_wrapped_layer_frozen_after_build(api):
    """TimeDistributed(BatchNormalization()) in a backbone frozen layer by layer after it was
    trained: the wrapper is frozen, the BN inside it is not (Keras 2 does not propagate)."""
    layers = api.keras.layers
    inputs = layers.Input((3, 8))
    hidden = layers.TimeDistributed(layers.Dense(16), name="td_dense")(inputs)
    wrapper = layers.TimeDistributed(api.bn(name="td_bn_inner"), name="td_bn")
    features = layers.Flatten(name="td_features")(wrapper(hidden))
    base = api.keras.models.Model(inputs, features)
    base.compile(sgd(api, 0.1), "mse")
    base.fit(SEQUENCES_SOURCE, np.zeros((32, 48), "float32"), epochs=1, verbose=0)
    for layer in base.layers:
        layer.trainable = False
    model = head_on(api, base.inputs, base.get_layer("td_features").output, "td")
    assert_held(api, model, [wrapper.layer], x=SEQUENCES)
    if _plain_keras_moves_frozen_statistics(api):  # what the patch holds there: plain Keras drifts
        before = moving_stats(api, [wrapper.layer])
        with keras_bn_patch.disabled():
            model.fit(SEQUENCES, Y, epochs=1, batch_size=8, verbose=0)
        drift = max(np.abs(a - b).max() for a, b in zip(before, moving_stats(api, [wrapper.layer])))
        assert drift > 0.1, drift


def test_user_layer_that_calls_a_bn_layer_in_its_own_call(api):
    """A frozen user layer encloses the BN layer it holds as an attribute and calls itself."""
    class Block(api.keras.layers.Layer):
        def __init__(self, **kwargs):
            super(Block, self).__init__(**kwargs)
            self.bn = api.bn(name="block_bn")

        def build(self, input_shape):
            self.bn.build(input_shape)
            super(Block, self).build(input_shape)

        def call(self, inputs, training=None):
            outputs = self.bn.call(inputs, training=training)
            if not api.eager and api.name != "keras3":  # graph Keras collects updates per layer
                self.add_update(self.bn.get_updates_for(inputs) or self.bn.updates, inputs)
            return outputs

        def compute_output_shape(self, input_shape):
            return input_shape

    layers = api.keras.layers
    inputs = layers.Input((8,))
    block = Block(name="block")
    hidden = block(layers.Dense(16)(inputs))
    block.trainable = False
    model = head_on(api, inputs, hidden, "block")
    assert_held(api, model, [block.bn])


def _applications(api):
    applications = getattr(api.keras, "applications", None)
    return getattr(applications, "MobileNetV2", None)


def test_fine_tuning_a_real_application_backbone(api):
    """The classic script: a keras.applications backbone (random weights), frozen, new head."""
    MobileNetV2 = _applications(api)
    if MobileNetV2 is None:
        pytest.skip("%s %s has no applications.MobileNetV2" % (api.name, api.version))
    if api.keras.backend.backend() == "theano":
        # Measured: Theano without a C++ compiler (as in CI) has no grouped convolution for
        # MobileNetV2, and a ResNet50 train step hits a RecursionError after 12 minutes.
        pytest.skip("Theano without a C++ compiler cannot compile an application backbone")
    base = MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    images = np.random.RandomState(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")  # unscaled
    targets = np.random.RandomState(1).normal(size=(8, 2)).astype("float32")
    for layer in base.layers:
        layer.trainable = False
    pooled = api.keras.layers.GlobalAveragePooling2D()(base.output)
    model = head_on(api, base.inputs, pooled, "app")
    bn_layers = [layer for layer in base.layers if "BatchNormalization" in type(layer).__name__]
    assert len(bn_layers) > 10
    before = moving_stats(api, bn_layers)
    inference = scalar(model.test_on_batch(images, targets))
    assert abs(scalar(model.train_on_batch(images, targets)) - inference) < 1e-4 * max(1.0, abs(inference))
    for b, a in zip(before, moving_stats(api, bn_layers)):  # a training step moved no statistic
        assert np.array_equal(a, b)


def test_sync_batch_normalization_frozen_is_held(api):
    sync = sync_batch_normalization_or_skip(api)
    layers = api.keras.layers
    inputs = layers.Input((8,))
    bn = sync()
    hidden = bn(layers.Dense(16)(inputs))
    bn.trainable = False
    model = head_on(api, inputs, hidden, "sync")
    assert_held(api, model, [bn], unpatched_gap_expected=False)  # V2-based: native where it exists


def test_toggle_reaches_an_already_compiled_and_trained_model(api):
    base = build_backbone(api, "tog")
    for layer in base.layers:
        layer.trainable = False
    model = head_on(api, base.inputs, base.outputs[0], "tog")
    assert abs(train_minus_test_loss(model)) < 1e-5
    with keras_bn_patch.disabled():  # no recompile: the traced/built function is reused
        gap = abs(train_minus_test_loss(model))
    assert gap < 1e-5 if api.name == "keras3" else gap > 0.1
    keras_bn_patch.disable()
    try:
        gap = abs(train_minus_test_loss(model))
        assert gap < 1e-5 if api.name == "keras3" else gap > 0.1
        with keras_bn_patch.enabled():
            assert abs(train_minus_test_loss(model)) < 1e-5
    finally:
        keras_bn_patch.enable()
    assert abs(train_minus_test_loss(model)) < 1e-5


def test_toggle_inside_fit_takes_effect_at_the_next_entry_point(api):
    """A callback toggling mid-fit: fit still finishes (its validation is a nested entry point,
    which must not drop the train function fit is using), and the next call follows the switch."""
    base = build_backbone(api, "mid")
    for layer in base.layers:
        layer.trainable = False
    model = head_on(api, base.inputs, base.outputs[0], "mid")
    epochs_seen = []

    class Toggle(api.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs_seen.append(epoch)
            keras_bn_patch.disable()

    try:
        model.fit(X, Y, epochs=3, batch_size=8, verbose=0, validation_data=(X, Y), callbacks=[Toggle()])
        assert epochs_seen == [0, 1, 2]
        gap = abs(train_minus_test_loss(model))
        assert gap < 1e-5 if api.name == "keras3" else gap > 0.1
    finally:
        keras_bn_patch.enable()
    assert abs(train_minus_test_loss(model)) < 1e-5


def test_trainable_batchnorm_still_learns_its_statistics(api):
    base = build_backbone(api, "live")
    model = head_on(api, base.inputs, base.outputs[0], "live")
    bn = base.get_layer("live_bn")
    before = moving_stats(api, [bn])
    assert abs(train_minus_test_loss(model)) > 0.1  # batch statistics in training
    model.compile(sgd(api, 1e-4), "mse")
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, moving_stats(api, [bn])))


def test_status_names_this_flavour(api):
    from keras_bn_patch.core.versions import version_tuple
    status = keras_bn_patch.status()
    label = api.name  # status() names flavours as the support table does
    if api.name == "keras3":
        state = "native"
    elif api.name == "keras" or version_tuple(api.version) < (2, 2):
        state = "patched"
    else:
        state = "patched (V1 class; the V2 class is native)"
    assert label in status, status
    assert status[label]["state"] == state, status
    assert version_tuple(status[label]["version"]) >= support.flavour(label).first, status  # read, not "unknown"
    assert status[label]["version"] == api.version, status  # one spelling: the package the support table judges


def test_call_signature_and_config_unchanged(api):
    import inspect
    bn = api.bn(momentum=0.9, name="introspected")
    bn(api.keras.layers.Input((4,)))
    patched_signature, patched_config = str(inspect.signature(bn.call)), bn.get_config()
    keras_bn_patch.uninstall()
    try:
        assert str(inspect.signature(bn.call)) == patched_signature
        assert bn.get_config() == patched_config
    finally:
        keras_bn_patch.install()
    assert "training" in patched_signature


def _skip_conv_without_a_compiler(api):
    if backend(api) == "theano":
        pytest.skip("Theano without a C++ compiler (as in CI) has no Conv2D implementation on the CPU")


def _conv_backbone(api):
    layers = api.keras.layers
    inputs = layers.Input((16, 16, 3))
    hidden = layers.Conv2D(16, 3, padding="same", name="c1")(inputs)
    hidden = layers.Activation("relu")(api.bn(name="bn1")(hidden))
    hidden = layers.Conv2D(16, 3, padding="same", name="c2")(hidden)
    hidden = layers.Activation("relu", name="a2")(api.bn(name="bn2")(hidden))
    return api.keras.models.Model(inputs, hidden, name="backbone")


@pytest.mark.parametrize("run", range(3))  # TF 1.12/1.13 read uninitialised memory: the onset varies
def test_nested_frozen_conv_backbone_keeps_its_weights_finite(api, run):
    """A pretrained conv backbone (4-D input: fused BN) frozen as a whole and called as a layer:
    fine-tuning its head never changes the backbone's weights, and the loss stays finite (TF
    1.12 and 1.13 once turned the held layers' statistics into NaN)."""
    _skip_conv_without_a_compiler(api)
    layers, models = api.keras.layers, api.keras.models
    rng = np.random.RandomState(run)
    base = _conv_backbone(api)
    xa = rng.randn(256, 16, 16, 3).astype("float32")
    ya = (xa.mean(axis=(1, 2, 3)) > 0).astype("int32")
    head = layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling2D()(base.output))
    pretrain = models.Model(base.input, head)
    pretrain.compile(sgd(api, 0.01), "sparse_categorical_crossentropy")
    pretrain.fit(xa, ya, batch_size=32, epochs=3, verbose=0)

    base.trainable = False
    before = [get_value(api, weight).copy() for weight in base.weights]
    inputs = layers.Input((16, 16, 3))
    model = models.Model(inputs, layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling2D()(base(inputs))))
    model.compile("adam", "sparse_categorical_crossentropy")
    xb = (rng.randn(256, 16, 16, 3) * 3.0 + 2.0).astype("float32")
    yb = (xb[:, :8].mean(axis=(1, 2, 3)) > xb[:, 8:].mean(axis=(1, 2, 3))).astype("int32")
    losses = model.fit(xb, yb, batch_size=32, epochs=5, verbose=0, shuffle=False).history["loss"]

    assert np.all(np.isfinite(losses)), losses
    for weight, value in zip(base.weights, before):
        assert np.array_equal(get_value(api, weight), value), weight.name
    # held: training mode sees the backbone as evaluate() does.  Measured at learning rate 0, so
    # that no update lies between the two losses (TF 2.4's train_on_batch reports a loss taken
    # partly after Adam's step: 0.004 from test_on_batch for a model whose training-mode and
    # inference-mode outputs are bit-identical; the last epoch's mean loss, 0.05 for one seed)
    model.compile(sgd(api, 0.0), "sparse_categorical_crossentropy")
    assert abs(train_minus_test_loss(model, xb[:32], yb[:32])) < 1e-5


@pytest.mark.parametrize("pretrained", [False, True], ids=["fresh", "pretrained"])
def test_frozen_time_distributed_bn_keeps_all_its_weights(api, pretrained):
    """TimeDistributed(BatchNormalization()) on 4-D frames, frozen layer by layer (the wrapper,
    not its inner layer): fine-tuning a head changes none of the BN's weights, statistics nor
    gamma and beta.  Keras 2.0-2.1.3 keep a wrapper's `trainable` to the wrapper and trained
    the inner layer's weights anyway."""
    _skip_conv_without_a_compiler(api)
    layers = api.keras.layers
    rng = np.random.RandomState(0)
    inputs = layers.Input((3, 8, 8, 3))
    hidden = layers.TimeDistributed(layers.Conv2D(6, 3, padding="same"), name="tdc")(inputs)
    wrapper = layers.TimeDistributed(api.bn(), name="bn")
    base = api.keras.models.Model(inputs, layers.Flatten()(wrapper(hidden)))
    if pretrained:
        base.compile(sgd(api, 0.01), "mse")
        base.fit(rng.randn(64, 3, 8, 8, 3).astype("float32"), np.zeros((64, 3 * 8 * 8 * 6), "float32"),
                 epochs=1, verbose=0)
    for layer in base.layers:
        layer.trainable = False
    model = api.keras.models.Model(base.input, layers.Dense(3, activation="softmax")(base.output))
    model.compile(api.keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    x = (rng.randn(64, 3, 8, 8, 3) * 2 + 1.5).astype("float32")
    y = rng.randint(0, 3, 64)
    before = [get_value(api, weight).copy() for weight in wrapper.layer.weights]
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for weight, value in zip(wrapper.layer.weights, before):
        assert np.array_equal(get_value(api, weight), value), weight.name
