"""The specialist-vs-generalist lab: a small model fine-tuned for one task against LLMs prompted to do it.

Every row is a stored run, made by the same techniques and measure() as the other labs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .. import labs
from ..measure import MeasureConfig
from ..models import CAUSAL_LM, ModelSpec, load_model
from ..pipeline import Request, prepare, resolve, run_steps
from ..progress import Progress, no_progress, scaled
from ..rows import column
from ..runs import Run, RunStore
from .compare import DEFAULT_PRICE_PER_HOUR, serving_cost


@labs.job
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
    run: str = column("run")


def contest_rows(runs: Sequence[Run], price_per_hour: float = DEFAULT_PRICE_PER_HOUR) -> list[ContestRow]:
    """One row per contender, with its serving cost (the Compare page's cost model)."""
    return [ContestRow(contender=name, model=run.model, params_m=metrics["params"] / 1e6,
                       size_mb=metrics["size_bytes"] / 1e6, accuracy=metrics["accuracy"],
                       macro_f1=metrics["macro_f1"], p50_ms=metrics["latency_ms_p50"],
                       cost_per_million=serving_cost(metrics["throughput_per_s"], price_per_hour).per_million,
                       run=run.run_id)
            for run in runs for name, metrics in _contenders(run)]


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

