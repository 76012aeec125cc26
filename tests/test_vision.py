"""The project's vision networks and their preprocessing: architecture and preprocessing checks run without assets."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from microbudget_core.support import assets
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.models import vision
from microbudget_core.models.bundle import IMAGE, ModelBundle
from microbudget_core.models.vision import (
    IMAGENET_CLASSES,
    ImagePreprocessor,
    MobileNetV2,
    load_pretrained,
    load_saved_network,
)


def test_imagenet_classes():
    assert len(IMAGENET_CLASSES) == 1000
    assert IMAGENET_CLASSES[0] == "tench"
    assert IMAGENET_CLASSES[698] == "palace"
    assert IMAGENET_CLASSES[999] == "toilet tissue"


def test_state_dict_matches_torchvision_layout():
    model = MobileNetV2()
    state = model.state_dict()
    # torchvision's mobilenet_v2: 314 entries, 3,504,872 parameters
    assert len(state) == 314
    assert sum(p.numel() for p in model.parameters()) == 3_504_872
    shapes = {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.0.1.running_var": (32,),
        "features.1.conv.0.0.weight": (32, 1, 3, 3),
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280),
        "classifier.1.bias": (1000,),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert list(state)[:2] == ["features.0.0.weight", "features.0.1.weight"]
    assert list(state)[-2:] == ["classifier.1.weight", "classifier.1.bias"]


def test_forward_shapes():
    model = MobileNetV2(num_classes=7).eval()
    with torch.inference_mode():
        pixels = torch.randn(2, 3, 96, 96)
        assert model(pixels).shape == (2, 7)
        assert model.forward_features(pixels).shape == (2, 1280)


def test_half_width_builds_and_runs():
    model = MobileNetV2(num_classes=3, width_mult=0.5).eval()
    assert model.features[0][0].out_channels == 16
    assert model.last_channel == 1280  # the last layer never shrinks
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_preprocessor_inputs_and_determinism():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    rgb = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    pil = Image.fromarray(rgb).convert("P")
    preprocess = ImagePreprocessor()
    first = preprocess([gray, rgb, pil])["pixel_values"]
    assert first.shape == (3, 3, 224, 224) and first.dtype == torch.float32
    assert torch.equal(first, preprocess([gray, rgb, pil])["pixel_values"])
    # a grayscale image becomes three equal channels before normalising
    std, mean = torch.tensor(preprocess.std).view(3, 1, 1), torch.tensor(preprocess.mean).view(3, 1, 1)
    unnormalised = first[0] * std + mean
    assert torch.allclose(unnormalised[0], unnormalised[1], atol=1e-5)
    assert ImagePreprocessor(size=96, resize=110)([rgb])["pixel_values"].shape == (1, 3, 96, 96)
    assert preprocess([])["pixel_values"].shape == (0, 3, 224, 224)


def test_preprocessor_is_picklable_and_rejects_float_arrays():
    preprocess = ImagePreprocessor(size=128, resize=146)
    assert pickle.loads(pickle.dumps(preprocess)) == preprocess
    with pytest.raises(MicrobudgetError, match="uint8"):
        preprocess([np.zeros((28, 28), dtype=np.float32)])


def test_save_and_load_saved_round_trip(tmp_path):
    torch.manual_seed(0)
    model = MobileNetV2(num_classes=4, width_mult=0.5).eval()
    labels = ["a", "b", "c", "d"]
    meta = {"family": "mobilenet-v2", "num_classes": 4, "width_mult": 0.5, "image_size": 96}
    bundle = ModelBundle(model=model, task=IMAGE, labels=labels, preprocess=ImagePreprocessor(96, 110),
                         name="mobilenet-v2", meta=meta)
    folder = bundle.save(tmp_path / "saved")
    loaded = load_saved_network(folder, json.loads((folder / "microbudget.json").read_text()))
    images = [np.random.default_rng(1).integers(0, 256, (120, 90, 3), dtype=np.uint8)]
    assert loaded.labels == labels and loaded.meta == meta and loaded.head_trained
    assert loaded.preprocess == bundle.preprocess
    assert np.array_equal(loaded.logits(images), bundle.logits(images))


def test_corrupt_weights_fail_the_checksum(tmp_path, monkeypatch):
    weights = tmp_path / "weights" / "mobilenet_v2-b0353104.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(assets, "package_dir", lambda package: tmp_path)
    assets._sha256.cache_clear()
    with pytest.raises(MicrobudgetError, match="sha256"):
        load_pretrained("mobilenet-v2")


def test_unreadable_weights_say_reinstall(tmp_path, monkeypatch):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(vision, "asset_path", lambda asset: junk)
    with pytest.raises(MicrobudgetError, match="unreadable") as error:
        load_pretrained("mobilenet-v2")
    assert "--force-reinstall" in str(error.value)


@pytest.mark.slow
def test_china_jpg_is_a_palace():
    from sklearn.datasets import load_sample_image

    bundle = load_pretrained("mobilenet-v2")
    assert bundle.head_trained and bundle.labels == IMAGENET_CLASSES
    assert bundle.labels[int(bundle.predict([load_sample_image("china.jpg")])[0])] == "palace"


@pytest.mark.slow
def test_new_labels_get_a_reproducible_fresh_head():
    first = load_pretrained("mobilenet-v2", ["cat", "dog"], 160)
    torch.manual_seed(123)  # the head must not depend on the caller's RNG
    second = load_pretrained("mobilenet-v2", ["cat", "dog"], 160)
    assert not first.head_trained and first.meta["num_classes"] == 2
    assert first.preprocess == ImagePreprocessor(size=160, resize=183)
    assert torch.equal(first.model.classifier[1].weight, second.model.classifier[1].weight)
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    assert first.logits([image]).shape == (1, 2)


def test_dynamic_int8_says_when_it_barely_applies_to_a_cnn():
    from microbudget_core import techniques
    from microbudget_core.models.bundle import IMAGE, ModelBundle
    from microbudget_core.models.vision import ImagePreprocessor, MobileNetV2

    bundle = ModelBundle(MobileNetV2(num_classes=10, width_mult=0.5), IMAGE, [str(i) for i in range(10)],
                         ImagePreprocessor(32, 36), "tiny-mobilenet", {"family": "mobilenet-v2"})
    technique = techniques.get("dynamic-int8")
    result = technique.apply(bundle, technique.Config(backend="torch.ao"))
    assert "static int8" in result.meta["notes"][0] and "notes" not in bundle.meta
