"""The layers a model runs, and which of its BN layers are frozen there: the model's *view*.

A view maps each patched BN layer of a model to "frozen": its own ``trainable`` is False or
any model enclosing it is not trainable.  The same layer can be trainable for one model and
frozen inside another (the GAN pattern).  No state: computed from the model each time asked.
"""
import weakref

from . import registry


def _is_layer(value):
    return hasattr(value, "trainable") and hasattr(value, "call") and hasattr(value, "get_weights")


def _sublayers(layer):
    """The layers ``layer`` runs: a model's ``layers``; for any other layer, the layers it holds
    as attributes (a wrapper's ``layer``, Bidirectional's two, a user layer's ``self.bn``, alone
    or in a list), as TF 2 tracks them.  Keras 2.x tracks none of these, yet a frozen layer
    encloses the BN layers its own ``call`` runs."""
    if getattr(layer, "layers", None) is not None:
        return list(layer.layers)
    children = []
    for value in list(getattr(layer, "__dict__", {}).values()):
        for item in (value if isinstance(value, (list, tuple)) else (value,)):
            if item is not layer and _is_layer(item):
                children.append(item)
    return children


def reachable_layers(model):
    """[(path, layer, frozen)] for every layer nested in ``model``, in the order first reached.

    ``path`` names the layer through its enclosing models (``backbone/bn_conv1``).
    ``frozen``: its own ``trainable`` is False or an enclosing model is not trainable.
    A layer reached through several paths keeps its first path and counts as frozen
    only if it is frozen on all of them, as Keras trains a weight reachable through
    any trainable path.
    """
    found = {}  # id(layer) -> [path, layer, frozen]
    seen = set()

    def walk(layer, path, frozen_above):
        frozen = frozen_above or not getattr(layer, "trainable", True)
        entry = found.get(id(layer))
        if entry is None:
            found[id(layer)] = [path, layer, frozen]
        else:
            entry[2] = entry[2] and frozen
        if (id(layer), frozen) in seen:
            return
        seen.add((id(layer), frozen))
        for child in _sublayers(layer):
            name = str(getattr(child, "name", type(child).__name__))
            walk(child, path + "/" + name if path else name, frozen)

    walk(model, "", False)
    return [tuple(entry) for entry in found.values() if entry[1] is not model]


def view_of(model):
    """{bn_layer: frozen} for every patched BN layer reachable from ``model``: its *view*."""
    classes = registry.classes()
    view = weakref.WeakKeyDictionary()
    if classes:
        for _, layer, frozen in reachable_layers(model):
            if isinstance(layer, classes):
                view[layer] = frozen
    return view
