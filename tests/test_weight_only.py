"""weight-only on a tiny model: packed bytes shrink with bits, error grows as bits shrink, artifacts reload."""

import numpy as np
import pytest
import torch

from microbudget_core import techniques
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.models import ModelSpec, load_model
from microbudget_core.saved import load_saved


@pytest.fixture
def text(tiny_text_model, sentiment_csv):
    dataset = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    return load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification"), dataset


def quantize(bundle, **settings):
    technique = techniques.get("weight-only")
    return technique.apply(bundle, techniques.make_config(technique, settings))


def test_fewer_bits_mean_fewer_bytes_and_more_error(text, tmp_path):
    bundle, dataset = text
    sizes, errors = {}, {}
    for bits in (8, 4, 2):
        result = quantize(bundle, bits=str(bits), group_size="16")
        sizes[bits] = (result.save(tmp_path / str(bits)) / "model.safetensors").stat().st_size
        layer_errors = result.meta["report"]["layer_relative_error"]
        errors[bits] = sum(layer_errors.values()) / len(layer_errors)
    assert sizes[2] < sizes[4] < sizes[8]
    assert errors[8] < errors[4] < errors[2] and errors[8] < 0.01
    assert not any(type(m).__name__ == "PackedLinear" for m in bundle.model.modules()), "the input was modified"


def test_eight_bit_keeps_predictions_and_the_head_stays_fp32(text, tmp_path):
    bundle, dataset = text
    result = quantize(bundle, bits="8")
    assert type(result.model.classifier) is torch.nn.Linear
    np.testing.assert_allclose(result.logits(dataset.eval.inputs), bundle.logits(dataset.eval.inputs), atol=0.02)
    assert "latency is of weights dequantized to fp32" in result.meta["notes"][-1]
    reloaded = load_saved(result.save(tmp_path / "artifact"))
    np.testing.assert_allclose(reloaded.logits(dataset.eval.inputs), result.logits(dataset.eval.inputs), atol=1e-6)


def test_bad_bits_and_onnx_models_are_explained(text):
    bundle, _ = text
    with pytest.raises(MicrobudgetError, match="bits=1 is out of range"):
        quantize(bundle, bits="1")
    onnx = techniques.get("onnx").apply(bundle, techniques.get("onnx").Config())
    with pytest.raises(MicrobudgetError, match="weight-only does not apply .* runs in ONNX Runtime.*before any ONNX"):
        quantize(onnx)


def test_the_sweep_measures_the_original_once_and_shrinks_with_bits(tiny_text_model, sentiment_csv, tmp_path):
    from microbudget_core.measure import MeasureConfig
    from microbudget_core.labs.quantization import run_sweep
    from microbudget_core.pipeline import Request
    from microbudget_core.runs import RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    sweep = run_sweep(Request(str(tiny_text_model), f"csv:{sentiment_csv}", [], 30), group_size=16, store=store,
                      measure_config=MeasureConfig(memory=False, warmup=1, latency_runs=3))
    runs = sweep.runs
    assert [r.steps[0]["technique"] for r in runs] == ["weight-only"] * 4 + ["dynamic-int8", "onnx-int8-dynamic"]
    assert [r.steps[0]["config"]["bits"] for r in runs[:4]] == [8, 4, 3, 2] and sweep.skipped == {}
    # One measurement of the original's quality and size; its speed is timed again beside each row.
    measured_once = ("size_bytes", "params", "accuracy", "confusion_matrix", "eval_examples")
    assert all([getattr(r.baseline, k) for k in measured_once] == [getattr(runs[0].baseline, k) for k in measured_once]
               for r in runs)
    assert len({r.baseline.latency_ms_p50 for r in runs}) > 1
    sizes = [r.result.size_bytes for r in runs[:4]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] < runs[0].baseline.size_bytes
    assert len(store.list()) == 6


def test_the_sweep_skips_an_int8_path_that_does_not_apply_and_says_why(tiny_text_model, sentiment_csv, monkeypatch):
    from microbudget_core import pipeline
    from microbudget_core.labs import quantization
    from microbudget_core.measure import MeasureConfig

    from microbudget_core import techniques

    for technique_id in ("dynamic-int8", "onnx-int8-dynamic"):  # their int8 paths for text: none
        monkeypatch.setattr(techniques.get(technique_id), "INT8_FOR", ())
    # transformers do not trace
    monkeypatch.setattr(techniques.get("static-int8"), "INT8_FOR", ("text-classification",))
    sweep = quantization.run_sweep(pipeline.Request(str(tiny_text_model), f"csv:{sentiment_csv}", [], 30), bits=(8,),
                               group_size=16, measure_config=MeasureConfig(memory=False, warmup=1, latency_runs=3))
    assert len(sweep.runs) == 1 and "cannot be traced" in sweep.skipped["static-int8"]
