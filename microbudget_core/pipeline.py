"""One request end to end: baseline -> technique steps -> the same measurement -> a stored Run."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from typing import Any

from . import devices, techniques
from .support import limits
from .baseline import build_baseline
from .data import Dataset, DatasetSpec, Split, load_dataset
from .support.errors import MicrobudgetError
from .support.exclusive import one_at_a_time
from .measure import MeasureConfig, Measurement, measure, ratios
from .models import ModelBundle
from .support.paths import workspace
from .support.progress import Progress, no_progress, scaled
from .runs import Run, RunStore, new_run_id, step_label


@dataclass(frozen=True)
class Request:
    model: str
    dataset: str
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (technique id, settings)
    eval_limit: int | None = None
    task: str | None = None  # "causal-lm" measures a language model as one (perplexity), not as a classifier

    def __post_init__(self) -> None:
        if self.eval_limit is not None and self.eval_limit < 1:  # refused before any model or dataset is loaded
            raise MicrobudgetError(f"An eval limit of {self.eval_limit} measures nothing.",
                                   "Give at least 1 eval example, or no limit for all of them.")


@dataclass
class Prepared:
    """The shared start of every run on one (model, dataset): the baseline, measured once."""

    request: Request
    dataset: Dataset
    eval_split: Split
    baseline: ModelBundle
    original: Measurement


@one_at_a_time
def run_pipeline(request: Request, store: RunStore | None = None, measure_config: MeasureConfig = MeasureConfig(),
                 progress: Progress = no_progress, kept: list[Run] | None = None) -> Run | None:
    """Run the request's steps on a copy of the baseline, measure both, and store the Run.

    `kept` receives every run stored: in a chain, one per step (see `run_steps`). None in a process of
    `accelerate launch` other than the main one (it trains its share; the main one measures and stores).
    """
    steps = resolve(request.steps)  # bad ids and settings fail before any slow work
    store = store or (RunStore() if devices.is_main() else None)  # and so does a damaged runs store (the writer's)
    prepared = prepare(request, measure_config, scaled(progress, 0.0, 0.6))
    return run_steps(prepared, steps, store, measure_config, scaled(progress, 0.6, 1.0), kept)


@dataclass
class Sweep:
    """Several rows measured against one measurement of the original."""

    runs: list[Run]
    skipped: dict[str, str]  # row label -> why it does not apply to this model


def run_rows(prepared: Prepared, rows: list[list[tuple[Any, Any]]], store: RunStore | None,
              measure_config: MeasureConfig, progress: Progress) -> Sweep:
    """Run every row on the prepared original; a row that does not apply is skipped with its reason.

    A row that begins a later row (distill, then distill -> int8) is not run twice: the later chain measures and
    stores it on the way (run_steps keeps each step's result).
    """
    sweep = Sweep([], {})
    on_the_way = [steps for n, steps in enumerate(rows)
                  if any(len(later) > len(steps) and later[:len(steps)] == steps for later in rows[n + 1:])]
    for n, steps in enumerate(rows):
        if steps in on_the_way:
            continue
        span = scaled(progress, 0.2 + 0.8 * n / len(rows), 0.2 + 0.8 * (n + 1) / len(rows))
        kept: list[Run] = []
        try:
            run_steps(prepared, steps, store, measure_config, span, kept=kept)
        except MicrobudgetError as error:
            sweep.skipped[" -> ".join(step_label(record) for record in _records(steps))] = str(error)
        shown = [_records(row) for row in [steps, *on_the_way]]
        sweep.runs += [run for run in kept if run.steps in shown]  # the row, and the rows it made on the way
    order = [_records(steps) for steps in rows]
    sweep.runs.sort(key=lambda run: order.index(run.steps))  # in the rows' order
    if not sweep.runs:
        raise MicrobudgetError(f"No row could run on '{prepared.request.model}'. "
                               f"{next(iter(sweep.skipped.values()))}")
    return sweep


def prepare(request: Request, measure_config: MeasureConfig = MeasureConfig(),
            progress: Progress = no_progress) -> Prepared:
    """Load the dataset, build (or load) the baseline, and measure it."""
    progress(0.0, f"Loading dataset {request.dataset}")
    dataset = load_dataset(DatasetSpec(request.dataset))
    eval_split = dataset.eval.head(request.eval_limit)
    baseline = build_baseline(request.model, dataset, request.task, progress=scaled(progress, 0.02, 0.75))
    # The main process measures; under `accelerate launch` the others only train (they wait meanwhile).
    original = measure(baseline, eval_split, config=measure_config, progress=scaled(progress, 0.75, 1.0)) \
        if devices.is_main() else None
    return Prepared(request, dataset, eval_split, baseline, original)


def run_steps(prepared: Prepared, steps: list[tuple[Any, Any]], store: RunStore | None = None,
              measure_config: MeasureConfig = MeasureConfig(), progress: Progress = no_progress,
              kept: list[Run] | None = None) -> Run | None:
    """Apply resolved steps (see `resolve`) to the prepared baseline, measure the result, and store the Run.

    In a chain, each step's intermediate result is measured and stored as a run of its own too
    (e.g. distill -> onnx-int8-dynamic keeps the fp32 student beside the int8 one); `kept` receives
    every run stored, in order.
    """
    kept = [] if kept is None else kept
    result, step_training = prepared.baseline, {}
    share = 1 / (len(steps) + 1)  # each step, and each measurement, a part of the bar
    for number, (technique, config) in enumerate(steps):
        if not any(techniques.trains(later) for later, _ in steps[number:]) and not devices.part_ways():
            return None  # another process of `accelerate launch`: its share of the training is done
        trained_before = result.meta.get("train_seconds")
        result = technique.apply(result, config, prepared.dataset, scaled(progress, share * number, share * (number + 0.5)))
        if result.meta.get("train_seconds") != trained_before:  # this step trained
            step_training = _training(result.meta)
        if number < len(steps) - 1 and devices.is_main():
            kept.append(_measure_and_store(prepared, steps[:number + 1], result, step_training, store, measure_config,
                                           scaled(progress, share * (number + 0.5), share * (number + 1))))
    if not devices.part_ways():
        return None
    kept.append(_measure_and_store(prepared, steps, result, step_training, store, measure_config,
                                   scaled(progress, 1 - share, 1.0)))
    progress(1.0, "Done")
    return kept[-1]


def _measure_and_store(prepared: Prepared, steps: list[tuple[Any, Any]], result: ModelBundle,
                       step_training: dict[str, Any], store: RunStore | None, measure_config: MeasureConfig,
                       progress: Progress) -> Run:
    """Measure `result` (what `steps` made of the baseline) against the original, and store it as a Run."""
    baseline = prepared.baseline
    run_id = new_run_id()
    artifacts = workspace() / "artifacts" / run_id
    try:
        final = measure(result, prepared.eval_split, reference=prepared.original.predictions, config=measure_config,
                        artifact_dir=artifacts, progress=progress, against=baseline)
        # The original as timed in the same window as the result; each row with the training that made it.
        trained = _training(baseline.meta)
        original = dataclasses.replace(prepared.original.figures, **(final.original_speed or {}), **trained)
        figures = dataclasses.replace(final.figures, **(step_training if steps else trained),
                                      report=dict(result.meta.get("report", {})))  # e.g. per-layer error
        run = Run(model=prepared.request.model, dataset=prepared.request.dataset, task=baseline.task,
                  steps=_records(steps), baseline=original, result=figures,
                  ratios=ratios(original, figures, baseline.task, final.paired_ratios), artifact_path=str(artifacts),
                  notes=list(result.meta.get("notes", [])), labels=list(baseline.labels), run_id=run_id)
        (store or RunStore()).add(run)
    except BaseException:
        shutil.rmtree(artifacts, ignore_errors=True)  # no orphan files for a run never stored
        raise
    return run


def resolve(step_settings: list[tuple[str, dict[str, Any]]]) -> list[tuple[Any, Any]]:
    """(technique module, Config) per step, within the operator's limits; unknown ids and bad settings raise here."""
    return [(techniques.get(tid), limits.capped(techniques.make_config(techniques.get(tid), settings)))
            for tid, settings in step_settings]


def _records(steps: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """Resolved steps as the run store keeps them."""
    return [{"technique": technique.ID, "config": dataclasses.asdict(config)} for technique, config in steps]


def _training(meta: dict[str, Any]) -> dict[str, Any]:
    """The contract's training fields, where the model was trained."""
    return {key: meta[key] for key in ("train_seconds", "train_examples", "history", "trained_on") if key in meta}
