"""keras-bn-patch: frozen BatchNormalization layers stay frozen in Keras training.

``import keras_bn_patch`` installs the fix (unless ``KERAS_BN_PATCH=0``): a BN
layer whose ``trainable`` is False, or that sits inside a model that is not
trainable, normalizes with its moving statistics in training too, and never
updates them.  Nothing else changes.
"""
from .core import environment as _environment, install as _install
from .core import switch as _switch
from .core.install import is_installed
from .core.switch import disable, disabled, enable, enabled
from .reach import children as _children, engines as _engines
from .tools import defaults as _defaults

__version__ = "0.1.0"
__all__ = ["install", "uninstall", "is_installed", "enable", "disable", "is_enabled",
           "enabled", "disabled", "status", "diagnose", "recalibrate"]


def install():
    """Patch every Keras flavour imported now or later, in this process and in the Python
    processes it starts (where their environment has keras-bn-patch).  A second call does nothing."""
    _install.install(also=_engines.WATCHERS)
    _children.reach()


def uninstall():
    """Put back everything the patch replaced; processes started from now on start plain.
    Graphs built meanwhile behave as plain Keras."""
    _install.uninstall()
    _children.withdraw()


def status():
    """{flavour: {"version": ..., "state": "patched" | "native" | "unsupported: why"}} for each
    Keras flavour imported; where frozen layers of a model being trained were built before the
    patch (so are not held), that flavour's "not_held": ["model: layer", ...]; and, where
    anything reaches the processes started from this one, "processes": {"state": ..., "reach":
    [how: the start-up path, the site switch, an engine's hook]}."""
    report = _install.status_report()
    processes = _children.status()
    if processes is not None:
        report["processes"] = processes
    return report


def is_enabled():
    """True when frozen BatchNormalization layers are held in this context: the patch is
    installed and switched on (``enable()`` / the blocks)."""
    return is_installed() and _switch.is_enabled()


def load_ipython_extension(ipython):
    """``%load_ext keras_bn_patch``: install the patch in this IPython kernel or shell, unless
    ``KERAS_BN_PATCH=0`` is set (it wins in every mode)."""
    if _environment.disables():
        print("keras_bn_patch: not installed: %s is set" % _environment.patch_setting())
        return
    install()
    print("keras_bn_patch: installed; build (or rebuild) your models now. %unload_ext keras_bn_patch removes it.")


def unload_ipython_extension(ipython):
    """``%unload_ext keras_bn_patch``: remove the patch (graphs built meanwhile run plain Keras)."""
    uninstall()


# The tools import NumPy and Keras only when called: `import keras_bn_patch` stays light.
def diagnose(model, x, batch_size=None, tolerance=_defaults.DIAGNOSE_TOLERANCE, fine_tuned_unpatched=False,
             steps=None, y=None):
    """Which BN layers make ``model`` predict differently from how it trains on ``x``: a report
    (``print(report)``, ``report.to_dict()``).  tolerance: the largest harmless discrepancy.
    ``y``: the labels of ``x``, which tell whether the model was fine-tuned in the trap.
    See ``keras_bn_patch.tools.diagnose.diagnose``."""
    from .tools.diagnose import diagnose
    return diagnose(model, x, batch_size=batch_size, tolerance=tolerance,
                    fine_tuned_unpatched=fine_tuned_unpatched, steps=steps, y=y)


def recalibrate(model, data, steps=None, layers="all", batch_size=None, verbose=1, method="auto",
                tolerance=_defaults.RECALIBRATE_TOLERANCE, memory_limit=_defaults.MEMORY_LIMIT):
    """Set the chosen BN layers' moving statistics to the exact statistics of ``data``, in one
    pass over it whatever ``batch_size`` (which bounds one model call's memory): all of it in one
    batch where it fits in ``memory_limit`` bytes, else layer after layer, each run once per
    sample, the activations between them kept in memory up to ``memory_limit`` and in temporary
    files beyond.  Returns a summary of how far they moved and how.  See
    ``keras_bn_patch.tools.recalibrate``."""
    from .tools.recalibrate import recalibrate
    return recalibrate(model, data, steps=steps, layers=layers, batch_size=batch_size, verbose=verbose,
                       method=method, tolerance=tolerance, memory_limit=memory_limit)


if not _environment.disables():
    install()
