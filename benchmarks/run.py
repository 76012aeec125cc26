"""Benchmark: each model's original and every quantization path, measured side by side.

    .venv/bin/python -m benchmarks.run            # writes benchmarks/results.md

Speed and size are reported here, never asserted in tests. Each ratio compares a result with
the original measured in the same run (same process, same threads), since absolute times drift.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

import torch

from microbudget_core.support.cpu import describe
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.labs.quantization import run_sweep
from microbudget_core.pipeline import Request, prepare, resolve, run_steps

INT8 = ["dynamic-int8", "static-int8", "onnx", "onnx-int8-dynamic", "onnx-int8-static"]
# weight-only packs Linear layers: MobileNetV2 has one. bf16 convolutions crawl on this CPU (2 images/s at
# batch 32), which alone would take 8 of the benchmark's minutes; fp16 shows the same lesson there.
CASES = {("minilm-l6", "rotten-tomatoes"): INT8 + ["fp16", "bf16", "weight-only bits=8", "weight-only bits=4",
                                                   "weight-only bits=2"],
         ("mobilenet-v2", "mnist-5k"): INT8 + ["fp16"]}
COLUMNS = ["model", "pipeline", "size MB", "size x", "p50 ms", "speed x", "p95 ms", "per s @32", "accuracy",
           "Δ acc pt", "macro F1", "fidelity", "peak RSS MB"]


def cells(model: str, name: str, m: dict, original: dict) -> list[str]:
    rss = f"{m['peak_rss_mb']:.0f}" if m.get("peak_rss_mb") else "n/a"
    return [model, name, f"{m['size_bytes'] / 1e6:.1f}", f"{original['size_bytes'] / m['size_bytes']:.2f}x",
            f"{m['latency_ms_p50']:.1f}", f"{original['latency_ms_p50'] / m['latency_ms_p50']:.2f}x",
            f"{m['latency_ms_p95']:.1f}", f"{m['throughput_per_s']:.0f}", f"{m['accuracy']:.3f}",
            f"{(m['accuracy'] - original['accuracy']) * 100:+.1f}", f"{m['macro_f1']:.3f}", f"{m['fidelity']:.3f}", rss]


def main(out: Path) -> None:
    lines = [f"Measured {date.today()} on {describe()}, torch "
             f"{torch.__version__}, 2 threads, batch 1 for latency (median / p95 of 30), batch 32 for throughput; "
             "accuracy on the 1,000-example held-out eval split. Each row's ratios are against the original "
             "measured in the same run (its original row shown once per model).", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for (model, dataset), pipelines in CASES.items():
        prepared = prepare(Request(model, dataset), progress=report(f"{model} original"))
        original = prepared.original.figures.to_json()
        lines.append("| " + " | ".join(cells(model, "original (PyTorch fp32)", original, original)) + " |")
        for path in pipelines:
            technique, *settings = path.split()
            try:
                steps = resolve([(technique, dict(s.split("=") for s in settings))])
                run = run_steps(prepared, steps, progress=report(path))
            except MicrobudgetError as error:  # a path that does not apply is a row, not a crash
                lines.append(f"| {model} | {path} | does not apply: {error} |" + " |" * (len(COLUMNS) - 3))
                continue
            lines.append("| " + " | ".join(cells(model, path, run.result.to_json(), run.baseline.to_json())) + " |")
    start = time.perf_counter()
    sweep = run_sweep(Request("minilm-l6", "rotten-tomatoes", eval_limit=300), progress=report("sweep"))
    lines += ["", f"Bit-width sweep on minilm-l6 (the Quantization page's button: weight-only 8/4/3/2 and "
              f"{len(sweep.runs) - 4} int8 paths, 300 eval examples, no peak-memory probe): "
              f"{time.perf_counter() - start:.0f} s wall, original measured once."]
    print(file=sys.stderr)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def report(name: str):
    """A progress callback that prints one updating line on stderr."""
    return lambda fraction, message, **metrics: print(f"\r{name:<20} {fraction:4.0%} {message[:60]:<60}", end="", file=sys.stderr)


if __name__ == "__main__":
    main(Path(__file__).with_name("results.md"))
