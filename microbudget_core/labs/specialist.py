"""The specialist-vs-generalist lab: a small model fine-tuned for one task against LLMs prompted to do it.

Every row is a stored run, made by the same techniques and measure() as the other labs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from .. import labs
from . import llm_quantization
from ..measure import MeasureConfig
from ..yardstick import speed_verdict
from ..models import CAUSAL_LM, ModelSpec, load_model
from ..pipeline import Request, prepare, resolve, run_steps
from ..support.progress import Progress, no_progress, scaled
from ..support.rows import column
from ..figures import Measured
from ..runs import Run, RunStore
from .compare import DEFAULT_PRICE_PER_HOUR, serving_cost


PERPLEXITY_KEPT = 1.10  # a level deployed for the contest keeps the LLM's perplexity within 10%


@labs.job
def run_contest(dataset: str, llms: Sequence[str] = ("smollm2-135m",), shots: int = 4,
                specialist: str = "minilm-l6", eval_limit: int = 200,
                measure_config: MeasureConfig = MeasureConfig(memory=False), store: RunStore | None = None,
                progress: Progress = no_progress) -> list[Run]:
    """The fine-tuned specialist and its int8 version; each LLM zero-shot as loaded, and at the level a user would
    deploy (`deployed_level`) with `shots` examples in the prompt; the same eval texts for all.

    Each run holds two contenders: its baseline (fine-tuned specialist, or the LLM zero-shot) and its result.
    """
    few_shot = [("few-shot", {"shots": shots})] if shots else []
    resolve(few_shot)  # bad knobs fail before slow work
    for llm in llms:  # so does an LLM id that is not one, or a hub id while offline
        load_model(ModelSpec(llm), task=CAUSAL_LM)
    contenders = [(specialist, resolve([("onnx-int8-dynamic", {})]))] + [
        (llm, resolve(_steps_of(deployed_level(llm, dataset)) + few_shot)) for llm in llms]
    runs = []
    for number, (model, steps) in enumerate(contenders):
        span = scaled(progress, number / len(contenders), (number + 1) / len(contenders))
        prepared = prepare(Request(model, dataset, eval_limit=eval_limit), measure_config, scaled(span, 0.0, 0.5))
        runs.append(run_steps(prepared, steps, store, measure_config, scaled(span, 0.5, 1.0)))
    labs.remember_runs(labs.SPECIALIST, [dataset], runs)
    return runs


CONTEST_PANELS = [("accuracy", "Accuracy", "%"), ("p50_ms", "Latency p50 per text (log)", "ms"),
                  ("cost_per_million", "$ per 1M predictions (log)", "$")]


@dataclass(frozen=True)
class ContestRow:
    """One contender: its size, accuracy, latency and serving cost."""

    contender: str = column("contender")
    model: str = column("model")
    params_m: float = column("params M")
    size_mb: float = column("size MB")
    accuracy: float = column("accuracy")
    macro_f1: float = column("macro F1")
    p50_ms: float = column("p50 ms")
    cost_per_million: float = column("$ per 1M")
    speed: str = column("speed")  # stable, or unstable and why (yardstick.speed_verdict)
    run: str = column("run")


def deployed_level(llm: str, dataset: str) -> Run | None:
    """The fastest level of the LLM's last level sweep on this dataset that keeps perplexity within 10% (its cost
    per prediction is then what a user would deploy); None where no sweep was run or no level keeps it."""
    kept = [run for run in llm_quantization.latest_levels(llm, dataset) if run.ratios["perplexity"] <= PERPLEXITY_KEPT]
    return max(kept, key=lambda run: run.result.tokens_per_s, default=None)


def _steps_of(run: Run | None) -> list[tuple[str, dict[str, Any]]]:
    return [(step["technique"], step["config"]) for step in run.steps] if run else []


def contest_rows(runs: Sequence[Run], price_per_hour: float = DEFAULT_PRICE_PER_HOUR) -> list[ContestRow]:
    """One row per contender, with its serving cost (the Compare page's cost model); the specialist's run first."""
    return [ContestRow(contender=name, model=run.model, params_m=metrics.params / 1e6,
                       size_mb=metrics.size_bytes / 1e6, accuracy=metrics.accuracy,
                       macro_f1=metrics.macro_f1, p50_ms=metrics.latency_ms_p50,
                       cost_per_million=serving_cost(metrics.throughput_per_s, price_per_hour).per_million,
                       speed=speed_verdict(metrics.speed_check), run=run.run_id)
            for number, run in enumerate(runs) for name, metrics in _contenders(run, specialist=number == 0)]


def contest_headline(rows: list[ContestRow]) -> str:
    """The specialist against the best LLM contender, in one sentence."""
    specialist = rows[0]
    llm_rows = [row for row in rows if "shot" in row.contender]
    if not llm_rows:
        return f"{specialist.contender}: accuracy {specialist.accuracy:.1%}."
    best = max(llm_rows, key=lambda row: row.accuracy)
    verdict = "beats" if specialist.accuracy > best.accuracy else "does not beat"
    return (f"{specialist.contender} ({specialist.params_m:.0f}M params) {verdict} the best LLM contender, "
            f"{best.contender} ({best.params_m:.0f}M): accuracy {specialist.accuracy:.1%} vs "
            f"{best.accuracy:.1%}, {best.p50_ms / specialist.p50_ms:.0f}x faster per text, "
            f"{best.cost_per_million / specialist.cost_per_million:.0f}x cheaper per prediction.")


def _contenders(run: Run, specialist: bool) -> list[tuple[str, Measured]]:
    """A run's two contenders: the specialist fine-tuned and compressed, or the LLM zero-shot and (at its deployed
    level, with its shots) as the run made it."""
    if specialist:
        return [(f"{run.model} fine-tuned", run.baseline), (f"{run.model} fine-tuned -> {run.label}", run.result)]
    found = [(f"{run.model} zero-shot", run.baseline)]
    techniques = [step["technique"] for step in run.steps]
    if techniques:
        level = llm_quantization.level_of(replace(run, steps=[s for s in run.steps if s["technique"] != "few-shot"]))
        shots = next((f"{s['config']['shots']}-shot" for s in run.steps if s["technique"] == "few-shot"), "zero-shot")
        found.append((f"{run.model} {'' if level == 'original' else level + ' '}{shots}", run.result))
    return found


def latest_contest(dataset: str) -> list[Run]:
    """The runs of the last specialist-vs-generalist contest on this dataset."""
    return labs.recall_runs(labs.SPECIALIST, [dataset])[0]

