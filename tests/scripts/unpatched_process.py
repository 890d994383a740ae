"""Save and load models in a process where the patch installed nothing (KERAS_BN_PATCH=0).

usage: python unpatched_process.py FLAVOUR save DIR
           fine-tunes a model with a frozen BN layer (plain Keras, so with the trap),
           saves it in every format this flavour has into DIR, and writes DIR/x.npy and
           DIR/expected.npz: its predictions, its weights, and the BN layer's ``trainable``
           and class as plain Keras loads each file back
       python unpatched_process.py FLAVOUR load PATH DIR
           loads PATH and prints the largest |prediction - DIR/expected.npz's|, whether
           every weight equals DIR/expected.npz's, the BN layer's trainable and its class

test_saving.py runs it to cross the patched / unpatched boundary both ways; both
processes build, save and load with the same helpers (tests/helpers).
"""
import sys

import numpy as np

from helpers import frozen_model, load, read_expected, same_arrays, save_every_format, sgd, write_expected  # noqa: E402


def _main(flavour, mode, path, directory=None):
    from keras_bn_patch.tools import keras_api  # KERAS_BN_PATCH=0: the import installs nothing
    api = keras_api.load(flavour)
    if mode == "save":
        rng = np.random.RandomState(11)
        x = (rng.normal(size=(32, 8)) * 4 + 20).astype("float32")
        model, _ = frozen_model(api, name="saved_bn")
        model.compile(sgd(api, 1e-4), "mse")  # natively frozen BN (Keras 3) passes x ~ 20
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
