"""One yardstick for every row, original included: size, speed, memory, accuracy, fidelity."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import devices, kinds, yardstick
from .data import Split
from .figures import Measured
from .models import ModelBundle
from .runtimes import PYTORCH
from .support.errors import MicrobudgetError
from .support.progress import Progress, no_progress, scaled


def timing_rounds() -> int:
    """MICROBUDGET_TIMING_ROUNDS, the rounds a timing window holds where a config does not say: 5 unless set (fewer:
    quicker, noisier speed figures; the test suite, which checks behaviour and not speed, uses 2)."""
    value = os.environ.get("MICROBUDGET_TIMING_ROUNDS", "5")
    if not value.isdigit() or int(value) < 1:
        raise MicrobudgetError(f"MICROBUDGET_TIMING_ROUNDS={value!r} is not a whole number of rounds of 1 or more.",
                               "Set it to 1 or more, or unset it for 5.")
    return int(value)


@dataclass(frozen=True)
class MeasureConfig:
    threads: int = 2  # the same for every row (fewer where fewer cores are free); 2 = the reference machine's cores
    warmup: int = 3
    latency_runs: int = 30  # inputs timed at batch 1 for p50 / p95, each once a round
    # rounds over the same inputs; models timed side by side take turns round by round
    rounds: int = field(default_factory=timing_rounds)
    batch_size: int = 32  # throughput batch
    batches: int = 1  # throughput batches timed a round
    attempts: int = 3  # timing windows at most, while the machine looks busy (yardstick.py)
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
    figures: Measured  # the kind's Figures
    predictions: np.ndarray  # eval predictions, the reference for later rows' fidelity
    original_speed: dict[str, Any] | None = None  # the original's speed figures, timed in the same window as this row's
    paired_ratios: dict[str, float] = field(default_factory=dict)  # "latency", "latency_low", ... (see speed_ratios)


def measure(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None = None,
            config: MeasureConfig = MeasureConfig(), artifact_dir: Path | None = None,
            progress: Progress = no_progress, against: ModelBundle | None = None) -> Measurement:
    """Measure `bundle` on `eval_split`; fidelity is agreement with `reference` predictions. Given the original
    (`against`), the two are timed side by side in one window and the ratios come from that window.

    Size, parameters and memory are measured here alike for every row; the kind of model measures its
    quality (a classifier on the eval labels, a language model by perplexity and a completion) and says what to time.
    """
    previous_threads = torch.get_num_threads()
    threads = yardstick.threads_for(config.threads)
    torch.set_num_threads(threads)  # also for the preprocessing, whatever the runtime
    kind = kinds.get(bundle.task)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            progress(0.0, "Measuring size")
            artifact = bundle.save(artifact_dir or Path(scratch) / "artifact")
            size = sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
            progress(0.05, "Measuring peak memory in a fresh process")  # done before any timing, never beside one
            batch = eval_split.inputs[: config.batch_size]
            peak_rss, load_seconds = _probe(artifact, batch, Path(scratch)) if config.memory else (None, None)
        timed = ([against] if against is not None and against is not bundle else []) + [bundle]  # the original first
        where = torch.device(config.device if all(map(measurable_on_device, timed)) else devices.CPU)
        placed = [_placed(b, where, threads) for b in timed]
        quality, predictions = kind.quality(placed[-1], eval_split, reference, config, scaled(progress, 0.1, 0.6))
        progress(0.6, "Timing" + (" side by side with the original" if len(placed) > 1 else ""))
        window = yardstick.time_together([kind.speed_work(b, eval_split, config) for b in placed], config.warmup,
                                         threads, config.attempts)
    finally:
        torch.set_num_threads(previous_threads)
    speeds = [{**speed_fields(kind, timing, eval_split), "speed_check": dataclasses.asdict(window.check),
               "threads": threads} for timing in window.timings]
    figures = kind.Figures(**dataclasses.asdict(quality), size_bytes=size, params=bundle.parameter_count(),
                           **speeds[-1], peak_rss_mb=peak_rss, load_seconds=load_seconds,
                           eval_examples=len(eval_split), measured_on=devices.hardware(where))
    progress(1.0, "Measured")
    if len(placed) == 1:
        return Measurement(figures, predictions)
    return Measurement(figures, predictions, speeds[0], speed_ratios(*window.timings))


def speed_fields(kind: Any, timing: dict[str, yardstick.Rounds], eval_split: Split) -> dict[str, Any]:
    """Batch-1 latency percentiles (per example, clip or token) from the first timed figure; the kind adds its own."""
    samples = yardstick.flat(timing["latency"])
    return {**{f"latency_ms_p{q}": yardstick.percentile_ms(samples, q) for q in (50, 95, 25, 75)},
            **kind.speed_fields(timing, eval_split)}


def speed_ratios(original: dict[str, yardstick.Rounds], result: dict[str, yardstick.Rounds]) -> dict[str, float]:
    """Per timed figure, how many times faster the result is: the median of the per-round ratios, with their
    interquartile range (`latency`, `latency_low`, `latency_high`; the same for `throughput` where timed)."""
    found = {}
    for figure in original:
        paired = yardstick.ratio(original[figure], result[figure])
        found |= {figure: paired.median, f"{figure}_low": paired.low, f"{figure}_high": paired.high}
    return found


def _placed(bundle: ModelBundle, where: torch.device, threads: int) -> ModelBundle:
    """The bundle on the measuring device, its runtime on `threads` threads."""
    bundle.runtime.set_threads(bundle.model, threads)
    return replace(bundle, model=devices.placed(bundle.model, where),
                   preprocess=devices.sending(bundle.preprocess, where))


def measurable_on_device(bundle: ModelBundle) -> bool:
    """A PyTorch classifier of plain tensors, whose weights move to a GPU; quantized or restructured models (CPU
    kernels, packed weights) and ONNX or GGUF rows are measured on the CPU."""
    return (bundle.runtime.ID == PYTORCH and kinds.get(bundle.task).GPU_MEASURED and not bundle.meta.get("structure")
            and all(type(t) is torch.Tensor and not t.is_quantized for t in bundle.model.state_dict().values()))


def ratios(baseline: Measured, result: Measured, task: str,
           paired: dict[str, float] | None = None) -> dict[str, float]:
    """The contract's ratios: >1 means the result is smaller / faster (the speed ratios from a side-by-side timing
    where there was one, with their spread); the kind adds its quality ratio."""
    return {"size": baseline.size_bytes / result.size_bytes,
            "latency": baseline.latency_ms_p50 / result.latency_ms_p50, **(paired or {}),
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
