"""``keras_bn_patch.callbacks.Recalibrate``: a Keras callback that recalibrates the BN layers'
moving statistics when training ends, so that ``fit()`` returns a model whose statistics
describe its final weights.

The moving statistics are averages of what each BN layer saw during training, under weights
that kept changing: they go stale wherever the final weights are not the ones they were
gathered under. Keras 3's ``use_ema=True`` ends ``fit()`` by overwriting every trainable weight
with its moving average (``optimizer.finalize_variable_values``, just before the callbacks'
``on_train_end``); weight averaging, pruning and quantization change the weights after the
statistics were gathered; a new domain changes what the layers receive. The callback runs
``keras_bn_patch.recalibrate`` on ``fit()``'s model at ``on_train_end`` (after the EMA swap), and,
with ``every=N``, at the end of every N-th epoch too (after that epoch's validation).
"""
import sys

from .tools import defaults

_classes = {}  # flavour names -> the callback class built on their Callback classes


def _imported_flavours():
    """The Keras flavours this process has imported, whose ``fit()`` may run the callback:
    standalone Keras 2 or Keras 3 (``keras``), tf_keras, tf.keras."""
    from .core import support
    from .core.versions import version_tuple
    found = []
    version = version_tuple(getattr(sys.modules.get("keras"), "__version__", "") or "")
    if version and support.supports("keras", version):
        found.append("keras")
    if version and support.supports("keras3", version):
        found.append("keras3")
    if "tf_keras" in sys.modules:
        found.append("tf_keras")
    tf_version = version_tuple(getattr(sys.modules.get("tensorflow"), "__version__", "") or "")
    if tf_version and support.supports("tf.keras", tf_version):
        found.append("tf.keras")
    return found


def _callback_class(flavour):
    """A ``Recalibrate`` that is a ``Callback`` of ``flavour``, or, without one, of every flavour
    imported here (standalone Keras 2 beside tf.keras: a model of either fits with it).  Keras
    3's Callback holds its model in a read-only property, which no other flavour's takes: with
    Keras 3 imported, the callback is tf_keras's where tf_keras is imported too (TensorFlow >=
    2.16 imports Keras 3 by itself), else Keras 3's, unless ``flavour`` names another."""
    from .tools import keras_api
    names = [flavour] if flavour else _imported_flavours()
    if "keras3" in names:  # TensorFlow >= 2.16 imports Keras 3 itself: tf_keras, where imported, is the user's
        names = ["tf_keras"] if "tf_keras" in names else ["keras3"]
    apis = [keras_api.load(name) for name in names] if names else [keras_api.load()]
    key = tuple(api.name for api in apis)
    if key not in _classes:
        bases = (Recalibrate,) + tuple(api.keras.callbacks.Callback for api in apis)
        _classes[key] = type("Recalibrate", bases, {"__module__": __name__, "__doc__": Recalibrate.__doc__})
    return _classes[key]


class Recalibrate(object):
    """Recalibrate the BN layers of the model being fitted on ``data`` when training ends.

    data, steps, batch_size, layers, method, memory_limit: as ``keras_bn_patch.recalibrate``.
    every: also at the end of every ``every``-th epoch (None: only when training ends).
    flavour: the Keras whose ``Callback`` this is ("keras", "tf.keras", "tf_keras", "keras3");
    None: every flavour imported here (tf_keras's, else Keras 3's alone, where Keras 3 is imported).
    ``summaries``: each call's summary, in order.
    """

    def __new__(cls, *args, **kwargs):
        if cls is not Recalibrate:
            return object.__new__(cls)
        return object.__new__(_callback_class(kwargs.get("flavour")))

    def __init__(self, data, steps=None, batch_size=None, layers="all", every=None, method="auto",
                 memory_limit=defaults.MEMORY_LIMIT, verbose=0, flavour=None):
        for base in type(self).__bases__[1:]:  # each flavour's Callback sets its own attributes
            base.__init__(self)
        if data is None or isinstance(data, (str, bytes)):
            raise TypeError("data must be the data to recalibrate on (arrays, a Sequence, a generator with "
                            "steps, a tf.data.Dataset), got %r" % (data,))
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError("every must be a positive number of epochs or None, got %r" % (every,))
        self.data, self.every = data, every
        self.options = dict(steps=steps, batch_size=batch_size, layers=layers, method=method,
                            memory_limit=memory_limit, verbose=verbose)
        self.summaries = []

    def _recalibrate(self):
        from .tools.recalibrate import recalibrate
        self.summaries.append(recalibrate(self.model, self.data, **self.options))

    def on_epoch_end(self, epoch, logs=None):
        last = (epoch + 1) == (getattr(self, "params", None) or {}).get("epochs")  # on_train_end does it then
        if self.every is not None and (epoch + 1) % self.every == 0 and not last:
            self._recalibrate()

    def on_train_end(self, logs=None):
        self._recalibrate()
