"""Benchmark: does the speed ratio hold when the machine gets busy? MiniLM against its ONNX Runtime int8 form.

    .venv/bin/python -m benchmarks.yardstick         # writes benchmarks/yardstick.md (about 4 minutes on 2 cores)

The same measurement, measure(result, against=original), is repeated on a quiet machine and then with a 2-thread
torch job that this script starts beside it (and stops). Each row gives the paired ratio with its interquartile
range and the machine's check; for contrast, the ratio the old yardstick would have shown: the original timed
alone on the quiet machine and the result timed alone under load (minutes apart, as a lab used to).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch

from microbudget_core.support.cpu import describe
from microbudget_core.measure import MeasureConfig, measure
from microbudget_core.pipeline import Request, prepare, resolve

from .run import report

REPEATS = 3
CONFIG = MeasureConfig(memory=False)
# A 2-thread torch job: what another user's training, a test suite or a second tab does to a 2-core machine.
LOAD = ("import torch; torch.set_num_threads(2); a = torch.randn(512, 512)\n"
        "while True: a @ a")
COLUMNS = ["machine", "repeat", "threads", "original p50 ms", "int8 p50 ms", "speed x (paired)", "IQR",
           "vs quiet median", "flag", "others' cores", "calibration x", "windows", "unpaired x"]


def row(machine: str, n: int, m, quiet_median: float | None, unpaired: float) -> tuple[list[str], float]:
    ratios, check = m.paired_ratios, m.figures.speed_check
    off = "" if quiet_median is None else f"{ratios['latency'] / quiet_median - 1:+.0%}"
    cells = [machine, str(n), str(check["threads"]), f"{m.original_speed['latency_ms_p50']:.2f}",
             f"{m.figures.latency_ms_p50:.2f}",
             f"{ratios['latency']:.2f}", f"{ratios['latency_low']:.2f}-{ratios['latency_high']:.2f}", off,
             "unstable: " + "; ".join(check["reasons"]) if check["unstable"] else "stable",
             f"{check['others_cores']:.2f}" if check["others_cores"] is not None else "n/a",
             f"{check['calibration_x']:.2f}", str(check["attempts"]), f"{unpaired:.2f}"]
    return cells, ratios["latency"]


def main(out: Path) -> None:
    started = time.perf_counter()
    prepared = prepare(Request("minilm-l6", "rotten-tomatoes", eval_limit=1000), CONFIG, report("original"))
    original, split = prepared.baseline, prepared.eval_split
    [(technique, config)] = resolve([("onnx-int8-dynamic", {})])
    result = technique.apply(original, config, prepared.dataset, report("onnx-int8-dynamic"))
    alone = replace(CONFIG, attempts=1)
    quiet_original = measure(original, split, config=alone).figures.latency_ms_p50

    def repeats(machine: str, quiet_median: float | None) -> list[tuple[list[str], float]]:
        """The paired measurement REPEATS times, each with the unpaired ratio of that moment."""
        done = []
        for n in range(1, REPEATS + 1):
            m = measure(result, split, prepared.original.predictions, CONFIG, progress=report(f"{machine} {n}"),
                        against=original)
            unpaired = quiet_original / measure(result, split, config=alone).figures.latency_ms_p50
            done.append(row(machine, n, m, quiet_median, unpaired))
        return done

    quiet = repeats("quiet", None)
    quiet_median = statistics.median(ratio for _, ratio in quiet)
    for cells, ratio in quiet:
        cells[COLUMNS.index("vs quiet median")] = f"{ratio / quiet_median - 1:+.0%}"
    job = subprocess.Popen([sys.executable, "-c", LOAD])
    try:
        time.sleep(2)  # the job's threads are up
        busy = repeats("2-thread job beside", quiet_median)
    finally:
        job.kill()
    lines = [cells for cells, _ in quiet + busy]
    print(file=sys.stderr)
    table = [f"Measured {date.today()} on {describe()}, torch {torch.__version__}; command: "
             "`.venv/bin/python -m benchmarks.yardstick` "
             f"({time.perf_counter() - started:.0f} s). minilm-l6 fine-tuned on rotten-tomatoes against its ONNX "
             "Runtime dynamic int8 form, batch 1, 2 threads (fewer where other processes hold cores): 5 rounds of "
             "the same 30 inputs, the two models taking turns round by round; speed x is the median of the "
             "per-round ratios, IQR their 25th-75th percentiles; vs quiet median compares with the median of the "
             "quiet repeats. Unpaired x is what timing the two apart says: the original alone on the quiet machine "
             "against the result alone at that moment.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    table += ["| " + " | ".join(cells) + " |" for cells in lines]
    out.write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main(Path(__file__).with_name("yardstick.md"))
