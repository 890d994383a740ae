"""Did it work?  Standalone Keras 2 (tf.keras in TF 1: ``from tensorflow import keras``)."""
import keras_bn_patch  # first line: before any model is built

import keras
import numpy as np

# 1. The patch is installed for this Keras.
state = keras_bn_patch.status()["keras"]["state"]
print("status:", state)
assert state == "patched", state

# 2. A backbone frozen after it was built and trained, and a new head, as in fine-tuning.
inputs = keras.layers.Input((8,))
features = keras.layers.BatchNormalization()(keras.layers.Dense(16)(inputs))
backbone = keras.models.Model(inputs, features)
backbone.compile("sgd", "mse")
rng = np.random.RandomState(0)
backbone.fit(rng.normal(size=(64, 8)), np.zeros((64, 16)), verbose=0)
for layer in backbone.layers:
    layer.trainable = False
model = keras.models.Model(inputs, keras.layers.Dense(2)(backbone.output))

# 3. At learning rate 0, a training step and an evaluation of the same batch give the same loss
#    when frozen BN layers are held (plain Keras: the training step normalises by the batch).
model.compile(keras.optimizers.SGD(0.0), "mse")
x, y = rng.normal(size=(32, 8)) * 4 + 20, rng.normal(size=(32, 2))
evaluated = model.test_on_batch(x, y)
trained = model.train_on_batch(x, y)
print("training-mode loss %.6f, evaluate() loss %.6f" % (trained, evaluated))
assert abs(trained - evaluated) <= 1e-5 * max(1.0, abs(evaluated)), "frozen BN layers are not held"

# 4. The same check without the patch shows the trap.
with keras_bn_patch.disabled():
    plain = model.train_on_batch(x, y)
print("without the patch: training-mode loss %.6f" % plain)
assert abs(plain - evaluated) > 0.1
