"""The BatchNormalization classes whose ``call`` is wrapped now, each with its flavour.

Its one owner of state: flavours add their class when their hook patches it, and the install
loop takes classes out again (an unsupported package, a hook that failed, ``uninstall``).
Everyone else reads.
"""
_classes = {}  # BN class whose call we wrap -> its flavour


def add(owner, flavour):
    _classes[owner] = flavour


def classes():
    return tuple(_classes)


def flavours():
    return set(_classes.values())


def flavour_of(layer):
    """The flavour that patched ``layer``'s class, or None."""
    for cls, flavour in _classes.items():
        if isinstance(layer, cls):
            return flavour
    return None


def keep_only(owners):
    """Forget every class but ``owners`` (what a hook added before it failed)."""
    for owner in [owner for owner in _classes if owner not in owners]:
        del _classes[owner]


def forget_under(package):
    """Forget the classes of ``package`` (``a.b``), which is left untouched."""
    keep_only([owner for owner in _classes if not owner.__module__.startswith(package + ".")])


def clear():
    _classes.clear()
