"""PyTorch static int8 (FX) on a tiny MobileNetV2: int8 kernels, close outputs, a saved artifact that reloads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microbudget_core import techniques
from microbudget_core.data import split
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.measure import MeasureConfig, measure
from microbudget_core.saved import load_saved
from microbudget_core.models.bundle import IMAGE, ModelBundle
from microbudget_core.models.vision import MobileNetV2, preprocessor_for


@pytest.fixture
def vision():
    torch.manual_seed(0)
    model = MobileNetV2(num_classes=3, width_mult=0.5).eval()
    meta = {"family": "mobilenet-v2", "num_classes": 3, "width_mult": 0.5, "image_size": 32}
    bundle = ModelBundle(model, IMAGE, ["a", "b", "c"], preprocessor_for(32), "tiny-mobilenet", meta)
    images = [np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8) for i in range(30)]
    return bundle, split("synthetic", "image", images, ["a", "b", "c"] * 10)


def quantize(bundle: ModelBundle, dataset, **settings) -> ModelBundle:
    technique = techniques.get("static-int8")
    return technique.apply(bundle, techniques.make_config(technique, settings), dataset)


@pytest.mark.parametrize("fuse_relu", ["false", "true"])
def test_static_int8_runs_int8_convolutions_close_to_the_original(vision, fuse_relu):
    bundle, dataset = vision
    before = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    quantized = quantize(bundle, dataset, calibration_examples="16", fuse_relu=fuse_relu)
    kinds = {type(m).__name__ for m in quantized.model.modules()}
    assert {"Conv2d", "ConvReLU2d"} & kinds and any(type(m).__module__.startswith("torch.ao.nn.quantized")
                                                    for m in quantized.model.modules())
    assert ("ConvReLU2d" in kinds) == (fuse_relu == "true")
    images = dataset.eval.inputs
    original, int8 = bundle.logits(images), quantized.logits(images)
    # int8 activations of a random-weight net: logits within 15% of their spread, most argmaxes kept
    assert np.abs(original - int8).max() <= 0.15 * np.ptp(original) + 1e-3
    assert all(torch.equal(before[k], v) for k, v in bundle.model.state_dict().items())  # original untouched
    assert "16 calibration examples" in quantized.meta["notes"][-1]


def test_static_int8_artifact_is_smaller_and_reloads_to_the_same_outputs(vision, tmp_path):
    bundle, dataset = vision
    quantized = quantize(bundle, dataset, calibration_examples="16")
    fast = MeasureConfig(memory=False, warmup=1, latency_runs=3)
    original = measure(bundle, dataset.eval, config=fast, artifact_dir=tmp_path / "fp32")
    result = measure(quantized, dataset.eval, config=fast, artifact_dir=tmp_path / "int8")
    assert result.figures.size_bytes < original.figures.size_bytes / 2.5
    reloaded = load_saved(tmp_path / "int8")
    np.testing.assert_allclose(reloaded.logits(dataset.eval.inputs), quantized.logits(dataset.eval.inputs))


def test_static_int8_explains_what_it_cannot_do(vision, tiny_text_model, sentiment_csv):
    from microbudget_core.data import DatasetSpec, load_dataset
    from microbudget_core.models import ModelSpec, load_model

    bundle, dataset = vision
    with pytest.raises(MicrobudgetError, match="needs calibration examples"):
        quantize(bundle, None)
    text_data = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    text = load_model(ModelSpec(str(tiny_text_model)), text_data.label_names, "text-classification")
    with pytest.raises(MicrobudgetError, match="cannot be traced.*Use onnx-int8-static"):
        quantize(text, text_data)
