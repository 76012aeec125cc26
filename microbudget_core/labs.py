"""What each lab showed last, per model and dataset: a page opens on it, never empty after one run.

The labs write here when they finish (and `warm` does, before a talk); the pages read it back.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from .paths import workspace
from .runs import Run, RunStore

# The labs' names, shared by the core functions and pages that remember and the pages that recall.
TRANSFER, CURVE, QUANTIZATION, SWEEP, DISTILLATION = "transfer", "curve", "quantization", "sweep", "distillation"
ARCHITECTURES, LLM_LEVELS, SPECIALIST, TALK = "architectures", "llm-levels", "specialist", "talk"


def remember(lab: str, key: list[str], value: Any) -> None:
    """Record a JSON `value` as the lab's latest for `key` (written whole, then renamed: never half a file)."""
    path = _file(lab, key)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(value))
    partial.replace(path)


def recall(lab: str, key: list[str]) -> Any | None:
    """What the lab last recorded for `key`; None if nothing yet."""
    path = _file(lab, key)
    return json.loads(path.read_text()) if path.exists() else None


def remember_runs(lab: str, key: list[str], runs: Sequence[Run], skipped: dict[str, str] | None = None) -> None:
    """Record the lab's latest runs for `key`, with the rows left out and why."""
    remember(lab, key, {"runs": [run.run_id for run in runs], "skipped": skipped or {}})


def recall_runs(lab: str, key: list[str]) -> tuple[list[Run], dict[str, str]]:
    """The lab's latest runs for `key` and the rows left out; no runs if any was deleted since (the page then
    asks for a new run)."""
    kept = recall(lab, key) or {}
    store = RunStore()
    runs = [store.get(run_id) for run_id in kept.get("runs", [])]
    return (runs, kept["skipped"]) if runs and all(runs) else ([], {})


def _file(lab: str, key: list[str]) -> Path:
    folder = workspace() / "lab-results"  # ("labs" held plain lists of run ids)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{lab}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]}.json"
