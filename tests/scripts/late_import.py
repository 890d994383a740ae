"""A backbone built and trained *before* ``import keras_bn_patch``, then frozen, given a head on
an existing tensor, compiled and fine-tuned (a notebook's cells run out of order; a script that
builds ``keras.applications`` before its other imports).  Prints JSON.

usage: python late_import.py FLAVOUR
"""
import json
import os
import sys
import warnings

import numpy as np

from helpers import X, X_SOURCE, Y, sgd, train_minus_test_loss  # noqa: E402

os.environ["KERAS_BN_PATCH"] = "0"  # keras_api is imported below without installing anything
from keras_bn_patch.tools import keras_api  # noqa: E402

api = keras_api.load(sys.argv[1])
layers = api.keras.layers
inputs = layers.Input((8,))
hidden = layers.Activation("relu", name="late_relu")(api.bn(name="late_bn")(layers.Dense(16)(inputs)))
base = api.keras.models.Model(inputs, hidden)
base.compile(sgd(api, 0.1), "mse")
base.fit(X_SOURCE, np.zeros((32, 16), "float32"), epochs=1, verbose=0)

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import keras_bn_patch
    keras_bn_patch.install()  # as `import keras_bn_patch` does by default
    for layer in base.layers:
        layer.trainable = False
    model = api.keras.models.Model(base.inputs, layers.Dense(2)(base.get_layer("late_relu").output))
    model.compile(sgd(api, 0.0), "mse")
    gap = train_minus_test_loss(model, X, Y)
with keras_bn_patch.disabled():
    unpatched_gap = train_minus_test_loss(model, X, Y)
status = keras_bn_patch.status()
print(json.dumps({"gap": gap, "unpatched_gap": unpatched_gap,
                  "warnings": [str(w.message) for w in caught if "built before keras_bn_patch" in str(w.message)],
                  "status": status,
                  "handled_by": [row["handled_by"] for row in keras_bn_patch.diagnose(model, X).to_dict()["layers"]]}))
