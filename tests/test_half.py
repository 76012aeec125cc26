"""fp16 / bf16 weights on tiny models: half the bytes, close outputs, honest notes, artifacts reload."""

import numpy as np
import pytest
import torch

from microbudget_core import techniques
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.measure import MeasureConfig, measure
from microbudget_core.models import ModelSpec, load_model
from microbudget_core.saved import load_saved


@pytest.mark.parametrize("technique_id", ["fp16", "bf16"])
def test_half_precision_halves_the_weights_and_keeps_predictions(technique_id, tiny_text_model, sentiment_csv,
                                                                   tmp_path):
    dataset = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    technique = techniques.get(technique_id)
    half = technique.apply(bundle, technique.Config())
    fast = MeasureConfig(memory=False, warmup=1, latency_runs=3)
    original = measure(bundle, dataset.eval, config=fast)
    result = measure(half, dataset.eval, reference=original.predictions, config=fast)
    fp32_file = bundle.save(tmp_path / "fp32") / "model.safetensors"
    half_file = half.save(tmp_path / "half") / "model.safetensors"
    assert half_file.stat().st_size < 0.6 * fp32_file.stat().st_size
    assert result.figures.fidelity >= 0.9
    np.testing.assert_allclose(half.logits(dataset.eval.inputs), bundle.logits(dataset.eval.inputs), atol=0.05)
    assert "half the bytes" in half.meta["notes"][-1]
    assert next(bundle.model.parameters()).dtype == torch.float32, "the input bundle was modified"
    reloaded = load_saved(tmp_path / "half")
    np.testing.assert_allclose(reloaded.logits(dataset.eval.inputs), half.logits(dataset.eval.inputs))
