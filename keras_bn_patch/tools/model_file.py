"""What a saved model file declares, read without loading it: no layer is built and none of
the file's code runs.  Loading can run code from the file: Keras 2 and tf.keras store a
``Lambda`` layer's function as marshalled bytecode and call it while they rebuild the model
(the class of CVE-2024-3660; Keras 3 refuses such files unless ``safe_mode=False``), and a
class the installed Keras does not define is either someone's code or a module Keras 3 would
import by the name the file gives.  The CLI loads a file only when this finds neither, or
when it is told to trust the file (``--trust-code``).

Read: an h5 file's ``model_config``, a ``.keras`` archive's ``config.json``, a SavedModel's
``keras_metadata.pb`` (TF >= 2.5) or the metadata in its ``saved_model.pb`` (TF 2.0-2.4).
"""
import json
import os
import shutil
import tempfile
import zipfile

# Deserialised by name from TensorFlow's API (no code in the file): TF 2's functional models
# save the TensorFlow operations applied to Keras tensors so.
_RUNS_NO_FILE_CODE = ("TFOpLambda", "SlicingOpLambda")


def untrusted_layers(path, api):
    """["<why>: layer '<name>'", ...] for every layer of the file at ``path`` whose loading would
    run code from the file or from outside ``api``'s Keras; [] when there is none."""
    known = _own_layer_classes(api)
    found = []
    for config in _configs(path):
        for class_name, name, module in _layers(config):
            if class_name == "Lambda":
                found.append("Lambda layer %r (Keras rebuilds its function from bytecode stored in the file "
                             "and calls it)" % name)
            elif class_name not in known and class_name not in _RUNS_NO_FILE_CODE:
                found.append("layer %r of class %r, which %s %s does not define" % (name, class_name, api.name,
                                                                                  api.version))
            elif module is not None and module.split(".")[0] != "keras":
                found.append("layer %r of class %r from module %r, which loading would import"
                             % (name, class_name, module))
    return sorted(set(found))


def _own_layer_classes(api):
    """The names of the layer and model classes the flavour's own packages define."""
    packages = ("keras", "tensorflow", "tensorflow_core", "tf_keras")
    names, seen, pending = set(), set(), [api.keras.layers.Layer]
    while pending:  # every subclass, each once (several classes share a name: V1 and V2 BN)
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        if cls.__module__.split(".")[0] in packages:
            names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


def _layers(node, found=None):
    """[(class_name, name, module or None)] of the model and every layer nested in a config."""
    found = [] if found is None else found
    if isinstance(node, dict):
        config = node.get("config")
        is_layer = "class_name" in node and (
            isinstance(config, list)  # Keras 2.0-2.2.2's Sequential: a list of layers
            or isinstance(config, dict) and ("trainable" in config or "layers" in config))
        if is_layer:
            name = config.get("name") if isinstance(config, dict) else node.get("name")
            found.append((node["class_name"], name, node.get("module")))
        for value in node.values():
            _layers(value, found)
    elif isinstance(node, list):
        for item in node:
            _layers(item, found)
    return found


def _configs(path):
    if os.path.isdir(path):
        return _saved_model_configs(path)
    if zipfile.is_zipfile(path):  # Keras 3's .keras archive
        with zipfile.ZipFile(path) as archive:
            return [json.loads(archive.read("config.json").decode("utf-8"))]
    import h5py
    with h5py.File(path, "r") as handle:
        config = handle.attrs.get("model_config")
    if config is None:
        raise ValueError("%s holds no model config (a weights-only file?)" % path)
    return [json.loads(config.decode("utf-8") if isinstance(config, bytes) else config)]


def _saved_model_configs(path):
    metadata = os.path.join(path, "keras_metadata.pb")
    if os.path.exists(metadata):
        with open(metadata, "rb") as handle:
            strings = _metadata_strings(handle.read())
    else:
        from tensorflow.core.protobuf import saved_model_pb2
        saved = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
            saved.ParseFromString(handle.read())
        strings = [node.user_object.metadata for graph in saved.meta_graphs for node in graph.object_graph_def.nodes
                   if node.HasField("user_object")]
    configs = []
    for text in strings:
        try:
            configs.append(json.loads(text))
        except ValueError:  # not every string field of a node is JSON
            pass
    if not configs:
        raise ValueError("%s holds no Keras metadata: not a Keras SavedModel" % path)
    return configs


def _metadata_strings(data):
    """The string fields of each node of ``keras_metadata.pb`` (a ``SavedMetadata`` message:
    repeated nodes, field 1), read from protobuf's wire format."""
    return [value.decode("utf-8", "replace") for node in _fields(data) if node[0] == 1
            for field, value in _fields(node[1]) if isinstance(value, bytes)]


def _fields(data):
    """[(field number, bytes or int)] of one protobuf message."""
    found, position = [], 0
    while position < len(data):
        key, position = _varint(data, position)
        field, kind = key >> 3, key & 7
        if kind == 0:
            value, position = _varint(data, position)
        elif kind == 2:
            size, position = _varint(data, position)
            value, position = data[position:position + size], position + size
        elif kind in (1, 5):
            size = 8 if kind == 1 else 4
            value, position = data[position:position + size], position + size
        else:
            raise ValueError("keras_metadata.pb: unknown protobuf wire type %d" % kind)
        found.append((field, value))
    return found


def _varint(data, position):
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK"


def unreadable(path):
    """What keeps ``path`` from being a model file any Keras could read, in words naming the
    problem (missing, empty, a directory that is no SavedModel, not HDF5, truncated), or None."""
    if not os.path.exists(path):
        return "no model file %s" % path
    if os.path.isdir(path):
        pb = os.path.join(path, "saved_model.pb")
        if not os.path.isfile(pb):
            return "%s is a directory without saved_model.pb: not a SavedModel" % path
        return "%s/saved_model.pb is empty: the SavedModel is incomplete" % path if os.path.getsize(pb) == 0 else None
    if os.path.getsize(path) == 0:
        return "%s is empty (0 bytes)" % path
    with open(path, "rb") as handle:
        start = handle.read(8)
    if start.startswith(_ZIP_SIGNATURE):
        if not zipfile.is_zipfile(path):
            return "%s is a damaged or truncated zip archive (a .keras file must be a whole zip)" % path
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                return "%s is a zip archive without config.json: not a .keras model file" % path
        return None
    if start != _HDF5_SIGNATURE:
        return ("%s is not a model file: neither HDF5 (.h5) nor a .keras archive (it starts with %r), and not a "
                "SavedModel directory" % (path, start))
    try:
        import h5py
        with h5py.File(path, "r") as handle:
            handle.attrs.get("model_config")
    except ImportError:
        return None  # the flavour's own loader says
    except Exception as error:
        return "%s is an HDF5 file that cannot be read: truncated or damaged (%s)" % (path, str(error).split("\n")[0])
    return None


def save_options(source, out):
    """The format a recalibrated copy of ``source`` is saved in: its own, which ``out``'s name
    must allow (every Keras picks the format from the name); a clear error naming --out if not."""
    ending = os.path.splitext(out)[1].lower()
    # Loaded without compiling (the CLI loads nothing it does not need): no optimizer to save,
    # and TF 1.9-1.10 fail on the missing one unless told.
    if os.path.isdir(source):
        if ending in (".h5", ".hdf5", ".keras"):
            raise ValueError("--out %s: the model is a SavedModel directory; name a directory, not a %s file"
                             % (out, ending))
        return {"save_format": "tf", "include_optimizer": False}
    if zipfile.is_zipfile(source):
        if ending != ".keras":
            raise ValueError("--out %s: the model is a .keras file; name the new one *.keras" % out)
        return {}
    if ending not in (".h5", ".hdf5"):
        raise ValueError("--out %s: the model is an HDF5 file; name the new one *.h5 (or *.hdf5)" % out)
    return {"include_optimizer": False}


def save(model, target, options):
    """``model`` saved at ``target`` whole or not at all: written beside it, then moved over it."""
    directory = os.path.dirname(os.path.abspath(target)) or "."
    scratch = tempfile.mkdtemp(prefix=".keras-bn-patch-", dir=directory)
    try:
        written = os.path.join(scratch, os.path.basename(target))
        try:
            model.save(written, **options)
        except TypeError:  # Keras 2 and TF 1's tf.keras take no save_format: the name decides
            model.save(written, **dict((key, value) for key, value in options.items() if key != "save_format"))
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        os.replace(written, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
