"""The LLM quantization lab: a language model at each quantization level, measured against it as loaded.

Two backends: GGUF levels made by llama.cpp's quantizer and run on its kernels (what Ollama runs), and PyTorch
levels (round-to-nearest weight-only, int8, bf16). Every row is a stored run, made by the same techniques and
measure() as the other labs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from .. import labs
from ..support.errors import MicrobudgetError
from ..measure import MeasureConfig
from ..yardstick import speed_verdict
from ..models import CAUSAL_LM, ModelBundle, ModelSpec, load_model
from ..models.llm import Generation
from ..pipeline import Request, Sweep, prepare, resolve, run_rows
from ..support.progress import Progress, no_progress, scaled
from ..support.rows import column
from ..runtimes import llamacpp, pytorch
from ..figures import Measured
from ..runs import Run, RunStore, load_run_model

# Level -> (bits per weight, steps). A GGUF level's label names its main type; the file's real mix of types (and
# so its bits per weight) is read from it after quantizing. Weight-only packs the LM head and the (tied) embedding
# table too, as GGUF does. Two int8 paths: torch.ao's (one activation scale per tensor: fast kernels, but the
# outlier features of an LLM's MLP inputs break it) and torchao's (one scale per token: accurate, but no fast CPU
# kernel here).
GGUF_LEVELS = {"F32": 32, "F16": 16, "Q8_0": 8.5, "Q6_K": 6.6, "Q5_K_M": 5.7, "Q4_K_M": 4.9, "Q4_0": 4.5,
               "Q3_K_M": 3.9, "Q2_K": 2.6}  # llama.cpp's nominal bits per weight
LEVELS: dict[str, tuple[float, list[tuple[str, dict[str, Any]]]]] = {
    **{f"GGUF {level}": (bits, [("gguf", {"level": level})]) for level, bits in GGUF_LEVELS.items()},
    "bf16": (16, [("bf16", {})]),
    "int8 (dynamic)": (8, [("dynamic-int8", {"backend": "torch.ao"})]),
    "int8 (per-token)": (8, [("dynamic-int8", {"backend": "torchao"})]),
    **{f"{bits}-bit": (bits, [("weight-only", {"bits": bits, "skip_head": False, "embeddings": True})])
       for bits in (8, 4, 3, 2)},
}
TALK_LEVELS = ("GGUF F16", "GGUF Q8_0", "GGUF Q4_K_M", "GGUF Q2_K")  # the talk's demo, as Ollama runs it
PYTORCH_LEVELS = ("int8 (dynamic)", "8-bit", "4-bit", "3-bit", "2-bit")
ORIGINAL = "fp32 (as loaded)"
PERPLEXITY_TEXTS = 200  # eval snippets of the dataset, never trained on


def default_levels() -> tuple[str, ...]:
    """The talk's GGUF levels where llama.cpp is built here, else the PyTorch ones."""
    return PYTORCH_LEVELS if llamacpp.missing() else TALK_LEVELS


def backend(level: str) -> str:
    """The runtime a level runs in."""
    return llamacpp.NAME if level.startswith("GGUF") else pytorch.NAME


@labs.job
def run_levels(model: str, dataset: str, levels: Sequence[str] | None = None, group_size: int = 32,
               texts: int = PERPLEXITY_TEXTS, measure_config: MeasureConfig = MeasureConfig(),
               store: RunStore | None = None, progress: Progress = no_progress) -> Sweep:
    """Each level of `model` against one measurement of it as loaded: size, load time, tokens/s, perplexity."""
    levels = default_levels() if levels is None else levels
    unknown = [level for level in levels if level not in LEVELS]
    if unknown or not levels:
        raise MicrobudgetError(f"Unknown or no levels: {', '.join(unknown) or 'none given'}.",
                               f"Pick from: {', '.join(LEVELS)}.")
    rows = [resolve([(tid, {**settings, **({"group_size": group_size} if tid == "weight-only" else {})})
                     for tid, settings in LEVELS[level][1]]) for level in levels]
    prepared = prepare(Request(model, dataset, eval_limit=texts, task=CAUSAL_LM), measure_config,
                       scaled(progress, 0.0, 0.2))
    sweep = run_rows(prepared, rows, store, measure_config, progress)
    labs.remember_runs(labs.LLM_LEVELS, [model, dataset], sweep.runs, sweep.skipped)
    return sweep


@dataclass(frozen=True)
class LevelRow:
    """One quantization level of the language model, against it as loaded."""

    level: str = column("level")
    backend: str = column("backend")
    bits: float = column("bits per weight")
    tensor_types: str = column("tensor types")
    size_mb: float = column("size MB")
    x_smaller: float = column("x smaller")
    load_s: float | None = column("load s")
    tokens_per_s: float = column("tokens/s")
    x_faster: float = column("x tokens/s")  # from the level's side-by-side timing with the original
    prompt_tokens_per_s: float | None = column("prompt tokens/s")
    perplexity: float = column("perplexity")
    perplexity_x: float = column("perplexity x")
    same_tokens: float = column("same tokens")
    completion: str = column("completion")
    speed: str = column("speed")  # stable, or unstable and why (yardstick.speed_verdict)


def level_rows(runs: Sequence[Run]) -> list[LevelRow]:
    """The original then each level: bits, size, load time, tokens/s, perplexity, and the same prompt's completion."""
    if not runs:
        return []
    rows = [_row(ORIGINAL, runs[0].baseline, runs[0].baseline, 1.0)]
    return rows + [_row(level_of(run), run.result, run.baseline, run.ratios["latency"]) for run in runs]


def headline(rows: list[LevelRow]) -> str:
    """Each level against the original in one sentence: how much smaller, how much faster, how much perplexity."""
    original = rows[0]
    levels = "; ".join(f"{row.level} {row.x_smaller:.1f}x smaller, {row.x_faster:.1f}x "
                       f"the tokens/s, perplexity x{row.perplexity_x:.2f}" for row in rows[1:])
    return f"Against {original.level} ({original.size_mb:.0f} MB, {original.tokens_per_s:.0f} tokens/s): {levels}."


def level_of(run: Run) -> str:
    """The LEVELS name of a run's steps (its label where it matches none)."""
    return labs.row_name(run, {name: steps for name, (_, steps) in LEVELS.items()})


def _row(level: str, metrics: Measured, original: Measured, x_faster: float) -> LevelRow:
    types = metrics.report.get("tensor_types", {})  # the gguf technique's report
    return LevelRow(level=level, backend=backend(level),
                    bits=metrics.report.get("bits_per_weight") or LEVELS.get(level, (32, []))[0],
                    tensor_types=", ".join(f"{kind} x{count}" for kind, count in types.items()) or "-",
                    size_mb=metrics.size_bytes / 1e6,
                    x_smaller=original.size_bytes / metrics.size_bytes, load_s=metrics.load_seconds,
                    tokens_per_s=metrics.tokens_per_s, x_faster=x_faster,
                    prompt_tokens_per_s=metrics.prompt_tokens_per_s,
                    perplexity=metrics.perplexity,
                    perplexity_x=metrics.perplexity / original.perplexity, same_tokens=metrics.fidelity,
                    completion=metrics.completion, speed=speed_verdict(metrics.speed_check))


def stream(model: str, run_id: str, prompt: str, max_new_tokens: int) -> Generation:
    """Greedy text pieces for `prompt` as they come, from `model` as loaded (run_id '') or a stored level's run."""
    if not prompt.strip():
        raise MicrobudgetError("The prompt is empty.", "Type a prompt first.")
    return Generation(_level_model(model, run_id), prompt, max_new_tokens)


@lru_cache(maxsize=2)  # the last two levels tried stay loaded: switching back and forth is instant
def _level_model(model: str, run_id: str) -> ModelBundle:
    if not run_id:
        return load_model(ModelSpec(model), task=CAUSAL_LM)
    run = RunStore().get(run_id)
    if run is None:
        raise MicrobudgetError(f"Run {run_id} was deleted.", "Run the levels again.")
    return load_run_model(run)


def latest_levels(model: str, dataset: str) -> list[Run]:
    """The runs of the last level sweep of this model on this dataset."""
    return labs.recall_runs(labs.LLM_LEVELS, [model, dataset])[0]
