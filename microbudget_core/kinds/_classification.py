"""What the two classifier kinds share: accuracy, balanced accuracy, macro-F1, confusion, agreement, batch-1
latency, throughput."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from ..data import Split
from ..measure import MeasureConfig, latencies_ms
from ..models.bundle import ModelBundle
from ..models.hf import load_hf_classifier
from ..progress import Progress

QUALITY = "accuracy"
PROMPTED_FOR: tuple[str, ...] = ()  # a classifier answers only its own kind of task
HIGHER_IS_BETTER = True


@dataclass
class Metrics:
    latency_ms_p50: float  # batch 1
    latency_ms_p95: float
    throughput_per_s: float  # batch MeasureConfig.batch_size
    accuracy: float
    balanced_accuracy: float  # mean recall over the classes: small classes count as much as large ones
    macro_f1: float
    fidelity: float  # share of eval predictions equal to the original's
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted, both in bundle.labels order


def quality(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None, config: MeasureConfig,
            progress: Progress) -> tuple[Metrics, np.ndarray]:
    """Scored on the eval labels; predictions are the classes, the reference for later rows' fidelity."""
    progress(0.15, "Measuring batch-1 latency")
    latencies = latencies_ms(bundle, eval_split.inputs, config)
    progress(0.3, "Measuring accuracy and batch throughput")
    predictions, throughput = _predict_all(bundle, eval_split.inputs, config.batch_size, progress)
    labels = eval_split.labels
    metrics = Metrics(
        latency_ms_p50=statistics.median(latencies),
        latency_ms_p95=float(np.percentile(latencies, 95)),
        throughput_per_s=throughput,
        accuracy=float(accuracy_score(labels, predictions)),
        balanced_accuracy=float(balanced_accuracy_score(labels, predictions)),
        macro_f1=float(f1_score(labels, predictions, average="macro", zero_division=0)),
        fidelity=1.0 if reference is None else float(np.mean(predictions == reference)),
        confusion_matrix=confusion_matrix(labels, predictions, labels=range(len(bundle.labels))).tolist(),
    )
    return metrics, predictions


def hf_loader(source: str, task: str, labels: list[str] | None) -> Callable[[], ModelBundle]:
    """How a Hugging Face classifier of this kind loads: with a fresh head where its labels differ."""
    return lambda: load_hf_classifier(source, task, labels)


def quality_ratio(baseline: dict[str, Any], result: dict[str, Any]) -> dict[str, float]:
    """Accuracy kept, as a share of the original's."""
    return {"accuracy_retained": result["accuracy"] / baseline["accuracy"] if baseline["accuracy"] else 0.0}


def _predict_all(bundle: ModelBundle, inputs: list[Any], batch_size: int,
                 progress: Progress) -> tuple[np.ndarray, float]:
    """Predictions for every eval example, and examples/second at `batch_size` (after one warm-up batch)."""
    bundle.logits(inputs[:batch_size])
    predictions, elapsed = [], 0.0
    for start_index in range(0, len(inputs), batch_size):
        start = time.perf_counter()
        predictions.append(bundle.predict(inputs[start_index:start_index + batch_size]))
        elapsed += time.perf_counter() - start
        progress(0.3 + 0.6 * start_index / len(inputs), "Measuring accuracy and batch throughput")
    return np.concatenate(predictions), len(inputs) / elapsed
