"""Train two small BN models deterministically and dump everything observable to an .npz.

usage: python plain_run.py FLAVOUR plain|patched OUT.npz

``plain`` never imports keras_bn_patch.  ``patched`` imports it, trains the
model with a frozen BN layer inside ``disabled()`` and the all-trainable model
with the patch on.  test_untouched.py checks both dumps are bit-identical.
"""
import inspect
import json
import os
import sys

import h5py
import numpy as np

from helpers import reproducible, sgd  # noqa: E402

flavour, mode, out = sys.argv[1:4]
if mode == "patched":
    import keras_bn_patch
    from keras_bn_patch.tools import keras_api
    frozen_context, trainable_context = keras_bn_patch.disabled, keras_bn_patch.enabled
else:
    # keras_api is needed to find the flavour; load it without running the package's __init__.
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "keras_bn_patch")
    sys.modules["keras_bn_patch"] = type(sys)("keras_bn_patch")  # empty shell: nothing installed
    sys.modules["keras_bn_patch"].__path__ = [here]
    from keras_bn_patch.tools import keras_api
    import contextlib
    frozen_context = trainable_context = contextlib.suppress

api = keras_api.load(flavour)
reproducible(api)  # one thread, resource variables: see its docstring

layers, models = api.keras.layers, api.keras.models
rng = np.random.RandomState(7)
x = (rng.normal(size=(48, 8)) * 2 + 3).astype("float32")
y = rng.normal(size=(48, 2)).astype("float32")
dump = {}


def training_mode_output(model):
    if api.name == "keras3":  # on any backend (a torch tensor that requires grad refuses np.asarray)
        return api.keras.ops.convert_to_numpy(model(x, training=True))
    if api.eager:
        return np.asarray(model(x, training=True))
    K = api.keras.backend
    return K.function([model.input, K.learning_phase()], [model.output])([x, 1])[0]


for variant, context in (("frozen", frozen_context), ("trainable", trainable_context)):
    with context():
        inputs = layers.Input((8,))
        hidden = layers.Dense(16, name=variant + "_d1")(inputs)
        first = api.bn(name=variant + "_bn1")
        hidden = first(hidden)
        hidden = layers.Activation("relu")(hidden)
        hidden = layers.Dense(16, name=variant + "_d2")(hidden)
        second = api.bn(name=variant + "_bn2")
        hidden = second(hidden)
        model = models.Model(inputs, layers.Dense(2, name=variant + "_head")(hidden))
        model.set_weights([rng.normal(scale=0.3, size=w.shape).astype(w.dtype) for w in model.get_weights()])
        for bn in (first, second):  # gamma, beta, moving mean, moving variance (> 0) in every flavour
            gamma, beta, mean, variance = bn.get_weights()
            bn.set_weights([gamma, beta, mean, np.abs(variance) + 0.5])
        if variant == "frozen":
            second.trainable = False
        model.compile(sgd(api, 0.01), "mse")
        history = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
        dump[variant + "/loss"] = np.asarray(history["loss"])
        for index, weight in enumerate(model.get_weights()):
            dump["%s/weight%d" % (variant, index)] = weight
        dump[variant + "/predict"] = model.predict(x)
        dump[variant + "/train_mode"] = training_mode_output(model)
        dump[variant + "/config"] = np.asarray(json.dumps(json.loads(model.to_json()), sort_keys=True))
        dump[variant + "/signature"] = np.asarray(str(inspect.signature(second.call)))
        saved = out + "." + variant + ".h5"
        model.save(saved)
        with h5py.File(saved, "r") as h5:  # the file's content: config and every stored array
            config = h5.attrs["model_config"]
            dump[variant + "/h5_config"] = np.asarray(config.decode() if isinstance(config, bytes) else config)
            h5.visititems(lambda name, item: dump.__setitem__(variant + "/h5/" + name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
np.savez(out, **dump)
print("dumped", len(dump))
