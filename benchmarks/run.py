"""Benchmark: each model's original and every quantization path, measured side by side.

    .venv/bin/python -m benchmarks.run            # writes benchmarks/results.md

Speed and size are reported here, never asserted in tests. Each ratio compares a result with
the original measured in the same run (same process, same threads), since absolute times drift.
"""

from __future__ import annotations

import platform
import sys
from datetime import date
from pathlib import Path

import torch

from microbudget_core.errors import MicrobudgetError
from microbudget_core.pipeline import Request, run_pipeline

CASES = {
    ("minilm-l6", "rotten-tomatoes"): ["dynamic-int8", "onnx", "onnx-int8-dynamic", "onnx-int8-static"],
    ("mobilenet-v2", "mnist-5k"): ["dynamic-int8", "onnx", "onnx-int8-dynamic", "onnx-int8-static"],
}
COLUMNS = ["model", "pipeline", "size MB", "size x", "p50 ms", "speed x", "p95 ms", "per s @32", "accuracy",
           "Δ acc pt", "macro F1", "fidelity", "peak RSS MB"]


def cells(model: str, name: str, m: dict, original: dict) -> list[str]:
    rss = f"{m['peak_rss_mb']:.0f}" if m.get("peak_rss_mb") else "n/a"
    return [model, name, f"{m['size_bytes'] / 1e6:.1f}", f"{original['size_bytes'] / m['size_bytes']:.2f}x",
            f"{m['latency_ms_p50']:.1f}", f"{original['latency_ms_p50'] / m['latency_ms_p50']:.2f}x",
            f"{m['latency_ms_p95']:.1f}", f"{m['throughput_per_s']:.0f}", f"{m['accuracy']:.3f}",
            f"{(m['accuracy'] - original['accuracy']) * 100:+.1f}", f"{m['macro_f1']:.3f}", f"{m['fidelity']:.3f}", rss]


def main(out: Path) -> None:
    lines = [f"Measured {date.today()} on {platform.machine()} ({platform.processor() or 'cpu'}), torch "
             f"{torch.__version__}, 2 threads, batch 1 for latency (median / p95 of 30), batch 32 for throughput; "
             "accuracy on the 1,000-example held-out eval split. Each row's ratios are against the original "
             "measured in the same run (its original row shown once per model).", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for (model, dataset), pipelines in CASES.items():
        for technique in pipelines:
            try:
                run = run_pipeline(Request(model, dataset, [(technique, {})]),
                                   progress=lambda f, m: print(f"\r{technique:<20} {f:4.0%} {m[:60]:<60}",
                                                               end="", file=sys.stderr))
            except MicrobudgetError as error:  # a path that does not apply is a row, not a crash
                lines.append(f"| {model} | {technique} | failed: {error} |" + " |" * (len(COLUMNS) - 3))
                continue
            if not any(line.startswith(f"| {model} | original") for line in lines):
                lines.append("| " + " | ".join(cells(model, "original (PyTorch fp32)", run.baseline, run.baseline)) + " |")
            lines.append("| " + " | ".join(cells(model, run.label, run.result, run.baseline)) + " |")
    print(file=sys.stderr)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name("results.md"))
