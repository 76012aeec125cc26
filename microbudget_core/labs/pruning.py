"""The pruning lab: structured pruning at a few ratios, recovered by distillation, beside unstructured pruning at the
same ratios, every row measured against one measurement of the original."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .. import labs
from ..figures import Measured
from ..measure import MeasureConfig
from ..pipeline import Request, Sweep, prepare, resolve, run_rows
from ..runs import Run, RunStore
from ..support.progress import Progress, no_progress, scaled
from ..support.rows import column
from ..yardstick import speed_verdict
from .quantization import fast_int8

RATIOS = (0.25, 0.5, 0.75)
STRUCTURED, CONTROL, UNSTRUCTURED, CHAINED = "structured + recovered", "structured, labels only", "unstructured", \
    "structured + recovered + int8"
# The page's quick budget, its default: one recovery epoch on the first 500 labelled examples of each class. The
# full budget: every labelled example, 3 epochs (benchmarks/pruning.md's figures).
QUICK = {"epochs": 1, "examples_per_class": 500}
FULL = {"epochs": 3, "examples_per_class": 0}


def default_settings(full: bool = False) -> dict[str, Any]:
    """The prune settings the page starts with: the technique's own, within the quick budget unless `full`."""
    return dict(FULL if full else QUICK)


@labs.job
def run_pruning(request: Request, settings: dict[str, Any], ratios: Sequence[float] = RATIOS,
                unstructured: bool = True, control: bool = False, int8: bool = False, store: RunStore | None = None,
                measure_config: MeasureConfig = MeasureConfig(memory=False),
                progress: Progress = no_progress) -> Sweep:
    """At each ratio: structured pruning recovered by distillation (then, with `int8`, ONNX Runtime int8), the
    hard-label recovery (`control`) and unstructured pruning; the page's latest."""
    rows, structured = [], []
    for ratio in ratios:
        structured.append([("prune", {**settings, "ratio": ratio})])
        rows.append(resolve(structured[-1]))  # bad settings fail here, before any slow work
        if control:
            rows.append(resolve([("prune", {**settings, "ratio": ratio, "recover": "labels"})]))
        if unstructured:
            rows.append(resolve([("prune-unstructured", {"ratio": ratio})]))
    prepared = prepare(request, measure_config, scaled(progress, 0.0, 0.15))
    if int8 and fast_int8(prepared.baseline.task):  # the chain: each ratio's recovered model in int8
        rows += [resolve(steps + [(fast_int8(prepared.baseline.task), {})]) for steps in structured]
    sweep = run_rows(prepared, rows, store, measure_config, scaled(progress, 0.15, 1.0))
    labs.remember_runs(labs.PRUNING, [request.model, request.dataset], sweep.runs, sweep.skipped)
    return sweep


def latest(model: str, dataset: str) -> tuple[list[Run], dict[str, str]]:
    """The runs of the last pruning of this model on this dataset and the rows left out (the page opens on them)."""
    return labs.recall_runs(labs.PRUNING, [model, dataset])


def method(run: Run) -> str:
    """Which kind of row a run is."""
    techniques = [step["technique"] for step in run.steps]
    if techniques == ["prune-unstructured"]:
        return UNSTRUCTURED
    if len(techniques) > 1:
        return CHAINED
    return CONTROL if run.steps[0]["config"]["recover"] == "labels" else STRUCTURED


def ratio(run: Run) -> float:
    return run.steps[0]["config"]["ratio"]


@dataclass(frozen=True)
class PruningRow:
    """One pruned model (or the original), against the original."""

    name: str = column("model")
    method: str = column("method")
    ratio: float | None = column("pruned")
    size_mb: float = column("size MB")
    compressed_mb: float | None = column("compressed MB")  # unstructured: where its zeros count
    compressed_x: float | None = column("x smaller compressed")  # against the original compressed the same way
    params_m: float = column("params (M)")
    p50_ms: float = column("p50 ms")
    p50_ms_p25: float = column("p25 ms")
    p50_ms_p75: float = column("p75 ms")
    throughput: float | None = column("inputs/s")
    accuracy: float = column("accuracy")
    before_recovery: float | None = column("validation before recovery")
    after_recovery: float | None = column("validation after recovery")
    x_smaller: float = column("x smaller")
    x_faster: float = column("x faster")  # timed side by side with the original, and its spread
    x_faster_low: float = column("x faster, low")
    x_faster_high: float = column("x faster, high")
    speed: str = column("speed")  # stable, or unstable and why (yardstick.speed_verdict)


def rows_of(runs: Sequence[Run]) -> list[PruningRow]:
    """The original, then every pruned row: size, params, latency, throughput, accuracy, validation accuracy
    before and after recovery."""
    original = runs[0].baseline
    rows = [PruningRow(name="original", method="original", ratio=None, compressed_mb=None, compressed_x=None,
                       before_recovery=None, after_recovery=None, x_smaller=1.0, x_faster=1.0, x_faster_low=1.0,
                       x_faster_high=1.0, **_measured(original))]
    for run in runs:
        m, report, kind = run.result, run.result.report, method(run)
        history = [epoch.get("val_accuracy") for epoch in (m.history or []) if epoch.get("val_accuracy") is not None]
        compressed = report.get("compressed_bytes")
        rows.append(PruningRow(
            name=f"{kind} {ratio(run):.0%}", method=kind, ratio=ratio(run),
            compressed_mb=compressed / 1e6 if compressed else None,
            compressed_x=report["compressed_bytes_before"] / compressed if compressed else None,
            before_recovery=report.get("val_accuracy_before_recovery"),
            after_recovery=max(history) if history and kind != UNSTRUCTURED else None,
            x_smaller=run.ratios["size"], x_faster=run.ratios["latency"],
            x_faster_low=run.ratios.get("latency_low", run.ratios["latency"]),
            x_faster_high=run.ratios.get("latency_high", run.ratios["latency"]), **_measured(m)))
    return rows


def _measured(m: Measured) -> dict[str, Any]:
    """The row's fields read from one measurement, the same for the original and each pruned model."""
    return {"size_mb": m.size_bytes / 1e6, "params_m": m.params / 1e6, "p50_ms": m.latency_ms_p50,
            "p50_ms_p25": m.latency_ms_p25 or m.latency_ms_p50, "p50_ms_p75": m.latency_ms_p75 or m.latency_ms_p50,
            "throughput": m.throughput_per_s, "accuracy": m.accuracy, "speed": speed_verdict(m.speed_check)}


def headline(rows: list[PruningRow], tolerance: float = 1.5) -> str:
    """What the measurements show: the deepest structured pruning within `tolerance` points of the original (else
    the one nearest 50%), and unstructured pruning at the same ratio."""
    original = rows[0]
    structured = sorted((row for row in rows if row.method == STRUCTURED), key=lambda row: row.ratio)
    if not structured:
        return ""
    kept = [row for row in structured if (original.accuracy - row.accuracy) * 100 <= tolerance]
    best = kept[-1] if kept else min(structured, key=lambda row: abs(row.ratio - 0.5))
    gap = (best.accuracy - original.accuracy) * 100
    said = (f"Structured pruning of {best.ratio:.0%} runs {best.x_faster:.1f}x faster at batch 1 and is "
            f"{best.x_smaller:.1f}x smaller; after recovery its accuracy is {abs(gap):.1f} points "
            f"{'below' if gap < 0 else 'above'} the original's.")
    twin = next((row for row in rows if row.method == UNSTRUCTURED and row.ratio == best.ratio), None)
    if twin:
        said += (f" Unstructured pruning of {twin.ratio:.0%} runs {twin.x_faster:.1f}x as fast and stores "
                 f"{twin.x_smaller:.1f}x smaller (compressed: {twin.compressed_x:.1f}x): a dense "
                 "kernel multiplies its zeros too.")
    return said
