"""Accuracy of fine-tuning a frozen BN backbone: unpatched vs patched vs ideal.

usage: python benchmarks/accuracy.py [--flavour NAME] [--quick] [--out FILE]

The protocol (README.rst, "Benchmarks", states it in prose):
- data: scikit-learn's bundled handwritten digits (1797 real 8x8 images, values
  0-16; nothing is downloaded).  Source task: digits 0-4, pixels scaled to 0-1.
  Target task: digits 5-9, split 70/30 into training and validation data.
- network: a small residual CNN with BatchNormalization (a stem and two residual
  blocks) and a two-layer head, pretrained on the source task from a seeded NumPy
  initialisation.
- fine-tuning: a new head on the target task (Adam), with the backbone frozen
  entirely ("frozen") or all but its top block ("top block trainable").
- three arms from the same weights and the same batch order: ``unpatched`` (plain
  Keras: the package is uninstalled), ``patched`` (installed), ``ideal`` (plain
  Keras, the frozen BN layers hand-called with ``training=False``).  TensorFlow
  runs on one thread with resource variables, so each arm repeats bit for bit.
- scenarios: the target pixels scaled like the source ("class shift only"), scaled
  to [-1, 1] instead ("preprocessing shift", the mismatch of Keras's "tf" and
  "torch" preprocessing modes) or left at raw 0-255 (the most common mistake);
  and "overfit": a frozen backbone and the head fitted to 50 target images for
  four times as many epochs, validated on those same images.
Reported per arm, over seeds (mean, standard deviation, values): the
training-mode accuracy that fit() shows for the last epoch, evaluate() accuracy
on the training data, validation accuracy, and the mean per-epoch curves.
"""
import argparse
import json
import sys
import time

import numpy as np

import keras_bn_patch
from keras_bn_patch.tools import keras_api

from determinism import reproducible

ARMS = ("unpatched", "patched", "ideal")
# The target task's preprocessing, applied to 0-1 pixels.
PREPROCESSING = {
    "0-1": lambda x: x,
    "0-255": lambda x: x * 255.0,
    "-1-1": lambda x: x * 2.0 - 1.0,
}
# name: (target preprocessing, backbone blocks left trainable, target training images or None)
SCENARIOS = {
    "preprocessing shift, frozen": ("-1-1", 0, None),
    "preprocessing shift, top block trainable": ("-1-1", 1, None),
    "raw 0-255 pixels, frozen": ("0-255", 0, None),
    "class shift only, frozen": ("0-1", 0, None),
    "class shift only, top block trainable": ("0-1", 1, None),
    "overfit 50 images, validated on them": ("0-1", 0, 50),
}
HEADLINE = "preprocessing shift, frozen"
FULL = {"seeds": 5, "pretrain_epochs": 10, "epochs": 15}
QUICK = {"seeds": 3, "pretrain_epochs": 6, "epochs": 8}
BATCH = 32
HEAD_UNITS = 64  # a two-layer head, able to overfit a small set


def load_digits():
    from sklearn.datasets import load_digits as sklearn_digits
    digits = sklearn_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]  # 0-1, channels last
    return x, digits.target


def glorot(rng, shape):
    fan_in = fan_out = shape[-1]
    if len(shape) > 1:
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype("float32")


def seeded_weights(rng, model):
    """Kernels Glorot-uniform from NumPy, the rest as Keras built them: one start in every flavour."""
    return [glorot(rng, w.shape) if w.ndim >= 2 else w for w in model.get_weights()]


def backbone(api, inputs, frozen_blocks=(), hand_built=False):
    """Stem + two residual blocks; blocks named in ``frozen_blocks`` have their layers frozen.

    ``hand_built``: call the BN layers of frozen blocks with ``training=False``, as a careful
    engineer does by hand (the ideal arm).
    """
    layers = api.keras.layers

    def conv_bn(hidden, block, name, filters, strides=1, relu=True):
        conv = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=name + "_conv")
        bn = api.bn(name=name + "_bn")
        frozen = block in frozen_blocks
        conv.trainable = bn.trainable = not frozen
        hidden = conv(hidden)
        hidden = bn(hidden, training=False) if frozen and hand_built else bn(hidden)
        return layers.Activation("relu")(hidden) if relu else hidden

    hidden = conv_bn(inputs, "stem", "stem", 16)
    for block, filters, strides in (("block1", 16, 1), ("block2", 32, 2)):
        shortcut = hidden
        if strides != 1:
            shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=block + "_proj")
            shortcut.trainable = block not in frozen_blocks
            shortcut = shortcut(hidden)
        hidden = conv_bn(hidden, block, block + "_a", filters, strides)
        hidden = conv_bn(hidden, block, block + "_b", filters, relu=False)
        hidden = layers.Activation("relu")(layers.Add()([hidden, shortcut]))
    return layers.GlobalAveragePooling2D()(hidden)


def classifier(api, frozen_blocks=(), hand_built=False):
    layers = api.keras.layers
    inputs = layers.Input((8, 8, 1))
    features = backbone(api, inputs, frozen_blocks, hand_built)
    hidden = layers.Dense(HEAD_UNITS, activation="relu", name="head_hidden")(features)
    return api.keras.models.Model(inputs, layers.Dense(5, activation="softmax", name="head")(hidden))


def compile_model(api, model):
    model.compile(api.keras.optimizers.Adam(0.003), "sparse_categorical_crossentropy", metrics=["accuracy"])


def accuracy_keys(history):
    train = next(k for k in history if k in ("acc", "accuracy"))
    return train, "val_" + train


def fresh_session(api):
    """A new graph for each model (TF 1 graphs only grow), on one thread with resource
    variables: without them a last-bit difference grows over a run into a different
    accuracy, which would hide whether patched == ideal."""
    api.keras.backend.clear_session()
    reproducible(api)


def pretrain(api, x, y, seed, epochs):
    """The backbone's weights after training on the source task (plain Keras: every layer trainable)."""
    keras_bn_patch.uninstall()
    fresh_session(api)
    model = classifier(api)
    model.set_weights(seeded_weights(np.random.RandomState(seed), model))
    compile_model(api, model)
    order = np.random.RandomState(seed).permutation(len(x))
    model.fit(x[order], y[order], batch_size=BATCH, epochs=epochs, verbose=0, shuffle=False)
    return model.get_weights()


def fine_tune(api, arm, pretrained, head_init, data, trainable_blocks, epochs):
    frozen_blocks = ("stem", "block1", "block2")[:3 - trainable_blocks]
    if arm == "patched":
        keras_bn_patch.install()
    else:
        keras_bn_patch.uninstall()
    fresh_session(api)
    model = classifier(api, frozen_blocks, hand_built=(arm == "ideal"))
    model.set_weights(pretrained[:-4] + head_init)
    compile_model(api, model)
    result = fit_and_measure(model, data, epochs)
    keras_bn_patch.install()
    return result


def fit_and_measure(model, data, epochs):
    """fit() without shuffling; its last training-mode accuracy, evaluate() on the training and
    the validation data, and the per-epoch curves."""
    x, y, x_val, y_val = data
    batch = min(BATCH, len(x) // 5)  # at least 5 steps an epoch, for the overfit scenario
    history = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False,
                        validation_data=(x_val, y_val)).history
    train_key, val_key = accuracy_keys(history)
    return {
        "train_mode_acc": float(history[train_key][-1]),
        "evaluate_train_acc": float(model.evaluate(x, y, batch_size=BATCH, verbose=0)[1]),
        "val_acc": float(model.evaluate(x_val, y_val, batch_size=BATCH, verbose=0)[1]),
        "curve_train_mode_acc": [float(v) for v in history[train_key]],
        "curve_val_acc": [float(v) for v in history[val_key]],
    }


def summarise_seeds(per_seed):
    """{scenario: {arm: [result per seed]}} -> mean, std and values of each figure, mean curves."""
    scenarios = {}
    for name, arms in per_seed.items():
        scenarios[name] = {}
        for arm, results in arms.items():
            summary = {key: over_seeds([r[key] for r in results])
                       for key in ("train_mode_acc", "evaluate_train_acc", "val_acc")}
            summary["curves"] = {key: np.mean([r[key] for r in results], axis=0).tolist()
                                 for key in ("curve_train_mode_acc", "curve_val_acc")}
            scenarios[name][arm] = summary
    return scenarios


def target_data(x, y, seed, preprocessing, images):
    rng = np.random.RandomState(seed + 1000)
    order = rng.permutation(len(x))
    x, y = PREPROCESSING[preprocessing](x[order]), y[order]
    if images:  # overfit: validate on the very images it was fitted to
        return x[:images], y[:images], x[:images], y[:images]
    split = int(0.7 * len(x))
    return x[:split], y[:split], x[split:], y[split:]


def over_seeds(values):
    """Mean, standard deviation and the values themselves."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": [float(v) for v in values]}


def run(api, settings, log=print):
    x, y = load_digits()
    source, target = y < 5, y >= 5
    per_seed = {name: {arm: [] for arm in ARMS} for name in SCENARIOS}
    for seed in range(settings["seeds"]):
        pretrained = pretrain(api, x[source], y[source], seed, settings["pretrain_epochs"])
        head_rng = np.random.RandomState(seed + 2000)
        head_init = [glorot(head_rng, w.shape) if w.ndim == 2 else np.zeros_like(w) for w in pretrained[-4:]]
        for name, (preprocessing, trainable_blocks, images) in SCENARIOS.items():
            data = target_data(x[target], y[target] - 5, seed, preprocessing, images)
            epochs = settings["epochs"] * (4 if images else 1)  # overfitting 50 images takes longer
            for arm in ARMS:
                result = fine_tune(api, arm, pretrained, head_init, data, trainable_blocks, epochs)
                per_seed[name][arm].append(result)
                log("seed %d  %-42s %-9s  train-mode %.3f  evaluate(train) %.3f  val %.3f" % (
                    seed, name, arm, result["train_mode_acc"], result["evaluate_train_acc"], result["val_acc"]))
    scenarios = summarise_seeds(per_seed)
    headline = scenarios[HEADLINE]
    accuracy = {"headline": HEADLINE, "scenarios": scenarios}
    for arm in ARMS:
        accuracy[arm + "_val_acc"] = headline[arm]["val_acc"]["mean"]
    return accuracy


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--flavour")
    parser.add_argument("--quick", action="store_true", help="fewer seeds and epochs (CI)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    api = keras_api.load(args.flavour)
    settings = QUICK if args.quick else FULL
    start = time.time()
    accuracy = run(api, settings, log=lambda line: print(line, flush=True))
    write_report(accuracy, api, settings, start, args.out, data="scikit-learn load_digits (bundled)")


def write_report(accuracy, api, settings, start, out, **environment):
    """The results and where they were measured, as JSON into ``out`` (stdout without it)."""
    report = {"accuracy": accuracy, "environment": dict(
        settings, flavour=api.name, version=api.version, python=sys.version.split()[0],
        seconds=round(time.time() - start, 1), **environment)}
    text = json.dumps(report, indent=2, sort_keys=True)
    if out:
        with open(out, "w") as handle:
            handle.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
