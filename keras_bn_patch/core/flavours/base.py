"""What a flavour (a family of Keras whose BatchNormalization works alike) gives the patch.

A flavour module defines a subclass of ``Flavour`` and ``flavours()``, the instances to
install.  The install loop (``core/install.py``) runs each instance's ``hooks()`` when their
module is imported, each step only in the releases it declares (the loop compares versions,
flavours do not), and knows nothing else of any Keras; the entry points, the flags and the
tools reach a flavour only through the members below.  A hook reports what it found to
``core/status.py`` (patched, native or unsupported, with why).
"""
import abc
import collections
import warnings

from .. import log, patching, registry, status

TYPE_CHECKING = False  # mypy reads these; at run time typing stays unimported (`import keras_bn_patch` is timed)
if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional, Sequence, Tuple

# A post-import hook: once ``module`` is imported, each ``(releases, step)`` of ``steps`` whose
# releases (first, stop) of ``package`` hold the version imported runs ``step(module)``, in
# order, all or nothing (``support.ALL_RELEASES``: every version).
Hook = collections.namedtuple("Hook", "module package steps")


def leave_alone(label, version_of, why, package):
    """Report ``label`` unsupported for ``why``, and leave ``package`` (``a.b``) exactly as it was."""
    patching.leave_alone(package)
    registry.forget_under(package)
    status.unsupported(label, version_of, why)


class Flavour(abc.ABC):
    label: str  # how status() names it ("keras", "tf.keras", "tf_keras", "keras3")
    version_of: str  # the package whose __version__ status() reports

    def __init__(self) -> None:
        self.failed: "Optional[str]" = None  # why the patch stopped on a BN call (see falls_back)

    # ------------------------------------------------------------ installing
    @abc.abstractmethod
    def hooks(self) -> "List[Hook]":
        """Its post-import hooks (``Hook``): run once their module is imported, at once if it is already."""

    def state(self) -> str:
        """What status() says of a flavour whose hook patched it."""
        return "patched"


class PatchedFlavour(Flavour):
    """A flavour whose hooks patch a BN class (Keras 3's only reports it native): what the
    entry points, the flags and the tools need of it."""

    # ------------------------------------------------------------ runtime flags
    @abc.abstractmethod
    def new_flag(self, value: bool) -> "Any":
        """A new backend variable holding ``value`` (held or not)."""

    @abc.abstractmethod
    def set_flag(self, variable: "Any", value: bool) -> None:
        """Write ``value`` into ``variable``."""

    @abc.abstractmethod
    def set_flags(self, pairs: "Sequence[Tuple[Any, bool]]") -> None:
        """[(variable, value)], written in one run where a session holds them."""

    @abc.abstractmethod
    def in_session(self, variable: "Any") -> bool:
        """Whether ``variable`` lives in a TF 1 session (else in the process)."""

    @abc.abstractmethod
    def has_session(self, graph: "Any") -> bool:
        """Whether a session for ``graph`` exists already (without making one)."""

    @abc.abstractmethod
    def builds_graph_at_call(self) -> bool:
        """Whether a BN call builds its graph once, when called (graph mode), or again per trace."""

    def is_native(self, layer: "Any") -> bool:
        """Whether this patched class's ``layer`` honours ``trainable`` by itself (then passed through)."""
        return False

    # ------------------------------------------------------------ never fail where Keras runs
    def falls_back(self, patched_call: "Callable") -> "Callable":
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
