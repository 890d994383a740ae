"""One rank of a Horovod run (``mpirun -np N python horovod_run.py FLAVOUR OUT_DIR``): a model with a
frozen BN layer, fitted with Horovod's DistributedOptimizer as its examples do (initial variables
broadcast from rank 0, each rank on its own shard of the data).  Writes OUT_DIR/rank-<rank>.json: the
fit loss at learning rate 0 and evaluate()'s loss on this rank's shard, whether the moving statistics
stayed bit-identical, and the weights before and after fitting at learning rate 0.001.

Rank r takes every size-th sample from r on and batches of 16 / size: step k of all ranks together
covers samples 16k .. 16k+15, the batch a single rank uses, so one rank's run is the reference.
standalone Keras uses ``horovod.keras``; tf.keras ``horovod.tensorflow.keras``.
"""
import json
import os
import sys

import numpy as np

from helpers import frozen_model, get_value, sgd  # noqa: E402

import keras_bn_patch  # noqa: E402,F401  (installs)
from keras_bn_patch.tools import keras_api  # noqa: E402

flavour, out_dir = sys.argv[1:3]
api = keras_api.load(flavour)
if flavour == "keras":
    import horovod.keras as hvd
else:
    import horovod.tensorflow.keras as hvd

hvd.init()
rank, size = hvd.rank(), hvd.size()
rng = np.random.RandomState(0)
x = (rng.normal(size=(64, 8)) * 3 + 4).astype("float32")
y = rng.normal(size=(64, 2)).astype("float32")
x, y = x[rank::size], y[rank::size]
batch_size = 16 // size

model, bn = frozen_model(api, name="rank_bn")
start = np.random.RandomState(2 + rank)  # other weights on each rank: the broadcast makes them equal
model.set_weights([(start.normal(size=w.shape) * 0.1).astype("float32") if w.ndim > 1 else w
                   for w in model.get_weights()])


def fit(learning_rate, epochs):
    model.compile(hvd.DistributedOptimizer(sgd(api, learning_rate)), "mse")
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)])
    return history.history["loss"][-1]


before = [get_value(api, bn.moving_mean).copy(), get_value(api, bn.moving_variance).copy()]
fit(0.0, 1)  # the broadcast (after the first batch in some Horovod releases)
start_weights = model.get_weights()
fit_loss = fit(0.0, 1)
evaluate_loss = model.evaluate(x, y, batch_size=batch_size, verbose=0)
fit(0.001, 2)
after = [get_value(api, bn.moving_mean), get_value(api, bn.moving_variance)]
with open(os.path.join(out_dir, "rank-%d.json" % rank), "w") as handle:
    json.dump({"fit": float(fit_loss), "evaluate": float(np.ravel(evaluate_loss)[0]),
               "statistics_kept": all(np.array_equal(a, b) for a, b in zip(before, after)),
               "start": [w.tolist() for w in start_weights],
               "weights": [w.tolist() for w in model.get_weights()]}, handle)
