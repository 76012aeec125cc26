"""Transfer-learning techniques on tiny local models: what each strategy trains, and what it leaves alone."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from microbudget_core import kinds
from microbudget_core import techniques, training
from microbudget_core.data import DatasetSpec, Split, load_dataset, split
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.measure import MeasureConfig
from microbudget_core.models import OFFLINE_MODELS, ModelSpec, OfflineModel, load_model
from microbudget_core.saved import load_saved
from microbudget_core.models.anatomy import block_names, head_name, reinitialised
from microbudget_core.models.bundle import IMAGE, TEXT, ModelBundle
from microbudget_core.models.vision import MobileNetV2, preprocessor_for
from microbudget_core.labs.transfer import run_curve
from microbudget_core.pipeline import Request, run_pipeline
from microbudget_core.runs import RunStore
from microbudget_core.models.anatomy import head_inputs
from microbudget_core.techniques import finetune_head, setfit_style

TINY_VISION = "tiny-mobilenet-pretrained"


def _like_pretrained(model: torch.nn.Module) -> None:
    """Nudge every weight and statistic, so none is left at a constant initial value (LayerNorm ones, zero biases)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.05 * torch.rand_like(tensor))  # positive: BatchNorm variances stay valid


@pytest.fixture(scope="session")
def pretrained_text(tiny_text_model: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny BERT with 'pretrained' weights: no tensor equal to a fresh initialisation."""
    folder = tmp_path_factory.mktemp("tiny-bert-pretrained")
    for file in tiny_text_model.iterdir():
        if not file.name.startswith(("model.", "config")):
            shutil.copy(file, folder)
    model = transformers.BertModel.from_pretrained(tiny_text_model)
    _like_pretrained(model)
    model.save_pretrained(folder)
    return str(folder)


def _tiny_mobilenet(labels: list[str] | None, image_size: int | None) -> ModelBundle:
    """Like load_pretrained("mobilenet-v2"), at a quarter width with made-up 'ImageNet' weights and a seeded fresh head."""
    torch.manual_seed(0)
    model = MobileNetV2(num_classes=len(labels), width_mult=0.25)
    _like_pretrained(model)
    torch.manual_seed(0)
    model.classifier[1] = torch.nn.Linear(model.last_channel, len(labels))
    meta = {"family": "mobilenet-v2", "num_classes": len(labels), "width_mult": 0.25, "image_size": image_size}
    return ModelBundle(model.eval(), IMAGE, list(labels), preprocessor_for(image_size), TINY_VISION, meta,
                       head_trained=False)


@pytest.fixture
def text(pretrained_text: str, sentiment_csv: Path):
    dataset = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    return load_model(ModelSpec(pretrained_text), dataset.label_names, TEXT), dataset


@pytest.fixture
def vision(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(OFFLINE_MODELS, TINY_VISION, OfflineModel(TINY_VISION, IMAGE, "tiny", _tiny_mobilenet))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (28, 28), dtype=np.uint8) for _ in range(60)]
    dataset = split("synthetic", "image", images, ["a", "b", "c"] * 20)
    dataset.image_size = 32
    return load_model(ModelSpec(TINY_VISION), dataset.label_names, IMAGE, 32), dataset


@pytest.fixture(params=["text", "vision"])
def case(request: pytest.FixtureRequest):
    return request.getfixturevalue(request.param)


def run(technique_id: str, bundle: ModelBundle, dataset, progress=None, **settings) -> ModelBundle:
    technique = techniques.get(technique_id)
    config = techniques.make_config(technique, {k: str(v) for k, v in settings.items()})
    return technique.apply(bundle, config, dataset, progress or (lambda *a, **k: None))


def pretrained_state(bundle: ModelBundle) -> dict[str, torch.Tensor]:
    original = load_model(ModelSpec(bundle.name), bundle.labels, bundle.task, bundle.meta.get("image_size"))
    return original.model.state_dict()


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {name for name, tensor in before.items() if not torch.equal(tensor, after[name])}


def test_head_only_leaves_every_backbone_weight_bit_identical(case):
    bundle, dataset = case
    pretrained = {k: v.clone() for k, v in pretrained_state(bundle).items()}
    result = run("finetune-head", bundle, dataset, min_image_size=0)
    head = head_name(result.model, len(result.labels))
    moved = changed(pretrained, result.model.state_dict())
    assert moved and all(name.startswith(f"{head}.") for name in moved)  # only the head, and it did train
    assert not changed(pretrained, pretrained_state(bundle))  # load_model's cached original untouched
    head_params = sum(p.numel() for p in result.model.get_submodule(head).parameters())
    assert result.meta["report"]["trainable_params"] == head_params
    # The head trained on standardised cached features; the whole model, fed raw inputs, scores the same.
    _, validation = training.split_for_training(dataset.train, training.TrainConfig())
    accuracy = np.mean(result.predict(validation.inputs) == validation.labels)
    assert abs(accuracy - max(row["val_accuracy"] for row in result.meta["history"])) < 1.5 / len(validation)


@pytest.mark.parametrize("which, n", [("text", 1), ("vision", 3)])
def test_last_n_trains_only_the_last_n_blocks_and_the_head(which, n, request):
    bundle, dataset = request.getfixturevalue(which)
    pretrained = pretrained_state(bundle)
    result = run("finetune-last-n", bundle, dataset, n=n, learning_rate=3e-3, backbone_lr_scale=0.5)
    blocks = block_names(result.model)
    moved = changed(pretrained, result.model.state_dict())
    first_trained = next(i for i, name in enumerate(pretrained) if name.startswith(f"{blocks[-n]}."))
    assert not moved & set(list(pretrained)[:first_trained])  # earlier blocks, embeddings, BatchNorm statistics
    for block in blocks[-n:]:
        assert any(name.startswith(f"{block}.") for name in moved), f"{block} did not train"
    assert any(name.startswith(f"{head_name(result.model, len(result.labels))}.") for name in moved)
    assert result.meta["report"]["blocks_trained"] == n


def test_last_n_beyond_the_model_trains_all_its_blocks(text):
    result = run("finetune-last-n", *text, n=99, epochs=1)
    assert result.meta["report"]["blocks_trained"] == result.meta["report"]["blocks_total"] == 2


def test_last_n_trains_the_blocks_at_the_scaled_learning_rate(text, monkeypatch):
    bundle, dataset = text
    rates = []
    adamw = torch.optim.AdamW
    monkeypatch.setattr(training.torch.optim, "AdamW",
                        lambda groups, **kw: rates.extend(g["lr"] for g in groups) or adamw(groups, **kw))
    run("finetune-last-n", bundle, dataset, n=1, learning_rate=0.01, backbone_lr_scale=0.25, epochs=1)
    assert sorted(rates) == pytest.approx([0.0025, 0.01])


@pytest.mark.parametrize("technique_id, shares", [("from-scratch", False), ("finetune-full", True)])
def test_from_scratch_starts_from_no_pretrained_weight(case, technique_id, shares, monkeypatch):
    bundle, dataset = case
    pretrained = pretrained_state(bundle)
    starts = []
    train = training.train_classifier
    monkeypatch.setattr("microbudget_core.techniques._finetune.train_classifier",
                        lambda start, *a, **k: starts.append(start.model.state_dict()) or train(start, *a, **k))
    run(technique_id, bundle, dataset, epochs=1)
    head = head_name(bundle.model, len(bundle.labels))
    backbone = [name for name in pretrained if not name.startswith(f"{head}.") and pretrained[name].is_floating_point()]
    equal = [name for name in backbone if torch.equal(pretrained[name], starts[0][name])]
    assert (equal == backbone) if shares else not equal


def test_reinitialised_refuses_to_keep_a_weight_it_cannot_reset():
    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.randn(4))  # no module resets a bare Parameter

    with pytest.raises(MicrobudgetError, match="Could not re-initialise 1 weights.*scale"):
        reinitialised(Custom(), seed=0)


def test_examples_per_class_takes_the_first_k_of_each_class(text):
    bundle, dataset = text
    result = run("finetune-head", bundle, dataset, examples_per_class=3)
    assert result.meta["train_examples"] == 3 * len(dataset.label_names)
    assert result.meta["report"]["examples_per_class"] == 3
    labels = np.array([0, 1, 1, 0, 1, 0, 0])
    assert Split(list("abcdefg"), labels).per_class(2).inputs == list("abcd")
    assert Split(list("abcdefg"), labels).per_class(0).inputs == list("abcdefg")
    many = run("finetune-full", bundle, dataset, examples_per_class=10_000, epochs=1)  # more than any class has
    assert many.meta["train_examples"] == run("finetune-full", bundle, dataset, epochs=1).meta["train_examples"]


def test_features_are_computed_once_then_read_from_the_cache(case, private_home, monkeypatch):
    bundle, dataset = case
    first = run("finetune-head", bundle, dataset)
    assert first.meta["report"]["features_cached"] is False
    assert len(list((private_home / "features").glob("*.npz"))) == 1

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone ran again")

    monkeypatch.setattr(finetune_head, "head_inputs", no_backbone)
    second = run("finetune-head", bundle, dataset)
    assert second.meta["report"]["features_cached"] is True
    np.testing.assert_allclose(first.logits(dataset.eval.inputs), second.logits(dataset.eval.inputs), atol=1e-6)
    other_data = Split(dataset.train.inputs[:-1], dataset.train.labels[:-1])
    monkeypatch.setattr(dataset, "train", other_data)
    with pytest.raises(AssertionError, match="backbone ran again"):  # other data: another cache entry
        run("finetune-head", bundle, dataset)


def test_an_interrupted_feature_write_leaves_no_entry(text, private_home, monkeypatch):
    bundle, dataset = text

    def interrupted(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("stopped mid-write")

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt, match="stopped mid-write"):
        patch.setattr(np, "savez", interrupted)
        run("finetune-head", bundle, dataset)
    assert list((private_home / "features").iterdir()) == []
    assert run("finetune-head", bundle, dataset).meta["report"]["features_cached"] is False


def test_mlp_head_saves_and_reloads_to_the_same_logits(case, tmp_path):
    bundle, dataset = case
    result = run("finetune-head", bundle, dataset, head="mlp")
    head = result.meta["mlp_head"]["module"]
    assert isinstance(result.model.get_submodule(head), torch.nn.Sequential)
    reloaded = load_saved(result.save(tmp_path / "mlp"))
    np.testing.assert_allclose(reloaded.logits(dataset.eval.inputs), result.logits(dataset.eval.inputs), atol=1e-5)


@pytest.mark.parametrize("technique_id", ["finetune-head", "finetune-last-n", "finetune-full", "from-scratch",
                                          "setfit-style"])
def test_every_strategy_reports_each_epoch_and_its_cost(text, technique_id):
    bundle, dataset = text
    calls = []
    started = time.perf_counter()
    result = run(technique_id, bundle, dataset, lambda fraction, message, **metrics: calls.append((fraction, metrics)))
    elapsed = time.perf_counter() - started
    epochs = [metrics for _, metrics in calls if metrics]
    assert epochs and all(set(m) == {"epoch", "loss", "val_accuracy"} for m in epochs)
    assert [m["epoch"] for m in epochs] == [row["epoch"] for row in result.meta["history"]]
    fractions = [fraction for fraction, _ in calls]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] <= 1
    assert 0 < result.meta["train_seconds"] <= elapsed and result.meta["train_examples"] > 0 and result.head_trained
    assert result.meta["report"]["trainable_params"] > 0 and result.meta["notes"]


def test_full_fine_tuning_learns_the_task(text):
    bundle, dataset = text
    result = run("finetune-full", bundle, dataset, epochs=8, learning_rate=3e-3, patience=3, freeze_embeddings=False)
    assert np.mean(result.predict(dataset.eval.inputs) == dataset.eval.labels) >= 0.9


@pytest.mark.parametrize("settings, message", [
    ({"head": "cnn"}, "head='cnn' is out of range: it must be one of linear, mlp"),
    ({"epochs": 0}, "epochs=0 is out of range"),
    ({"examples_per_class": -1}, "examples_per_class=-1 is out of range"),
    ({"learning_rate": -1}, "learning_rate=-1.0 is out of range"),
])
def test_bad_head_knobs_are_explained(text, settings, message):
    with pytest.raises(MicrobudgetError, match=message):
        run("finetune-head", *text, **settings)


@pytest.mark.parametrize("settings, message", [
    ({"n": 0}, "n=0 is out of range: it must be at least 1"),
    ({"backbone_lr_scale": 0}, "backbone_lr_scale=0.0 is out of range"),
])
def test_bad_last_n_knobs_are_explained(text, settings, message):
    with pytest.raises(MicrobudgetError, match=message):
        run("finetune-last-n", *text, **settings)


def test_transfer_needs_a_dataset_and_must_come_first(text):
    bundle, dataset = text
    with pytest.raises(MicrobudgetError, match="trains on a dataset"):
        run("finetune-full", bundle, None)
    quantized = run("dynamic-int8", bundle, dataset, backend="torch.ao")
    with pytest.raises(MicrobudgetError, match="must be the first step"):
        run("from-scratch", quantized, dataset)


def test_a_model_without_head_or_blocks_is_explained():
    convolutions = torch.nn.Conv2d(3, 4, 3)
    with pytest.raises(MicrobudgetError, match="no classification layer"):
        head_name(convolutions, 2)
    with pytest.raises(MicrobudgetError, match="no stack of repeated blocks"):
        block_names(torch.nn.Linear(4, 2))


def test_the_pipeline_reports_what_training_cost(pretrained_text, sentiment_csv, tmp_path, monkeypatch):
    recipe = training.TrainConfig(epochs=2, learning_rate=3e-3, batch_size=16)
    monkeypatch.setattr(kinds.get(TEXT), "RECIPE", recipe)
    request = Request(pretrained_text, f"csv:{sentiment_csv}", [("finetune-head", {"examples_per_class": "5"})],
                      eval_limit=20)
    fast = MeasureConfig(memory=False, latency_runs=3)
    done = run_pipeline(request, RunStore(tmp_path / "runs.sqlite"), fast)
    result = done.result
    assert result.train_examples == 10 and result.report["examples_per_class"] == 5
    assert 0 < result.train_seconds != done.baseline.train_seconds  # the step's own training, not the baseline's
    assert result.report["trainable_params"] == 3 * 32 * 2 + 2
    # the 2-label head of a 32-wide, 2-layer BERT reads 3 mean-pooled hidden states (embeddings and 2 layers)



@pytest.mark.parametrize("counts, trained", [((4, 500, 1000, 0), [4, "all"]), ((4, 1000, 500), [4, "all"])])
def test_the_curve_trains_each_distinct_budget_once(pretrained_text, sentiment_csv, tmp_path, monkeypatch,
                                                    counts, trained):
    # ~77 training examples per class: 500 and 1000 per class both mean all of them, which trains once.
    monkeypatch.setattr(kinds.get(TEXT), "RECIPE", training.TrainConfig(epochs=1, learning_rate=3e-3, batch_size=16))
    curve = run_curve(Request(pretrained_text, f"csv:{sentiment_csv}", eval_limit=20), ("finetune-head",), counts,
                      RunStore(tmp_path / "runs.sqlite"), MeasureConfig(memory=False, latency_runs=3))
    per_class = [run.steps[0]["config"]["examples_per_class"] for run in curve.runs]
    assert [k if 0 < k < 77 else "all" for k in per_class] == trained
    assert set(curve.skipped) == {f"{k}/class" for k in counts if k not in per_class}
    assert all("same run as all" in why for why in curve.skipped.values())

def test_setfit_pairs_match_each_example_with_its_class_and_another():
    labels = np.array([0, 0, 1, 1, 1, 2])
    pairs = setfit_style.sentence_pairs(labels, iterations=5, max_pairs=1000, seed=0)
    assert len(pairs) == 2 * 5 * len(labels)
    same = pairs[:, 2] == 1
    assert (labels[pairs[same, 0]] == labels[pairs[same, 1]]).all()
    assert (labels[pairs[~same, 0]] != labels[pairs[~same, 1]]).all()
    assert np.bincount(pairs[:, 0]).tolist() == [10] * len(labels)  # every example, every iteration, twice
    assert len(setfit_style.sentence_pairs(labels, 5, 16, 0)) == 16


def _class_separation(bundle: ModelBundle, split: Split) -> float:
    """Mean cosine similarity of same-class pairs minus that of different-class pairs, of the head's inputs."""
    vectors = torch.nn.functional.normalize(torch.from_numpy(
        head_inputs(bundle.model, head_name(bundle.model, len(bundle.labels)), bundle.preprocess, split.inputs)))
    similarity = vectors @ vectors.T
    same = torch.from_numpy(split.labels[:, None] == split.labels[None, :])
    return float(similarity[same].mean() - similarity[~same].mean())


def test_setfit_pulls_same_class_sentences_together_and_keeps_the_original(tiny_text_model, sentiment_csv):
    # The plain tiny BERT: the nudged 'pretrained' one's pooler saturates (every sentence vector alike).
    dataset = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, TEXT)
    pretrained = {k: v.clone() for k, v in pretrained_state(bundle).items()}
    result = run("setfit-style", bundle, dataset, examples_per_class=8, body_learning_rate=1e-3)
    assert result.meta["train_examples"] == 16 and result.meta["report"]["pairs"] == 2 * 20 * 16
    # Judged on eval sentences it never saw: the tuned encoder separates the classes more than the original.
    assert _class_separation(result, dataset.eval) > _class_separation(bundle, dataset.eval) + 0.05
    assert any(name.startswith("bert.encoder.layer.") for name in changed(pretrained, result.model.state_dict()))
    assert not changed(pretrained, pretrained_state(bundle))  # load_model's cached original untouched


def test_setfit_on_an_image_model_says_what_to_use_instead(vision):
    with pytest.raises(MicrobudgetError, match="For images use finetune-head"):
        run("setfit-style", *vision)


def test_the_curve_offers_small_budgets_where_classes_are_small(sentiment_csv, tmp_path):
    from microbudget_core.labs import transfer

    small = f"csv:{sentiment_csv}"  # a few dozen sentences per class
    assert transfer.curve_examples(small, full=True) == transfer.SMALL_CURVE_EXAMPLES
    assert transfer.curve_examples(small) == transfer.QUICK_SMALL_CURVE_EXAMPLES
    big = tmp_path / "big.csv"
    big.write_text("text,label\n" + "".join(f"sentence number {i},{'ab'[i % 2]}\n" for i in range(400)))
    assert transfer.curve_examples(f"csv:{big}", full=True) == transfer.CURVE_EXAMPLES  # 160 training rows per class
    assert transfer.curve_examples(f"csv:{big}") == transfer.QUICK_CURVE_EXAMPLES
