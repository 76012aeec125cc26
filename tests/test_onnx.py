"""ONNX techniques on tiny local models: same outputs (fp32), smaller files (int8), inputs untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microbudget_core import techniques
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.measure import MeasureConfig, measure
from microbudget_core.models import ModelSpec, load_model
from microbudget_core.saved import load_saved
from microbudget_core.models.bundle import IMAGE, ModelBundle
from microbudget_core.models.onnx_model import cpu_preset
from microbudget_core.models.vision import MobileNetV2, preprocessor_for

FAST = MeasureConfig(memory=False, warmup=1, latency_runs=5)


def apply(technique_id: str, bundle: ModelBundle, **settings) -> ModelBundle:
    technique = techniques.get(technique_id)
    return technique.apply(bundle, techniques.make_config(technique, settings))


@pytest.fixture
def text(tiny_text_model, sentiment_csv):
    dataset = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    return load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification"), dataset


@pytest.fixture
def vision():
    torch.manual_seed(0)
    model = MobileNetV2(num_classes=3, width_mult=0.5).eval()
    meta = {"family": "mobilenet-v2", "num_classes": 3, "width_mult": 0.5, "image_size": 32}
    images = [np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8) for i in range(6)]
    return ModelBundle(model, IMAGE, ["a", "b", "c"], preprocessor_for(32), "tiny-mobilenet", meta), images


def test_onnx_fp32_matches_pytorch_for_text_and_vision(text, vision):
    (text_bundle, dataset), (vision_bundle, images) = text, vision
    for bundle, inputs in [(text_bundle, dataset.eval.inputs[:16]), (vision_bundle, images)]:
        exported = apply("onnx", bundle)
        assert exported.meta["runtime"] == "onnxruntime"
        np.testing.assert_allclose(exported.logits(inputs), bundle.logits(inputs), atol=1e-4)
        assert isinstance(bundle.model, torch.nn.Module), "the input bundle was modified"


@pytest.mark.parametrize("level, atol", [("none", 1e-4), ("O1", 1e-4), ("O2", 1e-4), ("O3", 1e-2)])
def test_ortoptimizer_levels_fuse_the_transformer_graph_and_keep_its_outputs(text, level, atol):
    import onnx

    bundle, dataset = text
    optimized = apply("onnx", bundle, optimization=level)
    np.testing.assert_allclose(optimized.logits(dataset.eval.inputs[:16]), bundle.logits(dataset.eval.inputs[:16]),
                               atol=atol)  # O3 approximates GELU
    ops = {node.op_type for node in onnx.load_model_from_string(optimized.model.onnx_bytes).graph.node}
    assert ("SkipLayerNormalization" in ops) == (level in ("O2", "O3"))
    assert ("optimized with Optimum's ORTOptimizer" in optimized.meta["notes"][-1]) == (level != "none")
    with pytest.raises(MicrobudgetError, match="optimization='O9' is out of range"):
        apply("onnx", bundle, optimization="O9")


def test_onnx_int8_dynamic_is_smaller_and_agrees(tiny_text_model, sentiment_csv, tmp_path):
    import transformers

    # Wide enough that weights, not int8 scale tables and the tokenizer, dominate the file.
    config = transformers.BertConfig.from_pretrained(tiny_text_model, hidden_size=128, intermediate_size=512)
    transformers.BertModel(config).save_pretrained(tmp_path / "model")
    transformers.AutoTokenizer.from_pretrained(tiny_text_model).save_pretrained(tmp_path / "model")
    dataset = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    bundle = load_model(ModelSpec(str(tmp_path / "model")), dataset.label_names, "text-classification")
    before = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    quantized = apply("onnx-int8-dynamic", bundle)
    original = measure(bundle, dataset.eval, config=FAST)
    result = measure(quantized, dataset.eval, reference=original.predictions, config=FAST)
    assert result.figures.size_bytes < 0.6 * original.figures.size_bytes
    assert result.figures.fidelity >= 0.9
    assert cpu_preset() in quantized.meta["notes"][-1]
    assert all(torch.equal(before[k], v) for k, v in bundle.model.state_dict().items())
    reloaded = load_saved(quantized.save(tmp_path / "artifact"))
    np.testing.assert_allclose(reloaded.logits(dataset.eval.inputs), quantized.logits(dataset.eval.inputs))


def test_onnx_int8_dynamic_on_the_project_cnn(vision):
    bundle, images = vision
    quantized = apply("onnx-int8-dynamic", bundle, per_channel="false")
    assert quantized.logits(images).shape == (6, 3)
    assert "per-channel off" in quantized.meta["notes"][-1]


def test_an_unknown_preset_and_a_torch_quantized_input_are_explained(text):
    bundle, _ = text
    with pytest.raises(MicrobudgetError, match="preset='sse' is out of range"):
        apply("onnx-int8-dynamic", bundle, preset="sse")
    with pytest.raises(MicrobudgetError, match="Put the ONNX step first"):
        apply("onnx", apply("dynamic-int8", bundle, backend="torch.ao"))


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_onnx_int8_static_calibrates_and_agrees_on_the_cnn(vision, method):
    from microbudget_core.data import split

    bundle, images = vision
    labels = ["a", "b", "c"] * 10
    many = [np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8) for i in range(30)]
    dataset = split("synthetic", "image", many, labels)
    technique = techniques.get("onnx-int8-static")
    config = techniques.make_config(technique, {"calibration": method, "calibration_examples": "16"})
    quantized = technique.apply(bundle, config, dataset)
    agree = np.mean(quantized.predict(images) == bundle.predict(images))
    assert agree >= 0.5 and quantized.logits(images).shape == (6, 3)
    assert f"{method} calibration on 16 examples" in quantized.meta["notes"][-1]


@pytest.mark.parametrize("reduce_range", ["on", "off"])
def test_onnx_int8_static_reduce_range_is_a_choice_and_said(vision, reduce_range):
    from microbudget_core.data import split

    bundle, images = vision
    many = [np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8) for i in range(30)]
    dataset = split("synthetic", "image", many, ["a", "b", "c"] * 10)
    technique = techniques.get("onnx-int8-static")
    config = techniques.make_config(technique, {"reduce_range": reduce_range, "calibration_examples": "16"})
    quantized = technique.apply(bundle, config, dataset)
    assert np.mean(quantized.predict(images) == bundle.predict(images)) >= 0.5
    assert ("7-bit weights" in quantized.meta["notes"][-1]) == (reduce_range == "on")
    with pytest.raises(MicrobudgetError, match="reduce_range='maybe' is out of range"):
        apply("onnx-int8-static", bundle, reduce_range="maybe")


def test_onnx_int8_static_needs_data(vision):
    bundle, _ = vision
    with pytest.raises(MicrobudgetError, match="needs calibration examples"):
        apply("onnx-int8-static", bundle)


def test_a_failing_export_gives_one_clear_message(vision):
    from dataclasses import replace

    class Unexportable(torch.nn.Module):
        def forward(self, pixel_values):
            raise RuntimeError("operator not supported")

    bundle, _ = vision
    with pytest.raises(MicrobudgetError, match="ONNX could not export this model.*operator not supported"):
        apply("onnx", replace(bundle, model=Unexportable()))
