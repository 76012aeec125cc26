"""One yardstick for every row, original included: size, speed, memory, accuracy, fidelity."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import devices, kinds
from .data import Split
from .models import IMAGE, TEXT, ModelBundle
from .runtimes import PYTORCH
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
    # Where quality and speed are measured: the CPU, the serving target whose numbers this tool shows, unless asked.
    # A GPU measures PyTorch classifiers there; other runtimes and kinds are measured on the CPU (and say so).
    device: str = "cpu"

    def __post_init__(self) -> None:
        devices.resolved(self.device, "--measure-device")  # a device this machine lacks: refused before any slow work


@dataclass
class Measurement:
    metrics: dict[str, Any]
    predictions: np.ndarray  # eval predictions, the reference for later rows' fidelity


def measure(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None = None,
            config: MeasureConfig = MeasureConfig(), artifact_dir: Path | None = None,
            progress: Progress = no_progress) -> Measurement:
    """Measure `bundle` on `eval_split`; fidelity is agreement with `reference` predictions.

    Size, parameters and memory are measured here alike for every row; the kind of model measures its
    quality and speed (a classifier on the eval labels, a language model by perplexity and a completion).
    """
    threads = torch.get_num_threads()
    bundle.runtime.set_threads(bundle.model, config.threads)
    torch.set_num_threads(config.threads)  # also for the preprocessing, whatever the runtime
    kind = kinds.get(bundle.task)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            progress(0.0, "Measuring size")
            artifact = bundle.save(artifact_dir or Path(scratch) / "artifact")
            size = sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
            progress(0.05, "Measuring peak memory in a fresh process")
            batch = eval_split.inputs[: config.batch_size]
            peak_rss, load_seconds = _probe(artifact, batch, Path(scratch)) if config.memory else (None, None)
        where = torch.device(config.device if measurable_on_device(bundle) else devices.CPU)
        placed = replace(bundle, model=devices.placed(bundle.model, where),
                         preprocess=devices.sending(bundle.preprocess, where))
        quality, predictions = kind.quality(placed, eval_split, reference, config, progress)
    finally:
        torch.set_num_threads(threads)
    metrics = {"size_bytes": size, "params": bundle.parameter_count(), **dataclasses.asdict(quality),
               "peak_rss_mb": peak_rss, "load_seconds": load_seconds, "eval_examples": len(eval_split),
               "threads": config.threads, "measured_on": devices.hardware(where)}
    progress(1.0, "Measured")
    return Measurement(metrics, predictions)


def measurable_on_device(bundle: ModelBundle) -> bool:
    """A PyTorch classifier of plain tensors, whose weights move to a GPU; quantized or restructured models (CPU
    kernels, packed weights) and ONNX or GGUF rows are measured on the CPU."""
    return (bundle.runtime.ID == PYTORCH and bundle.task in (TEXT, IMAGE) and not bundle.meta.get("structure")
            and all(type(t) is torch.Tensor and not t.is_quantized for t in bundle.model.state_dict().values()))


def ratios(baseline: dict[str, Any], result: dict[str, Any], task: str) -> dict[str, float]:
    """The contract's ratios: >1 means the result is smaller / faster; the kind adds its quality ratio."""
    return {"size": baseline["size_bytes"] / result["size_bytes"],
            "latency": baseline["latency_ms_p50"] / result["latency_ms_p50"],
            **kinds.get(task).quality_ratio(baseline, result)}


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
