"""Benchmark: the Pruning page on its floors' cases, with the full recovery budget.

    .venv/bin/python -m benchmarks.pruning       # writes benchmarks/pruning.md
    .venv/bin/python -m benchmarks.pruning 2     # only the third case, into benchmarks/pruning-2.md

Each row is measured against one measurement of the original (the default recipe's model), at batch 1 on 2
threads; accuracy on the dataset's whole held-out eval split.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.run import report
from microbudget_core.labs.pruning import FULL, rows_of, run_pruning
from microbudget_core.pipeline import Request
from microbudget_core.support.cpu import describe

# (model, dataset, prune settings, ratios, the lab's options)
CASES = [("minilm-l6", "rotten-tomatoes", {}, (0.5, 0.75), {"control": False, "int8": True}),
         # the smallest chain: the hidden width pruned too and the word table trimmed to the training texts' tokens
         ("minilm-l6", "rotten-tomatoes", {"width": True, "trim_vocab": True}, (0.5,),
          {"unstructured": False, "int8": True}),
         ("mobilenet-v2", "photos-12", {}, (0.25, 0.5), {"control": True})]
COLUMNS = ["model", "row", "size MB", "compressed MB", "params M", "p50 ms", "accuracy", "val before -> after",
           "x smaller", "x faster", "speed"]


def main(out: Path) -> None:
    lines = [f"Measured {date.today()} on {describe()}, 2 threads, batch-1 latency at the dataset's inputs; "
             "accuracy on the whole held-out eval split; recovery: distillation from the unpruned model, "
             f"{FULL['epochs']} epochs on every labelled example.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    walls = []
    for model, dataset, settings, ratios, options in [CASES[int(i)] for i in sys.argv[1:]] or CASES:
        started = time.perf_counter()
        sweep = run_pruning(Request(model, dataset), {**FULL, **settings}, ratios, progress=report(model), **options)
        knobs = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
        walls.append(f"{model} ({knobs}): {time.perf_counter() - started:.0f} s")
        for row in rows_of(sweep.runs):
            validation = (f"{row.before_recovery:.3f} -> {row.after_recovery:.3f}"
                          if row.before_recovery is not None else "")
            lines.append(f"| {model} ({knobs}) | {row.name} | {row.size_mb:.1f} | "
                         f"{'' if row.compressed_mb is None else f'{row.compressed_mb:.1f}'} | {row.params_m:.2f} | "
                         f"{row.p50_ms:.2f} | {row.accuracy:.3f} | {validation} | {row.x_smaller:.1f} | "
                         f"{row.x_faster:.1f} | {row.speed} |")
    lines += ["", "Wall time per case: " + "; ".join(walls) + "."]
    print(file=sys.stderr)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name(f"pruning{''.join('-' + i for i in sys.argv[1:])}.md"))
