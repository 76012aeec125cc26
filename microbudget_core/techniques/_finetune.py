"""Shared by the transfer-learning techniques: start from the pretrained model, train it, report what it cost."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from torch import nn

from ..data import Dataset, Split
from ..support.errors import MicrobudgetError
from .. import kinds
from ..models import ModelBundle, ModelSpec, count_params, load_model
from ..models.anatomy import reinitialised
from ..support.progress import Progress
from ..training import MIN_STEPS, TrainConfig, TrainReport, train_classifier



def require(condition: bool, setting: str, value: Any, rule: str) -> None:
    """One clear error for a knob out of range."""
    if not condition:
        raise MicrobudgetError(f"Setting {setting}={value!r} is out of range: it must be {rule}.",
                               "Fix the value and run again.")


def pretrained(technique_id: str, bundle: ModelBundle, config: Any, dataset: Dataset | None,
               image_size: int | None = None) -> ModelBundle:
    """The pretrained model with a fresh head for the dataset's labels, once the shared knobs are checked.

    It comes from load_model's cache: copy it before changing anything.
    """
    if dataset is None or len(dataset.train) == 0:
        raise MicrobudgetError(f"{technique_id} trains on a dataset, and none was given.", "Run it with a dataset.")
    if bundle.meta.get("notes"):  # an earlier step changed the model; starting over would silently drop it
        raise MicrobudgetError(f"{technique_id} starts again from the pretrained model, so it must be the first step.",
                               "Put it before any other technique.")
    return load_model(ModelSpec(bundle.name), bundle.labels, bundle.task, image_size or bundle.meta.get("image_size"))


def recipe(config: Any, learning_rate: float, freeze_embeddings: bool = False) -> TrainConfig:
    """The technique's knobs as train_classifier's config."""
    return TrainConfig(epochs=config.epochs, learning_rate=learning_rate, patience=config.patience,
                       seed=config.seed, freeze_embeddings=freeze_embeddings)


def train(start: ModelBundle, split: Split, config: Any, progress: Progress, learning_rate: float,
          lr_scales: Mapping[str, float] | None = None, freeze_embeddings: bool = False
          ) -> tuple[ModelBundle, TrainReport]:
    """train_classifier with the technique's knobs: seeded, early stopping, a budget per class."""
    return train_classifier(start, split, recipe(config, learning_rate, freeze_embeddings), progress,
                            lr_scales=lr_scales, examples_per_class=config.examples_per_class, min_steps=MIN_STEPS)


def recipe_rate(config: Any, task: str) -> float:
    """The configured learning rate; 0 means the baseline recipe's for this kind of model."""
    return config.learning_rate or kinds.get(task).RECIPE.learning_rate


def train_everything(technique_id: str, bundle: ModelBundle, config: Any, dataset: Dataset | None,
                     progress: Progress, from_scratch: bool) -> ModelBundle:
    """finetune-full and from-scratch: every weight trained, from the pretrained or from fresh weights."""
    start = pretrained(technique_id, bundle, config, dataset)
    if from_scratch:
        start = replace(start, model=reinitialised(start.model, config.seed))
    rate = recipe_rate(config, start.task)
    freeze = config.freeze_embeddings and kinds.get(start.task).WORD_EMBEDDINGS
    trained, report = train(start, dataset.train, config, progress, rate, freeze_embeddings=freeze)
    frozen = ", word embeddings frozen" if freeze else ""
    how = "Trained from random weights (same architecture and budget as finetune-full)" if from_scratch else (
        "Fine-tuned from the pretrained weights")
    note = (f"{how}: {trainable(report, trained.model)}{frozen}, learning rate {rate:g}, "
            f"{len(report.history)} epochs on {report.train_examples:,} examples.")
    return result(start, trained.model, report, note)


def trainable(report: TrainReport, model: nn.Module) -> str:
    """E.g. '12,810 trainable parameters of 2.2M'."""
    total = count_params(model)
    of = f"{total / 1e6:.1f}M" if total >= 100_000 else f"{total:,}"
    return f"{report.trainable_params:,} trainable parameters of {of}"


def result(start: ModelBundle, model: nn.Module, report: TrainReport, note: str, structure: str | None = None,
           details: Mapping[str, Any] | None = None, **meta: Any) -> ModelBundle:
    """The trained bundle with what the pipeline reads: train_seconds, train_examples, history, report."""
    figures = {"trainable_params": report.trainable_params, "examples_per_class": report.examples_per_class,
               "epochs_run": len(report.history), **(details or {})}
    return replace(start, head_trained=True).derived(
        model, note=note, structure=structure, train_seconds=report.train_seconds,
        train_examples=report.train_examples, history=report.history, trained_on=report.hardware, report=figures,
        **meta)
