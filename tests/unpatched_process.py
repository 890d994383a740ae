"""Save and load models in a process where the patch installed nothing (KERAS_BN_PATCH=0).

usage: python unpatched_process.py FLAVOUR save DIR
           fine-tunes a model with a frozen BN layer (plain Keras, so with the trap),
           saves it in every format this flavour has into DIR, and writes DIR/x.npy and
           DIR/expected.npz: its predictions, its weights, and the BN layer's ``trainable``
           and class as plain Keras loads each file back
       python unpatched_process.py FLAVOUR load PATH DIR
           loads PATH and prints the largest |prediction - DIR/expected.npz's|, whether
           every weight equals DIR/expected.npz's, the BN layer's trainable and its class

test_saving.py runs it to cross the patched / unpatched boundary both ways; it and
test_diagnose.py import its helpers, so both processes build, save and load alike.
"""
import json
import os
import sys

import numpy as np


def formats(api):
    if api.name == "keras3":
        return ["model.keras", "model.h5"]
    found = ["model.h5"]
    if api.eager:
        found.append("saved_model")  # TF 2: the SavedModel directory format
    return found


def save_every_format(api, model, directory):
    """[(format name, path)] of ``model`` saved in every format this flavour has."""
    saved = []
    for name in formats(api):
        path = os.path.join(str(directory), name)
        if name == "saved_model":
            model.save(path, save_format="tf")
        else:
            model.save(path)
        saved.append((name, path))
    return saved


def frozen_model(api):
    """The model both processes fine-tune and save: dense -> BN "saved_bn", frozen -> dense."""
    layers = api.keras.layers
    inputs = layers.Input((8,))
    bn = api.bn(name="saved_bn")
    model = api.keras.models.Model(inputs, layers.Dense(2)(bn(layers.Dense(16)(inputs))))
    bn.trainable = False
    return model


def same_arrays(first, second):
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


def load(api, path):
    # Keras 3.15 cannot deserialize its own compiled "mse"; TF 2.1 cannot predict with a
    # SavedModel loaded uncompiled: both plain-Keras limits, so load as each one can.
    return api.keras.models.load_model(path, compile=api.name != "keras3")


def write_expected(directory, model, x, loaded_as):
    """DIR/x.npy and DIR/expected.npz: predictions on x, weights, and ``loaded_as``
    ({format: [trainable, class name] of the BN layer as loaded back here})."""
    np.save(os.path.join(str(directory), "x.npy"), x)
    weights = {"weight%d" % i: w for i, w in enumerate(model.get_weights())}
    np.savez(os.path.join(str(directory), "expected.npz"), predict=model.predict(x),
             loaded_as=np.asarray(json.dumps(loaded_as)), **weights)


def read_expected(directory):
    """(x, predictions, weights, loaded_as) as write_expected left them."""
    with np.load(os.path.join(str(directory), "expected.npz")) as expected:
        count = sum(key.startswith("weight") for key in expected.files)
        return (np.load(os.path.join(str(directory), "x.npy")), expected["predict"],
                [expected["weight%d" % i] for i in range(count)], json.loads(str(expected["loaded_as"])))


def _main(flavour, mode, path, directory=None):
    from keras_bn_patch import keras_api  # KERAS_BN_PATCH=0: the import installs nothing
    api = keras_api.load(flavour)
    if mode == "save":
        rng = np.random.RandomState(11)
        x = (rng.normal(size=(32, 8)) * 4 + 20).astype("float32")
        model = frozen_model(api)
        model.compile(keras_api.sgd(api, 1e-4), "mse")  # natively frozen BN (Keras 3) passes x ~ 20
        model.fit(x, rng.normal(size=(32, 2)).astype("float32"), epochs=2, batch_size=8, verbose=0)
        assert np.isfinite(model.predict(x)).all(), "the fine-tuned model diverged"
        layers_loaded = {name: load(api, saved).get_layer("saved_bn")
                         for name, saved in save_every_format(api, model, path)}
        write_expected(path, model, x, {name: [layer.trainable, type(layer).__name__]
                                        for name, layer in layers_loaded.items()})
        return
    loaded = load(api, path)
    x, predictions, weights, _ = read_expected(directory)
    difference = np.abs(loaded.predict(x) - predictions)
    same_weights = same_arrays(weights, loaded.get_weights())
    bn = loaded.get_layer("saved_bn")
    print(float(difference.max()), same_weights, bn.trainable, type(bn).__name__)


if __name__ == "__main__":
    _main(*sys.argv[1:])
