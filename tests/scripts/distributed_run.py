"""Train a frozen-BN model under MirroredStrategy over 2 logical CPUs and on one device; print
JSON.  Run in a fresh interpreter: logical devices are fixed before TF starts."""
import json
import sys

import numpy as np
import tensorflow as tf

config = getattr(tf.config, "set_logical_device_configuration", None) or \
    tf.config.experimental.set_virtual_device_configuration
device = getattr(tf.config, "LogicalDeviceConfiguration", None) or tf.config.experimental.VirtualDeviceConfiguration
config(tf.config.list_physical_devices("CPU")[0] if hasattr(tf.config, "list_physical_devices")
       else tf.config.experimental.list_physical_devices("CPU")[0], [device(), device()])

import keras_bn_patch  # noqa: E402
from keras_bn_patch.tools import keras_api  # noqa: E402
from helpers import get_value, sgd  # noqa: E402

api = keras_api.load(sys.argv[1])
precision = sys.argv[2] if len(sys.argv) > 2 else "float32"
if precision != "float32":
    mixed = api.keras.mixed_precision
    set_policy = getattr(mixed, "set_global_policy", None) or mixed.experimental.set_policy  # TF 2.1
    set_policy(precision)
rng = np.random.RandomState(0)
x = (rng.normal(size=(64, 8)) * 3 + 4).astype("float32")
y = rng.normal(size=(64, 2)).astype("float32")


def build():
    layers = api.keras.layers
    inputs = layers.Input((8,))
    bn = api.bn(name="bn")
    hidden = bn(layers.Dense(8, kernel_initializer=api.keras.initializers.Constant(0.1))(inputs))
    output = layers.Dense(2, kernel_initializer=api.keras.initializers.Constant(0.2), dtype="float32")(hidden)
    model = api.keras.models.Model(inputs, output)
    bn.trainable = False
    return model, bn


def run(strategy):
    with strategy.scope():
        model, bn = build()
        model.compile(sgd(api, 0.0), "mse")
    held_gap = float(abs(np.ravel(model.train_on_batch(x, y))[0] - np.ravel(model.test_on_batch(x, y))[0]))
    with keras_bn_patch.disabled():
        plain_gap = float(abs(np.ravel(model.train_on_batch(x, y))[0] - np.ravel(model.test_on_batch(x, y))[0]))
    with strategy.scope():
        model.compile(sgd(api, 0.001), "mse")
    stats = [get_value(api, w).copy() for w in (bn.moving_mean, bn.moving_variance)]
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    moved = max(float(np.abs(get_value(api, w) - s).max())
                for w, s in zip((bn.moving_mean, bn.moving_variance), stats))
    return {"held_gap": held_gap, "plain_gap": plain_gap, "stats_moved": moved,
            "weights": [w.tolist() for w in model.get_weights()],
            "replicas": strategy.num_replicas_in_sync}


mirrored = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
single = run(tf.distribute.get_strategy())
difference = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                 for a, b in zip(mirrored.pop("weights"), single.pop("weights")))
print(json.dumps({"mirrored": mirrored, "single": single, "weights_difference": difference}))
