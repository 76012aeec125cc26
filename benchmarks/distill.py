"""Benchmark: the Distillation page's default button on both default models (control, student, student + int8).

    .venv/bin/python -m benchmarks.distill       # writes benchmarks/distill.md
    .venv/bin/python -m benchmarks.distill 2     # only the third case, into benchmarks/distill-2.md

The teacher is each model's default recipe (full fine-tune on all data, cached); the control is the same
student trained on the labels alone with the same budget.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.run import report
from microbudget_core.support.cpu import describe
from microbudget_core.labs.distillation import lineup, run_distillation
from microbudget_core.pipeline import Request

CASES = [("minilm-l6", "rotten-tomatoes", {"student": "layers", "layers": 2, "examples_per_class": 0}),  # all the data
         ("mobilenet-v2", "mnist-5k", {"student": "narrow", "width": 0.5, "examples_per_class": 0}),
         # Less annotated data: 32 labels per class, the rest of the train split taught by the teacher alone.
         ("minilm-l6", "rotten-tomatoes", {"student": "layers", "layers": 2, "examples_per_class": 32,
                                           "unlabeled": "rest"})]
COLUMNS = ["model", "row", "size MB", "params M", "p50 ms", "accuracy", "% of teacher", "x smaller", "x faster",
           "same predictions", "train s"]


def main(out: Path) -> None:
    lines = [f"Measured {date.today()} on {describe()}, 2 threads, batch-1 latency at the dataset's inputs; "
             "accuracy on the 1,000-example held-out eval split; the page's default knobs.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    walls = []
    for model, dataset, settings in [CASES[int(i)] for i in sys.argv[1:]] or CASES:  # case numbers, or all
        started = time.perf_counter()
        sweep = run_distillation(Request(model, dataset), settings, progress=report(model))
        knobs = ", ".join(f"{k}={v}" for k, v in settings.items())
        walls.append(f"{model} ({knobs}): {time.perf_counter() - started:.0f} s")
        name = model + (f" ({settings['examples_per_class']} labels/class)" if settings.get("examples_per_class") else "")
        seconds = [None] + [run.result.train_seconds for run in sweep.runs]
        for row, trained in zip(lineup(sweep.runs), seconds):
            lines.append(f"| {name} | {row.model} | {row.size_mb:.1f} | {row.params_m:.2f} | "
                         f"{row.p50_ms:.2f} | {row.accuracy:.3f} | {row.teacher_share:.1f} | "
                         f"{row.x_smaller:.1f} | {row.x_faster:.1f} | {row.fidelity:.3f} | "
                         f"{'' if trained is None or row.model == 'student + int8' else f'{trained:.0f}'} |")
        for run in sweep.runs[:2]:
            lines.append(f"| | note | {run.notes[-1]} |" + " |" * (len(COLUMNS) - 3))
    lines += ["", "Wall time of the page's button for all its rows (the teacher's outputs are cached after the first "
              "run): " + "; ".join(walls) + "."]
    print(file=sys.stderr)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name(f"distill{''.join('-' + i for i in sys.argv[1:])}.md"))
