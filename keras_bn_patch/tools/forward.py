"""Run a model on input batches and measure what its BN layers receive, in one pass.

Each BN layer's ``call`` is shadowed on the instance while the model's graph is
built or traced (``vars(layer)["call"]``; the class, and the patch on it, stay as
they are).  The shadow can record per-channel moments of the layer's input
(computed in the graph, so only a few numbers per channel and batch leave it;
``ops``), and either normalise the layer by its own batch statistics, computed
there (what training mode does, without its moving-average updates: recalibrate's
estimate, diagnose's training-mode figure), or run the layer's own call in
inference mode (``training=False``, so a graph flavour builds no training branch).
This works the same for nested models, shared layers and every flavour, since
all of them call ``layer.call``.

Two runners share one interface (``Forward``; ``runner()`` picks one):
``GraphRunner`` for graph flavours (Keras 2, TF 1 tf.keras, Theano) calls the model once
per set of normalised layers on new input placeholders and builds one backend function per
list of modes; ``TraceRunner`` for TF 2 flavours traces one ``tf.function`` per list,
calling the model once per mode in it.  Every run reads the current variables, so moving
statistics written between passes take effect at once.  Every other layer runs in
inference mode.  A BN layer the model never calls (an unused branch) is never measured.
"""
import collections
import contextlib
import logging

import numpy as np

from ..core import layers as core_layers
from . import bn_stats
from . import ops
from .ops import Ops

# What a first pass over one batch found: ``order``, the BN layers in the order the model calls
# them; ``values_per_sample``, the most values one BN layer received per sample (the model's
# largest activation as its BN layers see it); ``calls``, {layer: how many distinct calls}.
Survey = collections.namedtuple("Survey", "order values_per_sample calls")


def runner(api, model, bn_layers, fused=False):
    """The runner for ``api``'s flavour: see ``Forward``."""
    if not api.eager:
        return GraphRunner(api, model, bn_layers, fused)
    return TraceRunner(api, model, bn_layers, fused) if ops.on_tensorflow(api) else \
        EagerRunner(api, model, bn_layers, fused)


@contextlib.contextmanager
def _shadowed(layers, record, replace, unconverted=lambda function: function):
    """Shadow ``call`` of each layer: ``record(layer, inputs)`` first, then
    ``replace(layer, inputs, original, training, kwargs)`` gives the output.
    ``unconverted``: how a TF 2 trace must leave the shadow alone (see _trace)."""
    shadowed = []
    try:
        for layer in layers:
            original = layer.call  # bound: the class's call, patched or not

            @unconverted
            def call(inputs, training=None, _original=original, _layer=layer, **kwargs):
                record(_layer, inputs)
                return replace(_layer, inputs, _original, training, kwargs)

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
    """Runs ``model`` on batches in one or more modes.  A mode is (``measure``: the BN layers
    whose input moments are fetched, ``normalise``: the BN layers normalised by their own
    batch's statistics, every other one in inference mode, ``outputs``: whether the model's
    first output is fetched).  Several modes run in one call of one function, so TensorFlow
    runs them side by side and builds one executor or trace for them all.  ``fused``: normalise
    by batch statistics as Keras's own layer does in training mode, with TensorFlow's fused op
    where it applies (fast; diagnose's figure of what fit() does), else exactly (two passes
    over the batch in float32: recalibrate's estimate, exact when one batch holds all data).
    A runner defines ``_build(modes)`` -> (function of a batch giving the fetched values, the
    measured layers per mode, filled as the function is built or traced)."""

    def __init__(self, api, model, bn_layers, fused=False):
        self._api, self._model = api, model
        self.bn_layers = list(bn_layers)
        self.ops = Ops(api, fused)  # holds no model: functions kept beyond a call use it
        self._calls = []  # BN layers in call order, as the model's first build or trace found them
        self._functions = {}

    def survey(self, first_batch, normalise=()):
        """A Survey of the model on ``first_batch``: every BN layer measured, those in
        ``normalise`` normalised (the function of an estimate's pass, built once for both)."""
        samples = len(first_batch[0])
        moments = self.run(first_batch, self.bn_layers, normalise)[1]
        largest = max([count * len(mean) for calls in moments.values() for count, mean, _ in calls] or [0])
        return Survey(list(self._calls), largest // samples,
                      dict((layer, len(calls)) for layer, calls in moments.items()))

    def run(self, batch, measure=(), normalise=(), outputs=False):
        """One mode on one batch: (the model's first output or None, {layer: [(count, mean, m2),
        one per distinct call]})."""
        return self.run_modes(batch, [(measure, normalise, outputs)])[0]

    def run_modes(self, batch, modes):
        """Every mode on one batch, in one call: [(output or None, {layer: calls})], a mode each."""
        modes = [(tuple(measure), frozenset(normalise), bool(outputs)) for measure, normalise, outputs in modes]
        key = tuple((tuple(id(layer) for layer in measure), frozenset(id(layer) for layer in normalise), outputs)
                    for measure, normalise, outputs in modes)
        if key not in self._functions:
            self._functions[key] = self._build(modes)
        function, structures = self._functions[key]
        values = iter([np.asarray(value) for value in function(batch)])
        results = []
        for (_, _, outputs), structure in zip(modes, structures):
            found = [next(values)] if outputs else None
            moments = {}
            for layer in structure:
                bn_stats.add_call(moments, layer, next(values), next(values), next(values))
            results.append((found, moments))
        return results

    def measure(self, batches, layers, normalise=(), outputs=False):
        """One pass over the data: ([the first output per batch] or None, {layer: Moments})."""
        return self.measure_modes(batches, [(layers, normalise, outputs)])[0]

    def measure_modes(self, batches, modes):
        """One pass over the data, every mode on each batch: [(outputs or None, {layer: Moments})]."""
        results = [([] if outputs else None, {layer: bn_stats.Moments() for layer in measure})
                   for measure, _, outputs in modes]
        for batch in batches:
            for (found, moments), (output, measured) in zip(results, self.run_modes(batch, modes)):
                if found is not None:
                    found.append(output[0])
                bn_stats.merge_calls(moments, measured)
        return results

    def _called_in_mode(self, batch, mode, structure, unconverted=lambda function: function):
        """The model called on ``batch`` in one mode (inside a trace, or eagerly): its fetches,
        ``structure`` the layers measured.  ``unconverted``: see ``_shadowed``."""
        measure, normalise, outputs = mode
        del structure[:]  # traced again for a new batch shape: the same layers, in the same order
        wanted, fetches = set(measure), []

        def record(layer, inputs):
            self._called(layer)
            if layer in wanted:
                structure.append(layer)
                fetches.extend(self.ops.moments(layer, inputs))

        with _shadowed(self.bn_layers, record, self._replace(normalise), unconverted):
            found = _listed(self._model(_as_input(batch), training=False))
        return (found[:1] if outputs else []) + fetches

    def _typed(self, batch):
        """As predict() would: the data in the inputs' dtypes (float32 if not said)."""
        dtypes = [numpy_dtype(tensor.dtype) for tensor in getattr(self._model, "inputs", None) or []]
        return [np.asarray(part, dtype=dtypes[index] if index < len(dtypes) else
                           "float32" if part.dtype.kind in "fiu" else None) for index, part in enumerate(batch)]

    def _build(self, modes):
        raise NotImplementedError

    def _replace(self, normalise):
        def replace(layer, inputs, original, training, kwargs):
            if layer in normalise:
                return self.ops.batch_normalised(layer, inputs)
            return original(inputs, training=False, **kwargs)
        return replace

    def _called(self, layer):
        if layer not in self._calls:
            self._calls.append(layer)


class GraphRunner(Forward):
    """Graph flavours: one graph per set of normalised layers, one backend function per list of modes."""

    def __init__(self, api, model, bn_layers, fused=False):
        Forward.__init__(self, api, model, bn_layers, fused)
        self._graphs = {}  # normalised layers -> (placeholders, outputs, {layer: [inputs]}, moments)
        if not getattr(model, "inputs", None):
            raise ValueError("this model has no input tensors (a subclassed model, or a Sequential model built "
                             "by build() without an input shape?): diagnose and recalibrate need a functional or "
                             "Sequential model in graph mode, run at least once (model.predict) if it has no "
                             "Input layer")

    def inference_graph(self):
        """The model called on new placeholders with every BN layer in inference mode, a graph
        recalibrate's staged method cuts: (placeholders, {layer: [input tensors, one per call]})."""
        placeholders, _, inputs, _ = self._graph(())
        return placeholders, inputs

    def _graph(self, normalise):
        key = frozenset(id(layer) for layer in normalise)
        if key not in self._graphs:
            K = self._api.keras.backend
            # New placeholders: Keras caches the outputs of a call on the same ones.
            placeholders = [self._api.keras.layers.Input(batch_shape=K.int_shape(tensor), dtype=K.dtype(tensor))
                            for tensor in self._model.inputs]
            inputs, first = {}, not self._graphs

            def record(layer, tensor):
                inputs.setdefault(layer, []).append(tensor)
                if first:
                    self._called(layer)

            with _shadowed(self.bn_layers, record, self._replace(normalise)), _unrecorded(self._model):
                outputs = _listed(self._model(_as_input(placeholders)))
            self._graphs[key] = (placeholders, outputs, inputs, {})
        return self._graphs[key]

    def _build(self, modes):
        graphs, structures, fetches = [], [], []
        for measure, normalise, outputs in modes:
            graph = self._graph(normalise)
            placeholders, model_outputs, inputs, moments = graph
            if not any(graph is other for other in graphs):  # tensors' == is not identity everywhere
                graphs.append(graph)
            if measure and not moments:  # every layer's at once, shared by every function of this graph:
                # in TF 1, each addition to a graph makes the session extend its executor, at a cost
                # that grows with the graph
                moments.update((id(tensor), self.ops.moments(layer, tensor))
                               for layer, tensors in inputs.items() for tensor in tensors)
            structure = []
            fetches.extend(model_outputs[:1] if outputs else [])
            for layer in measure:
                for tensor in inputs.get(layer, []):
                    structure.append(layer)
                    fetches.extend(moments[id(tensor)])
            structures.append(structure)
        K = self._api.keras.backend
        phase = K.learning_phase()
        feeds = [placeholder for graph in graphs for placeholder in graph[0]]
        feeds += [] if isinstance(phase, int) else [phase]
        if ops.on_tensorflow(self._api):
            # The session itself: a backend function adds ops to the graph, and each addition
            # makes a TF 1 session extend its executor (one function per layer would, each time).
            session = K.get_session()

            def function(values):
                return session.run(fetches, feed_dict=dict(zip(feeds, values)))
        else:
            function = K.function(feeds, fetches)

        def run(batch):  # every graph's placeholders get the batch, the learning phase 0
            values = list(batch) * len(graphs)
            return function(values + [0] * (len(feeds) - len(values))) if fetches else []
        return run, structures


class TraceRunner(Forward):
    """TF 2 flavours: one traced function per list of modes."""

    def _build(self, modes):
        import tensorflow as tf
        structures = [[] for _ in modes]
        # Keras converts each layer's call with AutoGraph inside a trace: the shadows hold no
        # tensor-dependent Python, so converting them would only add to the trace's time.
        unconverted = tf.autograph.experimental.do_not_convert

        def step(*batch):
            # A helper call per mode: TF 2.1's AutoGraph fails (NameError) on a function
            # defined in a loop of the code it converts.
            return [fetch for mode, structure in zip(modes, structures)
                    for fetch in self._called_in_mode(list(batch), mode, structure, unconverted)]

        signature = self._signature(tf)
        traced = tf.function(step, input_signature=signature) if signature else tf.function(step)

        def run(batch):
            with _quiet("tensorflow"):  # one function per layer set is by design, not a retracing mistake
                return traced(*self._typed(batch))
        return run, structures

    def _signature(self, tf, batch=None):
        """Traced once for every batch size (a batch of another size, the last one or a joined
        one, would trace the whole model again): the model's input shapes, batch dimension
        included as the model has it (None unless fixed; in Keras 3 always None: it runs a model
        on batches of any size, and a Sequential model without an Input layer takes the size of
        the first batch it is called on as its own); a model without input tensors (a
        subclassed one) gets ``batch``'s, with any batch size."""
        inputs = getattr(self._model, "inputs", None) or []
        if inputs:
            return [tf.TensorSpec(((None,) if self._api.name == "keras3" else tuple(tensor.shape)[:1])
                                  + tuple(tensor.shape)[1:], numpy_dtype(tensor.dtype)) for tensor in inputs]
        return [tf.TensorSpec((None,) + part.shape[1:], part.dtype) for part in self._typed(batch or [])]

    # A graph that can be cut at any tensor (recalibrate's staged method).
    def wrapped_inference(self, batch):
        """The model traced in inference mode by ``tf.compat.v1.wrap_function``,
        whose graph can be pruned between any of its tensors: (the wrapped function, its input
        placeholders, {layer: [input tensors, one per call]})."""
        import tensorflow as tf
        inputs, placeholders = {}, []

        def record(layer, tensor):
            inputs.setdefault(layer, []).append(tensor)

        def call(*batch):
            placeholders.extend(batch)
            with _shadowed(self.bn_layers, record, self._replace(()), tf.autograph.experimental.do_not_convert):
                return _listed(self._model(_as_input(list(batch)), training=False))

        with _quiet("tensorflow"):
            wrapped = tf.compat.v1.wrap_function(call, self._signature(tf, batch))
        return wrapped, placeholders, inputs


class EagerRunner(Forward):
    """Keras 3 on JAX or PyTorch: the model called as predict() calls it, in inference mode, with
    the shadows computing in the backend's own ops (``keras.ops``); no TensorFlow involved.  On
    JAX the call is compiled (``jax.jit`` of a stateless call: the variables' values are its
    arguments, so statistics written between passes take effect); on PyTorch it runs without
    autograd, as predict() does."""

    def _build(self, modes):
        structures = [[] for _ in modes]

        def call(batch):
            with _unrecorded(self._model):  # Keras 3 keeps an eager call's activity losses on the model
                return [fetch for mode, structure in zip(modes, structures)
                        for fetch in self._called_in_mode(batch, mode, structure)]

        compiled = self.compiled(call)
        return (lambda batch: compiled(self._typed(batch))), structures

    @property
    def model(self):
        """The model: staged.py cuts its graph of layers (a Keras 3 functional model's own)."""
        return self._model

    def compiled(self, function):
        """``function(values)`` (a list of backend tensors from a list of arrays) run as predict()
        runs the model, giving NumPy arrays: on JAX compiled by ``jax.jit`` as a stateless call,
        the model's variables its arguments (so statistics written between calls take effect);
        on PyTorch without autograd."""
        import keras
        if keras.backend.backend() == "jax":
            import jax
            variables = list(self._model.variables)

            def stateless(state, values):
                with keras.StatelessScope(state_mapping=list(zip(variables, state))):
                    return function(values)
            jitted = jax.jit(stateless)
            return lambda values: [np.asarray(value) for value in jitted([variable.value for variable in variables],
                                                                         values)]

        def run(values):
            import torch
            with torch.no_grad():
                return [keras.ops.convert_to_numpy(value) for value in function(values)]
        return run


# Where a graph flavour's Keras records a call of a layer or model: its nodes (Keras 2.0/2.1
# name them without the underscore), a model's caches of the outputs per input, and the
# losses (activity regularizers) and updates a call adds, per input or not (TF 1.15's
# model.losses lists every one of them).
_RECORDS = ("_inbound_nodes", "_outbound_nodes", "inbound_nodes", "outbound_nodes",
            "_output_tensor_cache", "_output_mask_cache", "_output_shape_cache",
            "_losses", "_updates", "_per_input_losses", "_per_input_updates")


@contextlib.contextmanager
def _unrecorded(model):
    """The model's graph as it was before the call inside: Keras 2 records a call of a model on
    new inputs as a node of the model (tf.keras in TF 1.15 as a node of every layer in it too),
    and a second node makes the model's ``input`` and ``output`` ambiguous (Keras 2 raises an
    AttributeError); TF 1.15's ``model.losses`` would list the call's activity losses; and
    every diagnose or recalibrate would leave more.  (The model is built: nothing else is
    added by the call.)"""
    kept = []
    for layer in [model] + [entry[1] for entry in core_layers.reachable_layers(model)]:
        for name in _RECORDS:
            found = vars(layer).get(name)
            if isinstance(found, list):
                kept.append((found, len(found)))
            elif isinstance(found, dict):
                kept.append((found, set(found)))
    try:
        yield
    finally:
        for found, before in kept:
            if isinstance(found, list):
                del found[before:]
            else:
                for key in set(found) - before:
                    del found[key]


@contextlib.contextmanager
def _quiet(name):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def numpy_dtype(dtype):
    """A tensor's dtype as NumPy's (TensorFlow's DType, or Keras 3's name)."""
    return np.dtype(getattr(dtype, "as_numpy_dtype", dtype))  # Keras 3: a name


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
