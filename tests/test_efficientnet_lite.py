"""EfficientNet-Lite: TensorFlow padding and the network's shapes without assets; on the shipped weights, ImageNet
top-1 on foolbox's 20 images, and every image technique leaves load_model's cached original as it was."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from microbudget_core import techniques
from microbudget_core.support.assets import package_dir
from microbudget_core.data import IMAGE_INPUTS, split
from microbudget_core.models import IMAGE, ModelSpec, load_model
from microbudget_core.saved import load_saved
from microbudget_core.models.efficientnet_lite import SCALINGS, EfficientNetLite, _same_padding
from microbudget_core.models.vision import IMAGENET_CLASSES

VARIANTS = list(SCALINGS)


@pytest.mark.parametrize("size, kernel, stride, padding", [(224, 3, 2, (0, 1)), (112, 5, 2, (1, 2)),
                                                           (15, 3, 2, (1, 1)), (15, 5, 2, (2, 2)), (56, 5, 1, (2, 2))])
def test_padding_is_tensorflow_same(size, kernel, stride, padding):
    assert _same_padding(size, kernel, stride) == padding
    # SAME: the output is ceil(size / stride), whatever the kernel
    conv = torch.nn.Conv2d(1, 1, kernel, stride)
    out = conv(torch.nn.functional.pad(torch.zeros(1, 1, size, size), (*padding, *padding)))
    assert out.shape[-1] == -(-size // stride)


@pytest.mark.parametrize("variant, blocks, stem_to_head", [("efficientnet-lite0", 16, (32, 320)),
                                                          ("efficientnet-lite1", 21, (32, 320)),
                                                          ("efficientnet-lite2", 21, (32, 352))])
def test_variants_scale_depth_and_width_but_keep_the_stem_and_head(variant, blocks, stem_to_head):
    model = EfficientNetLite(variant, num_classes=5, image_size=65).eval()
    assert len(model._blocks) == blocks and model._conv_stem.out_channels == stem_to_head[0]
    assert model._blocks[-1]._project_conv.out_channels == stem_to_head[1] and model._conv_head.out_channels == 1280
    assert not any(isinstance(m, torch.nn.SiLU) for m in model.modules())  # Lite: ReLU6, no squeeze-excite
    assert model(torch.zeros(2, 3, 65, 65)).shape == (2, 5)  # odd sizes pad evenly, and still reach the head


def test_the_network_traces_for_fx_int8():
    graph = torch.fx.symbolic_trace(EfficientNetLite("efficientnet-lite0", num_classes=3, image_size=64))
    assert any(node.op == "call_module" and node.target == "_stem_pad" for node in graph.graph.nodes)


def _foolbox_images() -> tuple[list[Image.Image], np.ndarray]:
    folder = package_dir("foolbox")
    if folder is None:
        pytest.skip("foolbox (an offline asset package) is not installed")
    paths = sorted((folder / "data").glob("imagenet_*.jpg"))
    labels = [int(re.search(r"_(\d+)\.jpg$", path.name).group(1)) for path in paths]
    return [Image.open(path).convert("RGB") for path in paths], np.array(labels)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_each_lite_model_knows_the_foolbox_imagenet_images(variant):
    images, labels = _foolbox_images()
    assert len(images) == 20
    bundle = load_model(ModelSpec(variant))
    assert bundle.head_trained and bundle.labels == IMAGENET_CLASSES
    assert bundle.preprocess.size == SCALINGS[variant].image_size
    correct = int(np.sum(bundle.predict(images) == labels))
    assert correct >= 15, f"{variant}: {correct}/20 top-1"


# Every technique an image model takes, with small budgets (the settings each needs to run in seconds).
TECHNIQUES = {"finetune-head": {"epochs": 2, "min_image_size": 0}, "finetune-full": {"epochs": 1},
              "finetune-last-n": {"epochs": 1}, "from-scratch": {"epochs": 1},
              "distill": {"student": "model", "student_model": "efficientnet-lite0", "epochs": 1},
              "dynamic-int8": {}, "static-int8": {"calibration_examples": 8}, "weight-only": {"skip_head": False}, "fp16": {},
              "bf16": {}, "onnx": {}, "onnx-int8-dynamic": {}, "onnx-int8-static": {"calibration_examples": 8},
              "prune": {"ratio": 0.5, "scope": "global", "epochs": 1}, "prune-unstructured": {"ratio": 0.5}}


@pytest.mark.slow
def test_every_image_technique_leaves_the_cached_lite_original_as_it_was(tmp_path):
    applicable = {i for i, t in techniques.registry().items() if IMAGE in t.apply.kinds}
    assert applicable == set(TECHNIQUES), "a new image technique: add it here with a small budget"
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) for _ in range(30)]
    dataset = split("synthetic", IMAGE_INPUTS, images, ["a", "b", "c"] * 10)
    original = load_model(ModelSpec("efficientnet-lite0"), dataset.label_names, IMAGE, 32)
    before = {name: tensor.clone() for name, tensor in original.model.state_dict().items()}
    trained = None
    for technique_id, settings in TECHNIQUES.items():
        technique = techniques.get(technique_id)
        config = techniques.make_config(technique, {k: str(v) for k, v in settings.items()})
        # the teacher must have a trained head; its student (a lite0) comes from the same cache entry
        result = technique.apply(trained if technique_id == "distill" else original, config, dataset)
        trained = trained or result
        again = load_model(ModelSpec("efficientnet-lite0"), dataset.label_names, IMAGE, 32)
        assert again is original, "load_model's cache"
        after = original.model.state_dict()
        assert all(torch.equal(tensor, after[name]) for name, tensor in before.items()), technique_id
        reloaded = load_saved(result.save(tmp_path / technique_id))  # each result is an artifact that reloads
        assert np.allclose(reloaded.logits(images[:4]), result.logits(images[:4]), atol=1e-2), technique_id
