"""Benchmark: the large teacher. mpnet-base's baseline and head-only runs, then the Distillation page's default for
text: mpnet-base teaching MiniLM-L6 (control, student, student + int8), and MiniLM-L6 cut to 3 layers.

    .venv/bin/python -m benchmarks.teacher                # writes benchmarks/teacher.md
    .venv/bin/python -m benchmarks.teacher 1              # only the second distillation case: teacher-1.md
    .venv/bin/python -m benchmarks.teacher architectures  # only the head-only line-up: teacher-architectures.md

The MiniLM-L6 baseline (fine-tuned on the labels alone, the default recipe) and the hard-label control are the
references the student must beat. Accuracy on the 1,000-example held-out eval split.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.run import report
from microbudget_core.support.cpu import describe
from microbudget_core.labs.architectures import Budget, choices, compare_architectures
from microbudget_core.labs.distillation import default_settings, headline, lineup, run_distillation
from microbudget_core.measure import MeasureConfig
from microbudget_core.models import TEXT
from microbudget_core.pipeline import Request, prepare, resolve, run_steps

TEACHER, STUDENT, DATASET = "mpnet-base", "minilm-l6", "rotten-tomatoes"
CASES = [default_settings(TEACHER, full=True), {**default_settings(TEACHER, full=True), "model_layers": 3}]
COLUMNS = ["case", "row", "network", "size MB", "params M", "p50 ms", "accuracy", "% of teacher", "x smaller",
           "x faster", "same predictions", "train s"]
MEASURE = MeasureConfig(memory=False)


def references() -> list[str]:
    """mpnet-base's baseline (a head on its frozen features) and finetune-head's default on it; MiniLM-L6's."""
    lines = ["| model | how | build s | accuracy | p50 ms | size MB |", "|---|---|---|---|---|---|"]
    for model in (TEACHER, STUDENT):
        prepared = prepare(Request(model, DATASET), MEASURE, report(model))
        meta, m = prepared.baseline.meta, prepared.original.figures.to_json()
        lines.append(f"| {model} | baseline: {'head on frozen features' if 'head' in meta['recipe'] else 'full fine-tune'}"
                     f" | {meta['train_seconds']:.0f} | {m['accuracy']:.3f} | {m['latency_ms_p50']:.1f} | "
                     f"{m['size_bytes'] / 1e6:.1f} |")
        if model == TEACHER:
            run = run_steps(prepared, resolve([("finetune-head", {})]), None, MEASURE, report("head-only"))
            lines.append(f"| {model} | finetune-head (defaults; Transfer page) | {run.result.train_seconds:.0f} | "
                         f"{run.result.accuracy:.3f} | {run.result.latency_ms_p50:.1f} | "
                         f"{run.result.size_bytes / 1e6:.1f} |")
    return lines


def beside_minilm() -> list[str]:
    """The Architectures page's text candidates (mpnet-base among them), head only on all the labels: what each
    encoder's frozen features are worth, at its size and speed."""
    budget = Budget(examples_per_class=0, weights="head")
    lines = ["| architecture | params M | multiply-adds M (64 tokens) | size MB | p50 ms | accuracy | train s |",
             "|---|---|---|---|---|---|---|"]
    for r in compare_architectures(choices(TEXT), DATASET, budget, MEASURE, report("architectures")):
        lines.append(f"| {r['architecture']} | {r['params'] / 1e6:.2f} | {r['multiply_adds'] / 1e6:,.0f} | "
                     f"{r['size_bytes'] / 1e6:.1f} | {r['latency_ms_p50']:.1f} | {r['accuracy']:.3f} | "
                     f"{r['train_seconds']:.0f} |")
    return lines


def main(out: Path) -> None:
    only_architectures = sys.argv[1:] == ["architectures"]
    picked = [] if only_architectures else [int(i) for i in sys.argv[1:]]
    lines = [f"Measured {date.today()} on {describe()}, 2 threads, batch-1 latency; accuracy on the 1,000-example "
             "held-out eval split.", ""]
    if not picked and not only_architectures:
        lines += references() + [""]
    if not picked:
        lines += ["The Architectures page's text candidates, head only on all the labels (features cached once per "
                  "encoder; train s includes computing them):", "", *beside_minilm(), ""]
    if only_architectures:
        out.write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    said, walls = [], []
    for number in picked or range(len(CASES)):
        settings = CASES[number]
        started = time.perf_counter()
        sweep = run_distillation(Request(TEACHER, DATASET), settings, measure_config=MEASURE,
                                 progress=report(f"case {number}"))
        walls.append(f"case {number}: {time.perf_counter() - started:.0f} s")
        knobs = ", ".join(f"{k}={v}" for k, v in settings.items())
        seconds = [None] + [run.result.train_seconds for run in sweep.runs]
        rows = lineup(sweep.runs)
        for row, trained in zip(rows, seconds):
            lines.append(f"| {knobs} | {row.model} | {row.network} | {row.size_mb:.1f} | {row.params_m:.2f} | "
                         f"{row.p50_ms:.2f} | {row.accuracy:.3f} | {row.teacher_share:.1f} | {row.x_smaller:.1f} | "
                         f"{row.x_faster:.1f} | {row.fidelity:.3f} | "
                         f"{'' if trained is None or row.model == 'student + int8' else f'{trained:.0f}'} |")
        said.append(f"- case {number}: {headline(rows)}")
        for run in sweep.runs[:2]:
            lines.append(f"| | note | {run.notes[-1]} |" + " |" * (len(COLUMNS) - 3))
    lines += ["", "Headlines (the lab's and the Compare page's):", *said, "",
              "Wall time of the Distillation page's button (control, student, int8, each measured; the teacher's "
              "outputs from the cache): " + "; ".join(walls) + "."]
    print(file=sys.stderr)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name(f"teacher{''.join('-' + i for i in sys.argv[1:])}.md"))
