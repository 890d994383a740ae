"""One worker of a MultiWorkerMirroredStrategy run on localhost (of one worker, or more): a model with a frozen BN layer (the V1 class)
fitted on the same data; prints JSON: the fit loss at learning rate 0 and evaluate()'s loss,
whether the moving statistics stayed bit-identical, and the weights before and after fitting
at learning rate 0.001.

usage: python multiworker_run.py FLAVOUR INDEX PORT...   (one port per worker)
"""
import json
import os
import sys

if len(sys.argv) > 2:
    index, ports = int(sys.argv[2]), sys.argv[3:]
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": ["localhost:%s" % port for port in ports]},
                                          "task": {"type": "worker", "index": index}})

import numpy as np  # noqa: E402

from helpers import frozen_model, get_value, sgd  # noqa: E402

import keras_bn_patch  # noqa: E402,F401  (installs)
from keras_bn_patch.tools import keras_api  # noqa: E402

api = keras_api.load(sys.argv[1])
import tensorflow as tf  # noqa: E402

rng = np.random.RandomState(0)
x = (rng.normal(size=(64, 8)) * 3 + 4).astype("float32")
y = rng.normal(size=(64, 2)).astype("float32")


def dataset():
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)  # workers split each global batch


strategy = tf.distribute.MultiWorkerMirroredStrategy() if hasattr(tf.distribute, "MultiWorkerMirroredStrategy") \
    else tf.distribute.experimental.MultiWorkerMirroredStrategy()
with strategy.scope():
    tf.random.set_seed(1)
    model, bn = frozen_model(api, name="worker_bn")
    model.compile(sgd(api, 0.0), "mse")
    start = np.random.RandomState(2)  # the same weights in every process, however TF initialises
    model.set_weights([(start.normal(size=w.shape) * 0.1).astype("float32") if w.ndim > 1 else w
                       for w in model.get_weights()])
start_weights = model.get_weights()
before = [get_value(api, bn.moving_mean).copy(), get_value(api, bn.moving_variance).copy()]
fit_loss = model.fit(dataset(), epochs=1, verbose=0).history["loss"][-1]
evaluate_loss = model.evaluate(dataset(), verbose=0)
with strategy.scope():
    model.compile(sgd(api, 0.001), "mse")
model.fit(dataset(), epochs=2, verbose=0)
print(json.dumps({"fit": float(fit_loss), "evaluate": float(np.ravel(evaluate_loss)[0]),
                  "statistics_kept": all(np.array_equal(a, b) for a, b in zip(
                      before, [get_value(api, bn.moving_mean), get_value(api, bn.moving_variance)])),
                  "start": [w.tolist() for w in start_weights],
                  "weights": [w.tolist() for w in model.get_weights()]}))
# TensorFlow's collective threads can abort the interpreter's teardown ("terminate called without
# an active exception", with or without this package: a known MultiWorkerMirroredStrategy bug of
# TF 2.x, seen here once on TF 2.8): the result is out, so leave without the teardown.
sys.stdout.flush()
os._exit(0)
