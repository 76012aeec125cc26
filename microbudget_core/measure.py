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
from .models import CAUSAL_LM, ModelBundle, count_params
from .progress import Progress, no_progress


@dataclass(frozen=True)
class MeasureConfig:
    threads: int = 2  # the same for every row; 2 = the cores of the reference machine
    warmup: int = 3
    latency_runs: int = 30  # batch-1 calls timed for p50 / p95
    batch_size: int = 32  # throughput batch
    memory: bool = True  # peak RSS (and load time) in a fresh process (costs a few seconds)
    # Language models: one greedy completion of a fixed prompt and length gives tokens/s and the text.
    prompt: str = "The three best ways to make a machine learning model smaller are"
    new_tokens: int = 32


@dataclass
class Measurement:
    metrics: dict[str, Any]
    predictions: np.ndarray  # eval predictions, the reference for later rows' fidelity


def measure(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None = None,
            config: MeasureConfig = MeasureConfig(), artifact_dir: Path | None = None,
            progress: Progress = no_progress) -> Measurement:
    """Measure `bundle` on `eval_split`; fidelity is agreement with `reference` predictions.

    A classifier is scored on the eval labels; a language model (task causal-lm) by its perplexity on
    the eval texts and a fixed greedy completion, whose tokens are its "predictions".
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            progress(0.0, "Measuring size")
            artifact = bundle.save(artifact_dir or Path(scratch) / "artifact")
            size = sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
            progress(0.05, "Measuring peak memory in a fresh process")
            batch = eval_split.inputs[: config.batch_size]
            peak_rss, load_seconds = _probe(artifact, batch, Path(scratch)) if config.memory else (None, None)
        if bundle.task == CAUSAL_LM:
            quality, predictions = _language_quality(bundle, eval_split, reference, config, progress)
        else:
            quality, predictions = _classification_quality(bundle, eval_split, reference, config, progress)
    finally:
        torch.set_num_threads(threads)
    metrics = {"size_bytes": size, "params": count_params(bundle.model), **quality, "peak_rss_mb": peak_rss,
               "load_seconds": load_seconds, "eval_examples": len(eval_split), "threads": config.threads}
    progress(1.0, "Measured")
    return Measurement(metrics, predictions)


def _classification_quality(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None,
                            config: MeasureConfig, progress: Progress) -> tuple[dict[str, Any], np.ndarray]:
    progress(0.15, "Measuring batch-1 latency")
    latencies = latencies_ms(bundle, eval_split.inputs, config)
    progress(0.3, "Measuring accuracy and batch throughput")
    predictions, throughput = _predict_all(bundle, eval_split.inputs, config.batch_size, progress)
    labels = eval_split.labels
    metrics = {
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
        "throughput_per_s": throughput,
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "fidelity": 1.0 if reference is None else float(np.mean(predictions == reference)),
        # rows: true class, columns: predicted, both in bundle.labels order
        "confusion_matrix": confusion_matrix(labels, predictions, labels=range(len(bundle.labels))).tolist(),
    }
    return metrics, predictions


def _language_quality(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None,
                      config: MeasureConfig, progress: Progress) -> tuple[dict[str, Any], np.ndarray]:
    """Perplexity on the eval texts; tokens/s and text of a fixed-length greedy completion of the prompt."""
    from .models.llm import complete, perplexity

    progress(0.15, "Generating: warm-up")
    complete(bundle, config.prompt, 2, stop_at_end=False)
    progress(0.2, f"Generating {config.new_tokens} tokens")
    generation = complete(bundle, config.prompt, config.new_tokens, stop_at_end=False)
    tokens = np.array(generation.tokens)
    per_token_ms = [seconds * 1000 for seconds in generation.seconds[1:]]  # the first also reads the prompt
    progress(0.4, f"Measuring perplexity on {len(eval_split)} texts")
    metrics = {
        "latency_ms_p50": statistics.median(per_token_ms),  # per generated token, batch 1
        "latency_ms_p95": float(np.percentile(per_token_ms, 95)),
        "tokens_per_s": len(tokens) / sum(generation.seconds),  # prompt pass included
        "perplexity": perplexity(bundle, eval_split.inputs),
        # share of the completion's tokens equal to the original's at the same position
        "fidelity": 1.0 if reference is None else float(np.mean(tokens == reference[: len(tokens)])),
        "prompt": config.prompt,
        "completion": generation.text,
    }
    return metrics, tokens


def ratios(baseline: dict[str, Any], result: dict[str, Any]) -> dict[str, float]:
    """The contract's ratios: >1 means the result is smaller / faster; accuracy kept as a share."""
    found = {
        "size": baseline["size_bytes"] / result["size_bytes"],
        "latency": baseline["latency_ms_p50"] / result["latency_ms_p50"],
    }
    if "perplexity" in result:  # a language model: how much its perplexity grew (1 = unchanged)
        return {**found, "perplexity": result["perplexity"] / baseline["perplexity"]}
    return {**found, "accuracy_retained": result["accuracy"] / baseline["accuracy"] if baseline["accuracy"] else 0.0}


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


def _probe(artifact: Path, batch: list[Any], scratch: Path) -> tuple[float | None, float | None]:
    """Peak resident memory (MB) of a fresh process that loads the artifact and runs one batch, and its load time (s).

    Measured in a child process: in this one, the original model and every earlier
    result stay resident, so this process's peak would not reflect the model measured.
    Nones when the probe fails (reported as unavailable rather than failing the run).
    """
    inputs = scratch / "probe-inputs.npz"
    np.savez(inputs, *[np.asarray(example) for example in batch])
    command = [sys.executable, "-m", "microbudget_core.memory_probe", str(artifact), str(inputs)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
        peak_mb, load_seconds = done.stdout.strip().splitlines()[-1].split()
        return float(peak_mb), float(load_seconds)
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None, None
