"""What the two classifier kinds share: accuracy, balanced accuracy, macro-F1, confusion, agreement; batch-1
calls and batches of the eval inputs to time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from ..data import Split
from ..figures import Measured
from .. import yardstick
from ..measure import MeasureConfig
from ..models.bundle import ModelBundle
from ..models.hf import load_hf_classifier
from ..support.progress import Progress

QUALITY = "accuracy"
PROMPTED_FOR: tuple[str, ...] = ()  # a classifier answers only its own kind of task
HIGHER_IS_BETTER = True
GPU_MEASURED = True  # measure() runs a plain PyTorch classifier on the GPU where there is one


@dataclass
class Metrics:
    accuracy: float
    balanced_accuracy: float  # mean recall over the classes: small classes count as much as large ones
    macro_f1: float
    fidelity: float  # share of eval predictions equal to the original's
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted, both in bundle.labels order


@dataclass
class Figures(Metrics, Measured):
    """A classifier's row: its Metrics beside what every row has."""


def quality(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None, config: MeasureConfig,
            progress: Progress) -> tuple[Metrics, np.ndarray]:
    """Scored on the eval labels; predictions are the classes, the reference for later rows' fidelity."""
    predictions = []
    for start in range(0, len(eval_split), config.batch_size):
        progress(start / len(eval_split), "Measuring accuracy")
        predictions.append(bundle.predict(eval_split.inputs[start:start + config.batch_size]))
    predictions, labels = np.concatenate(predictions), eval_split.labels
    metrics = Metrics(
        accuracy=float(accuracy_score(labels, predictions)),
        balanced_accuracy=float(balanced_accuracy_score(labels, predictions)),
        macro_f1=float(f1_score(labels, predictions, average="macro", zero_division=0)),
        fidelity=1.0 if reference is None else float(np.mean(predictions == reference)),
        confusion_matrix=confusion_matrix(labels, predictions, labels=range(len(bundle.labels))).tolist(),
    )
    return metrics, predictions


def speed_work(bundle: ModelBundle, eval_split: Split, config: MeasureConfig) -> yardstick.Work:
    """Each round, batch-1 calls on the first `latency_runs` inputs; then the first `batches` batches."""
    ones = [yardstick.call_of(bundle.logits, [x]) for x in eval_split.inputs[:config.latency_runs]]
    batches = [eval_split.inputs[n:n + config.batch_size]
               for n in range(0, min(len(eval_split), config.batches * config.batch_size), config.batch_size)]
    return {"latency": [ones] * config.rounds,
            "throughput": [[yardstick.call_of(bundle.logits, batch, units=len(batch)) for batch in batches]]
            * config.rounds}


def speed_fields(timing: dict[str, yardstick.Rounds], eval_split: Split) -> dict[str, float]:
    """Examples per second at the throughput batch size."""
    return {"throughput_per_s": 1 / yardstick.median(yardstick.flat(timing["throughput"]))}


def hf_loader(source: str, task: str, labels: list[str] | None) -> Callable[[], ModelBundle]:
    """How a Hugging Face classifier of this kind loads: with a fresh head where its labels differ."""
    return lambda: load_hf_classifier(source, task, labels)


def quality_ratio(baseline: Figures, result: Figures) -> dict[str, float]:
    """Accuracy kept, as a share of the original's."""
    return {"accuracy_retained": result.accuracy / baseline.accuracy if baseline.accuracy else 0.0}

