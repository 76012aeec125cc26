"""One yardstick for every row, original included: size, speed, memory, accuracy, fidelity."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from .data import Split
from .models import ModelBundle, count_params
from .progress import Progress, no_progress


@dataclass(frozen=True)
class MeasureConfig:
    threads: int = 2  # the same for every row; 2 = the cores of the reference machine
    warmup: int = 3
    latency_runs: int = 30  # batch-1 calls timed for p50 / p95
    batch_size: int = 32  # throughput batch
    memory: bool = True  # peak RSS in a fresh process (costs a few seconds)


@dataclass
class Measurement:
    metrics: dict[str, Any]
    predictions: np.ndarray  # eval predictions, the reference for later rows' fidelity


def measure(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None = None,
            config: MeasureConfig = MeasureConfig(), artifact_dir: Path | None = None,
            progress: Progress = no_progress) -> Measurement:
    """Measure `bundle` on `eval_split`; fidelity is agreement with `reference` predictions."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            progress(0.0, "Measuring size")
            artifact = bundle.save(artifact_dir or Path(scratch) / "artifact")
            size = sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
            progress(0.05, "Measuring peak memory in a fresh process")
            batch = eval_split.inputs[: config.batch_size]
            peak_rss = _peak_rss_mb(artifact, batch, Path(scratch)) if config.memory else None
        progress(0.15, "Measuring batch-1 latency")
        latencies = latencies_ms(bundle, eval_split.inputs, config)
        progress(0.3, "Measuring accuracy and batch throughput")
        predictions, throughput = _predict_all(bundle, eval_split.inputs, config.batch_size, progress)
    finally:
        torch.set_num_threads(threads)
    labels = eval_split.labels
    metrics = {
        "size_bytes": size,
        "params": count_params(bundle.model),
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
        "throughput_per_s": throughput,
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "fidelity": 1.0 if reference is None else float(np.mean(predictions == reference)),
        # rows: true class, columns: predicted, both in bundle.labels order
        "confusion_matrix": confusion_matrix(labels, predictions, labels=range(len(bundle.labels))).tolist(),
        "peak_rss_mb": peak_rss,
        "eval_examples": len(labels),
        "threads": config.threads,
    }
    progress(1.0, "Measured")
    return Measurement(metrics, predictions)


def ratios(baseline: dict[str, Any], result: dict[str, Any]) -> dict[str, float]:
    """The contract's ratios: >1 means the result is smaller / faster; accuracy kept as a share."""
    return {
        "size": baseline["size_bytes"] / result["size_bytes"],
        "latency": baseline["latency_ms_p50"] / result["latency_ms_p50"],
        "accuracy_retained": result["accuracy"] / baseline["accuracy"] if baseline["accuracy"] else 0.0,
    }


def latencies_ms(bundle: ModelBundle, inputs: list[Any], config: MeasureConfig) -> list[float]:
    """Batch-1 wall times over the first `config.latency_runs` inputs, after `config.warmup` calls."""
    for example in inputs[: config.warmup]:
        bundle.logits([example])
    times = []
    for example in inputs[: config.latency_runs]:
        start = time.perf_counter()
        bundle.logits([example])
        times.append((time.perf_counter() - start) * 1000)
    return times


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


def _peak_rss_mb(artifact: Path, batch: list[Any], scratch: Path) -> float | None:
    """Peak resident memory of a fresh process that loads the artifact and runs one batch.

    Measured in a child process: in this one, the original model and every earlier
    result stay resident, so this process's peak would not reflect the model measured.
    None when the probe fails (reported as unavailable rather than failing the run).
    """
    inputs = scratch / "probe-inputs.npz"
    np.savez(inputs, *[np.asarray(example) for example in batch])
    command = [sys.executable, "-m", "microbudget_core.memory_probe", str(artifact), str(inputs)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
        return float(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None
