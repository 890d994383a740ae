"""What a flavour (a family of Keras whose BatchNormalization works alike) gives the patch.

A flavour module defines a subclass of ``Flavour`` and ``flavours()``, the instances to
install.  The install loop (``core/install.py``) registers each instance's ``hooks()`` as
post-import hooks and knows nothing else of any Keras; the entry points, the flags and the
tools reach a flavour only through the members below.  A hook reports what it found to
``core/status.py`` (patched, native or unsupported, with why).
"""
import warnings

from .. import log


class Flavour(object):
    label = None  # how status() names it ("keras", "tf.keras", "tf_keras", "keras3")
    version_of = None  # the package whose __version__ status() reports

    def __init__(self):
        self.failed = None  # why the patch stopped on a BN call (see falls_back), or None

    # ------------------------------------------------------------ installing
    def hooks(self):
        """[(module name, function(module))]: each run once that module is imported (at once if
        it is already), all or nothing: a function that raises leaves Keras as it was."""
        raise NotImplementedError

    def state(self):
        """What status() says of a flavour whose hook patched it."""
        return "patched"

    # ------------------------------------------------------------ runtime flags
    def new_flag(self, value):
        """A new backend variable holding ``value`` (held or not)."""
        raise NotImplementedError

    def set_flag(self, variable, value):
        raise NotImplementedError

    def set_flags(self, pairs):
        """[(variable, value)], written in one run where a session holds them."""
        raise NotImplementedError

    def in_session(self, variable):
        """Whether ``variable`` lives in a TF 1 session (else in the process)."""
        raise NotImplementedError

    def has_session(self, graph):
        """Whether a session for ``graph`` exists already (without making one)."""
        raise NotImplementedError

    def builds_graph_at_call(self):
        """Whether a BN call builds its graph once, when called (graph mode), or again per trace."""
        raise NotImplementedError

    def is_native(self, layer):
        """Whether this patched class's ``layer`` honours ``trainable`` by itself (then passed through)."""
        return False

    # ------------------------------------------------------------ never fail where Keras runs
    def falls_back(self, patched_call):
        """A BN ``call`` wrapper that never fails where plain Keras runs: if the patched call raises,
        the plain call runs instead (its own error, if it has one, is the one raised); the first
        such failure is logged and warned, and this flavour runs plain Keras from then on,
        reported ``unsupported`` by status()."""
        def call(wrapped, layer, args, kwargs):
            if self.failed is not None:
                return wrapped(*args, **kwargs)
            try:
                return patched_call(wrapped, layer, args, kwargs)
            except Exception as error:
                result = wrapped(*args, **kwargs)
                self._fail(error)
                return result
        return call

    def _fail(self, error):
        if self.failed is not None:
            return
        self.failed = "the patch failed on a BatchNormalization call (%s: %s); plain Keras runs from now on" % (
            type(error).__name__, error)
        message = "keras_bn_patch: %s: frozen BN layers are not held" % self.failed
        log.logger().error(message, exc_info=error)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
