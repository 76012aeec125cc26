"""Benchmark: the vision stories on real photos (photos-12): the pretrained networks side by side, transfer
strategies on MobileNetV2, EfficientNet-Lite0 in ONNX Runtime static int8, and the data-efficiency curve.

    .venv/bin/python -m benchmarks.photos         # writes benchmarks/photos.md (about 25 minutes on 2 cores)

The Architectures comparison runs first, in a fresh data folder, so its wall time includes computing every
network's features (the page's first press). The eval split is 51 photos (2 to 13 per class): one photo is
2 points of accuracy, and a 95% interval around 0.80 is about +-11 points (Wilson), so read differences of a
few points as ties; balanced accuracy weighs the small classes as much as the large ones.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.run import report
from benchmarks.transfer import FAST, cells
from microbudget_core import techniques
from microbudget_core.support.cpu import describe
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.labs.architectures import choices, compare_architectures, default_budget, defaults
from microbudget_core.labs.transfer import run_curve
from microbudget_core.models import IMAGE, ModelSpec, load_model
from microbudget_core.pipeline import Request, prepare, resolve, run_steps

DATASET = "photos-12"
STRATEGIES = [("mobilenet-v2", "finetune-head"), ("mobilenet-v2", "finetune-last-n"),
              ("mobilenet-v2", "finetune-full"), ("mobilenet-v2", "from-scratch"),
              ("efficientnet-lite0", "finetune-head")]
COLUMNS = ["model", "strategy", "per class", "train examples", "train s", "trained params", "accuracy",
           "macro F1", "size MB", "p50 ms"]


def wilson(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of an accuracy measured on n examples."""
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def architectures_table() -> list[str]:
    lines = ["| architecture | params M | multiply-adds M | size MB | p50 ms | per s @32 | accuracy | 95% interval | "
             "balanced acc. | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    started = time.perf_counter()
    rows = compare_architectures(choices(IMAGE), DATASET, default_budget(IMAGE), FAST, progress=report("architectures"))
    wall = time.perf_counter() - started
    for r in rows:
        low, high = wilson(r["accuracy"], r["eval_examples"])
        lines.append(f"| {r['architecture']} | {r['params'] / 1e6:.2f} | {r['multiply_adds'] / 1e6:,.0f} | "
                     f"{r['size_bytes'] / 1e6:.1f} | {r['latency_ms_p50']:.1f} | {r['throughput_per_s']:,.0f} | "
                     f"{r['accuracy']:.3f} | {low:.2f}-{high:.2f} | {r['balanced_accuracy']:.3f} | "
                     f"{r['train_seconds']:.0f} |")
    return lines + ["", f"All {len(rows)} rows (head only, the page's default budget for images) in {wall:.0f} s "
                        "wall, features computed from scratch."]


def splits_table(seeds: int = 5) -> list[str]:
    """Head-only accuracy of each pretrained network over `seeds` different train / eval splits: less noise than one."""
    from sklearn.metrics import balanced_accuracy_score

    scores: dict[str, list[tuple[float, float]]] = {a.id: [] for a in defaults(IMAGE)}
    technique = techniques.get("finetune-head")
    for seed in range(seeds):
        dataset = load_dataset(DatasetSpec(DATASET, seed=seed))
        for model in scores:
            print(f"\rsplit {seed}: {model:<40}", end="", file=sys.stderr)
            bundle = load_model(ModelSpec(model), dataset.label_names, IMAGE)
            predictions = technique.apply(bundle, technique.Config(seed=seed), dataset).predict(dataset.eval.inputs)
            scores[model].append((float(np.mean(predictions == dataset.eval.labels)),
                                  float(balanced_accuracy_score(dataset.eval.labels, predictions))))
    lines = [f"| network | accuracy, mean of {seeds} splits | sd | balanced accuracy, mean |", "|---|---|---|---|"]
    for model, pairs in scores.items():
        accuracy, balanced = np.array(pairs).T
        lines.append(f"| {model} | {accuracy.mean():.3f} | {accuracy.std(ddof=1):.3f} | {balanced.mean():.3f} |")
    return lines


def strategies_table() -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " | balanced acc. |", "|" + "---|" * (len(COLUMNS) + 1)]
    for model, technique in STRATEGIES:
        prepared = prepare(Request(model, DATASET), FAST, progress=report(f"{model} original"))
        if technique == "finetune-head":
            base = {**prepared.original.figures.to_json(), **prepared.baseline.meta}
            lines.append("| " + " | ".join(cells(model, "default recipe (all weights, the labs' original)", base))
                         + f" | {base['balanced_accuracy']:.3f} |")
        run = run_steps(prepared, resolve([(technique, {})]), measure_config=FAST, progress=report(technique))
        balanced = run.result.balanced_accuracy
        lines.append("| " + " | ".join(cells(model, technique, run.result.to_json())) + f" | {balanced:.3f} |")
    return lines


def int8_table() -> list[str]:
    prepared = prepare(Request("efficientnet-lite0", DATASET), FAST, progress=report("lite0 original"))
    head = run_steps(prepared, resolve([("finetune-head", {})]), measure_config=FAST, progress=report("lite0 head"))
    int8 = run_steps(prepared, resolve([("finetune-head", {}), ("onnx-int8-static", {})]), measure_config=FAST,
                     progress=report("lite0 int8"))
    fp32, q = head.result, int8.result
    return ["| EfficientNet-Lite0 head-only | size MB | p50 ms | per s @32 | accuracy |", "|---|---|---|---|---|",
            f"| PyTorch fp32 | {fp32.size_bytes / 1e6:.1f} | {fp32.latency_ms_p50:.1f} | "
            f"{fp32.throughput_per_s:,.0f} | {fp32.accuracy:.3f} |",
            f"| ONNX Runtime static int8 | {q.size_bytes / 1e6:.1f} | {q.latency_ms_p50:.1f} | "
            f"{q.throughput_per_s:,.0f} | {q.accuracy:.3f} |",
            "", f"int8 against fp32: {fp32.size_bytes / q.size_bytes:.2f}x smaller, "
                f"{fp32.latency_ms_p50 / q.latency_ms_p50:.2f}x faster at batch 1, accuracy "
                f"{(q.accuracy - fp32.accuracy) * 100:+.1f} pt."]


def curve_table() -> list[str]:
    started = time.perf_counter()
    curve = run_curve(Request("mobilenet-v2", DATASET), full=True, measure_config=FAST, progress=report("curve"))
    budgets = sorted({r.steps[0]["config"]["examples_per_class"] for r in curve.runs}, key=lambda k: k or 10**9)
    lines = [f"{len(curve.runs)} trainings in {time.perf_counter() - started:.0f} s wall"
             f"{' (' + ', '.join(curve.skipped) + ' skipped: the same run as all)' if curve.skipped else ''}.", "",
             "| strategy | " + " | ".join(f"{k or 'all'}/class" for k in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for strategy in ("finetune-head", "finetune-full", "from-scratch"):
        accuracies = [f"{r.result.accuracy:.3f}" for r in curve.runs if r.steps[0]["technique"] == strategy]
        lines.append(f"| {strategy} | " + " | ".join(accuracies) + " |")
    return lines


def main(out: Path) -> None:
    os.environ["MICROBUDGET_HOME"] = tempfile.mkdtemp(prefix="photos-bench-")  # a first press, timed honestly
    lines = [f"Measured {date.today()} on {describe()}, 2 threads; {DATASET}: 257 photos in 12 classes, 206 to "
             "train (41 of them held out for validation), 51 to evaluate (see the module docstring on noise).", "",
             "## Architectures page (pretrained networks, one budget)", ""]
    lines += architectures_table()
    lines += ["", "## Head only on 5 different splits (seeds 0-4: each photo evaluated in some splits)", ""]
    lines += splits_table()
    lines += ["", "## Transfer strategies (default knobs)", ""] + strategies_table()
    lines += ["", "## EfficientNet-Lite0 in ONNX Runtime static int8", ""] + int8_table()
    lines += ["", "## Data-efficiency curve, MobileNetV2 (the Transfer page's button)", ""] + curve_table()
    print(file=sys.stderr)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name("photos.md"))
