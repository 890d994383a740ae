"""Speed of the patch, as ratios measured in one process.

usage: python benchmarks/speed.py [--flavour NAME] [--rounds N] [--steps N] [--quick] [--out FILE]

Three arms built from the same weights, trained on the same batch, alternated
round by round; each ratio is the median over rounds of the ratio of the arms'
per-step times within the round (pairing cancels drift), its noise the
interquartile range of those ratios over their median; a figure above its limit is
measured again with more rounds before it counts (gate.py), each time in a fresh process
(``--again``), as TF 1 slows down with every graph a process has built:
- unpatched: the model built and run while the patch is uninstalled (plain Keras);
- patched:   the same model built with the patch installed and enabled;
- ideal:     the backbone hand-built with ``training=False`` (what a careful engineer writes).
Ratios: frozen backbone patched/unpatched and patched/ideal, trainable model
patched/unpatched; the eager per-call overhead of the wrapper on one BN call
(TF 2 flavours); the wall time of ``import keras_bn_patch`` in a fresh interpreter; what the
site switch's ``.pth`` line adds to every interpreter start (importing its start-up finder); and
what diagnose() and recalibrate() cost on ResNet50 against a predict() pass (tools_cost.py).
"""
import argparse
import functools
import json
import os
import subprocess
import sys
import time

import numpy as np

import gate
import keras_bn_patch
import tools_cost
from keras_bn_patch.tools import keras_api

BATCH, SIZE, CHANNELS = 32, 32, 32


def build(api, frozen, hand_built_inference=False):
    layers, models = api.keras.layers, api.keras.models
    inputs = layers.Input((SIZE, SIZE, 3))
    hidden = inputs
    backbone_layers = []
    for block in range(3):
        conv = layers.Conv2D(CHANNELS, 3, padding="same", use_bias=False)
        bn = api.bn()
        backbone_layers += [conv, bn]
        hidden = conv(hidden)
        hidden = bn(hidden, training=False) if hand_built_inference else bn(hidden)
        hidden = layers.Activation("relu")(hidden)
    hidden = layers.GlobalAveragePooling2D()(hidden)
    model = models.Model(inputs, layers.Dense(10)(hidden))
    if frozen:
        for layer in backbone_layers:
            layer.trainable = False
    model.compile(api.keras.optimizers.SGD(0.01), "mse")
    return model


def step_time(model, x, y, steps):
    model.train_on_batch(x, y)  # warm-up: builds / traces the train function
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def arms(api, frozen):
    keras_bn_patch.uninstall()
    unpatched = build(api, frozen)
    keras_bn_patch.install()
    patched = build(api, frozen)
    result = {"unpatched": unpatched, "patched": patched}
    if frozen:
        result["ideal"] = build(api, frozen, hand_built_inference=True)
    weights = patched.get_weights()
    for model in result.values():
        model.set_weights(weights)
    return result


def step_times(api, frozen, rounds, steps, x, y):
    """Per arm, the step time of each round (the arms alternated so drift hits all alike).

    The order of the arms rotates from round to round: whichever arm runs right after
    another model pays for the caches that model evicted, and no arm should always be it."""
    models = arms(api, frozen)
    names = list(models)
    times = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(step_time(models[name], x, y, steps))
    return times


def paired_ratio(times, numerator, denominator):
    """Median over rounds of the ratio within each round, and its noise: the interquartile
    range of those ratios over their median.  Pairing by round cancels the machine's drift."""
    ratios = np.array(times[numerator]) / np.array(times[denominator])
    median = float(np.median(ratios))
    return median, spread(ratios)


def spread(values):
    return float((np.percentile(values, 75) - np.percentile(values, 25)) / np.median(values))


def eager_overhead(api, rounds):
    """Wrapper cost on one eager BN call, relative to the unpatched call (TF 2 flavours)."""
    if not api.eager:
        return None, None  # graph mode has no per-call wrapper cost: the wrapper runs once, at build
    x = np.random.RandomState(0).normal(size=(BATCH, SIZE, SIZE, CHANNELS)).astype("float32")
    keras_bn_patch.uninstall()
    plain = api.bn()
    plain(x, training=True)
    keras_bn_patch.install()
    patched = api.bn()  # trainable: same computation as plain, so the difference is the wrapper
    patched(x, training=True)
    times = {"plain": [], "patched": []}
    for _ in range(rounds):
        for name, layer in (("plain", plain), ("patched", patched)):
            start = time.perf_counter()
            for _ in range(20):
                layer(x, training=True)
            times[name].append((time.perf_counter() - start) / 20)
    ratio, noise = paired_ratio(times, "patched", "plain")
    return ratio - 1.0, noise


def fresh_seconds(code, repeats):
    """Median of what ``code`` prints (a time) in fresh, plain interpreters, and its spread: this
    process's start-up path is left out of their PYTHONPATH (it would start them patched)."""
    from keras_bn_patch.reach.children import without_startup
    env = without_startup(os.environ)
    values = [float(subprocess.check_output([sys.executable, "-c", code], env=env)) for _ in range(repeats)]
    return float(np.median(values)), spread(values)


def import_seconds(repeats):
    """Wall time of ``import keras_bn_patch``."""
    return fresh_seconds("import time; t = time.perf_counter(); import keras_bn_patch; "
                         "print(time.perf_counter() - t)", repeats)


def startup_seconds(repeats):
    """What the site switch's .pth line adds to every interpreter start: the import of the
    start-up finder."""
    return fresh_seconds("import time; t = time.perf_counter(); import keras_bn_patch_startup; "
                         "print(time.perf_counter() - t)", repeats)


def startup_children_seconds(repeats):
    """What the start-up path adds to each process a patched one starts: its ``sitecustomize``
    (leaves sys.path, imports the start-up finder, looks for the process's own sitecustomize)."""
    from keras_bn_patch.reach.children import STARTUP
    return fresh_seconds("import sys, time; sys.modules.pop('sitecustomize', None); sys.path.insert(0, %r)\n"
                         "t = time.perf_counter(); import sitecustomize; print(time.perf_counter() - t)"
                         % STARTUP, repeats)


# The figures timed in fresh interpreters, each measurement anew.
FRESH_INTERPRETERS = {"import_seconds": import_seconds, "startup_pth_seconds": startup_seconds,
                      "startup_children_seconds": startup_children_seconds}


def batch():
    """The one batch every arm trains on: raw 0-255 pixels, random targets."""
    rng = np.random.RandomState(0)
    return (rng.uniform(0, 255, (BATCH, SIZE, SIZE, 3)).astype("float32"),
            rng.normal(size=(BATCH, 10)).astype("float32"))


def write(report, out):
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if out:
        with open(out, "w") as handle:
            handle.write(text + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--flavour")
    parser.add_argument("--session", default="", help="the benchmark session, for its known misses")
    parser.add_argument("--rounds", type=int, default=9)  # a multiple of the 3 arms: each order alike
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="9 rounds of 3 steps (CI)")
    parser.add_argument("--images", type=int, default=128, help="the tools' data (ResNet50)")
    parser.add_argument("--out")
    parser.add_argument("--again", nargs=2, metavar=("FIGURE", "ROUNDS"),
                        help="measure only FIGURE, over ROUNDS rounds, and print (value, noise) as JSON: "
                             "the gate's re-measurement, in a fresh process")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.steps = 9, 3
    tools_rounds = 3 if args.quick else 5  # a round of predict and both tools: about 10 s on ResNet50
    api = keras_api.load(args.flavour)
    x, y = batch()
    timed = {}  # (frozen, rounds) -> step times: both frozen figures come from one measurement

    def times(frozen, rounds):
        if (frozen, rounds) not in timed:
            timed[frozen, rounds] = step_times(api, frozen, rounds, args.steps, x, y)
        return timed[frozen, rounds]

    measures = {
        "frozen_step_patched_over_unpatched": lambda r: paired_ratio(times(True, r), "patched", "unpatched"),
        "frozen_step_patched_over_ideal": lambda r: paired_ratio(times(True, r), "patched", "ideal"),
        "trainable_step_patched_over_unpatched": lambda r: paired_ratio(times(False, r), "patched", "unpatched"),
        "eager_call_overhead": lambda r: eager_overhead(api, r),
    }
    measures.update(FRESH_INTERPRETERS)
    tools = []  # the ResNet50, built after the step figures: in TF 1 it would share their graph

    def tools_times(rounds):
        if not tools:
            tools.append(tools_cost.ToolsCost(api, args.images))
        return tools[0].times(rounds)

    for tool in ("diagnose", "recalibrate"):  # the gate's retries scale the tools' rounds alike
        measures[tool + "_over_predict"] = lambda r, tool=tool: paired_ratio(
            tools_times(tools_rounds * r // args.rounds), tool, "predict")
    if args.again:
        figure, rounds = args.again
        print(json.dumps(measures[figure](int(rounds))))
        return

    def in_a_fresh_process(figure, rounds):
        """The gate's re-measurement: in TF 1 every graph a process has built slows what it runs
        after, so a measurement in the process of the first could never rescue a noisy first one."""
        command = [sys.executable, os.path.abspath(__file__), "--rounds", str(args.rounds), "--steps", str(args.steps),
                   "--images", str(args.images), "--again", figure, str(rounds)] + (["--quick"] if args.quick else [])
        if args.flavour:
            command += ["--flavour", args.flavour]
        output = subprocess.check_output(command, universal_newlines=True)
        return tuple(json.loads(output.strip().splitlines()[-1]))

    figures = {}
    for name, measure in measures.items():
        # The times of fresh interpreters (import, start-up) are fresh already.
        fresh = None if name in FRESH_INTERPRETERS else functools.partial(in_a_fresh_process, name)
        figures[name] = gate.confirmed(args.session, name, measure, args.rounds, fresh)
        print("%s: %s (attempts: %s)" % (name, figures[name][0], figures[name][2]), flush=True)
    speed = {name: value for name, (value, _, _) in figures.items()}
    speed["noise_iqr_over_median"] = {name: noise for name, (_, noise, _) in figures.items()}
    speed["attempts"] = {name: attempts for name, (_, _, attempts) in figures.items() if len(attempts) > 1}
    speed["tools_seconds"] = {name: float(np.median(values)) for name, values in tools_times(tools_rounds).items()}
    difference, passes, seconds = tools[0].against_exact()
    speed["tools_seconds"].update(seconds)
    # Not gated: a staged call's fixed cost (a function per stage) is most of it on 128 images; the
    # estimate is the one-pass option, its distance from exact reported.
    for name in ("recalibrate_batch32", "recalibrate_estimate_batch32"):
        speed[name + "_over_predict"] = seconds[name] / speed["tools_seconds"]["predict"]
    speed["recalibrate_passes"] = passes
    speed["recalibrate_estimate_distance_vs_exact"] = difference.pop("recalibrate_estimate_batch32")
    speed["recalibrate_max_rel_diff_vs_exact"] = max(difference.values())
    speed["recalibrate_max_rel_diff_by_call"] = difference
    speed["step_seconds"] = {group: {arm: float(np.median(values)) for arm, values in times(frozen, args.rounds).items()}
                             for group, frozen in (("frozen", True), ("trainable", False))}
    report = {"speed": speed, "environment": {
        "flavour": api.name, "version": api.version, "python": sys.version.split()[0],
        "cpus": os.cpu_count(), "rounds": args.rounds, "steps": args.steps, "batch": BATCH,
        "tools": {"model": "ResNet50", "images": args.images, "batch": tools_cost.BATCH, "bn_layers": len(tools[0].layers),
                  "rounds": tools_rounds}}}
    write(report, args.out)


if __name__ == "__main__":
    main()
