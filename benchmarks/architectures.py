"""Benchmark: the Architectures page's built-in candidates on both default datasets, one training budget each.

    .venv/bin/python -m benchmarks.architectures  # writes benchmarks/architectures.md
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from benchmarks.run import report
from microbudget_core.support.cpu import describe
from microbudget_core.labs.architectures import Budget, choices, compare_architectures
from microbudget_core.models import IMAGE, TEXT

CASES = [(TEXT, "rotten-tomatoes"), (IMAGE, "mnist-5k")]
COLUMNS = ["architecture", "params M", "multiply-adds M", "as published G", "size MB", "p50 ms", "per s @32",
           "accuracy", "train s"]


def main(out: Path) -> None:
    budget = Budget()
    lines = [f"Measured {date.today()} on {describe()}, 2 threads; every architecture trained with the "
             f"same budget (all weights, {budget.examples_per_class} examples per class, {budget.epochs} epochs), "
             "accuracy on the 1,000-example held-out eval split; multiply-adds per input (64 tokens; the "
             "dataset's image size, and each CNN's published resolution).", "",
             "| dataset | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    walls = []
    for task, dataset in CASES:
        started = time.perf_counter()
        rows = compare_architectures(choices(task), dataset, budget, progress=report(dataset))
        for r in rows:
            published = r["multiply_adds_published"]
            at_published = f"{published / 1e9:.3f}" if published else "—"
            lines.append(f"| {dataset} | {r['architecture']} | {r['params'] / 1e6:.2f} | "
                         f"{r['multiply_adds'] / 1e6:,.0f} | {at_published} | {r['size_bytes'] / 1e6:.1f} | "
                         f"{r['latency_ms_p50']:.1f} | {r['throughput_per_s']:,.0f} | {r['accuracy']:.3f} | "
                         f"{r['train_seconds']:.0f} |")
        walls.append(f"{dataset}: {len(rows)} architectures in {time.perf_counter() - started:.0f} s wall")
    lines += ["", "The page's button, timed: " + "; ".join(walls) + "."]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name("architectures.md"))
