"""Run a model on input batches and see what its BN layers receive.

Each BN layer's ``call`` is shadowed on the instance for the duration of a run
(``vars(layer)["call"]``; the class, and the patch on it, stay as they are).  The
shadow records the layer's input and can force the layer into training mode.
This works the same for nested models, shared layers and every flavour, since
all of them call ``layer.call``.

Eager flavours call the model on each batch.  Graph flavours (Keras 2, TF 1
tf.keras) call it once on new input placeholders and build backend functions of
the recorded tensors; every run then reads the current variables, so moving
statistics written by recalibrate() reach the layers below at once.
All layers not forced run in inference mode.  A BN layer the model never calls
(an unused branch) has no inputs and is left out.
"""
import contextlib

import numpy as np


class _Enough(Exception):
    """Raised by a shadow once every wanted input was seen: the rest of the model need not run."""


@contextlib.contextmanager
def _shadowed(layers, record=None, force_training=False):
    """Shadow ``call`` of each layer: ``record(layer, inputs)`` first; training=True if forced."""
    shadowed = []
    try:
        for layer in layers:
            original = layer.call  # bound: the class's call, patched or not

            def call(inputs, training=None, _original=original, _layer=layer, **kwargs):
                if record is not None:
                    record(_layer, inputs)
                return _original(inputs, training=True if force_training else training, **kwargs)

            shadowed.append((layer, vars(layer).get("call")))
            vars(layer)["call"] = call
        yield
    finally:
        for layer, before in shadowed:
            if before is None:
                del vars(layer)["call"]
            else:
                vars(layer)["call"] = before


def _listed(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


class Forward(object):
    """``inputs_of(batch, layers)``: {layer: [input arrays, one per call]} in inference mode;
    ``outputs(batch, bn_training)``: the model's outputs, BN layers forced to training mode
    or not.  Layers come out in the order the model calls them (``call_order``)."""

    def __init__(self, api, model, bn_layers):
        self._api, self._model = api, model
        self._bn_layers = list(bn_layers)
        self._calls = {}  # layer -> calls per forward pass, in call order
        self._functions = {}
        if api.eager:
            return
        if not getattr(model, "inputs", None):
            raise ValueError("this model has no input tensors (a subclassed model?): diagnose and "
                             "recalibrate need a functional or Sequential model in graph mode")
        self._symbolic = {}  # layer -> its input tensors
        self._graphs = {}  # bn_training -> (placeholders to feed, output tensors)

        def record(layer, inputs):
            self._calls[layer] = self._calls.get(layer, 0) + 1
            self._symbolic.setdefault(layer, []).append(inputs)

        self._build_graph(False, record)

    def _build_graph(self, bn_training, record=None):
        """Call the model on new placeholders (Keras caches the outputs of a call on the same ones)."""
        K = self._api.keras.backend
        placeholders = [self._api.keras.layers.Input(batch_shape=K.int_shape(tensor), dtype=K.dtype(tensor))
                        for tensor in self._model.inputs]
        with _shadowed(self._bn_layers, record, force_training=bn_training):
            outputs = _listed(self._model(_as_input(placeholders)))
        phase = K.learning_phase()
        self._graphs[bn_training] = (placeholders + ([] if isinstance(phase, int) else [phase]), outputs)

    def call_order(self, first_batch):
        if not self._calls:  # eager: learn it from one pass
            self.inputs_of(first_batch, self._bn_layers)
        return list(self._calls)

    def inputs_of(self, batch, layers):
        if self._calls:
            layers = [layer for layer in layers if layer in self._calls]
        if self._api.eager:
            return self._eager_inputs(batch, layers)
        key = ("inputs",) + tuple(id(layer) for layer in layers)
        if key not in self._functions:
            identity = getattr(self._api.keras.backend, "identity", None)  # not in TF 1 tf.keras
            if identity is None:
                import tensorflow as tf
                identity = tf.identity  # TF cannot fetch a placeholder it also feeds
            self._compile(key, False, [identity(tensor) for layer in layers for tensor in self._symbolic[layer]])
        values = iter(self._run(key, batch))
        return {layer: _distinct([next(values) for _ in self._symbolic[layer]]) for layer in layers}

    def outputs(self, batch, bn_training):
        if self._api.eager:
            with _shadowed(self._bn_layers, force_training=bn_training):
                return [self._numpy(out) for out in _listed(self._model(_as_input(batch), training=False))]
        key = ("outputs", bn_training)
        if key not in self._functions:
            if bn_training not in self._graphs:  # built only when asked (diagnose)
                self._build_graph(bn_training)
            self._compile(key, bn_training, self._graphs[bn_training][1])
        return self._run(key, batch)

    def _compile(self, key, graph, fetches):
        feeds = self._graphs[graph][0]
        self._functions[key] = (len(feeds), self._api.keras.backend.function(feeds, fetches))

    def _run(self, key, batch):
        """Run a backend function: the placeholders get the batch, the learning phase 0."""
        feeds, function = self._functions[key]
        values = function(list(batch) + [0] * (feeds - len(batch)))
        return [np.asarray(value) for value in values]

    def _eager_inputs(self, batch, layers):
        wanted = set(layers)
        seen = {}
        learning = not self._calls
        remaining = dict((layer, self._calls[layer]) for layer in layers) if not learning else None

        def record(layer, inputs):
            if learning:
                self._calls[layer] = self._calls.get(layer, 0) + 1
            if layer not in wanted:
                return
            seen.setdefault(layer, []).append(self._numpy(inputs))
            if remaining is not None:
                remaining[layer] -= 1
                if not any(remaining.values()):
                    raise _Enough()

        with _shadowed(self._bn_layers, record):
            try:
                self._model(_as_input(batch), training=False)
            except _Enough:
                pass
        return seen

    def _numpy(self, tensor):
        if self._api.name == "keras3":
            return np.asarray(self._api.keras.ops.convert_to_numpy(tensor))
        return tensor.numpy() if hasattr(tensor, "numpy") else np.asarray(tensor)


def _distinct(arrays):
    """Keras 2.1 builds a nested model's graph more than once per call (for its masks too), so a
    layer can record the same input several times: count each value once."""
    kept = []
    for array in arrays:
        if not any(array.shape == other.shape and np.array_equal(array, other) for other in kept):
            kept.append(array)
    return kept


def _as_input(batch):
    return batch[0] if len(batch) == 1 else list(batch)


@contextlib.contextmanager
def errors_named(what):
    """Errors from deep inside Keras/TensorFlow while running the model become one ValueError
    saying what failed; our own TypeError/ValueError (bad arguments) pass unchanged."""
    try:
        yield
    except Exception as error:  # TF's own errors, Theano's, Keras's; ours (bad arguments) pass
        if isinstance(error, (TypeError, ValueError)) and _ours(error):
            raise
        raise ValueError("%s failed: %s: %s" % (what, type(error).__name__, _first_line(error))) from None


def _ours(error):
    traceback = error.__traceback__
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return traceback.tb_frame.f_globals.get("__name__", "").startswith("keras_bn_patch")


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"
