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

from .. import flags, held, patching, registry, status, support, versions
from ..context import ContextVar
from ..versions import tf_v1
from . import base, keras3, session_flags, wrappers

_saving = ContextVar("keras_bn_patch_saving", default=False)  # inside Keras's SavedModel save (TF 2.0-2.3)
# The `effective` condition (train with batch statistics) of the BN call being built in graph
# mode, for its moving-average updates (see _update_from_taken_branch).
_effective = ContextVar("keras_bn_patch_effective", default=None)


class TfKerasFlavour(base.PatchedFlavour):
    """One family of the support table.  ``tensorflow_wide``: this one also brings the hooks on
    Keras's SavedModel save of TF 2.0-2.3, which no family owns alone."""

    def __init__(self, family, tensorflow_wide=False):
        base.PatchedFlavour.__init__(self)
        self.family = family
        # status() reports the version of the package the support table judges the flavour by
        # (TensorFlow for tf.keras, also where a keras 2.6-2.15 package holds its code)
        self.label, self.version_of = family.label, support.flavour(family.label).package
        self._tensorflow_wide = tensorflow_wide
        self._native_v2 = None
        self._call_context_accessor = None  # found on first use: see _call_context
        # TF 1.4-1.12 tag a BN output as using the learning phase only when their `call` picked
        # the phase itself; untagged, the model would never feed the phase to fit().
        self._tags_learning_phase = False
        self._class_names = support.TF_KERAS_BN_CLASSES  # the class that defines BN `call`: the first found
        self._bn_class = None  # that class, once patched

    def hooks(self):
        family = self.family
        steps = [(support.ALL_RELEASES, self._patch_bn)]
        if family.version_of == "tensorflow":
            first = support.flavour("tf.keras").first
            steps = [((first, support.TF_KERAS_ONE_CLASS[1]), self._one_class)] + \
                [(support.ALL_RELEASES, self._patch_bn),
                 ((first, support.TF_KERAS_UPDATES_UNGATED_BEFORE), self._update_from_taken_branch),
                 ((first, support.TF_KERAS_WRAPPER_FREEZES_FROM), self._freeze_wrappers)]
        found = [base.Hook(family.bn_module, family.version_of, steps)]
        if self._tensorflow_wide:
            found += [base.Hook(name, "tensorflow", ((support.ALL_RELEASES, _patch_saved_model_save),))
                      for name in support.KERAS_SAVED_MODEL_SAVE]
        return found

    def _one_class(self, module):
        """TF 1.4-1.12: one BatchNormalization class, which tags its outputs itself (see __init__)."""
        self._class_names = support.TF_KERAS_ONE_CLASS[:1]
        self._tags_learning_phase = True

    def _patch_bn(self, module):
        family = self.family
        names = [name for name in self._class_names if hasattr(module, name)]
        if not names:
            if not keras3.is_keras3(family.version_of):  # Keras 3 is the keras3 flavour's
                base.leave_alone(family.label, family.version_of, "%s has no %s to hook (a BatchNormalization "
                                 "this package does not know; supported: %s)" % (
                                     module.__name__, " or ".join(self._class_names),
                                     support.flavour(family.label).what),
                                 family.backend_module.rsplit(".", 1)[0])
            return
        self._bn_class = getattr(module, names[0])
        registry.add(patching.patch(self._bn_class, "call", self.falls_back(self._held_call)), self)
        quiet_autograph_notice()
        status.patched(self)  # its state is known only once TF is imported

    def _update_from_taken_branch(self, module):
        if self._bn_class is not None:
            patching.patch(self._bn_class, "_assign_moving_average", _update_from_taken_branch)

    def _freeze_wrappers(self, module):
        if self._bn_class is not None:
            wrappers.freeze_with_their_wrapper(*support.TF_KERAS_WRAPPER)

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
                tf_version = _finished_tensorflow_version()
                if not tf_version:
                    return False
                self._native_v2 = support.within(tf_version, (first, None))
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
        return session_flags.session_exists(graph, self.backend())

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

    def _tracing_for_saved_model(self):
        """True while functions are traced for a SavedModel: they must not capture our flag."""
        if _saving.get():
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


    def _held_call(self, wrapped, layer, args, kwargs):
        """Wrapper of ``BatchNormalizationBase.call(inputs, training=None)``."""
        held.saw(layer)
        if self.is_native(layer) or self._tracing_for_saved_model():
            # A SavedModel must hold plain Keras functions: our flag is not part of the model.
            return wrapped(*args, **kwargs)
        given = training = args[1] if len(args) > 1 else kwargs.get("training")
        if training is None:
            training = self.backend().learning_phase()
        static = _static_value(training)
        if static is not None and not static:
            return wrapped(*args, **kwargs)
        import tensorflow as tf
        flag = flags.flag_for(layer, self)
        # Decided now, in Python, when running eagerly (nothing to go stale) or when traced in
        # a TF 2 entry point that keeps its traces per switch: no extra ops, as fast as hand-written.
        if _eager(tf) or (flags.traces_per_switch() and _tracing_tf_function(tf)):
            return wrapped(args[0] if args else kwargs["inputs"], False) if flag.value \
                else wrapped(*args, **kwargs)
        effective = tf.logical_and(tf.cast(training, tf.bool), tf.logical_not(flag.variable))
        rest = {key: value for key, value in kwargs.items() if key not in ("inputs", "training")}
        inputs = args[0] if args else kwargs["inputs"]
        token = _effective.set(effective)
        try:
            output = wrapped(inputs, effective, *args[2:], **rest)
        finally:
            _effective.reset(token)
        if self._tags_learning_phase and given is None:
            output._uses_learning_phase = True
        return output


def _update_from_taken_branch(wrapped, layer, args, kwargs):
    """Wrapper of ``_assign_moving_average(variable, value, momentum)`` of TF < 1.14, whose BN
    ``call`` runs the update even when ``training`` is false (momentum 1.0 then).  In a call we
    built, the value is the variable itself unless ``effective``: the update then writes back
    x - (x - x) * 0 == x bit for bit, never FusedBatchNorm's uninitialised inference outputs."""
    effective = _effective.get()
    if effective is None or len(args) < 2:
        return wrapped(*args, **kwargs)
    import tensorflow as tf
    variable, value = args[0], args[1]
    # a cond, not a where: the value may be kept with dimensions the variable does not have
    chosen = tf.cond(effective, lambda: tf.identity(value), lambda: tf.identity(variable))
    return wrapped(variable, chosen, *args[2:], **kwargs)


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
                "%s.call of " % owner.__qualname__ in message for owner in registry.classes()))

    _notice_filter.append(PatchedCallNotice())
    logging.getLogger("tensorflow").addFilter(_notice_filter[0])


def flavours():
    families = support.TF_KERAS_FAMILIES
    return [TfKerasFlavour(family, tensorflow_wide=family is families[0]) for family in families]


def natively_frozen(layer):
    """The V2 class of the family where its TensorFlow honours `trainable` by itself."""
    tf_version = _finished_tensorflow_version()
    native_from = support.TF_KERAS_FAMILIES[0].native_v2_from
    return bool(getattr(layer, "_USE_V2_BEHAVIOR", False)) and bool(tf_version) and \
        support.within(tf_version, (native_from, None))


def _finished_tensorflow_version():
    """TensorFlow's version once ``tensorflow`` has finished importing, else ()."""
    return versions.version_tuple(getattr(sys.modules.get("tensorflow"), "__version__", ""))


def _patch_saved_model_save(module):
    if hasattr(module, "save"):
        patching.patch(module, "save", _on_saved_model_save)


def _on_saved_model_save(wrapped, instance, args, kwargs):
    """Wrapper of Keras's SavedModel ``save`` (TF 2.0-2.3): functions traced inside are saved."""
    token = _saving.set(True)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _saving.reset(token)
