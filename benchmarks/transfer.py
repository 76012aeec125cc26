"""Benchmark: transfer-learning strategies on both default models, with all data and with 32 per class.

    .venv/bin/python -m benchmarks.transfer       # writes benchmarks/transfer.md

Each model's original is the default recipe (full fine-tune on all data, cached); every strategy
starts from the pretrained weights (from-scratch from random ones) and is measured the same way.
The data-efficiency curve of the Transfer learning page is timed on MobileNetV2.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.run import report
from microbudget_core.support.cpu import describe
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.labs.transfer import run_curve
from microbudget_core.measure import MeasureConfig
from microbudget_core.pipeline import Request, prepare, resolve, run_steps

STRATEGIES = ["finetune-head", "finetune-last-n", "finetune-full", "from-scratch"]
ROWS = ([f"{s} examples_per_class=0" for s in STRATEGIES] + [f"{s} examples_per_class=32" for s in STRATEGIES]
        + ["setfit-style examples_per_class=8", "setfit-style examples_per_class=32"])
MODELS = [("mobilenet-v2", "mnist-5k"), ("minilm-l6", "rotten-tomatoes")]
COLUMNS = ["model", "strategy", "per class", "train examples", "train s", "trained params", "accuracy",
           "macro F1", "size MB", "p50 ms"]
FAST = MeasureConfig(memory=False)  # training is what this table is about; peak memory is in the other one


def cells(model: str, name: str, m: dict) -> list[str]:
    return [model, name, f"{m.get('examples_per_class') or 'all'}", f"{m.get('train_examples', 0):,}",
            f"{m.get('train_seconds', 0):.0f}", f"{m.get('trainable_params', m['params']):,}",
            f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}", f"{m['size_bytes'] / 1e6:.1f}", f"{m['latency_ms_p50']:.1f}"]


def main(out: Path) -> None:
    lines = [f"Measured {date.today()} on {describe()}, 2 threads; accuracy on the 1,000-example held-out "
             "eval split; default knobs unless the row says otherwise.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for model, dataset in MODELS:
        prepared = prepare(Request(model, dataset), FAST, progress=report(f"{model} original"))
        lines.append("| " + " | ".join(cells(model, "default recipe (the other labs' original)",
                                             {**prepared.original.figures.to_json(), **prepared.baseline.meta})) + " |")
        for row in ROWS:
            technique, *settings = row.split()
            try:
                steps = resolve([(technique, dict(s.split("=") for s in settings))])
                run = run_steps(prepared, steps, measure_config=FAST, progress=report(row))
            except MicrobudgetError as error:
                lines.append(f"| {model} | {row} | does not apply: {error} |" + " |" * (len(COLUMNS) - 3))
                continue
            lines.append("| " + " | ".join(cells(model, technique, run.result.to_json())) + " |")
    start = time.perf_counter()
    curve = run_curve(Request("mobilenet-v2", "mnist-5k"), full=True, measure_config=FAST, progress=report("curve"))
    lines += ["", f"Data-efficiency curve on mobilenet-v2 / mnist-5k (the Transfer learning page's button, full budget: "
              f"{len(curve.runs)} trainings, head / full / from-scratch x 8, 32, 128, 512, all per class; "
              f"{', '.join(curve.skipped) or 'none'} skipped as the same run as all): "
              f"{time.perf_counter() - start:.0f} s wall.", ""]
    budgets = sorted({r.steps[0]["config"]["examples_per_class"] for r in curve.runs}, key=lambda k: k or 10**9)
    lines += ["| strategy | " + " | ".join(f"{k or 'all'}/class" for k in budgets) + " |",
              "|---|" + "---|" * len(budgets)]
    for strategy in ("finetune-head", "finetune-full", "from-scratch"):
        accuracies = [f"{r.result.accuracy:.3f}" for r in curve.runs if r.steps[0]["technique"] == strategy]
        lines.append(f"| {strategy} | " + " | ".join(accuracies) + " |")
    print(file=sys.stderr)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name("transfer.md"))
