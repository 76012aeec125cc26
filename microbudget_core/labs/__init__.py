"""The labs: one module per page's job (views/x.py calls labs/x.py), built on the engine (pipeline, measure).

This package also keeps what each lab showed last, per model and dataset, so a page opens on it, never
empty after one run: the labs write here when they finish (and `warm` does, before a talk); the pages
read it back. Every lab entry point is a `@job`: the one place the labs take the one-job lock.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from ..atomic import write_atomically
from ..errors import DamagedFile
from ..exclusive import one_at_a_time
from ..paths import workspace
from ..pipeline import Request, run_pipeline
from ..progress import Progress, no_progress
from ..runs import Run, RunStore

F = TypeVar("F", bound=Callable)

# The labs' names, shared by the core functions and pages that remember and the pages that recall.
TRANSFER, CURVE, QUANTIZATION, SWEEP, DISTILLATION = "transfer", "curve", "quantization", "sweep", "distillation"
ARCHITECTURES, LLM_LEVELS, SPECIALIST, TALK = "architectures", "llm-levels", "specialist", "talk"
SPEECH = "speech"


def job(function: F) -> F:
    """A lab's entry point: it runs alone, after the model jobs that came first (exclusive.one_at_a_time)."""
    return one_at_a_time(function)


def remember(lab: str, key: list[str], value: Any) -> None:
    """Record a JSON `value` as the lab's latest for `key` (written whole, then renamed: never half a file)."""
    write_atomically(_file(lab, key), json.dumps(value).encode())


def recall(lab: str, key: list[str]) -> Any | None:
    """What the lab last recorded for `key`; None if nothing yet."""
    path = _file(lab, key)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedFile(path, f"{lab} lab's saved results", str(error)) from None


def remember_runs(lab: str, key: list[str], runs: Sequence[Run], skipped: dict[str, str] | None = None) -> None:
    """Record the lab's latest runs for `key`, with the rows left out and why."""
    remember(lab, key, {"runs": [run.run_id for run in runs], "skipped": skipped or {}})


@job
def run_and_remember(lab: str, request: Request, progress: Progress = no_progress) -> Run:
    """Run one pipeline and make it the lab's latest for (model, dataset): the page then opens on it."""
    run = run_pipeline(request, progress=progress)
    remember_runs(lab, [request.model, request.dataset], [run])
    return run


def recall_runs(lab: str, key: list[str]) -> tuple[list[Run], dict[str, str]]:
    """The lab's latest runs for `key` and the rows left out; no runs if any was deleted since (the page then
    asks for a new run)."""
    kept = recall(lab, key) or {}
    runs = runs_kept(kept)
    return (runs, kept["skipped"]) if runs else ([], {})


def latest_run(lab: str, model: str, dataset: str) -> Run | None:
    """The one run a lab page opens on for this model and dataset; None before its first run."""
    return next(iter(recall_runs(lab, [model, dataset])[0]), None)


def runs_kept(kept: dict[str, Any]) -> list[Run]:
    """The runs a lab recorded (see `remember_runs`); none if any was deleted since."""
    store = RunStore()
    runs = [store.get(run_id) for run_id in kept.get("runs", [])]
    return runs if runs and all(runs) else []


def row_name(run: Run, rows: dict[str, list[tuple[str, dict[str, Any]]]]) -> str:
    """The name of the lab row whose steps a run followed (same techniques, and the row's settings), else its label."""
    steps = [(step["technique"], step["config"]) for step in run.steps]
    for name, row in rows.items():
        same_settings = all(config.get(key) == value for (_, config), (_, wanted) in zip(steps, row)
                            for key, value in wanted.items())
        if [tid for tid, _ in steps] == [tid for tid, _ in row] and same_settings:
            return name
    return run.label


def _file(lab: str, key: list[str]) -> Path:
    folder = workspace() / "lab-results"  # ("labs" held plain lists of run ids)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{lab}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]}.json"
