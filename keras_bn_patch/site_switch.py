"""``keras-bn-patch site install | uninstall | status [--user]``: every Python process of this
environment starts patched, without an import line, through one ``.pth`` file.

The file holds one line that imports ``keras_bn_patch_startup`` (a finder, about a
millisecond; the package itself loads when Keras is imported) and guards itself: after
``pip uninstall keras-bn-patch`` the line finds nothing and does nothing.
"""
import os
import site
import sysconfig

FILE_NAME = "keras_bn_patch.pth"
LINE = ("import sys; exec('try:\\n import keras_bn_patch_startup\\nexcept Exception:\\n pass') "
        "# keras-bn-patch site install: frozen BN layers held in every process\n")


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
