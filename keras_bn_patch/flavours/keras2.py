"""Standalone Keras 2.1-2.3 (TensorFlow, Theano or CNTK backend).

These run in graph mode with a learning-phase placeholder.  The wrapper hands
the original ``call`` ``training = learning phase AND NOT held`` as a tensor, so
the graph keeps plain Keras's structure (inference branch inside the switch)
and the choice is made when the graph runs.
Keras 2.1.3+ already drops the update ops of a non-trainable layer or model
when the train function is built (at the first fit after compile); 2.1.0-2.1.2
did not, so there the statistics fed to the moving-average update are switched
to the moving statistics themselves while the layer is held: the update then
writes back x - (x - x) * decay == x, bit for bit.
"""
import contextvars
import sys

from .. import _views

# The "held" condition of the BN call being built, for the moving-average update inside it.
_update_gate = contextvars.ContextVar("keras_bn_patch_update_gate", default=None)


def _backend():
    return sys.modules["keras.backend"]


class Keras2Flavour(object):
    label = "keras"

    def new_flag(self, value):
        return _backend().variable(float(value), dtype="float32", name="keras_bn_patch_held")

    def set_flag(self, variable, value):
        _backend().set_value(variable, float(value))


FLAVOUR = Keras2Flavour()


def _is_static_inference(training):
    return training is False or (type(training) is int and training == 0)


def bn_call(wrapped, layer, args, kwargs):
    """Wrapper of ``BatchNormalization.call(inputs, training=None)``."""
    training = args[1] if len(args) > 1 else kwargs.get("training")
    if _is_static_inference(training):
        return wrapped(*args, **kwargs)
    K = _backend()
    phase = K.learning_phase() if training is None else training
    if _is_static_inference(phase):
        return wrapped(*args, **kwargs)
    flag = _views.flag_for(layer, FLAVOUR).variable
    phase = float(phase) if isinstance(phase, (bool, int)) else K.cast(phase, "float32")
    # Training AND NOT held, as a tensor that works in every backend's switch.
    effective = K.greater(phase - flag, 0.5)
    inputs = args[0] if args else kwargs["inputs"]
    token = _update_gate.set(K.greater(flag, 0.5))
    try:
        output = wrapped(inputs, training=effective)
    finally:
        _update_gate.reset(token)
    if training is None:
        # Keras tags outputs that depend on the learning phase only when it picked it
        # itself; without the tag the model would never feed the phase to fit().
        output._uses_learning_phase = True
    return output


def moving_average_update(wrapped, instance, args, kwargs):
    """Wrapper of ``keras.backend.moving_average_update(x, value, momentum)`` for Keras < 2.1.3."""
    held = _update_gate.get()
    if held is None:
        return wrapped(*args, **kwargs)
    names = ("x", "value", "momentum")
    bound = dict(zip(names, args), **kwargs)
    bound["value"] = _backend().switch(held, bound["x"], bound["value"])
    return wrapped(**bound)
