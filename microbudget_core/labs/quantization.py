"""The quantization lab: one quantization run, and the bit-width sweep against one measurement of the original."""

from __future__ import annotations

from .. import labs, runtimes, techniques
from ..measure import MeasureConfig
from ..pipeline import Request, Sweep, prepare, resolve, run_rows
from ..support.progress import Progress, no_progress, scaled
from ..runs import Run, RunStore


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


def headline(sweep: Sweep) -> Run:
    """The sweep's row a talk shows first: its fast int8 row (ONNX Runtime's), else its last."""
    wanted = {fast_int8(run.task) for run in sweep.runs}
    return next((run for run in sweep.runs if run.steps[-1]["technique"] in wanted), sweep.runs[-1])
