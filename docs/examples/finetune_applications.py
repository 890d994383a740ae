"""Fine-tune a keras.applications backbone in Keras 2.2 / 2.3 (TF 1.x): the classic script, with
one line added.  Offline here (``weights=None``); in real use ``weights="imagenet"``."""
import keras_bn_patch  # the one line

import keras
import numpy as np
from keras.applications.mobilenet import MobileNet

base = MobileNet(input_shape=(32, 32, 3), alpha=0.25, include_top=False, weights=None)  # "imagenet"
for layer in base.layers:  # freeze the backbone after it was built: its 27 BN layers too
    layer.trainable = False
pooled = keras.layers.GlobalAveragePooling2D()(base.output)
outputs = keras.layers.Dense(3, activation="softmax")(pooled)
model = keras.models.Model(base.input, outputs)
model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])

rng = np.random.RandomState(0)
images = rng.uniform(-1, 1, (48, 32, 32, 3)).astype("float32")  # preprocessed as the backbone expects
labels = np.eye(3)[rng.randint(0, 3, 48)]
bn_layers = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
before = [keras.backend.get_value(layer.moving_mean) for layer in bn_layers]
history = model.fit(images, labels, epochs=2, batch_size=16, verbose=0)
after = [keras.backend.get_value(layer.moving_mean) for layer in bn_layers]

print("fit() last epoch: loss %.4f" % history.history["loss"][-1])
print("evaluate() on the same data: loss %.4f" % model.evaluate(images, labels, verbose=0)[0])
assert all(np.array_equal(a, b) for a, b in zip(before, after)), "frozen statistics moved"
print("%d frozen BN layers, moving statistics unchanged" % len(bn_layers))
