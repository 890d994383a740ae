"""Train a model with a frozen BN layer (the V1 class) through ``model_to_estimator``; print JSON:
the training loss of each step (learning rate 0: the same batch each time), the evaluate loss,
and the moving statistics in the estimator's first and last checkpoints (of steps 0 and 3; 1 and 3 in TF < 1.9).

usage: python estimator_run.py MODEL_DIR     (KERAS_BN_PATCH=0: plain Keras)
"""
import glob
import json
import os
import sys

import numpy as np

from helpers import X, frozen_model, sgd  # noqa: E402

import keras_bn_patch  # noqa: E402,F401  (installs unless KERAS_BN_PATCH=0)
from keras_bn_patch.tools import keras_api  # noqa: E402

api = keras_api.load("tf.keras")
tf = __import__("tensorflow")
v1 = getattr(tf.compat, "v1", tf)  # TF < 1.13: its names are at the top
model, bn = frozen_model(api, name="estimator_bn")
model.compile(sgd(api, 0.0), "mse")
y = np.random.RandomState(3).normal(size=(32, 2)).astype("float32")
directory = sys.argv[1]
estimator = tf.keras.estimator.model_to_estimator(
    keras_model=model, model_dir=directory,
    config=tf.estimator.RunConfig(save_summary_steps=1, tf_random_seed=1))
name = model.input_names[0]


def input_fn():
    dataset = tf.data.Dataset.from_tensor_slices(({name: X}, y)).batch(32).repeat()
    one_shot = getattr(dataset, "make_one_shot_iterator", None)  # TF 1.4's Estimator takes tensors
    return one_shot().get_next() if one_shot is not None else dataset


estimator.train(input_fn, steps=3)
evaluated = float(estimator.evaluate(input_fn, steps=1)["loss"])
losses = []
for path in glob.glob(os.path.join(directory, "events.out*")):
    for event in v1.train.summary_iterator(path):
        losses += [value.simple_value for value in event.summary.value if value.tag.startswith("loss")]


def statistics(checkpoint):
    names = sorted(n for n, _ in v1.train.list_variables(checkpoint) if "moving_" in n)  # its one BN layer
    return {n: v1.train.load_variable(checkpoint, n).tolist() for n in names}


steps = sorted(int(path.rsplit("-", 1)[1][:-len(".index")])  # TF < 1.9 saves no step 0
               for path in glob.glob(os.path.join(directory, "model.ckpt-*.index")))
print(json.dumps({"train": losses, "evaluate": evaluated,
                  "first": statistics(os.path.join(directory, "model.ckpt-%d" % steps[0])),
                  "last": statistics(os.path.join(directory, "model.ckpt-%d" % steps[-1]))}))
