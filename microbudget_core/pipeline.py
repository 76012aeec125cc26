"""One request end to end: baseline -> technique steps -> the same measurement -> a stored Run."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from typing import Any

from . import techniques
from .baseline import build_baseline
from .data import DatasetSpec, load_dataset
from .measure import MeasureConfig, measure, ratios
from .paths import home
from .progress import Progress, no_progress, scaled
from .runs import Run, RunStore


@dataclass(frozen=True)
class Request:
    model: str
    dataset: str
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (technique id, settings)
    eval_limit: int | None = None


def run_pipeline(request: Request, store: RunStore | None = None, measure_config: MeasureConfig = MeasureConfig(),
                 progress: Progress = no_progress) -> Run:
    """Run the request's steps on a copy of the baseline, measure both, and store the Run."""
    # Resolve every id and setting before any slow work, so bad input fails at once.
    steps = [(techniques.get(tid), techniques.make_config(techniques.get(tid), settings))
             for tid, settings in request.steps]
    progress(0.0, f"Loading dataset {request.dataset}")
    dataset = load_dataset(DatasetSpec(request.dataset))
    eval_split = dataset.eval.head(request.eval_limit)
    baseline = build_baseline(request.model, dataset, progress=scaled(progress, 0.02, 0.45))
    original = measure(baseline, eval_split, config=measure_config, progress=scaled(progress, 0.45, 0.6))
    result, step_training = baseline, {}
    for number, (technique, config) in enumerate(steps):
        span = 0.6 + 0.2 * number / len(steps), 0.6 + 0.2 * (number + 1) / len(steps)
        trained_before = result.meta.get("train_seconds")
        result = technique.apply(result, config, dataset, scaled(progress, *span))
        if result.meta.get("train_seconds") != trained_before:  # this step trained
            step_training = _training(result.meta)
    run = Run(model=request.model, dataset=request.dataset, task=baseline.task,
              steps=[{"technique": t.ID, "config": dataclasses.asdict(c)} for t, c in steps],
              baseline={**original.metrics, **_training(baseline.meta)}, result={}, ratios={})
    artifacts = home() / "artifacts" / run.run_id
    try:
        final = measure(result, eval_split, reference=original.predictions, config=measure_config,
                        artifact_dir=artifacts, progress=scaled(progress, 0.8, 1.0))
        run.result = {**final.metrics, **(step_training if steps else _training(baseline.meta))}
        run.ratios = ratios(run.baseline, run.result)
        run.artifact_path = str(artifacts)
        run.notes = list(result.meta.get("notes", []))
        run.result.update(result.meta.get("report", {}))  # technique-specific figures, e.g. per-layer error
        (store or RunStore()).add(run)
    except BaseException:
        shutil.rmtree(artifacts, ignore_errors=True)  # no orphan files for a run never stored
        raise
    progress(1.0, "Done")
    return run


def _training(meta: dict[str, Any]) -> dict[str, Any]:
    """The contract's training fields, where the model was trained."""
    return {key: meta[key] for key in ("train_seconds", "train_examples") if key in meta}
