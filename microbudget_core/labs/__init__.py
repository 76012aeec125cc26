"""The labs: one module per page's job (views/x.py calls labs/x.py), built on the engine (pipeline, measure).

This package also keeps what each lab showed last, per model and dataset, so a page opens on it, never
empty after one run: the labs write here when they finish (and `warm` does, before a talk); the pages
read it back, else the results snapshot's (snapshot.py). Every lab entry point is a `@job`: the one place the
labs take the one-job lock, and where each job's duration is kept (the pages say how long a button takes).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from ..support.atomic import write_atomically
from ..support.errors import DamagedFile
from .. import snapshot
from ..support.exclusive import one_at_a_time
from ..support.paths import workspace
from ..pipeline import Request, run_pipeline
from ..support.progress import Progress, no_progress
from ..runs import Run, RunStore

F = TypeVar("F", bound=Callable)

# The labs' names, shared by the core functions and pages that remember and the pages that recall.
TRANSFER, CURVE, QUANTIZATION, SWEEP, DISTILLATION = "transfer", "curve", "quantization", "sweep", "distillation"
ARCHITECTURES, LLM_LEVELS, SPECIALIST, TALK = "architectures", "llm-levels", "specialist", "talk"
SPEECH, PRUNING = "speech", "pruning"


def job(function: F) -> F:
    """A lab's entry point: it runs alone, after the model jobs that came first (exclusive.one_at_a_time), and
    its duration is kept when it finishes (`expected_seconds`)."""

    @functools.wraps(function)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        durations = {**durations_here(), job_name(function): round(time.perf_counter() - start, 1)}
        write_atomically(workspace() / DURATIONS, json.dumps(durations, indent=1).encode())
        return result

    return one_at_a_time(timed)  # type: ignore[return-value]


DURATIONS = "job-seconds.json"


def job_name(function: Callable) -> str:
    """A lab job's name in the kept durations: its lab module and function, e.g. "transfer.run_curve"."""
    return f"{function.__module__.rsplit('.', 1)[-1]}.{function.__name__}"


def expected_seconds(function: Callable) -> tuple[float, str] | None:
    """How long the job took the last time it finished here, else when the snapshot was measured, and which of
    the two ("here" or the snapshot's caption); None if neither knows."""
    name = job_name(function)
    if name in (here := durations_here()):
        return here[name], "here"
    shot = snapshot.load()
    return (shot.durations[name], shot.caption) if shot and name in shot.durations else None


def durations_here() -> dict[str, float]:
    """The jobs' last durations on this machine (the snapshot keeps them)."""
    try:
        return json.loads((workspace() / DURATIONS).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: only an estimate is lost
        return {}


def remember(lab: str, key: list[str], value: Any) -> None:
    """Record a JSON `value` as the lab's latest for `key` (written whole, then renamed: never half a file)."""
    write_atomically(_file(lab, key), json.dumps(value).encode())


def recall(lab: str, key: list[str], with_snapshot: bool = True) -> Any | None:
    """What the lab last recorded for `key`, else (`with_snapshot`) the results snapshot's; None if neither."""
    path = _file(lab, key)
    if not path.exists():
        shot = snapshot.load() if with_snapshot else None
        return shot.labs.get(snapshot.entry_key(lab, key)) if shot else None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedFile(path, f"{lab} lab's saved results", str(error)) from None


def remember_runs(lab: str, key: list[str], runs: Sequence[Run], skipped: dict[str, str] | None = None) -> None:
    """Record the lab's latest runs for `key`, with the rows left out and why."""
    remember(lab, key, {"runs": [run.run_id for run in runs], "skipped": skipped or {}})


def run_and_remember(lab: str, request: Request, progress: Progress = no_progress) -> Run:
    """Run one pipeline and make it the lab's latest for (model, dataset): the page then opens on it (called
    inside a lab's `@job`)."""
    run = run_pipeline(request, progress=progress)
    remember_runs(lab, [request.model, request.dataset], [run])
    return run


def from_snapshot(lab: str, key: list[str]) -> str:
    """The snapshot's caption where the lab shows the snapshot's results for `key` (none of its own); else "".
    """
    shot = snapshot.load()
    if _file(lab, key).exists() or not shot or snapshot.entry_key(lab, key) not in shot.labs:
        return ""
    return shot.caption


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
    folder = workspace() / "lab-results"  # ("labs" held plain lists of run ids); made by the first write
    return folder / f"{lab}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]}.json"
