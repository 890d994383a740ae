"""A legacy fine-tuning script with no ``import keras_bn_patch``: a backbone built and trained,
frozen after build, a head on an existing tensor, compiled and fine-tuned.  Prints one JSON line:
training-mode minus inference-mode loss at lr 0, whether the frozen statistics moved during
fit, and whether keras_bn_patch was imported in this process at all.

usage: python legacy_finetune.py FLAVOUR [--child] [--exit N]
  --child  also run this script in a child process (subprocess) and report its result
  --exit N exit with status N after printing
"""
import json
import os
import subprocess
import sys

import numpy as np

from helpers import X, X_SOURCE, Y, train_minus_test_loss  # noqa: E402


def keras_and_bn(flavour):
    """The flavour's Keras and its non-native BN class, found without importing keras_bn_patch."""
    if flavour in ("keras", "keras3"):
        import keras
        return keras, keras.layers.BatchNormalization
    import tensorflow as tf
    if flavour == "tf_keras":
        import tf_keras
        from tf_keras.src.layers.normalization.batch_normalization_v1 import BatchNormalization
        return tf_keras, BatchNormalization
    if int(tf.__version__.split(".")[0]) >= 2:
        return tf.keras, tf.compat.v1.keras.layers.BatchNormalization
    return tf.keras, tf.keras.layers.BatchNormalization


def statistics(keras, layer):
    return [np.array(keras.backend.get_value(w) if hasattr(keras.backend, "get_value") else w.numpy())
            for w in (layer.moving_mean, layer.moving_variance)]


def finetune(flavour):
    """The flow in this process: {"gap", "moved", "patch_imported"}."""
    keras, bn_class = keras_and_bn(flavour)
    layers = keras.layers
    inputs = layers.Input((8,))
    bn = bn_class(name="legacy_bn")
    hidden = layers.Activation("relu", name="legacy_relu")(bn(layers.Dense(16)(inputs)))
    base = keras.models.Model(inputs, hidden)
    base.compile(keras.optimizers.SGD(0.1), "mse")
    base.fit(X_SOURCE, np.zeros((32, 16), "float32"), epochs=1, verbose=0)
    for layer in base.layers:
        layer.trainable = False
    model = keras.models.Model(base.inputs, layers.Dense(2)(base.get_layer("legacy_relu").output))
    model.compile(keras.optimizers.SGD(0.0), "mse")
    gap = train_minus_test_loss(model, X, Y)
    before = statistics(keras, bn)
    model.compile(keras.optimizers.SGD(1e-4), "mse")
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    moved = not all(np.array_equal(a, b) for a, b in zip(before, statistics(keras, bn)))
    return {"gap": gap, "moved": moved, "patch_imported": "keras_bn_patch" in sys.modules}


def main():
    flavour = sys.argv[1]
    result = finetune(flavour)
    main_file = sys.modules["__main__"].__file__
    result.update({"main_module": main_file in (os.path.abspath(__file__), __file__), "name": __name__,
                   "argv": sys.argv[1:]})
    if "--child" in sys.argv:
        child = subprocess.run([sys.executable, os.path.abspath(__file__), flavour], stdout=subprocess.PIPE,
                               universal_newlines=True, check=True)
        result["child"] = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(result))
    if "--exit" in sys.argv:
        sys.exit(int(sys.argv[sys.argv.index("--exit") + 1]))


if __name__ == "__main__":
    main()
