"""Which model to ship: every run of a dataset side by side, its Pareto frontier, a pick under limits, and cost.

All pure functions of stored runs, shared by the Compare page and the CLI's `compare`. Classifiers are ranked by
accuracy, speech models by word error rate (lower is better): `score` puts both on one higher-is-better scale.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from .. import kinds
from ..figures import Measured
from ..support.rows import column
from ..models.bundle import artifact_state
from ..runs import Run
from ..yardstick import speed_verdict, unstable

# The default price of an instance-hour: AWS EC2 c7i.large (2 vCPU, like the machine the figures come
# from), on-demand, us-east-1, Linux, as listed in 2025. Change it to your own.
DEFAULT_PRICE_PER_HOUR = 0.0893
DEFAULT_PRICE_SOURCE = "AWS EC2 c7i.large (2 vCPU), on-demand, us-east-1, 2025 list price"
HOURS_PER_MONTH = 730  # 365 * 24 / 12
NOT_RECORDED = "not recorded (older runs)"


@dataclass(frozen=True)
class Candidate:
    """One model a user could ship: an original (a run's baseline) or a run's result."""

    name: str
    model: str
    technique: str  # the pipeline's technique ids, or "original"
    metrics: Measured  # the kind's Figures
    run_id: str | None = None  # None for an original
    created_at: str = ""
    artifact_path: str | None = None

    @property
    def is_original(self) -> bool:
        return self.run_id is None

    @property
    def artifact(self) -> str:
        """"original", or what is left of the run's saved model: SAVED, MISSING or DAMAGED (models.bundle)."""
        return "original" if self.is_original else artifact_state(self.artifact_path)


def score(metrics: Measured) -> float:
    """Higher is better: the kind's quality (a classifier's accuracy), negated where lower is better (WER)."""
    kind = kinds.of_figures(metrics)
    value = getattr(metrics, kind.QUALITY)
    return value if kind.HIGHER_IS_BETTER else -value


def quality_name(found: Sequence[Candidate]) -> str:
    """What ranks these candidates: "WER" for speech models, else "accuracy"."""
    return "WER" if found and kinds.of_figures(found[0].metrics).QUALITY == "wer" else "accuracy"


def eval_sizes(runs: Sequence[Run]) -> list[int]:
    """The eval-set sizes the runs were measured on, largest first (the first N of one eval split each)."""
    return sorted({(run.result.eval_examples or 0) for run in runs}, reverse=True)


def hardware_of(run: Run) -> str:
    """What measured the run's speed, in one line (devices.hardware; older runs: NOT_RECORDED)."""
    return run.result.measured_on or NOT_RECORDED


def hardware_choices(runs: Sequence[Run]) -> list[str]:
    """The hardware the runs were measured on, the one with the most runs first."""
    counts = Counter(hardware_of(run) for run in runs)
    return sorted(counts, key=lambda hardware: (-counts[hardware], hardware))


def on_hardware(runs: Sequence[Run], hardware: str | None = None) -> list[Run]:
    """The runs measured on one hardware (the most runs' unless given): speed ranks only between them."""
    hardware = hardware or next(iter(hardware_choices(runs)), None)
    return [run for run in runs if hardware_of(run) == hardware]


def measured_on(runs: Sequence[Run], eval_examples: int | None = None) -> list[Run]:
    """The runs measured on the same eval examples (the largest set unless given): accuracy compares only there."""
    size = eval_examples if eval_examples is not None else next(iter(eval_sizes(runs)), 0)
    return [run for run in runs if (run.result.eval_examples or 0) == size]


def candidates(runs: Sequence[Run], models: Sequence[str] = ()) -> list[Candidate]:
    """Each run's result, plus one original per model (the baseline its latest run measured); of `models` only,
    where given."""
    runs = [run for run in runs if not models or run.model in models]
    originals = {run.model: run for run in runs}  # the latest run per model wins
    found = [Candidate(f"{model} (original)", model, "original", run.baseline, created_at=run.created_at)
             for model, run in originals.items()]
    found += [Candidate(run.label, run.model, " -> ".join(s["technique"] for s in run.steps) or "original",
                        run.result, run.run_id, run.created_at, run.artifact_path) for run in runs]
    return found


def chosen(found: Sequence[Candidate], techniques: Sequence[str] = (), since: str = "") -> list[Candidate]:
    """The candidates of `techniques` (all where none is given) made on or after the day `since` (YYYY-MM-DD)."""
    return [c for c in found if (not techniques or c.technique in techniques) and c.created_at[:10] >= since]


def pareto_front(costs: Sequence[float], values: Sequence[float]) -> list[bool]:
    """Which points no other point beats: none has a cost as low and a value as high, one of them strictly.

    Duplicates of a frontier point are on the frontier too. Sorting by cost makes it one pass (n log n):
    a point is undominated when its value beats every cheaper point's.
    """
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -values[i]))
    on_front = [False] * len(costs)
    best, last = -math.inf, None
    for i in order:
        if values[i] > best or (costs[i], values[i]) == last:
            on_front[i], best, last = True, values[i], (costs[i], values[i])
    return on_front


@dataclass(frozen=True)
class Limits:
    """What the user can accept; None means no limit."""

    max_size_mb: float | None = None
    max_latency_ms: float | None = None
    min_accuracy: float | None = None  # classifiers only
    max_accuracy_drop_pt: float | None = None  # against the best original (for speech models: the WER rise)


@dataclass(frozen=True)
class Recommendation:
    best: Candidate | None
    message: str
    shortfalls: dict[str, float] = field(default_factory=dict)  # limit -> how far the nearest run misses it


def recommend(found: Sequence[Candidate], limits: Limits) -> Recommendation:
    """The most accurate candidate (lowest WER for speech) within every limit (then the fastest, then the smallest),
    or what misses."""
    if not found:
        return Recommendation(None, "No runs for this dataset yet: run a technique in a lab first.")
    originals = [c for c in found if c.is_original] or list(found)
    reference = max(score(c.metrics) for c in originals)  # what "accuracy drop" (or WER rise) is measured from
    misses = [_misses(c, limits, reference) for c in found]
    meeting = [c for c, missed in zip(found, misses) if not missed]
    if meeting:
        best = max(meeting, key=lambda c: (score(c.metrics), -c.metrics.latency_ms_p50, -c.metrics.size_bytes))
        return Recommendation(best, f"Ship {best.name}: {_describe(best)}.{_speed_caveat(found, best, limits)}")
    never = [limit for limit in _limit_names(limits) if all(limit in missed for missed in misses)]
    # The nearest: the smallest total shortfall, each limit's shortfall relative to the limit itself.
    nearest = min(range(len(found)), key=lambda i: sum(gap / max(abs(getattr(limits, name)), 1e-9)
                                                       for name, gap in misses[i].items()))
    gaps = ", ".join(f"{LIMIT_TEXT[name]} by {gap:.3g}{UNITS[name]}" for name, gap in misses[nearest].items())
    if never:
        message = f"No run meets {' or '.join(LIMIT_TEXT[name] for name in never)}."
    else:
        message = "Each limit is met by some run, but no run meets all of them."
    return Recommendation(None, f"{message} The nearest, {found[nearest].name}, misses {gaps}."
                                f"{_speed_caveat(found, found[nearest], limits)}", misses[nearest])


def _speed_caveat(found: Sequence[Candidate], chosen: Candidate, limits: Limits) -> str:
    """What the pick leans on that a busy machine measured: the chosen one's speed, or speeds a latency limit read."""
    judged = [c for c in found if unstable(c.metrics.speed_check)] if limits.max_latency_ms is not None else []
    if unstable(chosen.metrics.speed_check):
        judged = [chosen] + [c for c in judged if c is not chosen]
    if not judged:
        return ""
    names = ", ".join(c.name for c in judged[:3]) + (f" and {len(judged) - 3} more" if len(judged) > 3 else "")
    return (f" Caution: the speed of {names} was measured on a busy machine (unstable); measure again on a quiet "
            "one before relying on it.")


UNITS = {"max_size_mb": " MB", "max_latency_ms": " ms", "min_accuracy": "", "max_accuracy_drop_pt": " pt"}
LIMIT_TEXT = {"max_size_mb": "the size limit", "max_latency_ms": "the latency limit",
              "min_accuracy": "the minimum accuracy", "max_accuracy_drop_pt": "the accuracy-drop limit"}


def _limit_names(limits: Limits) -> list[str]:
    return [name for name in UNITS if getattr(limits, name) is not None]


def _misses(candidate: Candidate, limits: Limits, reference_score: float) -> dict[str, float]:
    """Each limit this candidate breaks, and by how much (in the limit's unit); min_accuracy binds classifiers only."""
    m = candidate.metrics
    value = {"max_size_mb": m.size_bytes / 1e6, "max_latency_ms": m.latency_ms_p50,
             "min_accuracy": getattr(m, "accuracy", math.inf), "max_accuracy_drop_pt": (reference_score - score(m)) * 100}
    over = {name: (getattr(limits, name) - value[name]) if name == "min_accuracy" else (value[name] - getattr(limits, name))
            for name in _limit_names(limits)}
    return {name: gap for name, gap in over.items() if gap > 1e-12}


def _describe(c: Candidate) -> str:
    m = c.metrics
    quality = f"WER {m.wer:.1%}" if quality_name([c]) == "WER" else f"accuracy {m.accuracy:.3f}"
    return f"{quality}, {m.size_bytes / 1e6:.1f} MB, p50 {m.latency_ms_p50:.1f} ms at batch 1"


@dataclass(frozen=True)
class Cost:
    per_million: float  # dollars per million predictions at full throughput
    instances: int  # instances needed for the request rate
    per_month: float  # dollars per month for those instances


def serving_cost(throughput_per_s: float, price_per_hour: float = DEFAULT_PRICE_PER_HOUR,
                 requests_per_s: float = 10.0) -> Cost:
    """What serving costs on instances like the measuring machine, from measured batch-32 throughput."""
    if throughput_per_s <= 0:
        raise ValueError("throughput must be positive")
    per_million = price_per_hour / (throughput_per_s * 3600) * 1e6
    instances = max(1, math.ceil(requests_per_s / throughput_per_s))
    return Cost(per_million, instances, instances * price_per_hour * HOURS_PER_MONTH)


@dataclass(frozen=True)
class ComparisonRow:
    """One candidate in the Compare table: its figures, its serving cost, whether it is on each frontier."""

    name: str = column("name")
    model: str = column("model")
    technique: str = column("technique")
    accuracy: float | None = column("accuracy")  # classifiers
    wer: float | None = column("WER")  # speech models
    size_mb: float = column("size MB")
    p50_ms: float = column("p50 ms")
    params_m: float = column("params M")
    throughput: float = column("per s @32")
    cost_per_million: float = column("$ per 1M")
    cost_per_month: float = column("$ per month")
    pareto_latency: bool = column("Pareto (latency)")
    pareto_size: bool = column("Pareto (size)")
    artifact: str = column("artifact")  # original, saved or missing
    speed: str = column("speed")  # stable, or unstable and why (yardstick.speed_verdict)
    run: str = column("run")
    when: str = column("when")


def comparison_rows(found: Sequence[Candidate], price_per_hour: float = DEFAULT_PRICE_PER_HOUR,
                    requests_per_s: float = 10.0) -> list[ComparisonRow]:
    """One table row per candidate: its figures, its serving cost, and whether it is on each Pareto frontier."""
    scores = [score(c.metrics) for c in found]
    fastest = pareto_front([c.metrics.latency_ms_p50 for c in found], scores)
    smallest = pareto_front([c.metrics.size_bytes for c in found], scores)
    rows = []
    for c, fast, small in zip(found, fastest, smallest):
        cost = serving_cost(c.metrics.throughput_per_s, price_per_hour, requests_per_s)
        rows.append(ComparisonRow(
            name=c.name, model=c.model, technique=c.technique, accuracy=getattr(c.metrics, "accuracy", None),
            wer=getattr(c.metrics, "wer", None),
            size_mb=c.metrics.size_bytes / 1e6, p50_ms=c.metrics.latency_ms_p50,
            params_m=(c.metrics.params or 0) / 1e6, throughput=c.metrics.throughput_per_s,
            cost_per_million=cost.per_million, cost_per_month=cost.per_month, pareto_latency=fast,
            pareto_size=small, artifact=c.artifact, speed=speed_verdict(c.metrics.speed_check),
            run=c.run_id or "", when=c.created_at))
    return rows
