"""`python -m keras_bn_patch demo`: the frozen-BN trap and its fix, on whatever Keras is installed.

A small backbone with BatchNormalization is trained on one data distribution,
frozen, and a new head is fine-tuned on shifted data (the classic "raw pixels
instead of scaled ones" mistake).  Both arms start from the same weights and see
the same batches; only the patch differs.  Unpatched, the frozen BN layers
normalize with batch statistics in training and with their moving statistics in
evaluate(): training looks good, evaluation on the very same data does not.
"""
import numpy as np

from ..core import switch
from ..tools import keras_api

FEATURES, HIDDEN, SAMPLES = 16, 32, 512


def _data(rng, shift, scale):
    x = rng.normal(size=(SAMPLES, FEATURES)).astype("float32")
    y = (x[:, :FEATURES // 2].sum(axis=1) > x[:, FEATURES // 2:].sum(axis=1)).astype("int32")
    return x * scale + shift, np.eye(2, dtype="float32")[y]


def glorot(rng, shape):
    """Glorot-uniform-like weights from NumPy: the same start in every flavour and every run."""
    limit = np.sqrt(6.0 / sum(shape))
    return rng.uniform(-limit, limit, size=shape).astype("float32")


def _moving_statistics(api, bn_layers):
    return keras_api.get_values(api, [w for layer in bn_layers for w in (layer.moving_mean, layer.moving_variance)])


def accuracy_key(history):
    return next(key for key in history if key in ("acc", "accuracy"))


class Setup(object):
    """A pretrained backbone, frozen after it was built, and a new head on it (not yet fine-tuned).

    reset() puts back these weights, so each arm of a comparison starts from the same ones.
    """

    def __init__(self, api, epochs=5, verbose=0, out=print):
        layers, models = api.keras.layers, api.keras.models
        rng = np.random.RandomState(0)
        x_source, y_source = _data(rng, shift=0.0, scale=1.0)
        self.x, self.y = _data(rng, shift=2.0, scale=2.0)  # same task, other preprocessing

        inputs = layers.Input((FEATURES,))
        hidden = inputs
        for index in range(2):
            hidden = layers.Dense(HIDDEN, name="backbone_dense_%d" % index)(hidden)
            hidden = api.bn(name="backbone_bn_%d" % index)(hidden)
            hidden = layers.Activation("relu", name="backbone_relu_%d" % index)(hidden)
        self.backbone = models.Model(inputs, hidden)
        pretrain = models.Model(inputs, layers.Dense(2, activation="softmax", name="source_head")(hidden))
        # Glorot-uniform kernels from NumPy: the same start in every flavour and every run.
        pretrain.set_weights([glorot(rng, w.shape) if w.ndim == 2 else w for w in pretrain.get_weights()])
        pretrain.compile(api.keras.optimizers.SGD(0.1), "categorical_crossentropy", metrics=["accuracy"])
        out("Pretraining the backbone on the source data (%s %s)..." % (api.name, api.version))
        pretrain.fit(x_source, y_source, epochs=epochs, batch_size=32, verbose=verbose, shuffle=False)
        self.pretrained = self.backbone.get_weights()

        for layer in self.backbone.layers:  # freeze after the backbone was built and called
            layer.trainable = False
        self.head = layers.Dense(2, activation="softmax", name="head")
        self.model = models.Model(inputs, self.head(self.backbone.layers[-1].output))
        self.head_init = [glorot(rng, w.shape) if w.ndim == 2 else w for w in self.head.get_weights()]
        self.bn_layers = [layer for layer in self.backbone.layers if isinstance(layer, api.bn)]
        self.reset()

    def reset(self):
        """The pretrained backbone and the head's initial weights."""
        self.backbone.set_weights(self.pretrained)
        self.head.set_weights(self.head_init)

    def fine_tune(self, api, epochs=5, verbose=0):
        """Fine-tune the head from the current weights, as the switch now says; returns fit's history."""
        self.model.compile(api.keras.optimizers.SGD(0.01), "categorical_crossentropy", metrics=["accuracy"])
        return self.model.fit(self.x, self.y, epochs=epochs, batch_size=32, verbose=verbose, shuffle=False).history


def run(flavour=None, epochs=5, verbose=1, out=print):
    api = keras_api.load(flavour)
    setup = Setup(api, epochs, verbose, out)
    results = {}
    for arm, toggle in (("unpatched", switch.disabled), ("patched", switch.enabled)):
        setup.reset()
        before = _moving_statistics(api, setup.bn_layers)
        with toggle():
            out("Fine-tuning the head on the shifted data, %s:" % arm)
            history = setup.fine_tune(api, epochs, verbose)
            evaluated = setup.model.evaluate(setup.x, setup.y, batch_size=128, verbose=0)
        after = _moving_statistics(api, setup.bn_layers)
        results[arm] = {
            "train_loss": float(history["loss"][-1]),
            "train_acc": float(history[accuracy_key(history)][-1]),
            "eval_loss": float(evaluated[0]),
            "eval_acc": float(evaluated[1]),
            "stats_moved": float(max(np.abs(a - b).max() for a, b in zip(after, before))),
        }

    out("")
    out("%s %s, frozen backbone, evaluate() on the training data itself:" % (api.name, api.version))
    out("%-10s %26s %26s   %s" % ("", "training mode (last epoch)", "evaluate() same data",
                                  "frozen BN statistics"))
    for arm, r in results.items():
        out("%-10s    loss %7.4f  acc %6.2f%%    loss %7.4f  acc %6.2f%%   %s" % (
            arm, r["train_loss"], 100 * r["train_acc"], r["eval_loss"], 100 * r["eval_acc"],
            "moved (max |delta| %.3g)" % r["stats_moved"] if r["stats_moved"] else "unchanged"))
    return {"flavour": api.name, "version": api.version, "results": results}
