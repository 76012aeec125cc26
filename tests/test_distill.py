"""Distillation on tiny local models: the students it builds, the loss it trains on, what it leaves alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from conftest import HANG_GUARD_S
from microbudget_core import kinds
from microbudget_core import techniques, training
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.measure import MeasureConfig
from microbudget_core.models import TEXT, ModelSpec, count_params, load_model
from microbudget_core.saved import load_saved
from microbudget_core.models.anatomy import head_inputs
from microbudget_core.models.bundle import IMAGE, ModelBundle
from microbudget_core.models.variants import keep_layers, narrow, pick_layers, trim_vocab
from microbudget_core.models.vision import MobileNetV2, preprocessor_for
from microbudget_core.pipeline import Request, run_pipeline
from microbudget_core.runs import RunStore
from microbudget_core.techniques.distill import distillation_loss, softened

ROOT = Path(__file__).resolve().parent.parent
FAST = MeasureConfig(memory=False, warmup=1, latency_runs=3)
QUICK = training.TrainConfig(epochs=3, learning_rate=3e-3, batch_size=16)


@pytest.fixture
def dataset(sentiment_csv):
    return load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))


@pytest.fixture
def teacher(tiny_text_model, dataset) -> ModelBundle:
    """The tiny BERT fine-tuned on the sentiment task (a copy; load_model's cached original stays fresh)."""
    fresh = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, TEXT)
    trained, _ = training.train_classifier(fresh, dataset.train, QUICK)
    return trained


def distill(bundle: ModelBundle, dataset, progress=None, **settings) -> ModelBundle:
    config = techniques.make_config(techniques.get("distill"), {k: str(v) for k, v in settings.items()})
    return techniques.get("distill").apply(bundle, config, dataset, progress or (lambda *a, **k: None))


def test_the_loss_is_the_weighted_sum_of_softened_kl_and_cross_entropy():
    student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
    teacher = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    labels = torch.tensor([0, 1])
    T, alpha = 2.0, 0.7
    p = torch.softmax(teacher / T, -1)
    kl = (p * (p.log() - torch.log_softmax(student / T, -1))).sum(-1).mean()  # KL(teacher || student), per example
    ce = -torch.log_softmax(student, -1)[[0, 1], labels].mean()
    expected = alpha * kl * T ** 2 + (1 - alpha) * ce
    assert torch.allclose(distillation_loss(student, teacher, labels, T, alpha), expected, atol=1e-6)
    # alpha 0 is plain cross-entropy, whatever the teacher says; at T=1, alpha=1 it is KL to the teacher alone.
    assert torch.allclose(distillation_loss(student, teacher, labels, 1.0, 0.0), F.cross_entropy(student, labels))
    assert distillation_loss(teacher, teacher, labels, 1.0, 1.0).abs() < 1e-6


def test_temperature_softens_the_teacher_without_changing_its_ranking():
    logits = np.array([4.0, 1.0, 0.0])
    rows = [softened(logits, t) for t in (1, 2, 4, 8)]
    assert all(np.isclose(row.sum(), 1) and list(np.argsort(row)) == [2, 1, 0] for row in rows)
    assert all(a.max() > b.max() for a, b in zip(rows, rows[1:]))  # higher T, flatter targets


def test_layer_choices():
    assert pick_layers(6, 2, "evenly") == [2, 5] and pick_layers(6, 3, "evenly") == [1, 3, 5]
    assert pick_layers(6, 3, "every-other") == [0, 2, 4] and pick_layers(6, 2, "first") == [0, 1]
    assert pick_layers(6, 6, "evenly") == list(range(6))
    for keep, how, message in ((0, "evenly", "Cannot keep 0 of 6 layers"), (7, "first", "Cannot keep 7 of 6 layers"),
                               (4, "every-other", "Every other layer of 6 gives at most 3 layers, not 4")):
        with pytest.raises(MicrobudgetError, match=message):
            pick_layers(6, keep, how)


def test_a_layers_student_starts_as_the_teachers_kept_layers(teacher):
    student = keep_layers(teacher, pick_layers(2, 1, "evenly"))
    kept = dict(student.model.named_parameters())
    for name, weight in teacher.model.named_parameters():
        if ".layer.1." in name:
            assert torch.equal(kept[name.replace(".layer.1.", ".layer.0.")], weight)
        elif "embeddings" in name:
            assert torch.equal(kept[name], weight)


def test_a_trimmed_vocabulary_keeps_the_predictions_on_the_texts_it_was_built_from(teacher, dataset, tmp_path):
    texts = [t for t in dataset.train.inputs if "great" in t or "awful" in t][:30]
    trimmed, before = trim_vocab(teacher, texts)
    assert before == teacher.model.config.vocab_size
    assert trimmed.model.config.vocab_size < before and count_params(trimmed.model) < count_params(teacher.model)
    np.testing.assert_allclose(trimmed.logits(texts), teacher.logits(texts), atol=1e-5)
    assert teacher.model.bert.embeddings.word_embeddings.num_embeddings == before  # the teacher is untouched
    reloaded = load_saved(trimmed.save(tmp_path / "trimmed"))
    np.testing.assert_allclose(reloaded.logits(texts), trimmed.logits(texts), atol=1e-6)


def test_a_narrow_student_from_the_teacher_holds_its_leading_slices(teacher):
    student = narrow(teacher, 0.5, from_teacher=True)
    assert student.model.config.hidden_size == 16 and teacher.model.config.hidden_size == 32
    query = teacher.model.bert.encoder.layer[0].attention.self.query.weight
    assert torch.equal(student.model.bert.encoder.layer[0].attention.self.query.weight, query[:16, :16])
    head = teacher.model.classifier.weight.reshape(2, 3, 32)[:, :, :16].reshape(2, 48)
    assert torch.equal(student.model.classifier.weight, head)
    mobilenet = ModelBundle(MobileNetV2(num_classes=3).eval(), IMAGE, ["a", "b", "c"], preprocessor_for(32), "m",
                            {"family": "mobilenet-v2", "num_classes": 3, "width_mult": 1.0, "image_size": 32})
    half = narrow(mobilenet, 0.5, from_teacher=True)
    first = half.model.features[0][0].weight
    assert torch.equal(first, mobilenet.model.features[0][0].weight[:first.shape[0]])
    assert count_params(half.model) < count_params(mobilenet.model) / 2


def test_distillation_trains_a_smaller_student_reports_the_teacher_and_leaves_it_alone(teacher, dataset):
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    epochs = []
    student = distill(teacher, dataset, lambda f, m, **k: epochs.append(k) if "epoch" in k else None,
                      student="layers", layers=1, epochs=2, learning_rate=3e-3, temperature=2, alpha=0.5)
    assert all(torch.equal(before[k], v) for k, v in teacher.model.state_dict().items())
    assert student.model.config.num_hidden_layers == 1 and count_params(student.model) < count_params(teacher.model)
    assert epochs and all(e["series"] == "student (distilled)" and e["teacher_accuracy"] == student.meta["report"]["teacher_val_accuracy"] for e in epochs)
    assert student.meta["report"]["teacher_params"] == count_params(teacher.model)
    assert training.accuracy_on(student, dataset.eval) > 0.7  # a learnable task: the student learned it


def test_teacher_logits_are_computed_once(teacher, dataset, monkeypatch, private_home):
    calls = []
    real = head_inputs
    monkeypatch.setattr("microbudget_core.techniques.finetune_head.head_inputs",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    distill(teacher, dataset, layers=1, epochs=1)
    control = distill(teacher, dataset, layers=1, epochs=1, alpha=0, hidden_weight=0)
    assert len(calls) == 1 and len(list((private_home / "features").glob("*.npz"))) == 1
    assert control.meta["notes"][-1].startswith("Hard-label control")
    assert control.meta["report"]["distill_role"] == "control (hard labels)"


def test_hidden_state_matching_and_unlabelled_data(teacher, dataset, sentiment_csv):
    student = distill(teacher, dataset, layers=1, epochs=1, hidden_weight=1.0, unlabeled=f"csv:{sentiment_csv}",
                      use_labels=False, examples_per_class=10)
    report = student.meta["report"]
    assert report["unlabeled_examples"] == len(dataset.train) and report["examples_per_class"] == 10
    assert student.meta["train_examples"] == 20 + len(dataset.train)


def test_the_rest_of_the_train_split_can_be_taught_without_its_labels(teacher, dataset):
    fit, _ = training.split_for_training(dataset.train, training.TrainConfig())
    student = distill(teacher, dataset, layers=1, epochs=1, examples_per_class=5, unlabeled="rest")
    assert student.meta["report"]["unlabeled_examples"] == len(fit) - 10
    assert student.meta["train_examples"] == len(fit)
    control = distill(teacher, dataset, layers=1, epochs=1, examples_per_class=5, alpha=0, hidden_weight=0)
    assert control.model.config.vocab_size == student.model.config.vocab_size  # the same model, fewer labels
    assert sorted(fit.per_class(5).inputs + fit.beyond_per_class(5).inputs) == sorted(fit.inputs)


@pytest.mark.parametrize("settings, message", [
    ({"student": "model", "student_model": "mobilenet-v2"}, "classifies images"),
    ({"student": "narrow", "width": 2.0}, "out of range"),
    ({"alpha": 1.5}, "alpha"),
    ({"layers": 3}, "Cannot keep 3 of 2 layers"),
    ({"teacher_run": "nope"}, "No stored run"),
])
def test_bad_students_and_knobs_are_explained(teacher, dataset, settings, message):
    with pytest.raises(MicrobudgetError, match=message):
        distill(teacher, dataset, epochs=1, **settings)


def test_unlabelled_data_of_another_kind_is_refused(teacher, dataset):
    with pytest.raises(MicrobudgetError, match="holds image"):
        distill(teacher, dataset, epochs=1, unlabeled="mnist-5k")


def test_distill_then_int8_runs_as_one_pipeline_keeping_each_step(tiny_text_model, sentiment_csv, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(kinds.get(TEXT), "RECIPE", QUICK)
    store = RunStore(tmp_path / "runs.sqlite")
    request = Request(str(tiny_text_model), f"csv:{sentiment_csv}",
                      [("distill", {"layers": "1", "epochs": "1"}), ("onnx-int8-dynamic", {})], eval_limit=40)
    final = run_pipeline(request, store, FAST)
    runs = store.list()
    assert [len(r.steps) for r in sorted(runs, key=lambda r: len(r.steps))] == [1, 2]
    student = next(r for r in runs if len(r.steps) == 1)
    assert student.result.size_bytes < final.baseline.size_bytes  # a tiny model's int8 graph is not smaller
    assert (Path(final.artifact_path) / "model.onnx").exists() and (Path(student.artifact_path) / "model.safetensors").exists()
    assert final.steps[0] == student.steps[0]
    assert student.result.report["teacher_params"] > student.result.params


def test_distillation_page_with_a_tiny_model(tiny_text_model, sentiment_csv, monkeypatch):
    monkeypatch.setattr(kinds.get(TEXT), "RECIPE", QUICK)
    at = AppTest.from_file(str(ROOT / "views" / "distillation.py"), default_timeout=HANG_GUARD_S).run()
    assert not at.exception
    at.selectbox(key="model_choice").set_value("other…").run()
    at.text_input(key="model_other").input(str(tiny_text_model)).run()
    at.selectbox(key="dataset_choice_text").set_value("other…").run()
    at.text_input(key="dataset_other").input(f"csv:{sentiment_csv}").run()
    at.number_input(key="distill_quick.layers").set_value(1)
    at.number_input(key="distill_quick.epochs").set_value(1)
    at.slider(key="distill_eval").set_value(50)
    at.button(key="distill_run").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["model"]) == ["teacher", "control (hard labels)", "student (distilled)", "student + int8"]
    assert (table["accuracy"] > 0).all() and table["params (M)"].iloc[2] < table["params (M)"].iloc[0]
    assert any("x faster than the teacher" in m.value and "over the same student" in m.value for m in at.markdown)
    # A new session on the same model and dataset opens on those results, with no training.
    fresh = AppTest.from_file(str(ROOT / "views" / "distillation.py"), default_timeout=HANG_GUARD_S)
    fresh.session_state["model_choice"], fresh.session_state["model_other"] = "other…", str(tiny_text_model)
    fresh.session_state["dataset_choice_text"] = "other…"
    fresh.session_state["dataset_other"] = f"csv:{sentiment_csv}"
    fresh.run()
    assert not fresh.exception and len(fresh.dataframe[0].value) == 4
    charts = [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")]
    assert charts and all(any(len(trace.get("y", [])) for trace in chart) for chart in charts)


def test_the_teachers_logits_from_its_cached_features_are_the_models_own(teacher, dataset):
    from microbudget_core.techniques.distill import _teacher_outputs

    texts = dataset.eval.inputs[:20]
    logits, features, cached = _teacher_outputs(teacher, texts, lambda *a, **k: None)
    np.testing.assert_allclose(logits, teacher.logits(texts), atol=1e-5)
    assert features.shape == (20, 3 * 32) and not cached  # embeddings + 2 layers, 32 wide
    assert _teacher_outputs(teacher, texts, lambda *a, **k: None)[2]  # the second time, from the cache
