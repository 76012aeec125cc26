"""The LLM labs: a language model at each quantization level, and a small specialist against LLM generalists.

Every row is a stored run, made by the same techniques and measure() as the other labs.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from . import labs
from .compare import DEFAULT_PRICE_PER_HOUR, serving_cost
from .errors import MicrobudgetError
from .exclusive import one_at_a_time
from .measure import MeasureConfig
from .models import CAUSAL_LM, ModelBundle, ModelSpec, load_model
from .models.llm import Generation
from .pipeline import Request, Sweep, load_run_model, prepare, resolve, run_rows, run_steps
from .progress import Progress, no_progress, scaled
from .runs import Run, RunStore

# Level -> (bits per weight, steps). Weight-only packs the LM head and the (tied) embedding table too, as GGUF does.
# Two int8 paths: torch.ao's (one activation scale per tensor: fast kernels, but the outlier features of an LLM's
# MLP inputs break it) and torchao's (one scale per token: accurate, but no fast CPU kernel here).
LEVELS: dict[str, tuple[int, list[tuple[str, dict[str, Any]]]]] = {
    "bf16": (16, [("bf16", {})]),
    "int8 (dynamic)": (8, [("dynamic-int8", {"backend": "torch.ao"})]),
    "int8 (per-token)": (8, [("dynamic-int8", {"backend": "torchao"})]),
    **{f"{bits}-bit": (bits, [("weight-only", {"bits": bits, "skip_head": False, "embeddings": True})])
       for bits in (8, 4, 3, 2)},
}
DEFAULT_LEVELS = ("int8 (dynamic)", "8-bit", "4-bit", "3-bit", "2-bit")
ORIGINAL = "fp32 (as loaded)"
PERPLEXITY_TEXTS = 200  # eval snippets of the dataset, never trained on


@one_at_a_time
def run_levels(model: str, dataset: str, levels: Sequence[str] = DEFAULT_LEVELS, group_size: int = 32,
               texts: int = PERPLEXITY_TEXTS, measure_config: MeasureConfig = MeasureConfig(),
               store: RunStore | None = None, progress: Progress = no_progress) -> Sweep:
    """Each level of `model` against one measurement of it as loaded: size, load time, tokens/s, perplexity."""
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


def level_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The original then each level: bits, size, load time, tokens/s, perplexity, and the same prompt's completion."""
    if not runs:
        return []
    rows = [_row(ORIGINAL, 32, runs[0].baseline, runs[0].baseline)]
    for run in runs:
        rows.append(_row(level_of(run), LEVELS.get(level_of(run), (32, []))[0], run.result, run.baseline))
    return rows


def level_of(run: Run) -> str:
    """The LEVELS name of a run's steps (its label where it matches none)."""
    steps = [(step["technique"], step["config"]) for step in run.steps]
    for name, (_, level_steps) in LEVELS.items():
        if [tid for tid, _ in steps] == [tid for tid, _ in level_steps] and all(
                config.get(key) == value for (_, config), (_, wanted) in zip(steps, level_steps)
                for key, value in wanted.items()):
            return name
    return run.label


def _row(level: str, bits: int, metrics: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    return {"level": level, "bits": bits, "size MB": metrics["size_bytes"] / 1e6,
            "x smaller": original["size_bytes"] / metrics["size_bytes"], "load s": metrics.get("load_seconds"),
            "tokens/s": metrics["tokens_per_s"], "perplexity": metrics["perplexity"],
            "perplexity x": metrics["perplexity"] / original["perplexity"],
            "same tokens": metrics["fidelity"], "completion": metrics["completion"]}


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


@one_at_a_time
def run_contest(dataset: str, llms: Sequence[str] = ("smollm2-135m",), shots: int = 4,
                specialist: str = "minilm-l6", eval_limit: int = 200,
                measure_config: MeasureConfig = MeasureConfig(memory=False), store: RunStore | None = None,
                progress: Progress = no_progress) -> list[Run]:
    """The fine-tuned specialist and its int8 version; each LLM zero-shot and (shots > 0) few-shot; same eval texts.

    Each run holds two contenders: its baseline (fine-tuned specialist, or the LLM zero-shot) and its result.
    """
    few_shot = resolve([("few-shot", {"shots": shots})]) if shots else []  # bad knobs fail before slow work
    for llm in llms:  # so does an LLM id that is not one, or a hub id while offline
        load_model(ModelSpec(llm), task=CAUSAL_LM)
    contenders = [(specialist, resolve([("onnx-int8-dynamic", {})]))] + [(llm, few_shot) for llm in llms]
    runs = []
    for number, (model, steps) in enumerate(contenders):
        span = scaled(progress, number / len(contenders), (number + 1) / len(contenders))
        prepared = prepare(Request(model, dataset, eval_limit=eval_limit), measure_config, scaled(span, 0.0, 0.5))
        runs.append(run_steps(prepared, steps, store, measure_config, scaled(span, 0.5, 1.0)))
    labs.remember_runs(labs.SPECIALIST, [dataset], runs)
    return runs


CONTEST_PANELS = [("accuracy", "Accuracy", "%"), ("p50 ms", "Latency p50 per text (log)", "ms"),
                  ("$ per 1M", "$ per 1M predictions (log)", "$")]


def contest_rows(runs: Sequence[Run], price_per_hour: float = DEFAULT_PRICE_PER_HOUR) -> list[dict[str, Any]]:
    """One row per contender, with its serving cost (the Compare page's cost model)."""
    rows = []
    for run in runs:
        for name, metrics in _contenders(run):
            rows.append({"contender": name, "model": run.model, "params M": metrics["params"] / 1e6,
                         "size MB": metrics["size_bytes"] / 1e6, "accuracy": metrics["accuracy"],
                         "macro F1": metrics["macro_f1"], "p50 ms": metrics["latency_ms_p50"],
                         "$ per 1M": serving_cost(metrics["throughput_per_s"], price_per_hour).per_million,
                         "run": run.run_id})
    return rows


def contest_headline(rows: list[dict[str, Any]]) -> str:
    """The specialist against the best LLM contender, in one sentence."""
    specialist = rows[0]
    llm_rows = [row for row in rows if "shot" in row["contender"]]
    if not llm_rows:
        return f"{specialist['contender']}: accuracy {specialist['accuracy']:.1%}."
    best = max(llm_rows, key=lambda row: row["accuracy"])
    verdict = "beats" if specialist["accuracy"] > best["accuracy"] else "does not beat"
    return (f"{specialist['contender']} ({specialist['params M']:.0f}M params) {verdict} the best LLM contender, "
            f"{best['contender']} ({best['params M']:.0f}M): accuracy {specialist['accuracy']:.1%} vs "
            f"{best['accuracy']:.1%}, {best['p50 ms'] / specialist['p50 ms']:.0f}x faster per text, "
            f"{best['$ per 1M'] / specialist['$ per 1M']:.0f}x cheaper per prediction.")


def _contenders(run: Run) -> list[tuple[str, dict[str, Any]]]:
    """A run's two contenders: the specialist fine-tuned and compressed, or the LLM zero-shot and few-shot."""
    techniques = [step["technique"] for step in run.steps]
    if techniques and techniques[0] != "few-shot":
        return [(f"{run.model} fine-tuned", run.baseline), (f"{run.model} fine-tuned -> {run.label}", run.result)]
    found = [(f"{run.model} zero-shot", run.baseline)]
    if techniques:
        found.append((f"{run.model} {run.steps[0]['config']['shots']}-shot", run.result))
    return found


def latest_contest(dataset: str) -> list[Run]:
    """The runs of the last specialist-vs-generalist contest on this dataset."""
    return labs.recall_runs(labs.SPECIALIST, [dataset])[0]

