"""tf.keras of TF 1.4-2.x, keras 2.6-2.15 and tf_keras: the BatchNormalizationBase family (and
TF 1.4-1.12's one BatchNormalization class, the same design).

Their BN ``call`` turns ``training`` into a boolean and then, when it is a
tensor, picks batch or moving statistics with ``smart_cond`` and gates the
moving-average update with momentum 1.0.  So the wrapper only has to hand the
original ``call`` ``training AND NOT held``: outputs and updates of a held layer
follow the layer's own inference path, decided when the graph or trace runs.
V2 classes of flavours that honour ``trainable`` natively pass straight through.
"""
import contextlib
import inspect
import sys

from .. import views
from . import session_flags
from ..versions import tf_v1, version_tuple


class TfKerasFlavour(object):
    def __init__(self, family):
        self.family = family
        self.label = family.label
        self._native_v2 = None
        self.failed = None  # why the patch stopped on a BN call (views.falls_back), or None
        self._call_context_accessor = None  # found on first use: see _call_context
        # TF 1.4-1.12 tag a BN output as using the learning phase only when their `call` picked
        # the phase itself; untagged, the model would never feed the phase to fit().
        self.tags_learning_phase = False

    def backend(self):
        return sys.modules[self.family.backend_module]

    def native_v2(self):
        """Whether this flavour's V2 class honours `trainable` itself (then we leave it alone)."""
        if self._native_v2 is None:
            first = self.family.native_v2_from
            if first is None:
                self._native_v2 = True
            else:
                # Unknown while `tensorflow/__init__` is still running: decide later, never cache a guess.
                tf_version = version_tuple(getattr(sys.modules.get("tensorflow"), "__version__", ""))
                if not tf_version:
                    return False
                self._native_v2 = tf_version >= first
        return self._native_v2

    def state(self):
        return "patched (V1 class; the V2 class is native)" if self.native_v2() else "patched"

    def new_flag(self, value):
        with _init_scope():  # lift out of tf.function traces and Keras graphs' control flow
            if not self.in_session(None):
                return self.backend().variable(bool(value), dtype="bool", name="keras_bn_patch_held")
            # A graph's flag is no model state: a local, non-trainable variable stays out of
            # Savers (a checkpoint made without the patch still restores), warm starts and
            # optimizers; Keras tracks it so that its sessions initialise it.  TF 1.4-1.10's
            # Keras tracks nothing and initialises global variables only: there it is global.
            import tensorflow as tf
            v1 = tf_v1(tf)
            track = getattr(self.backend(), "track_variable", None)
            collection = v1.GraphKeys.LOCAL_VARIABLES if track is not None else v1.GraphKeys.GLOBAL_VARIABLES
            variable = v1.Variable(bool(value), dtype=tf.bool, trainable=False, name="keras_bn_patch_held",
                                   collections=[collection])
            if track is not None:
                track(variable)
            return variable

    def set_flag(self, variable, value):
        if self.in_session(variable):  # as set_flags: TF 1.4's set_value cannot write a bool
            self.set_flags([(variable, value)])
            return
        with _init_scope():
            self.backend().set_value(variable, bool(value))

    def set_flags(self, pairs):
        with _init_scope():
            session_flags.write(self.backend(), [(variable, bool(value)) for variable, value in pairs])

    def has_session(self, graph):
        return views.session_exists(graph, self.backend())

    def builds_graph_at_call(self):
        """TF 1 graph mode builds a layer's graph once, when called; TF 2 traces again."""
        import tensorflow as tf
        outside = _eager_outside_functions(tf)
        return not (outside() if outside is not None else _eager(tf))

    def in_session(self, variable):
        """A graph-mode (TF 1) variable lives in sessions; an eager one in the process.  For a
        variable not made yet (None): where one made now would live."""
        if variable is not None:  # asked of the variable: inside a tf.function trace TF is not eager
            return getattr(variable, "_in_graph_mode", True)  # TF 1's reference variables: always
        import tensorflow as tf
        return not _eager(tf)

    def tracing_for_saved_model(self):
        """True while functions are traced for a SavedModel: they must not capture our flag."""
        if views.saving_saved_model():
            return True  # TF 2.0-2.3: Keras's SavedModel save is under way
        context = self._call_context()
        if context is not None and getattr(context(), "saving", False):
            return True  # Keras's own marker (TF 2.1 has only this one)
        try:
            from tensorflow.python.saved_model import save_context  # TF >= 2.3
        except ImportError:
            return False
        return save_context.in_save_context()

    def _call_context(self):
        """Keras's accessor of the current call context (TF >= 1.15), or None.  TF 1.14 has a
        ``call_context(layer, build_graph)`` scope of the same name instead, and no marker."""
        if self._call_context_accessor is None:
            package = self.family.backend_module.rsplit(".", 1)[0]
            utils = sys.modules.get(package + ".engine.base_layer_utils")
            context = getattr(utils, "call_context", None)
            if context is None:
                return None  # not imported yet: look again next time
            try:
                takes_no_arguments = not [parameter for parameter in inspect.signature(context).parameters.values()
                                          if parameter.default is parameter.empty]
            except (TypeError, ValueError):
                takes_no_arguments = False
            self._call_context_accessor = context if takes_no_arguments else False
        return self._call_context_accessor or None

    def is_native(self, layer):
        return self.native_v2() and getattr(layer, "_USE_V2_BEHAVIOR", False)


def _eager(tf):
    """Whether TF runs eagerly now; TF 1.4-1.6 have no ``tf.executing_eagerly`` (graphs only here)."""
    executing_eagerly = getattr(tf, "executing_eagerly", None)
    return executing_eagerly is not None and executing_eagerly()


def _init_scope():
    """TF's ``init_scope``; TF 1.4 has none (and no functions to lift out of): no scope there."""
    from tensorflow.python.framework import ops
    scope = getattr(ops, "init_scope", None)
    return scope() if scope is not None else contextlib.suppress()


def _static_value(training):
    """Python value of ``training`` if known now, else None (a symbolic tensor)."""
    if training is None or isinstance(training, (bool, int)):
        return training
    try:
        from tensorflow.python.framework import tensor_util
        return tensor_util.constant_value(training)
    except (TypeError, ValueError):
        return None


def _tracing_tf_function(tf):
    """Inside a tf.function trace of TF 2 (not a TF 1 graph, which is built once and kept)."""
    outside = _eager_outside_functions(tf)
    return outside is not None and outside()


def _eager_outside_functions(tf):
    """TF's ``executing_eagerly_outside_functions`` (TF >= 1.14's compat.v1), or None."""
    return getattr(tf_v1(tf), "executing_eagerly_outside_functions", None)


_AUTOGRAPH_NOTICE = "appears to be decorated by wrapt"
_notice_filter = []  # the filter, once added to TensorFlow's logger


def quiet_autograph_notice():
    """TF 2.15's AutoGraph warns, once a process, that the patched BN ``call`` "appears to be
    decorated by wrapt, which is not yet supported by AutoGraph. The function will run as-is"
    when Keras converts a layer's call.  Running as is is by design: the wrapper and Keras's
    BN call hold no Python control flow on tensors (the tests run them under tf.function in
    every TF 2 flavour).  So TensorFlow's logger drops that message about the ``call`` of a
    class patched now, and nothing else: a user reading it would think the fix does not apply."""
    if _notice_filter:
        return
    import logging

    class PatchedCallNotice(logging.Filter):
        def filter(self, record):
            message = record.getMessage()
            return not (_AUTOGRAPH_NOTICE in message and any(
                "%s.call of " % owner.__qualname__ in message for owner in views.bn_classes))

    _notice_filter.append(PatchedCallNotice())
    logging.getLogger("tensorflow").addFilter(_notice_filter[0])


def make_bn_call(flavour):
    def bn_call(wrapped, layer, args, kwargs):
        """Wrapper of ``BatchNormalizationBase.call(inputs, training=None)``."""
        views.saw(layer)
        if flavour.is_native(layer) or flavour.tracing_for_saved_model():
            # A SavedModel must hold plain Keras functions: our flag is not part of the model.
            return wrapped(*args, **kwargs)
        given = training = args[1] if len(args) > 1 else kwargs.get("training")
        if training is None:
            training = flavour.backend().learning_phase()
        static = _static_value(training)
        if static is not None and not static:
            return wrapped(*args, **kwargs)
        import tensorflow as tf
        flag = views.flag_for(layer, flavour)
        # Decided now, in Python, when running eagerly (nothing to go stale) or when traced in
        # a TF 2 entry point that swaps its traces on toggles: no extra ops, as fast as hand-written.
        if _eager(tf) or (views.decides_at_trace() and _tracing_tf_function(tf)):
            return wrapped(args[0] if args else kwargs["inputs"], False) if flag.value \
                else wrapped(*args, **kwargs)
        effective = tf.logical_and(tf.cast(training, tf.bool), tf.logical_not(flag.variable))
        rest = {key: value for key, value in kwargs.items() if key not in ("inputs", "training")}
        inputs = args[0] if args else kwargs["inputs"]
        output = wrapped(inputs, effective, *args[2:], **rest)
        if flavour.tags_learning_phase and given is None:
            output._uses_learning_phase = True
        return output

    return views.falls_back(flavour, bn_call)
