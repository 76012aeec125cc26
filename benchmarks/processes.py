"""Benchmark: the default MiniLM baseline trained by one process and by several (Accelerate, data parallel).

    .venv/bin/python -m benchmarks.processes        # 1 and 2 processes; writes benchmarks/processes.md
    .venv/bin/python -m benchmarks.processes 1 2 4  # any counts

Each count builds the baseline from nothing in a data folder of its own (nothing cached), through the CLI:
`accelerate launch --multi_gpu --num_processes N -m microbudget_core run ...` for N > 1 (Accelerate's torchrun
launcher; on a machine without a GPU its processes train on the CPU with gloo). The original is then measured
the same way for every count: 2 threads, the 1,000 held-out eval examples.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from microbudget_core.support.cpu import describe

MODEL, DATASET = "minilm-l6", "rotten-tomatoes"
COLUMNS = ["processes", "trained on", "train s", "wall s", "accuracy", "Δ acc pt vs 1 process", "macro F1"]


def build(processes: int, home: Path) -> tuple[dict, float]:
    """The baseline's run (no technique: the original measured as the result) and the command's wall time."""
    launch = ([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"] if processes > 1
              else [sys.executable])
    command = [*launch, "-m", "microbudget_core", "run", "--model", MODEL, "--dataset", DATASET, "--no-memory",
               "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MICROBUDGET_HOME": str(home)})
    if done.returncode:
        raise SystemExit(f"{processes} processes failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)["baseline"], time.perf_counter() - started


def main(counts: list[int], out: Path) -> None:
    rows = []
    for processes in counts:
        with tempfile.TemporaryDirectory(prefix="microbudget-processes-") as home:
            print(f"{processes} process(es): building the {MODEL} baseline from nothing ...", flush=True)
            baseline, wall = build(processes, Path(home))
        rows.append((processes, baseline, wall))
        print(f"  trained in {baseline['train_seconds']:.0f} s, accuracy {baseline['accuracy']:.3f}", flush=True)
    reference = rows[0][1]["accuracy"]
    lines = [f"Measured {date.today()} on {describe()}, torch {torch.__version__}: the {MODEL} baseline on {DATASET} "
             "(full fine-tune, word embeddings frozen, 1 epoch, batch 32 split between the processes), built from "
             "nothing by each count; accuracy on the 1,000 held-out eval examples. "
             f"Command: `.venv/bin/python -m benchmarks.processes {' '.join(map(str, counts))}`.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for processes, baseline, wall in rows:
        lines.append(f"| {processes} | {baseline['trained_on']} | {baseline['train_seconds']:.0f} | {wall:.0f} | "
                     f"{baseline['accuracy']:.3f} | {(baseline['accuracy'] - reference) * 100:+.1f} | "
                     f"{baseline['macro_f1']:.3f} |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main([int(n) for n in sys.argv[1:]] or [1, 2], Path(__file__).with_name("processes.md"))
