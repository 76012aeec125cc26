"""The quantization lab: one quantization run, and the bit-width sweep against one measurement of the original."""

from __future__ import annotations

from dataclasses import dataclass

from .. import labs, plots, runtimes, techniques
from ..measure import MeasureConfig
from ..pipeline import Request, Sweep, prepare, resolve, run_rows
from ..support.progress import Progress, no_progress, scaled
from ..runs import Run, RunStore
from ..support.rows import column
from ..yardstick import speed_verdict


@labs.job
def run_quantization(request: Request, progress: Progress = no_progress) -> Run:
    """One quantization (the request's steps) measured against the original; the page's latest."""
    return labs.run_and_remember(labs.QUANTIZATION, request, progress=progress)


def latest(model: str, dataset: str) -> Run | None:
    """The run the Quantization page opens on for this model and dataset."""
    return labs.latest_run(labs.QUANTIZATION, model, dataset)


def fast_int8(task: str) -> str | None:
    """The technique id of the int8 path to show first for this kind of model: ONNX Runtime's, where there is one."""
    path = techniques.int8_path(task, runtimes.ORT) or techniques.int8_path(task, runtimes.PYTORCH)
    return path.ID if path else None


@labs.job
def run_sweep(request: Request, bits: tuple[int, ...] = (8, 4, 3, 2), group_size: int = 64, int8: bool = True,
              store: RunStore | None = None, measure_config: MeasureConfig = MeasureConfig(memory=False),
              progress: Progress = no_progress) -> Sweep:
    """weight-only at each bit width (and the int8 paths), every row against one measurement of the original."""
    rows = [resolve([("weight-only", {"bits": b, "group_size": group_size})]) for b in bits]
    prepared = prepare(request, measure_config, scaled(progress, 0.0, 0.2))
    task = prepared.baseline.task
    if int8:  # the int8 path of choice for this kind of model in each runtime, where there is one
        paths = [techniques.int8_path(task, runtime) for runtime in (runtimes.PYTORCH, runtimes.ORT)]
        rows += [resolve([(path.ID, {})]) for path in paths if path]
    sweep = run_rows(prepared, rows, store, measure_config, progress)
    labs.remember_runs(labs.SWEEP, [request.model, request.dataset], sweep.runs, sweep.skipped)
    return sweep


@dataclass(frozen=True)
class RunRow:
    """A stored run on the page's dataset: its pipeline, accuracy and ratios."""

    run: str = column("run")
    when: str = column("when")
    model: str = column("model")
    pipeline: str = column("pipeline")
    accuracy: float = column("accuracy")
    size_x: float = column("size x")
    speed_x: float = column("speed x")
    speed: str = column("speed")  # stable, or unstable and why (yardstick.speed_verdict)


def run_rows_of(dataset: str) -> list[RunRow]:
    """Every stored classifier run on this dataset, the latest first."""
    return [RunRow(r.run_id, r.created_at, r.model, r.label, r.result.accuracy, r.ratios["size"], r.ratios["latency"],
                   speed_verdict(r.result.speed_check)) for r in reversed(RunStore().list(dataset))]


@dataclass(frozen=True)
class SweepRow:
    """One row of the bit-width sweep."""

    pipeline: str = column("pipeline")
    accuracy: float = column("accuracy")
    size_mb: float = column("size MB")
    p50_ms: float = column("p50 ms")
    summary: str = column("summary")


def sweep_rows(runs: list[Run]) -> list[SweepRow]:
    return [SweepRow(plots.sweep_name(r), r.result.accuracy, r.result.size_bytes / 1e6, r.result.latency_ms_p50,
                     plots.summary(r)) for r in runs]


@dataclass(frozen=True)
class FigureRow:
    """One measured figure of a run, the original's beside the result's."""

    metric: str = column("metric")
    original: float = column("original")
    result: float | None = column("result")


def figure_rows(run: Run) -> list[FigureRow]:
    """The run's numeric figures (not the confusion matrix, the transcripts or names), original beside result."""
    before, after = run.baseline.to_json(), run.result.to_json()
    return [FigureRow(key, value, after.get(key)) for key, value in before.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)]


def headline(sweep: Sweep) -> Run:
    """The sweep's row a talk shows first: its fast int8 row (ONNX Runtime's), else its last."""
    wanted = {fast_int8(run.task) for run in sweep.runs}
    return next((run for run in sweep.runs if run.steps[-1]["technique"] in wanted), sweep.runs[-1])
