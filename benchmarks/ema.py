"""Keras 3's ``use_ema=True`` and the ``Recalibrate`` callback, on the backend of this process
(``KERAS_BACKEND``: tensorflow, jax or torch), and what recalibrate costs there.

usage: python benchmarks/ema.py [--seeds N] [--epochs N] [--quick] --out FILE
       python benchmarks/ema.py --plot DIR   (every DIR/ema-*.json into DIR/ema-accuracy.png)

EMA: a small BN CNN on scikit-learn's digits (1,437 training and 360 validation images, 8x8),
``SGD(0.1, momentum=0.9, use_ema=True, ema_momentum=0.99)``, batch 32, per seed: validation
accuracy as ``fit()`` leaves the model (measured by a callback at ``on_train_end``, after the EMA
swap and before ``Recalibrate``, listed after it) and with ``Recalibrate(x_train, batch_size=32)``.
Cost: a residual BN network on 1,024 random 32x32x3 images, ``recalibrate(model, x,
batch_size=32)`` over ``model.predict(x, batch_size=32)``, the median of 3 rounds in this process.
"""
import argparse
import glob
import json
import os
import time

import numpy as np


def digits():
    from sklearn.datasets import load_digits
    data = load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]
    order = np.random.RandomState(0).permutation(len(x))
    x, y = x[order], data.target[order]
    return (x[:1437], y[:1437]), (x[1437:], y[1437:])


def cnn(keras):
    layers = keras.layers
    inputs = keras.Input((8, 8, 1))
    hidden = inputs
    for width in (16, 32):
        hidden = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(width, 3, padding="same")(hidden)))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(hidden)))


def ema_run(keras, seed, epochs):
    from keras_bn_patch.callbacks import Recalibrate
    (x, y), (x_val, y_val) = digits()
    keras.utils.set_random_seed(seed)
    model = cnn(keras)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True, ema_momentum=0.99),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    as_left = []

    class AsFitLeavesIt(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            as_left.append(model.evaluate(x_val, y_val, verbose=0)[1])

    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[AsFitLeavesIt(), Recalibrate(x, batch_size=32)])
    return {"seed": seed, "as_fit_leaves_it": float(as_left[0]),
            "with_recalibrate": float(model.evaluate(x_val, y_val, verbose=0)[1])}


def residual(keras):
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    hidden = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(32, 3, padding="same")(inputs)))
    for _ in range(3):
        branch = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(32, 3, padding="same")(hidden)))
        branch = layers.BatchNormalization()(layers.Conv2D(32, 3, padding="same")(branch))
        hidden = layers.Activation("relu")(layers.add([hidden, branch]))
    return keras.Model(inputs, layers.Dense(10)(layers.GlobalAveragePooling2D()(hidden)))


def cost(keras, rounds=3):
    import keras_bn_patch
    x = np.random.RandomState(0).normal(size=(1024, 32, 32, 3)).astype("float32")
    model = residual(keras)
    model.predict(x, batch_size=32, verbose=0)  # its function built, as in a user's process
    ratios, summary = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        model.predict(x, batch_size=32, verbose=0)
        predict = time.perf_counter() - start
        start = time.perf_counter()
        summary = keras_bn_patch.recalibrate(model, x, batch_size=32, verbose=0)
        ratios.append((time.perf_counter() - start) / predict)
    return {"recalibrate_over_predict": float(np.median(ratios)), "rounds": rounds, "images": len(x),
            "method": summary.method, "passes": summary.passes}


def plot(directory):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = [json.load(open(path)) for path in sorted(glob.glob(os.path.join(directory, "ema-*.json")))]
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for index, run in enumerate(runs):
        for offset, key, label in ((-0.12, "as_fit_leaves_it", "as fit() leaves it"),
                                   (0.12, "with_recalibrate", "with Recalibrate")):
            values = [100 * seed[key] for seed in run["ema"]]
            axis.scatter([index + offset] * len(values), values, color="C0" if offset < 0 else "C1",
                         label=label if index == 0 else None)
    axis.set_xticks(range(len(runs)))
    axis.set_xticklabels(["Keras %s, %s" % (run["environment"]["keras"], run["environment"]["backend"]) for run in runs])
    axis.set_ylabel("validation accuracy (%)")
    axis.set_title("use_ema=True: BN statistics of the raw weights vs recalibrated")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(os.path.join(directory, "ema-accuracy.png"), dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 2 epochs")
    parser.add_argument("--out")
    parser.add_argument("--plot", metavar="DIR")
    args = parser.parse_args(argv)
    if args.plot:
        return plot(args.plot)
    if args.quick:
        args.seeds, args.epochs = 2, 2
    import keras
    runs = [ema_run(keras, seed, args.epochs) for seed in range(args.seeds)]
    report = {"ema": runs, "cost": cost(keras), "environment": {
        "keras": keras.__version__, "backend": keras.backend.backend(), "epochs": args.epochs, "cpus": os.cpu_count()}}
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
