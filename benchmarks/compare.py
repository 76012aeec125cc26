"""Benchmark: how long the Compare page takes to render a store of 1,000 runs.

    .venv/bin/python -m benchmarks.compare        # writes benchmarks/compare.md

The runs are synthetic (random metrics on one dataset, three models, six techniques); what is timed is
the page's own work: reading the store, the frontier, the recommendation, the cost table and the chart.
Streamlit's AppTest runs the page script in-process, so the time excludes the browser's drawing.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

RUNS = 1000
TECHNIQUES = ["dynamic-int8", "onnx-int8-dynamic", "weight-only", "finetune-head", "fp16", "static-int8"]


def fill(store_path: Path) -> None:
    from microbudget_core.runs import Run, RunStore

    rng = np.random.default_rng(0)
    store = RunStore(store_path)
    for n in range(RUNS):
        original = {"accuracy": 0.82, "size_bytes": 90e6, "latency_ms_p50": 20.0, "throughput_per_s": 100.0,
                    "params": 22e6, "macro_f1": 0.82, "eval_examples": 1000}
        result = {**original, "accuracy": float(rng.uniform(0.6, 0.83)), "size_bytes": float(rng.uniform(5e6, 90e6)),
                  "latency_ms_p50": float(rng.uniform(2, 25)), "throughput_per_s": float(rng.uniform(50, 800))}
        store.add(Run(f"model-{n % 3}", "rotten-tomatoes", "text-classification",
                      [{"technique": TECHNIQUES[n % len(TECHNIQUES)], "config": {}}], original, result, {}))


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["MICROBUDGET_HOME"] = home
        fill(Path(home) / "runs.sqlite")
        from streamlit.testing.v1 import AppTest

        times = []
        for _ in range(5):
            started = time.perf_counter()
            at = AppTest.from_file(str(Path(__file__).parent.parent / "views" / "compare.py"), default_timeout=60).run()
            times.append(time.perf_counter() - started)
            assert not at.exception and len(at.dataframe[0].value) == RUNS + 3  # every run and 3 originals
    text = (f"Measured {date.today()}: the Compare page with {RUNS:,} runs in the store renders in "
            f"{statistics.median(times):.2f} s (median of {len(times)} AppTest runs; min {min(times):.2f} s, "
            f"max {max(times):.2f} s; the first includes imports).\n")
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main(Path(__file__).with_name("compare.md"))
