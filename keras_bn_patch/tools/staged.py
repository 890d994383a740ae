"""recalibrate's staged method: every BN layer settled from exact statistics in one pass over
the data, each layer of the model run once per sample (a few twice, below), whatever the batch
size.

A BN layer's statistics in inference mode depend on the moving statistics of the BN layers
before it, so no layer can be measured before those are set: each is a barrier across the
whole data.  The model is called once, in inference mode, into a graph that can be cut (a
TF 1 session graph, a Theano graph, in TF 2 a ``tf.compat.v1.wrap_function`` whose graph
can be pruned between any tensors, and in Keras 3 on JAX or PyTorch the model's own graph of
layers, a functional or Sequential model's with each nested one's joined into it, run between any
of its tensors as Keras runs a functional model), and every tensor on the way to a BN layer's
input gets a *stage*: 0 for what the data alone determines, else one more than the latest stage
of the BN layers whose moving statistics it reads.  Run ``r`` computes the tensors of stage ``r`` for
every batch, from the tensors of earlier stages it needs, which earlier runs kept; measures
the inputs of the BN layers settled next; and those layers' statistics are set before run
``r + 1`` (fed to the later runs in TensorFlow, where a run can feed any tensor, so that no
variable is written between runs; written in Theano and in a Keras 3 graph of layers).  BN
layers on parallel branches (a ResNet's projection shortcut) share a stage.

What is kept between runs (the activations that cross a stage, each only until its last
reader has run) is held in memory up to ``memory`` bytes and written to ``.npy`` files of a
temporary directory beyond that; the directory is removed when the method ends, however it
ends.  Where an activation of all the data would not fit in memory and is computed from a
smaller tensor of its stage alone (an expanding 1x1 convolution's output from its input), the
smaller one is kept and the runs that read the activation compute it again
(``Plan.recompute``): MobileNetV2 then writes half as much, for a second run of those layers.
A graph that cannot be cut this way (a BN layer fed by its own output) raises ``NotStaged``,
and recalibrate falls back to its passes.
"""
import os
import shutil
import tempfile
import weakref

import numpy as np

from . import bn_stats
from .bn_stats import add_call, merge_calls
from .forward import numpy_dtype
from .ops import on_tensorflow

_VISITING, _DONE = 1, 2
WALK = 64  # ops or layers a kept tensor's walk back to a smaller one it is computed from takes at most
STATISTICS = ("moving_mean", "moving_variance")


class NotStaged(Exception):
    """This model cannot be cut into stages; the message says why."""


class Cache(object):
    """Activations kept between runs: ``put(key, array)`` appends a batch's value, ``get(key,
    index)`` reads one back, ``drop(key)`` forgets a tensor.  In memory up to ``memory`` bytes,
    in files of a temporary directory beyond; ``close()`` removes the directory.  Records the
    peak bytes held in memory and on disk."""

    def __init__(self, memory):
        self._memory, self._chunks = memory, {}
        self._held = self._on_disk = self.peak_memory = self.peak_disk = 0
        self._directory, self._files = None, 0

    def __enter__(self):
        return self

    def __exit__(self, *error):
        self.close()

    def put(self, key, array):
        chunks = self._chunks.setdefault(key, [])
        if self._held + array.nbytes <= self._memory:
            chunks.append(array)
            self._held += array.nbytes
            self.peak_memory = max(self.peak_memory, self._held)
            return
        if self._directory is None:
            self._directory = tempfile.mkdtemp(prefix="keras_bn_patch-")
        path = os.path.join(self._directory, "%d.npy" % self._files)
        self._files += 1
        np.save(path, array)
        chunks.append((path, array.nbytes))
        self._on_disk += array.nbytes
        self.peak_disk = max(self.peak_disk, self._on_disk)

    def get(self, key, index):
        chunk = self._chunks[key][index]
        return np.load(chunk[0]) if isinstance(chunk, tuple) else chunk

    def drop(self, key):
        for chunk in self._chunks.pop(key, []):
            if isinstance(chunk, tuple):
                os.remove(chunk[0])
                self._on_disk -= chunk[1]
            else:
                self._held -= chunk.nbytes

    def close(self):
        self._chunks.clear()
        self._held = self._on_disk = 0
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


class Plan(object):
    """The stages of one inference graph.  ``graph``: ``key(tensor)``, ``inputs_of(tensor)``,
    ``is_read(tensor)`` (a tensor that only reads a variable, which a run may feed),
    ``values_per_sample(tensor)`` (None if unknown) and ``feeds_statistics``;
    ``calls``: [(layer, its input tensor)], one per call of a chosen BN layer; ``sources``:
    {key of a chosen layer's moving-statistics variable in the graph: (layer, attribute)};
    ``placeholders``: the model's input tensors.

    ``depth[layer]``: the run after which the layer is settled, plus one; ``runs``: how many
    runs settle every layer; ``measured(r)``: the calls measured in run r; ``kept(r)``: the
    tensors of stage r later runs read; ``read(r)``: the tensors of earlier stages run r
    reads; ``last_read[key]``: the last run that reads a kept tensor; ``statistics(r)``:
    [(tensor, layer, attribute)], the reads of settled statistics run r feeds, if every read
    of them is one the graph lets a run feed (``feeds_statistics``), so that no variable is
    written between runs."""

    def __init__(self, graph, calls, sources, placeholders):
        self._graph = graph
        self.placeholders = list(placeholders)
        by_layer = {}
        for layer, tensor in calls:
            by_layer.setdefault(layer, []).append(tensor)
        self._placeholder_keys = placeholder_keys = set(graph.key(tensor) for tensor in self.placeholders)

        def source_of(tensor):
            """(layer, attribute) of the statistic the tensor is, or reads; else None."""
            key = graph.key(tensor)
            if key in sources:
                return sources[key]
            inputs = graph.inputs_of(tensor) if graph.is_read(tensor) else []
            return sources.get(graph.key(inputs[0])) if len(inputs) == 1 else None

        def inputs_of(tensor):
            if graph.key(tensor) in placeholder_keys:
                return []
            statistic = source_of(tensor)
            if statistic is not None:  # a layer's statistics are settled once all its calls are measured
                return by_layer.get(statistic[0], [])
            return graph.inputs_of(tensor)

        order = _topological([tensor for _, tensor in calls], graph.key, inputs_of)
        stage, self.feeds_statistics = {}, graph.feeds_statistics
        for tensor in order:
            key = graph.key(tensor)
            if key in placeholder_keys:
                stage[key] = 0
                continue
            found = [stage[graph.key(i)] for i in inputs_of(tensor) if stage[graph.key(i)] is not None]
            if source_of(tensor) is not None:
                stage[key] = max(found + [0]) + 1
                continue
            stage[key] = max(found) if found else None  # None: no data in it (constants, weights)
            if any(graph.key(i) in sources for i in graph.inputs_of(tensor)):
                self.feeds_statistics = False  # an op uses a variable directly, not through a read
        self.depth = dict((layer, max(stage[graph.key(t)] or 0 for t in tensors) + 1)
                          for layer, tensors in by_layer.items())
        self.runs = max(self.depth.values())
        sizes = [graph.values_per_sample(tensor) for _, tensor in calls]
        self.values_per_sample = None if None in sizes else max(sizes)  # the largest BN input, if known
        position = dict((graph.key(tensor), index) for index, tensor in enumerate(order))
        self.calls = sorted(calls, key=lambda call: position[graph.key(call[1])])
        self._stage = stage
        self.last_read, self._readers, self._tensors, self._statistics = {}, {}, {}, {}
        for tensor in order:
            key = graph.key(tensor)
            if stage[key] is None or key in placeholder_keys or source_of(tensor) is not None:
                continue
            for found in graph.inputs_of(tensor):
                found_key, statistic = graph.key(found), source_of(found)
                if statistic is not None and found_key not in sources:
                    self._statistics.setdefault(found_key, (found, statistic, set()))[2].add(stage[key])
                earlier = stage[found_key]
                if earlier is None or statistic is not None or earlier >= stage[key] or stage[key] >= self.runs:
                    continue
                self._tensors[found_key] = found
                self._readers.setdefault(found_key, set()).add(stage[key])
                self.last_read[found_key] = max(self.last_read.get(found_key, 0), stage[key])
        self._smaller = {}  # a kept tensor's key: the smallest tensor it is computed from alone
        for key, tensor in self._tensors.items():
            smallest = _smallest_source(graph, tensor, stage, position, source_of)
            if smallest is not tensor:
                self._smaller[key] = smallest

    def recompute(self, larger_than):
        """Keeps, in place of each kept tensor of more than ``larger_than`` values a sample that
        is computed from a smaller tensor of its stage alone (``_smallest_source``), that smaller
        one; the runs that read the tensor compute it again from it.  The layers between then
        run twice per sample, and the kept activations shrink by their expansion."""
        for key, smaller in self._smaller.items():
            tensor = self._tensors.get(key)
            if tensor is None or self._graph.values_per_sample(tensor) <= larger_than:
                continue
            del self._tensors[key]
            readers, last = self._readers.pop(key), self.last_read.pop(key)
            smaller_key = self._graph.key(smaller)
            self._tensors[smaller_key] = smaller
            self._readers.setdefault(smaller_key, set()).update(readers)
            self.last_read[smaller_key] = max(self.last_read.get(smaller_key, 0), last)

    def key(self, tensor):
        return self._graph.key(tensor)

    def stage_of(self, tensor):
        return self._stage[self._graph.key(tensor)]

    def measured(self, run):
        return [(layer, tensor) for layer, tensor in self.calls if self.stage_of(tensor) == run]

    def kept(self, run):
        """The tensors run ``run`` computes and later runs read; not the model's inputs, which the
        first run keeps as the data gives them (a second copy would misalign the batches)."""
        return [tensor for key, tensor in self._tensors.items()
                if self._stage[key] == run and key not in self._placeholder_keys]

    def read(self, run):
        return [tensor for key, tensor in self._tensors.items() if run in self._readers[key]]

    def statistics(self, run):
        if not self.feeds_statistics:
            return []
        return [(tensor, layer, attribute) for tensor, (layer, attribute), runs in self._statistics.values()
                if run in runs]

    def settled_after(self, run):
        return [layer for layer, depth in self.depth.items() if depth == run + 1]


def _smallest_source(graph, tensor, stage, position, source_of):
    """The tensor with the fewest values a sample among ``tensor`` and those it can be computed
    from alone (every way back from ``tensor`` to the data passes through it: the input of a
    convolution, or of a ReLU that Theano builds from its input twice), up to the model's inputs
    or a BN layer's output, which reads its statistics too: where ``tensor`` can be computed
    again from less.  Walks back at most WALK ops or layers."""
    smallest, size = tensor, graph.values_per_sample(tensor)
    frontier = {graph.key(tensor): tensor}
    for _ in range(WALK):
        if size is None:
            break
        # The latest first: a frontier of one tensor is one that every way back passes through.
        key = max(frontier, key=lambda found: position.get(found, -1))
        current = frontier[key]
        inputs = [found for found in graph.inputs_of(current) if stage.get(graph.key(found)) is not None]
        if not inputs or source_of(current) is not None or any(source_of(found) is not None for found in inputs):
            break  # a model input, or a BN layer's output
        del frontier[key]
        frontier.update((graph.key(found), found) for found in inputs)
        if len(frontier) == 1:
            only = next(iter(frontier.values()))
            found = graph.values_per_sample(only)
            if found is not None and found < size:
                smallest, size = only, found
    return smallest


def _topological(roots, key, inputs_of):
    """Every tensor the roots depend on, each after its inputs; NotStaged on a cycle."""
    state, order = {}, []
    for root in roots:
        if key(root) in state:
            continue
        state[key(root)] = _VISITING
        stack = [(root, iter(inputs_of(root)))]
        while stack:
            tensor, inputs = stack[-1]
            for found in inputs:
                seen = state.get(key(found))
                if seen is None:
                    state[key(found)] = _VISITING
                    stack.append((found, iter(inputs_of(found))))
                    break
                if seen == _VISITING:
                    raise NotStaged("a BN layer receives its own output (a shared layer called on what it "
                                    "returned), so no order settles its statistics before they are used")
            else:
                stack.pop()
                state[key(tensor)] = _DONE
                order.append(tensor)
    return order


def run(plan, compile_run, batches, statistics, memory, progress):
    """Runs the plan: ({layer: Moments}, the cache's peak memory and disk bytes).

    ``compile_run(feeds, fetches)``: a function of the feeds' values giving the fetches' values,
    where a fetch is a tensor or a call's moments (layer, tensor).  Settled statistics are fed
    to the runs after (``plan.statistics``) and written once at the end, or, where the graph
    reads them otherwise, written by ``statistics.set`` before the next run."""
    moments = dict((layer, bn_stats.Moments()) for layer, _ in plan.calls)
    with Cache(memory) as cache:
        count = 0
        for number in range(plan.runs):
            measured, kept = plan.measured(number), plan.kept(number)
            reads = plan.placeholders if number == 0 else plan.read(number)
            fed = plan.statistics(number)
            if measured or kept:
                function = compile_run(reads + [tensor for tensor, _, _ in fed], measured + kept)
                settled = [_moment(moments[layer], attribute) for _, layer, attribute in fed]
                source = batches if number == 0 else (
                    [cache.get(plan.key(tensor), index) for tensor in reads] for index in range(count))
                count = 0
                for values in source:
                    found = list(function(list(values) + settled))
                    if number == 0:
                        for tensor, value in zip(plan.placeholders, values):
                            if plan.key(tensor) in plan.last_read:
                                cache.put(plan.key(tensor), np.array(value))  # data._own: the data's own buffer
                    _add(moments, measured, found[:3 * len(measured)])
                    for tensor, value in zip(kept, found[3 * len(measured):]):
                        cache.put(plan.key(tensor), np.asarray(value))
                    count += 1
                    progress.batch()
            for key in [key for key, last in plan.last_read.items() if last == number]:
                cache.drop(key)
            if not plan.feeds_statistics and plan.settled_after(number):
                statistics.set(dict((layer, moments[layer]) for layer in plan.settled_after(number)))
            progress.update(number + 1)
        if plan.feeds_statistics:
            statistics.set(moments)
        return moments, cache.peak_memory, cache.peak_disk


def _moment(moments, attribute):
    return moments.mean if attribute == "moving_mean" else moments.variance


def _add(moments, measured, values):
    """One batch's fetched moments of the calls measured, into each layer's Moments."""
    calls = {}
    for index, (layer, _) in enumerate(measured):
        add_call(calls, layer, *values[3 * index:3 * index + 3])
    merge_calls(moments, calls)


def build(api, forward, chosen, batch):
    """(Plan, compile_run) of ``run`` for the chosen BN layers, from the model as ``forward``
    runs it; NotStaged where the graph cannot be cut.  ``batch``: the first one (the input
    shapes of a model without input tensors)."""
    if api.eager and not on_tensorflow(api):
        return _build_from_layers(forward, chosen)
    if api.eager:
        try:
            wrapped, placeholders, inputs = forward.wrapped_inference(batch)
        except Exception as error:  # a model TensorFlow cannot trace as one v1 graph
            raise NotStaged("the model could not be traced as one graph (%s: %s)"
                            % (type(error).__name__, str(error).strip().splitlines()[0] if str(error).strip() else ""))
        graph, context = _TensorFlowGraph(), wrapped.graph.as_default
        captures = wrapped.graph.captures
        handles = dict((id(getattr(layer, attribute).handle), (layer, attribute)) for layer in chosen
                       for attribute in STATISTICS)
        sources = dict((internal.name, handles[id(external)]) for external, internal in (
            captures.items() if hasattr(captures, "items") else captures) if id(external) in handles)
    else:
        placeholders, inputs = forward.inference_graph()
        graph = _TensorFlowGraph() if on_tensorflow(api) else _TheanoGraph()
        context = _nothing
        sources = dict((graph.variable_key(getattr(layer, attribute)), (layer, attribute)) for layer in chosen
                       for attribute in STATISTICS)
    calls = [(layer, tensor) for layer in chosen for tensor in inputs.get(layer, [])]
    if not calls:
        raise NotStaged("the model calls none of the chosen BN layers")
    plan = Plan(graph, calls, sources, placeholders)
    with context():
        moments = dict((graph.key(tensor), forward.ops.moments(layer, tensor)) for layer, tensor in plan.calls)

    def fetched(fetches):
        return [part for fetch in fetches for part in (
            moments[graph.key(fetch[1])] if isinstance(fetch, tuple) else [fetch])]

    if api.eager:
        def compile_run(reads, fetches):
            import tensorflow as tf
            # The feeds' signature: without it, TF 2.15's pruned function takes no positional argument.
            signature = (tuple(tf.TensorSpec(tensor.shape, tensor.dtype) for tensor in reads), {})
            pruned = _pruned(wrapped, list(reads), fetched(fetches), signature)
            # Tensors: TF 2.1's pruned function refuses NumPy arrays.
            return lambda values: pruned(*[tf.convert_to_tensor(value) for value in _typed(values, reads)])
    else:
        K = api.keras.backend
        phase = K.learning_phase()
        phase = [] if isinstance(phase, int) else [phase]  # fed 0: inference, if anything reads it

        def compile_run(reads, fetches):
            if on_tensorflow(api):
                function = K.get_session().make_callable(fetched(fetches), feed_list=list(reads) + phase)
                return lambda values: function(*(_typed(values, reads) + [0] * len(phase)))
            function = K.function(list(reads) + phase, fetched(fetches))
            return lambda values: function(list(values) + [0] * len(phase))
    return plan, compile_run


def _build_from_layers(forward, chosen):
    """Keras 3 on JAX or PyTorch, which run the model eagerly: the model's own graph of layers
    (a functional or Sequential model's, each nested one's joined into it at its calls), cut
    between any of its tensors and run node by node as Keras runs a functional model.  A BN
    layer's output reads its moving statistics, which the graph does not show as a tensor: a
    stand-in (``_Statistics``) does, and they are written between runs."""
    import keras
    model = forward.model
    if _functional(model) is None:
        raise NotStaged("a subclassed model has no graph of layers to cut (Keras 3 on %s runs it as "
                        "Python code)" % keras.backend.backend())
    graph = _LayerGraph(model, chosen)
    calls = graph.calls()
    for layer in chosen:
        if not any(called is layer for called, _ in calls):
            raise NotStaged("BN layer %r is not called in the model's graph of layers: inside a subclassed "
                            "model, whose Python code Keras 3 on %s runs without one, or on no way to the "
                            "model's outputs" % (layer.name, keras.backend.backend()))
    plan = Plan(graph, calls, graph.sources, graph.inputs)
    kept = _STAGE_FUNCTIONS.setdefault(model, {})

    def compile_run(reads, fetches):
        # Keyed by the model's own tensors and nodes (graph.key): the model holds them while kept
        # holds functions of them.
        key = (tuple(graph.key(tensor) for tensor in reads),
               tuple((id(fetch[0]), graph.key(fetch[1])) if isinstance(fetch, tuple) else graph.key(fetch)
                     for fetch in fetches))
        if key not in kept:
            kept[key] = _stage_function(forward, graph, reads, fetches)
        return kept[key]
    return plan, compile_run


# Keras 3 on JAX compiles a stage's function (jax.jit) when it first runs: about a fifth of a
# staged call on a small network.  Kept per model (a weak key: nothing kept holds the model),
# a later recalibrate of the same model, such as a callback's every few epochs, runs its stages
# without compiling them again.
_STAGE_FUNCTIONS = weakref.WeakKeyDictionary()


def _stage_function(forward, graph, reads, fetches):
    """The run of one stage: the fetches' values (a call's moments for a (layer, tensor) fetch)
    from the reads' values.  Holds the forward runner's ops, the model's layers and variables,
    not the model."""
    dtypes = [numpy_dtype(tensor.dtype) for tensor in reads]
    ops = forward.ops

    def fetched(values):
        known = dict((graph.key(tensor), value) for tensor, value in zip(reads, values))
        found = []
        for fetch in fetches:
            if isinstance(fetch, tuple):
                found += ops.moments(fetch[0], graph.evaluate(fetch[1], known))
            else:
                found.append(graph.evaluate(fetch, known))
        return found
    compiled = forward.compiled(fetched)
    return lambda values: compiled([np.asarray(value, dtype=dtype) for value, dtype in zip(values, dtypes)])


def _pruned(wrapped, feeds, fetches, signature):
    """``wrapped.prune(feeds, fetches)``, lifting only the variables the fetches read: TensorFlow's
    own copies every variable the wrapped function captures into each pruned function (a
    ResNet50's 320, in each of its 49 stages).  TensorFlow's own where its internals differ."""
    try:
        from tensorflow.python.eager import lift_to_graph, wrap_function
        from tensorflow.python.framework import func_graph
        graph = wrapped.graph
        captures = graph.captures
        captured = dict((id(internal), (external, internal)) for external, internal in (
            captures.items() if hasattr(captures, "items") else captures))
        fed, seen, needed, stack = set(id(tensor) for tensor in feeds), set(), [], list(fetches)
        while stack:
            tensor = stack.pop()
            if id(tensor) in seen or id(tensor) in fed:
                continue
            seen.add(id(tensor))
            if id(tensor) in captured:
                needed.append(captured[id(tensor)])
            stack.extend(tensor.op.inputs)
            stack.extend(output for op in tensor.op.control_inputs for output in op.outputs)
        with graph.as_default():
            pruned = func_graph.FuncGraph("pruned")
        lifted = lift_to_graph.lift_to_graph(fetches, pruned, sources=feeds + [internal for _, internal in needed],
                                             base_graph=graph)
        pruned.outputs.extend(lifted[tensor] for tensor in fetches)
        pruned.inputs.extend(lifted[tensor] for tensor in feeds)
        for external, internal in needed:
            pruned.add_capture(external, lifted[internal])
        for function in graph._functions.values():
            pruned._add_function(function)
        pruned.variables = graph.variables
        pruned.structured_outputs = [lifted[tensor] for tensor in fetches]
        pruned.structured_input_signature = signature
        function = wrap_function.WrappedFunction(pruned, variable_holder=wrapped._variable_holder)
        function._num_positional_args = len(feeds)
        function._arg_keywords = [tensor.op.name for tensor in feeds]
        return function
    except Exception:  # another TensorFlow's internals
        return wrapped.prune(feeds=feeds, fetches=fetches, input_signature=signature)


def _typed(values, tensors):
    """Each value in its tensor's dtype, and a statistic (no batch dimension) in its shape."""
    found = []
    for value, tensor in zip(values, tensors):
        value = np.asarray(value, dtype=tensor.dtype.base_dtype.as_numpy_dtype)
        shape = tensor.shape.as_list() if tensor.shape.dims is not None else [None]
        found.append(value if None in shape or list(value.shape) == shape else np.reshape(value, shape))
    return found


class _TensorFlowGraph(object):
    """A TF graph's tensors (TF 1 session graph, or a TF 2 wrapped function's), by name."""

    @staticmethod
    def key(tensor):
        return tensor.name

    feeds_statistics = True  # a run can feed any tensor

    @staticmethod
    def inputs_of(tensor):
        return list(tensor.op.inputs)

    @staticmethod
    def is_read(tensor):
        return tensor.op.type in ("Identity", "ReadVariableOp", "Snapshot")

    @staticmethod
    def variable_key(variable):
        return variable.op.outputs[0].name  # what the graph's reads of the variable start from

    @staticmethod
    def values_per_sample(tensor):
        dims = tensor.shape.as_list()[1:] if tensor.shape.dims is not None else [None]
        return None if None in dims else int(np.prod(dims))


class _TheanoGraph(object):
    """A Theano graph's variables; a shared variable is a root read where it is used."""

    @staticmethod
    def key(variable):
        return id(variable)

    feeds_statistics = False  # a shared variable cannot be an input: its value is set instead

    @staticmethod
    def inputs_of(variable):
        return list(variable.owner.inputs) if variable.owner is not None else []

    @staticmethod
    def is_read(variable):
        return False

    variable_key = key

    @staticmethod
    def values_per_sample(variable):
        shape = getattr(variable, "_keras_shape", None)  # Keras's static shape of a layer's input
        return None if shape is None or None in shape[1:] else int(np.prod(shape[1:]))


class _Statistics(object):
    """Stands for a BN layer's moving statistics in a Keras 3 graph of layers: what its output
    reads besides its input."""

    def __init__(self, layer):
        self.layer = layer


def _functional(operation):
    """The graph of layers a Keras 3 model runs (a Sequential model's is its inner functional
    model), or None: a layer, or a subclassed model, whose call is Python code."""
    operation = getattr(operation, "_functional", None) or operation
    if getattr(operation, "_nodes_by_depth", None) is None or not getattr(operation, "inputs", None):
        return None
    return operation


class _At(object):
    """A tensor of a Keras 3 graph of layers, within the nested models' calls it is computed in:
    a nested model called twice computes each of its tensors twice."""

    def __init__(self, calls, tensor, node):
        self.calls, self.tensor, self.node = calls, tensor, node
        self.key = (tuple(id(call) for call in calls), id(tensor))
        self.shape, self.dtype = tensor.shape, tensor.dtype


class _LayerGraph(object):
    """A Keras 3 model's graph of layers, each nested functional or Sequential model's joined
    into it at each of its calls: its tensors (``_At``), each computed by one layer's call from
    that call's inputs (and, for a chosen BN layer, its statistics)."""

    feeds_statistics = False  # the statistics are variables the layers read: written between runs

    def __init__(self, model, chosen):
        self._statistics = dict((id(layer), _Statistics(layer)) for layer in chosen)
        self.sources = dict((id(statistics), (statistics.layer, STATISTICS[0]))
                            for statistics in self._statistics.values())
        try:
            from keras import tree
        except ImportError:  # Keras 3 before keras.tree
            raise NotStaged("this Keras 3 has no keras.tree, with which its layers' outputs are read")
        self._flatten = tree.flatten
        self._inputs = {}  # _At's key: the _At tensors its layer's call is given
        functional = _functional(model)
        self.inputs = [self.at((), tensor) for tensor in functional.inputs]
        self._outputs = [self.at((), tensor) for tensor in functional.outputs]

    def at(self, calls, tensor):
        """The tensor computed by a layer that ``tensor`` is, within ``calls`` (the nested models'
        calls, outermost first): a nested model's output is a tensor inside it, a nested model's
        input the tensor its call was given."""
        while True:
            history = tensor._keras_history
            node = history.operation._inbound_nodes[history.node_index]
            inner = _functional(node.operation)
            if inner is not None and not node.is_input:  # the output of a nested model's call
                if len(inner.outputs) != len(node.outputs) or len(inner.inputs) != len(node.input_tensors):
                    raise NotStaged("nested model %r is called with inputs or outputs Keras 3 does not match "
                                    "one to one to its own" % node.operation.name)
                calls, tensor = calls + (node,), inner.outputs[history.tensor_index]
            elif node.is_input and calls:  # a nested model's input: what its call was given
                call = calls[-1]
                index = [id(found) for found in _functional(call.operation).inputs].index(id(tensor))
                calls, tensor = calls[:-1], call.input_tensors[index]
            else:
                return _At(calls, tensor, node)

    @staticmethod
    def key(tensor):
        return tensor.key if isinstance(tensor, _At) else id(tensor)

    def inputs_of(self, tensor):
        if not isinstance(tensor, _At) or tensor.node.is_input:  # statistics' stand-in, or a model input
            return []
        statistics = self._statistics.get(id(tensor.node.operation))
        return self._node_inputs(tensor) + ([statistics] if statistics is not None else [])

    def _node_inputs(self, tensor):
        """The tensors (``_At``) the layer's call that computes ``tensor`` is given; found once,
        then read at every batch."""
        if tensor.key not in self._inputs:
            self._inputs[tensor.key] = [self.at(tensor.calls, found) for found in tensor.node.input_tensors]
        return self._inputs[tensor.key]

    def calls(self):
        """[(chosen BN layer, its input)]: every call of a chosen layer the outputs depend on."""
        return [(tensor.node.operation, self._node_inputs(tensor)[0])
                for tensor in _topological(self._outputs, self.key, self.inputs_of)
                if isinstance(tensor, _At) and id(tensor.node.operation) in self._statistics]

    def evaluate(self, tensor, known):
        """``tensor``'s value from ``known`` ({key: value}, the reads' and what was computed
        before, which it adds to), computing each layer's call as Keras's functional model does."""
        stack = [tensor]
        while stack:
            top = stack[-1]
            if top.key in known:
                stack.pop()
                continue
            inputs = self._node_inputs(top)
            missing = [found for found in inputs if found.key not in known]
            if missing:
                stack.extend(missing)
                continue
            args, kwargs = top.node.arguments.fill_in(dict(
                (id(found), known[at.key]) for found, at in zip(top.node.input_tensors, inputs)))
            outputs = top.node.operation(*args, **kwargs)
            for output, value in zip(top.node.outputs, self._flatten(outputs)):
                known[(top.key[0], id(output))] = value
            stack.pop()
        return known[tensor.key]

    @staticmethod
    def is_read(tensor):
        return False

    @staticmethod
    def values_per_sample(tensor):
        dims = list(tensor.shape[1:])
        return None if None in dims else int(np.prod(dims))


class _nothing(object):
    def __enter__(self):
        return self

    def __exit__(self, *error):
        return False
