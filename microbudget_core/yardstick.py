"""The clock behind every speed figure: models timed side by side, ratios with their spread, a busy machine flagged.

The original and a result are timed in the same window, taking turns in short rounds over the same inputs, after
each one's warm-up, so a load swing hits both; a ratio is the median of the per-round ratios and carries their
interquartile range. Every round covers the same inputs, so rounds differ only by what the machine did. Around each
window the machine is watched (other processes' CPU use, a fixed calibration, the rounds' own spread); a disturbed
window is timed again, a bounded number of times, and a window still disturbed is kept flagged "unstable", with
the reason.

Written here rather than taken from pyperf or optimum-benchmark: both time one benchmark at a time (pyperf a
function per process, optimum-benchmark a model per run), and it is the interleaving of two models in one window
that keeps a load swing out of their ratio. Their lessons are kept: warm-ups, fixed iteration floors, a
calibration, and pyperf's "the result may be unstable" warning instead of a silent figure.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .support.atomic import write_atomically
from .support.cpu import describe
from .support.paths import home

Call = Callable[[], int]  # runs one sample (a batch-1 call, a batch, a clip, a completion); returns the units it did
Work = dict[str, list[list[Call]]]  # figure ("latency", "throughput") -> rounds of calls, the same inputs per model
Rounds = list[list[float]]  # per round, each call's seconds per unit

# A window is "disturbed" when any of these is passed (each measured, then chosen with margin; see docs/measurements.md):
OTHERS_LIMIT = 0.25  # other processes' average CPU use during the window, in cores (a quiet machine: ~0.02)
CALIBRATION_LIMIT = 1.35  # the fixed calibration's time against the best this machine has shown (quiet: 1.0-1.3)
SPREAD_LIMIT = 0.2  # interquartile range of the per-round ratios, as a share of their median
# A shorter window is not judged by others' use or spread: /proc/stat's 10 ms ticks cannot say who used the CPU, and
# sub-millisecond calls (tiny models) vary by the timer's and Python's own noise.
MIN_WATCHED_S = 0.5
PAUSE_S = 0.005  # between rounds: the last runtime's spinning worker threads go idle before the next one's round
CALIBRATION_PRODUCTS = 200  # 160 x 160 products: ~10 ms on a 2-core AVX-512 EPYC
LOOK_S = 0.2  # how long the thread count looks at other processes' CPU use
SETTLE_S = 0.1  # before a calibration: right after a model's work, the first ~50 ms ran up to 1.4x slower here


@dataclass(frozen=True)
class Ratio:
    """How many times faster the second model is than the first: the median of per-round ratios, and their
    25th and 75th percentiles."""

    median: float
    low: float
    high: float
    pairs: int


@dataclass
class Check:
    """The machine's state around a timed window, and the verdict: `unstable` when the window stayed disturbed."""

    unstable: bool = False
    reasons: list[str] = field(default_factory=list)
    threads: int = 1
    load_average: float = 0.0  # the 1-minute load average when the window ended
    others_cores: float | None = None  # other processes' CPU use during the window (None where unknown)
    calibration_x: float | None = None  # the slower calibration around the window, against the machine's best
    spread: float | None = None  # IQR / median of the per-round figures
    attempts: int = 1


@dataclass
class Window:
    """The timings of each model timed together, and the machine's check of that window."""

    timings: list[dict[str, Rounds]]
    check: Check
    # Only the calibration flagged it, and the CPU was slow before the timing began: a slowdown that outlasts a
    # window (another tenant of the host, a lower clock), which a window seconds later measures again.
    slow_throughout: bool = False


class Machine:
    """What the yardstick reads of the machine, its clocks included; tests give it a fake one."""

    def clock(self) -> float:
        """The clock that times each call."""
        return time.perf_counter()

    def now(self) -> float:
        """The clock of the window's length (kept apart from the calls' clock)."""
        return time.monotonic()

    def busy_seconds(self) -> float | None:
        """CPU seconds every process has used so far (all cores; steal time counts as used), None where unknown."""
        stat = Path("/proc/stat")
        if not stat.exists():
            return None
        fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def own_seconds(self) -> float:
        return time.process_time()  # every thread of this process

    def load_average(self) -> float:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0

    def calibrate(self) -> float:
        """Seconds for a fixed CPU workload (float matrix products on torch's threads), the fastest of three."""
        import torch  # here: the charts read this module's verdicts without loading torch
        time.sleep(SETTLE_S)
        a = torch.ones(160, 160)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(CALIBRATION_PRODUCTS):
                torch.mm(a, a)
            times.append(time.perf_counter() - start)
        return min(times)

    def best_calibration(self, seconds: float, threads: int) -> float:
        """The fastest calibration this machine has shown at `threads` (remembered across runs), this one included."""
        path = home() / "calibration.json"
        key = f"{describe()} | {threads} threads | {CALIBRATION_PRODUCTS} products"
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        best = min(seconds, known.get(key, seconds))
        if best != known.get(key):
            write_atomically(path, json.dumps({**known, key: best}).encode())
        return best

    def cores(self) -> int:
        """The cores this process may run on."""
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def others_now(self) -> float | None:
        """Cores other processes are using, over a short look (None where unknown)."""
        busy, own, start = self.busy_seconds(), self.own_seconds(), self.now()
        self.sleep(LOOK_S)
        if busy is None:
            return None
        return max(0.0, (self.busy_seconds() - busy) - (self.own_seconds() - own)) / (self.now() - start)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


MACHINE = Machine()


def threads_for(wanted: int, machine: Machine | None = None) -> int:
    """The measurement's thread count: `wanted`, but never more than the cores free for it (this process's cores
    less those other processes are using): a thread waiting for a busy core stalls every other one at each step."""
    machine = machine or MACHINE
    others = machine.others_now()
    return max(1, min(wanted, machine.cores() - round(others or 0.0)))


def time_together(works: Sequence[Work], warmup: int, threads: int, attempts: int = 3,
                  machine: Machine | None = None) -> Window:
    """Time every model's work in one window of alternating rounds; time it again (up to `attempts` windows) while
    the machine looks disturbed, and keep the calmest window, flagged unstable if it was still disturbed."""
    machine = machine or MACHINE
    for work in works:  # warm-ups, once per figure: the first round's calls, at most `warmup` of them
        for rounds in work.values():
            for call in rounds[0][:warmup] if rounds else []:
                call()
    windows = []
    for attempt in range(1, attempts + 1):
        window = _window(works, threads, machine)
        window.check.attempts = attempt
        windows.append(window)
        if not window.check.reasons or window.slow_throughout:  # calm, or a retry would measure the same
            break
    kept = min(windows, key=lambda w: (len(w.check.reasons), w.check.spread or 0.0))
    kept.check.attempts = len(windows)
    kept.check.unstable = bool(kept.check.reasons)
    return kept


def ratio(before: Rounds, after: Rounds) -> Ratio:
    """How many times less time per unit `after` took than `before`, round by round over the same inputs."""
    per_round = [sum(b) / sum(a) for b, a in zip(before, after) if sum(a) > 0]
    if not per_round:
        return Ratio(float("nan"), float("nan"), float("nan"), 0)
    low, median, high = np.percentile(per_round, [25, 50, 75])
    return Ratio(float(median), float(low), float(high), len(per_round))


def call_of(function: Callable[..., object], *args: object, units: int = 1) -> Call:
    """A sample to time: `function(*args)`, which does `units` units of work (examples of a batch, a clip)."""
    def call() -> int:
        function(*args)
        return units
    return call


def flat(rounds: Rounds) -> list[float]:
    return [seconds for one_round in rounds for seconds in one_round]


def _window(works: Sequence[Work], threads: int, machine: Machine) -> Window:
    calibration_before = machine.calibrate()
    busy_start, own_start, wall_start = machine.busy_seconds(), machine.own_seconds(), machine.now()
    timings: list[dict[str, Rounds]] = [{figure: [] for figure in work} for work in works]
    for figure in works[0]:
        for number in range(len(works[0][figure])):
            # Alternate who goes first (A B, B A, ...): a model is not always the one timed right after the other.
            order = range(len(works)) if number % 2 == 0 else reversed(range(len(works)))
            for m in order:
                seconds = []
                for call in works[m][figure][number]:
                    start = machine.clock()
                    units = call()
                    seconds.append((machine.clock() - start) / max(units, 1))
                timings[m][figure].append(seconds)
                machine.sleep(PAUSE_S)
    wall, busy_end, own_end = machine.now() - wall_start, machine.busy_seconds(), machine.own_seconds()
    calibration_after = machine.calibrate()
    check = Check(threads=threads, load_average=round(machine.load_average(), 2))
    if busy_start is not None and busy_end is not None and wall >= MIN_WATCHED_S:
        check.others_cores = round(max(0.0, (busy_end - busy_start) - (own_end - own_start)) / wall, 3)
        if check.others_cores > OTHERS_LIMIT:
            check.reasons.append(f"other processes used {check.others_cores:.2f} CPU cores during the timing")
    best = machine.best_calibration(min(calibration_before, calibration_after), threads)
    check.calibration_x = round(max(calibration_before, calibration_after) / best, 3)
    if check.calibration_x > CALIBRATION_LIMIT:
        check.reasons.append(f"a fixed CPU calibration ran {check.calibration_x:.1f}x slower than this machine's best")
    slow_throughout = len(check.reasons) == 1 and calibration_before / best > CALIBRATION_LIMIT
    check.spread = _spread(timings)
    if check.spread is not None and check.spread > SPREAD_LIMIT and wall >= MIN_WATCHED_S:
        check.reasons.append(f"the timed rounds varied by {check.spread:.0%} (interquartile range over median)")
        slow_throughout = False
    return Window(timings, check, slow_throughout)


def _spread(timings: list[dict[str, Rounds]]) -> float | None:
    """The first figure's relative IQR: of the per-round ratios to the first model where several are timed, else of
    the one model's per-round times."""
    figure = next(iter(timings[0]), None)
    if figure is None:
        return None
    if len(timings) > 1:
        values = [ratio(timings[0][figure], t[figure]) for t in timings[1:]]
        return round(max((r.high - r.low) / r.median for r in values if r.pairs), 3) if values[0].pairs else None
    per_round = [sum(seconds) for seconds in timings[0][figure] if seconds]
    if len(per_round) < 2:
        return None
    low, median, high = np.percentile(per_round, [25, 50, 75])
    return round(float((high - low) / median), 3) if median > 0 else None


def percentile_ms(samples: list[float], q: float) -> float:
    """The q-th percentile of seconds, in milliseconds."""
    return float(np.percentile(samples, q)) * 1000 if samples else float("nan")


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def unstable(speed_check: dict[str, Any] | None) -> str | None:
    """Why a row's speed is not to be believed (measured on a busy machine), from its speed check; or None."""
    check = speed_check or {}
    return "; ".join(check.get("reasons", [])) or "unstable" if check.get("unstable") else None


def speed_verdict(speed_check: dict[str, Any] | None) -> str:
    """A table's word on a row's speed, from its speed check: "stable", or "unstable: " and why."""
    reason = unstable(speed_check)
    return f"unstable: {reason}" if reason else "stable" if speed_check else "not checked (older run)"
