"""How the patch reaches the Python processes this one starts, and what status() says of it.

``import keras_bn_patch`` (and the launcher, ``%load_ext``) put the directory ``startup/`` first
on ``PYTHONPATH``, as coverage.py and OpenTelemetry start their subprocesses measured.  Every
Python process started from here then runs its ``sitecustomize``, which takes its own directory
off ``sys.path`` and imports ``keras_bn_patch_startup`` *from the child's own environment*: a
child whose interpreter or virtualenv lacks keras-bn-patch starts untouched, with nothing of
this environment on its path.  Engines that start their workers from this process (a local Ray
cluster, Spark ``local[*]``, joblib's loky, a Dask ``LocalCluster``, multiprocessing) pass the
environment on, and so does every process those start.  ``KERAS_BN_PATCH=0`` is inherited
too, and wins there as here.

Workers started elsewhere (``ray start``, a Spark standalone worker, ``dask worker``) do not
inherit it: ``engines`` holds the one line per engine for them, and the site switch covers an
image or a shared cluster.
"""
import os

from . import site_switch
from ..core import environment

STARTUP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "startup")
_engines = []  # what engines.py reached: one line each, for status()


def _entries():
    return [entry for entry in os.environ.get(environment.PYTHONPATH, "").split(os.pathsep) if entry]


def reach():
    """Start the Python processes this one starts patched (where keras-bn-patch is installed)."""
    entries = _entries()
    if STARTUP not in entries:
        os.environ[environment.PYTHONPATH] = os.pathsep.join([STARTUP] + entries)


def without_startup(environ):
    """A copy of ``environ`` without the start-up path: a process started with it begins plain."""
    copied = dict(environ)
    kept = [entry for entry in copied.get(environment.PYTHONPATH, "").split(os.pathsep) if entry and entry != STARTUP]
    if kept:
        copied[environment.PYTHONPATH] = os.pathsep.join(kept)
    else:
        copied.pop(environment.PYTHONPATH, None)
    return copied


def withdraw():
    """Start them plain again (``uninstall()``)."""
    if STARTUP in _entries():
        plain = without_startup(os.environ)
        if environment.PYTHONPATH in plain:
            os.environ[environment.PYTHONPATH] = plain[environment.PYTHONPATH]
        else:
            del os.environ[environment.PYTHONPATH]


def engine_reached(line):
    if line not in _engines:
        _engines.append(line)


def status():
    """{"state": ..., "reach": [...]}: how processes started from this one come to be patched,
    or None when nothing reaches them (and there is nothing to say)."""
    reach = []
    if any(os.path.abspath(entry) == STARTUP for entry in _entries()):
        reach.append("start-up path: Python processes started from here start patched where their own "
                     "environment has keras-bn-patch (PYTHONPATH=%s)" % STARTUP)
    for user in (False, True):
        if site_switch.status(user):
            off = site_switch.user_site_off() if user else None
            reach.append("site switch: every Python process of this environment (%s)" % site_switch.path(user)
                         if off is None else "none from the site switch file %s: this interpreter never reads "
                         "the user site-packages (%s)" % (site_switch.path(user), off))
    reach.extend(_engines)
    if environment.disables():
        return {"state": "none: %s is set, and processes started from here inherit it" % environment.patch_setting(),
                "reach": reach}
    if not reach:
        return None
    return {"state": "patched where keras-bn-patch is installed", "reach": reach}
