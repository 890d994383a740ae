"""What diagnose() and recalibrate() cost on a real backbone, against a predict() pass.

ResNet50 of the flavour's own ``applications`` (``weights=None``, 64x64x3 input, 53 BN layers),
on scikit-learn's digits (8x8, enlarged to 64x64, three channels), batch 32.  Each round
times, in one process: ``model.predict`` (its function already built), ``diagnose`` and
``recalibrate`` (each from the same initial weights, building its own graph or trace, as a
user's call does); ``recalibrate(..., batch_size=32)`` (the staged method) is timed once after.  The ratios are the medians over rounds of the ratios within a round.
``recalibrate_max_rel_diff_vs_exact``: the largest difference, over every layer and channel,
between the statistics of the default method and those of the layer-by-layer one (the
exact reference), in units of the channel's standard deviation (mean) and of its variance
(variance), for each recalibrate call (``recalibrate``, ``recalibrate_batch32``);
``recalibrate_passes``: the passes each took.
"""
import time

import numpy as np

import keras_bn_patch
from keras_bn_patch.tools import keras_api
from keras_bn_patch.tools.diagnose import bn_layers

BATCH = 32
# The recalibrate calls against_exact measures: (name, batch_size, method).  The estimate (one
# pass of batch statistics, as update_bn) is not exact: its distance from exact is reported.
CALLS = (("recalibrate", None, "auto"), ("recalibrate_batch32", BATCH, "auto"),
         ("recalibrate_estimate_batch32", BATCH, "estimate"))


def images(count):
    from sklearn.datasets import load_digits
    digits = load_digits().images[:count] / 16.0
    large = np.kron(digits, np.ones((8, 8)))[..., None]
    return np.repeat(large, 3, axis=-1).astype("float32")


class ToolsCost(object):
    def __init__(self, api, count):
        self.x = images(count)
        self.model = api.keras.applications.ResNet50(weights=None, input_shape=self.x.shape[1:], classes=10)
        self.initial = self.model.get_weights()
        self.layers = [layer for _, layer, _ in bn_layers(self.model)]
        self.api = api
        self.model.predict(self.x, batch_size=BATCH)  # builds predict's function, as in a user's process
        self._times = {}

    def _timed(self, call):
        self.model.set_weights(self.initial)
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    def times(self, rounds):
        if rounds not in self._times:
            found = {"predict": [], "diagnose": [], "recalibrate": []}
            for _ in range(rounds):
                found["predict"].append(self._timed(lambda: self.model.predict(self.x, batch_size=BATCH)))
                found["diagnose"].append(self._timed(lambda: keras_bn_patch.diagnose(self.model, self.x)))
                found["recalibrate"].append(self._timed(
                    lambda: keras_bn_patch.recalibrate(self.model, self.x, verbose=0)))
            self._times[rounds] = found
        return self._times[rounds]

    def statistics(self):
        return [np.asarray(value, dtype="float64") for value in keras_api.get_values(
            self.api, [variable for layer in self.layers for variable in (layer.moving_mean, layer.moving_variance)])]

    def against_exact(self):
        """({call: max difference in standard deviations}, {call: passes taken}, {call: seconds, and
        its layer-by-layer reference's}), for each of CALLS, each against layer by layer in
        batches of the same size (a convolution's rounding differs from one batch size to another,
        and a random ResNet50 amplifies it from layer to layer).  Timed once, after the rounds: a
        staged call leaves TF 1's session more executors, which would weigh on the rounds' figures
        after it."""
        passes, worst, seconds, exact = {}, {}, {}, {}
        for name, batch_size, method in CALLS:
            if batch_size not in exact:
                self.model.set_weights(self.initial)
                start = time.perf_counter()
                keras_bn_patch.recalibrate(self.model, self.x, verbose=0, method="layer_by_layer",
                                           batch_size=batch_size)
                seconds[name + "_layer_by_layer"] = time.perf_counter() - start
                exact[batch_size] = self.statistics()
            self.model.set_weights(self.initial)
            start = time.perf_counter()
            passes[name] = keras_bn_patch.recalibrate(self.model, self.x, verbose=0, batch_size=batch_size,
                                                      method=method).passes
            seconds[name] = time.perf_counter() - start
            worst[name] = self._difference(self.statistics(), exact[batch_size])
        self.model.set_weights(self.initial)
        return worst, passes, seconds

    def _difference(self, found, exact):
        worst = 0.0
        for index in range(0, len(exact), 2):
            mean, variance = exact[index], exact[index + 1]
            epsilon = float(self.layers[index // 2].epsilon)
            worst = max(worst, float(np.max(np.abs(found[index] - mean) / np.sqrt(variance + epsilon))),
                        float(np.max(np.abs(found[index + 1] - variance) / (variance + epsilon))))
        return worst
