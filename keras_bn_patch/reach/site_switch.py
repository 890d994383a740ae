"""``keras-bn-patch site install | uninstall | status [--user]``: every Python process of this
environment starts patched, without an import line, through one ``.pth`` file.

The file holds one line that imports ``keras_bn_patch_startup`` (a finder, about a
millisecond; the package itself loads when Keras is imported) and guards itself: after
``pip uninstall keras-bn-patch`` the line finds nothing and does nothing.
"""
import os
import site
import subprocess
import sys
import sysconfig

from ..core import environment

FILE_NAME = "keras_bn_patch.pth"
# What the line runs.  Python's site module executes a .pth line that starts with "import", one
# line only: so the code goes to exec() as one literal, made here from the readable text.
STARTUP_CODE = """\
try:
    import keras_bn_patch_startup
except Exception:
    pass
"""
LINE = "import sys; exec(%r)  # keras-bn-patch site install: frozen BN layers held in every process\n" % STARTUP_CODE


def directory(user=False):
    return site.getusersitepackages() if user else sysconfig.get_paths()["purelib"]


def path(user=False):
    return os.path.join(directory(user), FILE_NAME)


def install(user=False):
    target = path(user)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w") as handle:
        handle.write(LINE)
    return target


def uninstall(user=False):
    target = path(user)
    if os.path.exists(target):
        os.remove(target)
        return target
    return None


def status(user=False):
    target = path(user)
    return target if os.path.exists(target) else None


def user_site_off():
    """Why this interpreter never reads its user site-packages (so a ``.pth`` there would never
    run), or None when it does."""
    if site.ENABLE_USER_SITE:
        return None
    if sys.prefix != getattr(sys, "base_prefix", sys.prefix):
        return "it runs in a virtual environment, which does not read the user site-packages"
    if os.environ.get(environment.NO_USER_SITE):
        return "PYTHONNOUSERSITE is set"
    if sys.flags.no_user_site:
        return "Python was started with -s"
    return "site.ENABLE_USER_SITE is off"


# Run in a new interpreter of this environment: what it did at start-up, not what files say.
_OBSERVE = "import sys; print('keras_bn_patch_startup' in sys.modules)"


def new_process_starts_patched(environ):
    """Whether a new Python process of this environment (this interpreter, with ``environ``)
    starts patched, observed by starting one: its start-up imported the finder that patches
    Keras on import, and ``KERAS_BN_PATCH=0`` does not turn it off."""
    try:
        output = subprocess.check_output([sys.executable, "-c", _OBSERVE], universal_newlines=True, env=environ,
                                         stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return output.strip() == "True" and not environment.disables(environ)
