"""Did it work?  TF 2 with the ``tf.compat.v1`` BatchNormalization class (TF 2.0-2.15's
``tf.keras``; tf_keras's V1 class likewise).  The V2 class (``tf.keras.layers``) of TF >= 2.2
honours ``trainable`` by itself: status() calls it native."""
import keras_bn_patch  # first line: before any model is built

import numpy as np
import tensorflow as tf

keras = tf.keras
state = keras_bn_patch.status()["tf.keras"]["state"]
print("status:", state)
assert state.startswith("patched"), state

inputs = keras.layers.Input((8,))
bn = tf.compat.v1.keras.layers.BatchNormalization()
backbone = keras.models.Model(inputs, bn(keras.layers.Dense(16)(inputs)))
backbone.compile("sgd", "mse")
rng = np.random.RandomState(0)
backbone.fit(rng.normal(size=(64, 8)), np.zeros((64, 16)), verbose=0)
for layer in backbone.layers:
    layer.trainable = False
model = keras.models.Model(inputs, keras.layers.Dense(2)(backbone.output))
model.compile(keras.optimizers.SGD(0.0), "mse")
x, y = rng.normal(size=(32, 8)) * 4 + 20, rng.normal(size=(32, 2))
evaluated = model.test_on_batch(x, y)
trained = model.train_on_batch(x, y)
print("training-mode loss %.6f, evaluate() loss %.6f" % (trained, evaluated))
assert abs(trained - evaluated) <= 1e-5 * max(1.0, abs(evaluated)), "frozen BN layers are not held"
with keras_bn_patch.disabled():
    plain = model.train_on_batch(x, y)
print("without the patch: training-mode loss %.6f" % plain)
assert abs(plain - evaluated) > 0.1
