"""Benchmark: the LLM pages' buttons with their defaults (SmolLM2-135M offline).

    .venv/bin/python -m benchmarks.llm            # writes benchmarks/llm.md: levels, then specialist vs generalist
    .venv/bin/python -m benchmarks.llm levels     # one part only
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.run import report
from microbudget_core.cpu import describe
from microbudget_core.labs.llm_quantization import level_rows, run_levels
from microbudget_core.labs.specialist import contest_rows, run_contest

MODEL, DATASET = "smollm2-135m", "rotten-tomatoes"


def levels() -> list[str]:
    started = time.perf_counter()
    sweep = run_levels(MODEL, DATASET, progress=report("levels"))
    wall = time.perf_counter() - started
    rows = level_rows(sweep.runs)
    lines = [f"### {MODEL}: quantization levels", "",
             f"Perplexity on the first {sweep.runs[0].result['eval_examples']} eval snippets of {DATASET}; "
             f"tokens/s of one greedy 32-token completion at batch 1 "
             "(prompt pass included); load = a fresh process reading the stored artifact. Group size 32.", "",
             "| level | bits | size MB | x smaller | load s | tokens/s | perplexity | perplexity x | same tokens |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.level} | {row.bits} | {row.size_mb:.1f} | {row.x_smaller:.2f} | "
                     f"{row.load_s or float('nan'):.1f} | {row.tokens_per_s:.1f} | {row.perplexity:.1f} | "
                     f"{row.perplexity_x:.2f} | {row.same_tokens:.2f} |")
    lines += ["", f"Prompt: *{sweep.runs[0].result['prompt']}*", ""]
    lines += [f"- **{row.level}**: {row.completion.strip()!r}" for row in rows]
    lines += ["", f"Wall time for all {len(rows)} rows: {wall:.0f} s (model load and conversion included)."]
    return lines


def contest() -> list[str]:
    started = time.perf_counter()
    runs = run_contest(DATASET, progress=report("contest"))
    wall = time.perf_counter() - started
    lines = [f"### Specialist vs generalist on {DATASET}", "",
             f"Accuracy on the first {runs[0].result['eval_examples']} eval snippets (never trained on, never in a "
             "prompt); p50 per example at batch 1; $ per 1M predictions at batch-32 throughput on a $0.0893/h "
             "2-vCPU instance.", "",
             "| contender | params M | size MB | accuracy | macro F1 | p50 ms | $ per 1M |", "|---|---|---|---|---|---|---|"]
    for row in contest_rows(runs):
        lines.append(f"| {row.contender} | {row.params_m:.1f} | {row.size_mb:.1f} | {row.accuracy:.3f} | "
                     f"{row.macro_f1:.3f} | {row.p50_ms:.1f} | {row.cost_per_million:.3f} |")
    lines += ["", f"Wall time: {wall:.0f} s (the specialist's fine-tuned baseline comes from the cache)."]
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
