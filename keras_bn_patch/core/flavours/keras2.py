"""Standalone Keras 2.1-2.3 (TensorFlow or Theano backend; CNTK is not tested).

These run in graph mode with a learning-phase placeholder.  The wrapper hands
the original ``call`` ``training = learning phase AND NOT held`` as a tensor, so
the graph keeps plain Keras's structure (inference branch inside the switch)
and the choice is made when the graph runs.
Keras 2.1.3+ already drops the update ops of a non-trainable layer or model
when the train function is built (at the first fit after compile); 2.1.0-2.1.2
did not, so there the statistics fed to the moving-average update are switched
to the moving statistics themselves while the layer is held: the update then
writes back x - (x - x) * decay == x, bit for bit.

On the TensorFlow backend the batch moments themselves are built inside a
``tf.cond`` on the same condition, so a held layer skips them at run time as a
hand-written ``training=False`` layer does (Keras computes them outside its
switch, so plain Keras pays for them even in inference-mode branches).
Theano's switch evaluates both branches: nothing to save there.
"""
import collections
import sys

from .. import flags, held, patching, registry, status, support
from ..context import ContextVar
from . import base, session_flags, wrappers

# The BN call being built, for the backend functions it calls: its layer, and its
# `effective` (train with batch statistics) and `held` conditions as tensors.
_Building = collections.namedtuple("_Building", "layer effective held")
_building = ContextVar("keras_bn_patch_building", default=None)


def _backend():
    return sys.modules["keras.backend"]


class Keras2Flavour(base.PatchedFlavour):
    label = "keras"
    version_of = support.KERAS2_PACKAGE

    def hooks(self):
        standalone = support.flavour(self.label)
        return [base.Hook(support.KERAS2_PACKAGE, self.version_of, (
            ((standalone.first, standalone.stop), self._patch),  # keras 2.4+ is tf.keras underneath
            ((standalone.first, support.KERAS2_UPDATES_FROZEN_STATS_BEFORE), _hold_frozen_updates),
            ((standalone.first, support.KERAS2_WRAPPER_FREEZES_FROM), _freeze_wrappers)))]

    def _patch(self, keras):
        module_name, class_name = support.KERAS2_BN
        __import__(module_name)
        owner = patching.patch(getattr(sys.modules[module_name], class_name), "call", self.falls_back(self._held_call))
        registry.add(owner, self)
        patching.patch(sys.modules[support.KERAS2_BACKEND], "normalize_batch_in_training", normalize_batch_in_training)
        status.patched(self)

    def new_flag(self, value):
        return _backend().variable(float(value), dtype="float32", name="keras_bn_patch_held")

    def set_flag(self, variable, value):
        _backend().set_value(variable, float(value))

    def set_flags(self, pairs):
        pairs = [(variable, float(value)) for variable, value in pairs]
        if _backend().backend() == "tensorflow":
            session_flags.write(_backend(), pairs)
        else:
            _backend().batch_set_value(pairs)

    def has_session(self, graph):
        # Keras 2.3 keeps its session in tf.keras's backend
        return session_flags.session_exists(graph, sys.modules.get("keras.backend.tensorflow_backend"),
                                            sys.modules.get("tensorflow.python.keras.backend"))

    def builds_graph_at_call(self):
        return True  # graph mode in every backend: a BN call builds its graph once

    def in_session(self, variable):
        """TensorFlow's variables live in sessions; Theano's shared variables in the process."""
        return _backend().backend() == "tensorflow"

    def _held_call(self, wrapped, layer, args, kwargs):
        """Wrapper of ``BatchNormalization.call(inputs, training=None)``."""
        held.saw(layer)
        training = args[1] if len(args) > 1 else kwargs.get("training")
        if _is_static_inference(training):
            return wrapped(*args, **kwargs)
        K = _backend()
        phase = K.learning_phase() if training is None else training
        if _is_static_inference(phase):
            return wrapped(*args, **kwargs)
        flag = flags.flag_for(layer, self).variable
        phase = float(phase) if isinstance(phase, (bool, int)) else K.cast(phase, "float32")
        # Training AND NOT held, as a tensor that works in every backend's switch.
        effective = K.greater(phase - flag, 0.5)
        inputs = args[0] if args else kwargs["inputs"]
        token = _building.set(_Building(layer, effective, K.greater(flag, 0.5)))
        try:
            output = wrapped(inputs, training=effective)
        finally:
            _building.reset(token)
        if training is None:
            # Keras tags outputs that depend on the learning phase only when it picked it
            # itself; without the tag the model would never feed the phase to fit().
            output._uses_learning_phase = True
        return output


def flavours():
    return [Keras2Flavour()]


def _hold_frozen_updates(keras):
    patching.patch(sys.modules[support.KERAS2_BACKEND], "moving_average_update", moving_average_update)


def _freeze_wrappers(keras):
    wrappers.freeze_with_their_wrapper(*support.KERAS2_WRAPPER)


def natively_frozen(layer):
    return False  # no Keras 2.1-2.3 BN honours `trainable` by itself


def _is_static_inference(training):
    return training is False or (type(training) is int and training == 0)


def moving_average_update(wrapped, instance, args, kwargs):
    """Wrapper of ``keras.backend.moving_average_update(x, value, momentum)`` for Keras < 2.1.3."""
    building = _building.get()
    if building is None:
        return wrapped(*args, **kwargs)
    names = ("x", "value", "momentum")
    bound = dict(zip(names, args), **kwargs)
    bound["value"] = _backend().switch(building.held, bound["x"], bound["value"])
    return wrapped(**bound)


def normalize_batch_in_training(wrapped, instance, args, kwargs):
    """Wrapper of ``keras.backend.normalize_batch_in_training(x, gamma, beta, axes, epsilon)``."""
    building = _building.get()
    if building is None or _backend().backend() != "tensorflow":
        return wrapped(*args, **kwargs)
    tf = sys.modules["tensorflow"]
    layer = building.layer
    # Keras looks up the local devices once per process, the first time a 4-D input is
    # normalized, through get_session(), which adds variable-initialization ops to the
    # graph; built inside the cond, those ops could never be fetched. Look them up first.
    list_gpus = getattr(sys.modules.get("keras.backend.tensorflow_backend"),
                        "_get_available_gpus", None)
    if list_gpus is not None:
        list_gpus()
    inputs = args[0] if args else kwargs["x"]

    def held():
        # Keras's own switch discards the normalized tensor when held, so the input stands
        # in for it at no cost; the moving statistics stand in for the batch ones, which
        # makes any moving-average update built from them write back what is there.
        return inputs, tf.identity(layer.moving_mean), tf.identity(layer.moving_variance)

    return tuple(tf.cond(building.effective, lambda: tuple(wrapped(*args, **kwargs)), held))
