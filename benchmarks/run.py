"""Benchmark: run each (model, dataset, pipeline) and write a markdown table of the measured rows.

    .venv/bin/python benchmarks/run.py            # writes benchmarks/results.md

Speed and size are reported here, never asserted in tests. Ratios compare against the original
measured in the same process, since absolute times drift on shared machines.
"""

from __future__ import annotations

import platform
import sys
from datetime import date
from pathlib import Path

import torch

from microbudget_core.pipeline import Request, run_pipeline

CASES = [
    Request("minilm-l6", "rotten-tomatoes", [("dynamic-int8", {})]),
    Request("mobilenet-v2", "mnist-5k", [("dynamic-int8", {})]),
]
COLUMNS = ["model", "dataset", "row", "size MB", "params M", "p50 ms", "p95 ms", "per s @32", "accuracy",
           "macro F1", "fidelity", "peak RSS MB", "train s"]


def row(model: str, dataset: str, name: str, m: dict) -> list[str]:
    rss = f"{m['peak_rss_mb']:.0f}" if m.get("peak_rss_mb") else "n/a"
    train = f"{m['train_seconds']:.0f}" if "train_seconds" in m else ""
    return [model, dataset, name, f"{m['size_bytes'] / 1e6:.1f}", f"{m['params'] / 1e6:.2f}",
            f"{m['latency_ms_p50']:.1f}", f"{m['latency_ms_p95']:.1f}", f"{m['throughput_per_s']:.0f}",
            f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}", f"{m['fidelity']:.3f}", rss, train]


def main(out: Path) -> None:
    lines = [f"Measured {date.today()} on {platform.machine()}, torch {torch.__version__}, 2 threads; "
             "eval = the held-out split (1,000 examples). Ratios: original / result.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for request in CASES:
        run = run_pipeline(request, progress=lambda f, m: print(f"\r{f:4.0%} {m[:70]:<70}", end="", file=sys.stderr))
        print(file=sys.stderr)
        lines.append("| " + " | ".join(row(run.model, run.dataset, "original", run.baseline)) + " |")
        lines.append("| " + " | ".join(row(run.model, run.dataset, run.label, run.result)) + " |")
        r = run.ratios
        lines.append(f"| | | **ratio** | **{r['size']:.2f}x** | | **{r['latency']:.2f}x** | | | "
                     f"**{r['accuracy_retained']:.3f}** | | | | |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name("results.md"))
