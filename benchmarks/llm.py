"""Benchmark: the LLM pages on SmolLM2-135M offline: every level in one sweep, the page's default sweep timed,
then specialist vs generalist.

    .venv/bin/python -m benchmarks.llm            # writes benchmarks/llm.md: levels, then specialist vs generalist
    .venv/bin/python -m benchmarks.llm levels     # one part only
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.run import report
from microbudget_core.support.cpu import describe
from microbudget_core.labs.llm_quantization import (LEVELS, ORIGINAL, PYTORCH_LEVELS, LevelRow, default_levels,
                                                    level_of, level_rows, run_levels)
from microbudget_core.labs.specialist import contest_rows, deployed_level, run_contest

MODEL, DATASET = "smollm2-135m", "rotten-tomatoes"
ALL_LEVELS = [level for level in LEVELS if level.startswith("GGUF")] + list(PYTORCH_LEVELS)


def levels() -> list[str]:
    started = time.perf_counter()
    sweep = run_levels(MODEL, DATASET, ALL_LEVELS, progress=report("all levels"))
    wall = time.perf_counter() - started
    rows = level_rows(sweep.runs)
    lines = [f"### {MODEL}: quantization levels, llama.cpp and PyTorch", "",
             f"One sweep: perplexity on the first {sweep.runs[0].result.eval_examples} eval snippets of {DATASET} "
             "(the same token ids for both backends); tokens/s of one greedy 32-token completion at batch 1 (prompt "
             "pass included), prompt tokens/s of that pass; load = a fresh process reading the stored artifact. "
             "PyTorch n-bit: weight-only, group size 32.", "",
             "| level | backend | tensor types | bits/weight | size MB | x smaller | load s | tokens/s "
             "| prompt tokens/s | perplexity | perplexity x | same tokens |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.level} | {row.backend} | {row.tensor_types} | {row.bits:.2f} | {row.size_mb:.1f} | "
                     f"{row.x_smaller:.2f} | {row.load_s or float('nan'):.2f} | {row.tokens_per_s:.1f} | "
                     f"{row.prompt_tokens_per_s or float('nan'):.0f} | {row.perplexity:.1f} | {row.perplexity_x:.3f} | "
                     f"{row.same_tokens:.2f} |")
    lines += ["", f"Wall time for all {len(rows)} rows: {wall:.0f} s (model load and conversion included).", ""]
    lines += floors({row.level: row for row in rows})
    started = time.perf_counter()
    run_levels(MODEL, DATASET, progress=report("default levels"))
    lines += ["", f"The page's default sweep ({', '.join(default_levels())}, with the original measured first): "
                  f"{time.perf_counter() - started:.0f} s (floor: under 300 s)."]
    lines += ["", f"Prompt: *{sweep.runs[0].result.prompt}*", ""]
    lines += [f"- **{row.level}**: {row.completion.strip()!r}" for row in rows]
    return lines


def floors(rows: dict[str, LevelRow]) -> list[str]:
    """The issue's floors, each with its measured figure."""
    original, f32, f16 = rows[ORIGINAL], rows["GGUF F32"], rows["GGUF F16"]
    q8, q4 = rows["GGUF Q8_0"], rows["GGUF Q4_K_M"]
    full = min(f32.perplexity, f16.perplexity)
    checks = [("Q4_K_M size <= 0.25x fp32", q4.size_mb / original.size_mb, 0.25),
              ("Q4_K_M perplexity <= 1.10x llama.cpp F16/F32", q4.perplexity / full, 1.10),
              ("Q4_K_M tokens/s >= 2x llama.cpp F32", q4.tokens_per_s / f32.tokens_per_s, 2.0),
              ("Q4_K_M tokens/s >= 4x PyTorch fp32", q4.tokens_per_s / original.tokens_per_s, 4.0),
              ("Q8_0 perplexity <= 1.02x llama.cpp F16/F32", q8.perplexity / full, 1.02),
              ("Q8_0 size <= 0.30x fp32", q8.size_mb / original.size_mb, 0.30)]
    lines = ["| floor | measured | met |", "|---|---|---|"]
    for name, value, bound in checks:
        met = value >= bound if ">=" in name else value <= bound
        lines.append(f"| {name} | {value:.3f} | {'yes' if met else 'no'} |")
    return lines


def contest() -> list[str]:
    started = time.perf_counter()
    runs = run_contest(DATASET, progress=report("contest"))
    wall = time.perf_counter() - started
    lines = [f"### Specialist vs generalist on {DATASET}", "",
             f"Accuracy on the first {runs[0].result.eval_examples} eval snippets (never trained on, never in a "
             "prompt); p50 per example at batch 1; $ per 1M predictions at batch-32 throughput on a $0.0893/h "
             "2-vCPU instance.", "",
             "| contender | params M | size MB | accuracy | macro F1 | p50 ms | $ per 1M |", "|---|---|---|---|---|---|---|"]
    for row in contest_rows(runs):
        lines.append(f"| {row.contender} | {row.params_m:.1f} | {row.size_mb:.1f} | {row.accuracy:.3f} | "
                     f"{row.macro_f1:.3f} | {row.p50_ms:.1f} | {row.cost_per_million:.3f} |")
    level = deployed_level(MODEL, DATASET)
    lines += ["", f"The LLM's few-shot contender ran at {level_of(level) if level else 'fp32 as loaded'} (the "
                  "fastest level within 10% perplexity of the last level sweep).",
              f"Wall time: {wall:.0f} s (the specialist's fine-tuning included when its baseline was not cached)."]
    return lines


def main(parts: list[str]) -> None:
    lines = [f"Measured {date.today()} on {describe()}, 2 threads.", ""]
    for part in parts:
        lines += {"levels": levels, "contest": contest}[part]() + [""]
    out = Path(__file__).with_name("llm.md" if len(parts) == 2 else f"llm-{parts[0]}.md")
    out.write_text("\n".join(lines))
    print(file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:] or ["levels", "contest"])
