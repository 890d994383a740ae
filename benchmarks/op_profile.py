"""Where a frozen step's time goes in Keras 2 graph mode, per TensorFlow op type.

usage: python benchmarks/op_profile.py [--steps N] [--out FILE]

Explains speed.py's frozen patched / ideal figure: the same three models (speed.arms),
one traced train_on_batch step at a time (FULL_TRACE), op times summed by op type
and averaged over the steps.  A hand-written ``training=False`` BN layer lets
TensorFlow's graph optimizer fuse Conv2D + FusedBatchNorm + Relu into one
``_FusedConv2D``; the patched layer's runtime flag (which honours freezing after
the model was built) puts a conditional between them, so they stay separate ops.
"""
import argparse
import collections

import numpy as np

import speed
from keras_bn_patch.tools import keras_api


def op_times(model, x, y, steps):
    """{op type: microseconds per step} over ``steps`` traced steps."""
    import tensorflow as tf
    model._make_train_function()
    function = model.train_function
    # Both set before its first call (TF 1.13 crashes on a traced call without run_metadata).
    function.run_options = tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)
    function.run_metadata = tf.RunMetadata()
    inputs = [x, y, np.ones(len(x), "float32")] + ([1] if model.uses_learning_phase else [])
    function(inputs)  # warm-up
    totals = collections.Counter()
    for _ in range(steps):
        function.run_metadata = metadata = tf.RunMetadata()
        function(inputs)
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                label = node.timeline_label  # "name = OpType(inputs)"
                op = label.split("=", 1)[1].split("(")[0].strip() if "=" in label else node.node_name
                totals[op] += node.op_end_rel_micros
    return {op: total / steps for op, total in totals.most_common()}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    api = keras_api.load("keras")
    x, y = speed.batch()
    report = {"environment": {"flavour": api.name, "version": api.version, "steps": args.steps}, "arms": {}}
    for arm, model in speed.arms(api, frozen=True).items():
        times = op_times(model, x, y, args.steps)
        report["arms"][arm] = {"total_microseconds": sum(times.values()),
                               "top_ops_microseconds": dict(list(times.items())[:6])}
    speed.write(report, args.out)


if __name__ == "__main__":
    main()
