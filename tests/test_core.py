"""The engine on tiny local models: loading, training, measuring, techniques, runs, pipeline."""

from __future__ import annotations

import itertools
import sqlite3
import time
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from microbudget_core import kinds
from microbudget_core import techniques, yardstick
from microbudget_core.baseline import build_baseline
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.measure import MeasureConfig, measure
from microbudget_core.models import TEXT, ModelSpec, count_params, load_model
from microbudget_core.saved import load_saved
from microbudget_core.pipeline import Request, prepare, resolve, run_pipeline, run_rows
from microbudget_core.runs import Run, RunStore
from microbudget_core.training import TrainConfig, train_classifier

FAST = MeasureConfig(memory=False, warmup=1, latency_runs=5)
CONTRACT = {"size_bytes", "params", "latency_ms_p50", "latency_ms_p95", "throughput_per_s", "accuracy",
            "balanced_accuracy", "macro_f1", "fidelity", "peak_rss_mb"}
LEARN_FAST = TrainConfig(epochs=8, learning_rate=3e-3, batch_size=16, patience=3)


@pytest.fixture
def dataset(sentiment_csv):
    return load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))


def test_local_folder_loads_like_a_hub_id_with_a_fresh_head(tiny_text_model, dataset):
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    assert bundle.labels == ["neg", "pos"]
    assert not bundle.head_trained
    assert bundle.logits(["good film", "bad film"]).shape == (2, 2)


def test_a_bare_bert_encoder_is_read_by_every_layers_mean_pooled_tokens(tiny_text_model, dataset, tmp_path):
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    assert type(bundle.model).__name__ == "LayerMeanBertForSequenceClassification"
    assert bundle.model.classifier.in_features == 32 * 3  # embeddings and 2 layers, 32 wide each
    # Padding does not count: a sentence scores the same alone and beside a much longer one.
    short, long = "good film", "the plot was dull and the actors were weak but the story is moving"
    np.testing.assert_allclose(bundle.logits([short, long])[0], bundle.logits([short])[0], atol=1e-5)
    # The saved artifact says how it pools, so it reloads as the same class with the same outputs.
    reloaded = load_saved(bundle.save(tmp_path / "saved"))
    assert type(reloaded.model) is type(bundle.model)
    np.testing.assert_allclose(reloaded.logits([short, long]), bundle.logits([short, long]), atol=1e-6)


def test_a_classifier_with_a_trained_head_keeps_its_own_class(tiny_text_model, dataset, tmp_path):
    import transformers

    config = transformers.BertConfig.from_pretrained(tiny_text_model, num_labels=2, id2label={0: "neg", 1: "pos"},
                                                     label2id={"neg": 0, "pos": 1})
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "sentiment")
    transformers.AutoTokenizer.from_pretrained(tiny_text_model).save_pretrained(tmp_path / "sentiment")
    bundle = load_model(ModelSpec(str(tmp_path / "sentiment")), dataset.label_names, "text-classification")
    assert bundle.head_trained and type(bundle.model).__name__ == "BertForSequenceClassification"
    exported = techniques.get("onnx").apply(bundle, techniques.get("onnx").Config(optimization="none"))
    np.testing.assert_allclose(exported.logits(dataset.eval.inputs[:8]), bundle.logits(dataset.eval.inputs[:8]),
                               atol=1e-4)  # through Optimum's exporter, which knows the stock classes


def test_hub_id_offline_fails_fast_with_a_clear_message():
    with pytest.raises(MicrobudgetError, match="'someone/not-a-model'.*unreachable.*or no such model"):
        load_model(ModelSpec("someone/not-a-model"), ["a", "b"], "text-classification")


def test_missing_local_folder_and_file_are_rejected(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    for bad in [str(tmp_path / "missing"), str(tmp_path / "weights.bin")]:
        with pytest.raises(MicrobudgetError, match="not a model folder"):
            load_model(ModelSpec(bad), ["a", "b"], "text-classification")


def test_training_learns_and_never_touches_the_input(tiny_text_model, dataset):
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    before = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    started = time.perf_counter()
    trained, report = train_classifier(bundle, dataset.train, LEARN_FAST)
    elapsed = time.perf_counter() - started
    accuracy = np.mean(trained.predict(dataset.eval.inputs) == dataset.eval.labels)
    assert accuracy >= 0.9, f"eval accuracy {accuracy}"
    assert report.train_examples == len(dataset.train) - min(300, len(dataset.train) // 5)
    assert report.history and 0 < report.train_seconds <= elapsed
    assert all(torch.equal(before[k], v) for k, v in bundle.model.state_dict().items())


def _clock_whose_nth_timed_call_takes_n_ms():
    now = 0.0
    for n in itertools.count(1):
        yield now  # a call starts
        now += n / 1000
        yield now  # it ends


def test_measure_reports_the_contract_fields(tiny_text_model, dataset, monkeypatch):
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    clock = _clock_whose_nth_timed_call_takes_n_ms()
    monkeypatch.setattr(yardstick.MACHINE, "clock", lambda: next(clock))
    result = measure(bundle, dataset.eval, config=replace(FAST, memory=True, attempts=1, rounds=1))
    assert CONTRACT <= result.figures.to_json().keys()
    m = result.figures
    # One round of 5 batch-1 calls (after a warm-up call): 1, 2, 3, 4 and 5 ms on this clock.
    assert m.latency_ms_p50 == pytest.approx(3) and m.latency_ms_p95 == pytest.approx(4.8)
    assert m.fidelity == 1.0  # the accuracy: checked against the confusion matrix below
    assert m.params == count_params(bundle.model) > 0
    assert m.peak_rss_mb > 50  # a fresh Python process with torch loaded
    confusion = np.array(m.confusion_matrix)
    assert confusion.shape == (2, 2) and confusion.sum() == len(dataset.eval)
    assert np.trace(confusion) == round(m.accuracy * len(dataset.eval))
    flipped = measure(bundle, dataset.eval, reference=1 - result.predictions, config=FAST)
    assert flipped.figures.fidelity == 0.0


@pytest.mark.parametrize("backend", ["torch.ao", "torchao"])
def test_dynamic_int8_shrinks_a_copy_and_keeps_predictions(tiny_text_model, dataset, backend):
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    trained, _ = train_classifier(bundle, dataset.train, LEARN_FAST)
    technique = techniques.get("dynamic-int8")
    quantized = technique.apply(trained, technique.Config(backend=backend))
    int8_weights = [m for m in quantized.model.modules() if type(m).__name__ == "Linear" and (
        "quantized" in type(m).__module__ or "Int8" in type(m.weight).__name__)]
    assert len(int8_weights) == sum(isinstance(m, torch.nn.Linear) for m in trained.model.modules())
    assert f"Backend: {backend} chosen by hand" in quantized.meta["notes"][-1]
    assert any(type(m) is torch.nn.Linear for m in trained.model.modules()), "input was modified"
    original = measure(trained, dataset.eval, config=FAST)
    result = measure(quantized, dataset.eval, reference=original.predictions, config=FAST)
    assert result.figures.size_bytes < original.figures.size_bytes
    assert result.figures.fidelity >= 0.9


def test_dynamic_int8_refuses_a_model_without_linear_layers(tiny_text_model, dataset):
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    conv_only = replace(bundle, model=torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1)), name="conv")
    with pytest.raises(MicrobudgetError, match="no Linear layers"):
        techniques.get("dynamic-int8").apply(conv_only, techniques.get("dynamic-int8").Config())


def test_unknown_technique_and_bad_settings_are_explained():
    with pytest.raises(MicrobudgetError, match="Unknown technique 'magic'.*dynamic-int8"):
        techniques.get("magic")
    with pytest.raises(MicrobudgetError, match="has no setting 'bits'"):
        techniques.make_config(techniques.get("dynamic-int8"), {"bits": "4"})


def test_every_technique_module_follows_the_contract():
    for technique_id, module in techniques.registry().items():
        assert module.ID == technique_id and module.DESCRIPTION
        assert module.Config.__dataclass_params__.frozen
        assert callable(module.apply)


def test_baseline_is_trained_once_then_loaded_from_disk(tiny_text_model, dataset, private_home):
    messages = []
    first = build_baseline(str(tiny_text_model), dataset, recipe=LEARN_FAST, progress=lambda f, m, **_: messages.append(m))
    assert any("fine-tuning" in m for m in messages)
    cached = list((private_home / "baselines").iterdir())
    assert len(cached) == 1 and not any(".partial" in p.name for p in cached)
    messages.clear()
    second = build_baseline(str(tiny_text_model), dataset, recipe=LEARN_FAST, progress=lambda f, m, **_: messages.append(m))
    assert messages == []
    np.testing.assert_allclose(first.logits(dataset.eval.inputs[:8]), second.logits(dataset.eval.inputs[:8]),
                               atol=1e-5)
    reloaded = load_saved(cached[0])
    assert reloaded.meta["train_examples"] > 0 and reloaded.head_trained


def test_pipeline_stores_a_run_with_the_contract(tiny_text_model, sentiment_csv, tmp_path, monkeypatch):
    monkeypatch.setattr(kinds.get("text-classification"), "RECIPE", LEARN_FAST)
    store = RunStore(tmp_path / "runs.sqlite")
    request = Request(str(tiny_text_model), f"csv:{sentiment_csv}", [("dynamic-int8", {})], eval_limit=30)
    started = time.perf_counter()
    run = run_pipeline(request, store=store, measure_config=FAST)
    elapsed = time.perf_counter() - started
    assert CONTRACT <= run.baseline.to_json().keys() and CONTRACT <= run.result.to_json().keys()
    assert 0 < run.baseline.train_seconds <= elapsed and run.result.train_seconds is None
    assert run.ratios["size"] == pytest.approx(run.baseline.size_bytes / run.result.size_bytes)
    # Speed ratios come from one window where the original and the result were timed by turns, with their spread;
    # the run's baseline carries the original's figures from that window (so both rows share one check).
    for figure in ("latency", "throughput"):
        assert run.ratios[f"{figure}_low"] <= run.ratios[figure] <= run.ratios[f"{figure}_high"]
    assert run.baseline.speed_check == run.result.speed_check
    assert run.baseline.latency_ms_p25 <= run.baseline.latency_ms_p50 <= run.baseline.latency_ms_p75
    assert run.result.eval_examples == 30
    assert run.steps == [{"technique": "dynamic-int8", "config": {"backend": "auto", "embeddings": True}}]
    faster = "torch.ao" if run.result.report["backend_ms_torch_ao"] <= run.result.report["backend_ms_torchao"] else "torchao"
    assert run.result.report["dynamic_int8_backend"] == faster  # auto timed both backends on this CPU and kept the faster
    assert [r.run_id for r in store.list()] == [run.run_id]
    assert (tmp_path / "runs.sqlite").exists()


def test_a_row_that_begins_a_later_row_is_made_once_on_the_way(tiny_text_model, sentiment_csv, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(kinds.get("text-classification"), "RECIPE", LEARN_FAST)
    head, applied = techniques.get("finetune-head"), []
    real = head.apply
    monkeypatch.setattr(head, "apply", lambda *args, **kwargs: applied.append(1) or real(*args, **kwargs))
    prepared = prepare(Request(str(tiny_text_model), f"csv:{sentiment_csv}", eval_limit=20), FAST)
    rows = [resolve([("finetune-head", {})]), resolve([("dynamic-int8", {})]),
            resolve([("finetune-head", {}), ("dynamic-int8", {})])]
    sweep = run_rows(prepared, rows, RunStore(tmp_path / "runs.sqlite"), FAST, lambda *_, **__: None)
    assert [run.recipe for run in sweep.runs] == ["finetune-head", "dynamic-int8", "finetune-head -> dynamic-int8"]
    assert len(applied) == 1  # the head was trained once, for both rows that begin with it


def test_pipeline_rejects_bad_ids_before_any_work(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(MicrobudgetError, match="Unknown technique"):
        run_pipeline(Request("minilm-l6", "rotten-tomatoes", [("nope", {})]), store=store)
    with pytest.raises(MicrobudgetError, match="Unknown dataset"):
        run_pipeline(Request("minilm-l6", "nope", []), store=store)
    assert store.list() == []


def test_a_run_label_names_its_steps_and_their_changed_settings():
    steps = [{"technique": "weight-only", "config": {**asdict(techniques.get("weight-only").Config()), "bits": 3}},
             {"technique": "dynamic-int8", "config": {"backend": "auto"}}, {"technique": "retired", "config": {"x": 1}}]
    assert Run("m", "d", TEXT, steps, {}, {}, {}).label == "weight-only(bits=3) -> dynamic-int8 -> retired(x=1)"
    assert Run("m", "d", TEXT, [], {}, {}, {}).label == "original"


def test_run_store_is_append_only_and_survives_a_failed_write(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    first = store.add(Run("m", "d", "text-classification", [], {"accuracy": 1}, {"accuracy": 1}, {}))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed: runs.run_id"):
        store.add(replace(first))  # same run_id: refused, not overwritten
    store.add(Run("m", "other", "text-classification", [], {}, {}, {}))
    assert [r.run_id for r in store.list("d")] == [first.run_id]
    assert len(RunStore(tmp_path / "runs.sqlite").list()) == 2
    mode = sqlite3.connect(tmp_path / "runs.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_dynamic_int8_auto_times_both_backends_and_keeps_the_faster(tiny_text_model, dataset):
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    technique = techniques.get("dynamic-int8")
    quantized = technique.apply(bundle, technique.Config(), dataset)
    report = quantized.meta["report"]
    faster = "torch.ao" if report["backend_ms_torch_ao"] <= report["backend_ms_torchao"] else "torchao"
    assert report["dynamic_int8_backend"] == quantized.meta["dynamic_int8_backend"] == faster
    assert quantized.meta["notes"][-1].count(" ms ") == 2
    with pytest.raises(MicrobudgetError, match="no dataset was given"):
        technique.apply(bundle, technique.Config())
    with pytest.raises(MicrobudgetError, match="backend='tensorrt' is out of range"):
        technique.apply(bundle, technique.Config(backend="tensorrt"), dataset)


@pytest.mark.parametrize("backend", ["torch.ao", "torchao"])
def test_a_quantized_artifact_loads_back_with_the_same_predictions(tiny_text_model, dataset, tmp_path, backend):
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    technique = techniques.get("dynamic-int8")
    quantized = technique.apply(bundle, technique.Config(backend=backend))
    reloaded = load_saved(quantized.save(tmp_path / "artifact"))
    assert (tmp_path / "artifact" / "model.pt").exists()
    np.testing.assert_allclose(reloaded.logits(dataset.eval.inputs), quantized.logits(dataset.eval.inputs), atol=1e-5)


def test_a_hub_style_image_classifier_folder_goes_through_the_same_code(tmp_path):
    import transformers

    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=64)
    transformers.ViTModel(config).save_pretrained(tmp_path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    bundle = load_model(ModelSpec(str(tmp_path)), ["cat", "dog"])  # task guessed from the config
    assert bundle.task == "image-classification" and not bundle.head_trained
    images = [np.zeros((20, 30), np.uint8), np.full((40, 40, 3), 200, np.uint8)]
    assert bundle.logits(images).shape == (2, 2)
    reloaded = load_saved(bundle.save(tmp_path / "artifact"))
    np.testing.assert_allclose(reloaded.logits(images), bundle.logits(images), atol=1e-5)
