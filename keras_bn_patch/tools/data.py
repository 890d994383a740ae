"""The data diagnose() and recalibrate() run a model on, checked and cut into batches.

Accepted: a NumPy array (a list of arrays, or a dict of them by input name, for a model
with several inputs), a ``keras.utils.Sequence``, a generator or iterator (with ``steps``:
Keras generators never end), or a ``tf.data.Dataset``.  Elements of the last three may be
``x`` or ``(x, y[, sample_weight])``; only ``x`` is used.  Recalibration runs over the data
once per BN layer, so a one-shot generator is read once and its batches kept.
"""
import numpy as np

DEFAULT_BATCH_SIZE = 32  # as Keras's own predict()


def check_count(value, name, allow_none=True):
    """A positive int (or None): anything else is a clear error naming the argument."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError("%s must be a positive int%s, got %r" % (name, " or None" if allow_none else "", value))
    if value < 1:
        raise ValueError("%s must be a positive int, got %d" % (name, value))
    return int(value)


def expected_shapes(api, model):
    """[(None, 28, 28, 1), ...] per model input, or None when the model does not say (subclassed)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    if api.name == "keras3":
        return [tuple(tensor.shape) for tensor in inputs]
    return [tuple(api.keras.backend.int_shape(tensor)) for tensor in inputs]


def input_names(model):
    """The names a dict of data is keyed by, per model input (as predict() takes it), or None."""
    try:
        names = getattr(model, "input_names", None) or [tensor.name for tensor in model.inputs or []]
    except (AttributeError, ValueError):  # a subclassed model: no inputs
        return None
    return list(names) or None  # Keras 3: an Input's tensor has its name


def _by_name(x, name, names):
    """A dict of arrays as predict() takes it: by model input name, in the model's order."""
    if names is None:
        raise TypeError("%s is a dict, but this model does not name its inputs: give a list of arrays" % name)
    missing = [key for key in names if key not in x]
    if missing:
        raise ValueError("%s has no array for the model's input %s (its inputs: %s; %s has: %s)"
                         % (name, ", ".join(map(repr, missing)), names, name, sorted(map(str, x))))
    return [x[key] for key in names] if len(names) > 1 else x[names[0]]


def _as_arrays(x, name, shapes, names=None):
    """``x`` as a list of numeric arrays, one per model input, checked against ``shapes``."""
    if isinstance(x, dict):
        x = _by_name(x, name, names)
    parts = list(x) if isinstance(x, (list, tuple)) and shapes and len(shapes) > 1 else [x]
    if shapes is not None and len(parts) != len(shapes):
        raise ValueError("%s has %d input arrays; the model has %d inputs" % (name, len(parts), len(shapes)))
    arrays = []
    for index, part in enumerate(parts):
        array = part if isinstance(part, np.ndarray) else np.asarray(part)
        label = name if len(parts) == 1 else "%s[%d]" % (name, index)
        if array.dtype.kind not in "fiub":
            raise TypeError("%s must hold numbers, got dtype %s" % (label, array.dtype))
        if array.ndim == 0:
            raise ValueError("%s must be an array of samples, got a scalar (%r)" % (label, array.item()))
        if array.shape[0] == 0:
            raise ValueError("%s is empty: it has shape %s, with no samples" % (label, array.shape))
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError("%s holds non-finite values (NaN or inf): its statistics would be meaningless"
                             % label)
        if shapes is not None:
            expected = shapes[index]
            if array.ndim != len(expected) or any(
                    want is not None and want != got for want, got in zip(expected[1:], array.shape[1:])):
                raise ValueError("%s has shape %s, but the model expects %s (None: any size)"
                                 % (label, array.shape, expected))
        arrays.append(array)
    if len({array.shape[0] for array in arrays}) > 1:
        raise ValueError("the arrays of %s hold different numbers of samples: %s"
                         % (name, [array.shape[0] for array in arrays]))
    return arrays


def _x_of(element):
    """``x`` of a generator/Sequence/Dataset element: ``x`` or ``(x, y[, w])``."""
    if isinstance(element, tuple) and len(element) in (2, 3):
        return element[0]
    return element


def _is_dataset(data):
    return any(cls.__name__ in ("DatasetV2", "DatasetV1", "Dataset") and cls.__module__.startswith(
        ("tensorflow.python.data", "tensorflow_core.python.data")) for cls in type(data).__mro__)


class Batches(object):
    """Re-iterable: each pass yields lists of arrays (one per model input), at most ``steps``."""

    def __init__(self, api, model, data, batch_size=None, steps=None, name="data"):
        self.name = name
        self._api = api
        self._shapes = expected_shapes(api, model)
        self._names = input_names(model)
        self._steps = check_count(steps, "steps")
        self._batch_size = check_count(batch_size, "batch_size") or DEFAULT_BATCH_SIZE
        self._cached, self._replayed = None, True
        if isinstance(data, (str, bytes)):
            raise TypeError("%s must be data, not a %s (to use a file, load it first, e.g. with "
                            "numpy.load)" % (name, type(data).__name__))
        if _is_tensor(data):  # a JAX array, a torch tensor: as the array it holds
            data = np.asarray(data)
        if isinstance(data, (np.ndarray, list, tuple, dict)):
            self._arrays = _as_arrays(data, name, self._shapes, self._names)
            self._source = self._slices
        elif _is_dataset(data):
            self._data = data
            self._source = self._dataset
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):  # keras.utils.Sequence
            if len(data) == 0:
                raise ValueError("%s is empty: the Sequence has no batches" % name)
            self._data = data
            self._source = self._sequence
        elif hasattr(data, "__next__") or hasattr(data, "__iter__"):
            if self._steps is None and hasattr(data, "__next__"):
                raise ValueError("steps is required when %s is a generator (Keras generators loop forever)" % name)
            self._data = iter(data)
            self._source = self._once
        else:
            raise TypeError("%s must be a NumPy array, a list or dict of arrays, a keras Sequence, a generator "
                            "or a tf.data.Dataset, got %s" % (name, type(data).__name__))

    def __iter__(self):
        count = 0
        for batch in self._source():
            if self._steps is not None and count >= self._steps:
                return
            yield batch
            count += 1
        if count == 0:
            raise ValueError("%s is empty: it yielded no batch" % self.name)

    def samples(self):
        """How many samples a pass reads, where that is known before reading (arrays), else None."""
        if self._source != self._slices:
            return None
        total = len(self._arrays[0])
        return total if self._steps is None else min(total, self._steps * self._batch_size)

    def expected_samples(self):
        """How many samples a pass reads: ``samples()``; for a Sequence, its batches times the
        samples of its first; else None."""
        if self._source != self._sequence:
            return self.samples()
        batches = len(self._data) if self._steps is None else min(len(self._data), self._steps)
        return batches * len(self._checked(self._data[0])[0])

    def can_grow(self):
        """True unless the model fixes its batch size (``Input(batch_shape=...)``)."""
        return self._shapes is None or all(shape[0] is None for shape in self._shapes)

    def joined(self, samples):
        """The same samples, re-iterable, in fewer and larger batches: at least ``samples`` each
        (the last may be smaller)."""
        return _Reiterable(lambda: self._joined(samples))

    def _joined(self, samples):
        if self._source == self._slices and self._steps is None:  # arrays: cut larger
            yield from self._slices(samples)
            return
        pending = []
        for batch in self:  # other data: its batches joined as they come
            pending.append(_own(batch))
            if sum(len(part[0]) for part in pending) >= samples:
                yield _join(pending)
                pending = []
        if pending:
            yield _join(pending)

    def _checked(self, element):
        element = _numpy(element)
        if isinstance(element, list) and len(element) in (2, 3) and self._shapes is not None and \
                len(self._shapes) == 1:
            element = tuple(element)  # a torch DataLoader's (x, y) batches come as lists
        return _as_arrays(_x_of(element), self.name, self._shapes, self._names)

    def _slices(self, size=None):
        size = size or self._batch_size
        for start in range(0, self._arrays[0].shape[0], size):
            yield [array[start:start + size] for array in self._arrays]

    def _sequence(self):
        for index in range(len(self._data)):
            yield self._checked(self._data[index])

    def single_pass(self):
        """The batches for a caller that reads them once: a one-shot generator's are then not
        kept for another pass (data larger than memory can come that way)."""
        self._replayed = False
        return self

    def _once(self):
        """A one-shot generator: read it once (``steps`` batches), then replay what it gave."""
        if self._cached is None:
            read = self._read_once()
            if not self._replayed:
                return read
            self._cached = [_own(batch) for batch in read]
        return iter(self._cached)

    def _read_once(self):
        for count, element in enumerate(self._data, 1):
            yield self._checked(element)
            if self._steps is not None and count >= self._steps:
                return

    def _dataset(self):
        import tensorflow as tf
        if self._api.eager:
            for element in self._data:
                yield self._checked(element)
            return
        # TF 1 graph mode: a fresh one-shot iterator per pass, run in Keras's session.
        make = getattr(self._data, "make_one_shot_iterator", None) or (
            lambda: tf.compat.v1.data.make_one_shot_iterator(self._data))
        next_element = make().get_next()
        session = self._api.keras.backend.get_session()
        while True:
            try:
                element = session.run(next_element)
            except tf.errors.OutOfRangeError:
                return
            yield self._checked(element)


class _Reiterable(object):
    def __init__(self, make):
        self._make = make

    def __iter__(self):
        return self._make()


def _own(batch):
    """A batch's arrays copied, to be held while the data gives its next batch: a generator or a
    Sequence may refill one buffer in place."""
    return [np.array(array) for array in batch]


def _join(batches):
    return [np.concatenate(parts) for parts in zip(*batches)] if len(batches) > 1 else batches[0]


def _numpy(element):
    if isinstance(element, tuple):
        return tuple(_numpy(part) for part in element)
    if isinstance(element, list):
        return [_numpy(part) for part in element]
    if isinstance(element, dict):
        return dict((key, _numpy(part)) for key, part in element.items())
    if _is_tensor(element):
        return np.asarray(element.cpu() if hasattr(element, "cpu") else element)  # torch: from its device
    return element.numpy() if hasattr(element, "numpy") else element


def _is_tensor(value):
    """A backend's tensor (TensorFlow's, JAX's, torch's): not a NumPy array, but convertible to one."""
    return not isinstance(value, np.ndarray) and hasattr(value, "__array__") and hasattr(value, "shape") and \
        hasattr(value, "dtype")
