"""Run records in a SQLite store that the app and the CLI share: runs are added, or deleted on request."""

from __future__ import annotations

import contextlib
import functools
import json
import shlex
import shutil
import sqlite3
import uuid
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from . import kinds, snapshot, techniques
from .support.errors import DamagedFile, MicrobudgetError
from .support.exclusive import one_at_a_time
from .figures import Measured
from .models import ModelBundle
from .saved import load_saved
from .models.bundle import DAMAGED, MISSING, artifact_state
from .support.paths import workspace

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL  -- the Run as JSON: one column, so new fields need no migration
)
"""


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Run:
    model: str
    dataset: str
    task: str
    steps: list[dict[str, Any]]  # [{"technique": id, "config": {...}}, ...]
    baseline: Measured  # the original's figures, as the kind's Figures (figures.py); a flat dict is typed
    result: Measured  # the result's
    ratios: dict[str, float]
    artifact_path: str | None = None
    notes: list[str] = field(default_factory=list)  # caveats a technique reported about this result
    labels: list[str] = field(default_factory=list)  # class names, in the order of the confusion matrix
    run_id: str = field(default_factory=new_run_id)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    snapshot: str = ""  # where and when, for a run read from the results snapshot (its model is not here)

    def __post_init__(self) -> None:
        # A stored record's rows (flat JSON objects) are typed by the run's kind.
        if isinstance(self.baseline, dict):
            self.baseline = figures_of(self.task, self.baseline)
        if isinstance(self.result, dict):
            self.result = figures_of(self.task, self.result)

    def to_json(self) -> dict[str, Any]:
        """The run as stored and as the CLI prints it: each row's figures one flat object."""
        rows = {"baseline": self.baseline.to_json(), "result": self.result.to_json()}
        return {f.name: rows.get(f.name, getattr(self, f.name)) for f in fields(self)}

    @property
    def recipe(self) -> str:
        """The technique ids, with the settings that differ from the defaults."""
        return " -> ".join(step_label(step) for step in self.steps) or "original"

    @property
    def label(self) -> str:
        """A short name for charts: the recipe, marked when the run comes from the results snapshot."""
        return self.recipe + (" (snapshot)" if self.snapshot else "")

    def command(self) -> str:
        """The CLI command that makes this run's model again."""
        parts = ["python -m microbudget_core run", f"--model {shlex.quote(self.model)}",
                 f"--dataset {shlex.quote(self.dataset)}"]
        parts += [f"--technique {step['technique']}" for step in self.steps]
        parts += ["--set " + shlex.quote(f"{step['technique']}.{key}={value}")
                  for step in self.steps for key, value in changed_settings(step).items()]
        return " ".join(parts)


def saved_artifact(run: Run) -> Path:
    """The folder of a run's saved model; one clear error where it is missing or damaged."""
    if run.snapshot:
        raise MicrobudgetError(f"Run {run.run_id} comes from the results snapshot ({run.snapshot}): its model is "
                               "not on this machine.",
                               f"Make it here: press the page's button, or run `{run.command()}`.")
    state = artifact_state(run.artifact_path)
    if state == MISSING:
        raise MicrobudgetError(f"Run {run.run_id}'s model files are missing (artifact missing).",
                               "Run the same technique again to save a new model.")
    if state == DAMAGED:
        raise MicrobudgetError(f"Run {run.run_id}'s model files are damaged (artifact damaged: a file is truncated "
                               "or missing).", "Run the same technique again to save a new model.")
    return Path(run.artifact_path)


def stored_run(run_id: str) -> Run:
    """The stored run with this id; one clear error if there is none (deleted, or never made)."""
    run = RunStore().get(run_id)
    if run is None:
        raise MicrobudgetError(f"No stored run '{run_id}'.", "Pick a run id from `runs` or the Compare page.")
    return run


@one_at_a_time
def load_run_model(run: Run) -> ModelBundle:
    """The model a run saved, loaded back from its artifact folder (to try it, or to export it)."""
    return load_saved(saved_artifact(run))


def step_label(step: dict[str, Any]) -> str:
    """A step record's name: its technique id, with the settings that differ from the defaults."""
    changed = [f"{key}={value}" for key, value in changed_settings(step).items()]
    return step["technique"] + (f"({', '.join(changed)})" if changed else "")


def changed_settings(step: dict[str, Any]) -> dict[str, Any]:
    """A step record's settings that differ from its technique's defaults."""
    try:
        defaults = asdict(techniques.get(step["technique"]).Config())
    except MicrobudgetError:  # a technique since removed or renamed: every setting is shown
        defaults = {}
    return {key: value for key, value in step["config"].items() if defaults.get(key) != value}


class RunStore:
    """Runs kept in SQLite (WAL mode): each run is one committed insert, never rewritten; deleted only on request.

    With `with_snapshot`, the results snapshot's runs are read too, each where no run here has its recipe.
    """

    def __init__(self, path: Path | None = None, with_snapshot: bool = True):
        self.path = path or workspace() / "runs.sqlite"
        self.with_snapshot = with_snapshot
        if self.path.exists():  # checked now (a damaged store says so at once); a new one is made by its first run
            self._create()

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute(SCHEMA)
            # Switched once. The switch needs the store to itself and, while another writer holds it, fails at once
            # ("database is locked") rather than waiting as an insert does: a later writer switches it then.
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                try:
                    connection.execute("PRAGMA journal_mode=WAL")
                except sqlite3.OperationalError as error:
                    if error.sqlite_errorname != "SQLITE_BUSY":
                        raise

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success and rolls back on error; a file that is not a readable SQLite
        store raises DamagedFile (a locked store, or a refused insert, is not damaged: that error passes as it is)."""
        try:
            with sqlite3.connect(self.path, timeout=30) as connection:
                yield connection
        except sqlite3.DatabaseError as error:
            if error.sqlite_errorname not in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):  # e.g. a duplicate id, a lock
                raise
            raise DamagedFile(self.path, "runs database", str(error)) from None

    def add(self, run: Run) -> Run:
        self._create()
        with self._connect() as connection:  # commits on success, rolls back on error
            connection.execute("INSERT INTO runs VALUES (?, ?, ?)",
                               (run.run_id, run.created_at, json.dumps(run.to_json())))
        return run

    def list(self, dataset: str | None = None, quality: str | None = "accuracy") -> list[Run]:
        """The runs of the kinds of model ranked by `quality` (None: every run), oldest first; one dataset's when given.

        By default the classifiers' runs: the pages that rank by accuracy never see a perplexity-only run.
        """
        rows = []
        if self.path.exists():  # none before the first run here
            with self._connect() as connection:
                rows = connection.execute("SELECT record FROM runs ORDER BY created_at, rowid").fetchall()
        runs = [run for (record,) in rows if (run := _parsed(record))]
        here = {(run.model, run.dataset, run.recipe) for run in runs}
        runs = sorted(runs + [run for run in self._snapshot_runs().values()
                              if (run.model, run.dataset, run.recipe) not in here], key=lambda run: run.created_at)
        ranked = kinds.ranked_by(quality) if quality else None
        return [run for run in runs if (dataset is None or run.dataset == dataset)
                and (ranked is None or run.task in ranked)]

    def delete(self, run_id: str) -> bool:
        """Remove a run and its saved model files (only files under the app's own folder); False if unknown."""
        run = self.get(run_id)
        if run is None or run.snapshot:  # the snapshot's runs are part of the repository
            return False
        with self._connect() as connection:
            connection.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        artifacts = (workspace() / "artifacts").resolve()
        folder = Path(run.artifact_path).resolve() if run.artifact_path else None
        if folder and folder.parent == artifacts:  # never a path outside it, whatever the record says
            shutil.rmtree(folder, ignore_errors=True)
        return True

    def get(self, run_id: str) -> Run | None:
        row = None
        if self.path.exists():
            with self._connect() as connection:
                row = connection.execute("SELECT record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _parsed(row[0]) if row else self._snapshot_runs().get(run_id)

    def _snapshot_runs(self) -> dict[str, Run]:
        shot = snapshot.load() if self.with_snapshot else None
        return _runs_of(shot) if shot else {}


@functools.lru_cache(maxsize=2)  # built once per snapshot file version, not at every get() and list()
def _runs_of(shot: snapshot.Snapshot) -> dict[str, Run]:
    """The snapshot's run records as Runs, marked as the snapshot's, with no model files here."""
    return {run_id: Run(**{**record, "artifact_path": None, "snapshot": shot.caption})
            for run_id, record in shot.runs.items()}


def _parsed(record: str) -> Run | None:
    """A stored record as a Run; None (and a warning) for one that is not a run, so one bad row hides no others."""
    try:
        return Run(**json.loads(record))
    except (ValueError, TypeError, KeyError, MicrobudgetError) as error:
        warnings.warn(f"a stored run record cannot be read ({error}); it is left in the store, unused")
        return None


def figures_of(task: str, flat: dict[str, Any]) -> Measured:
    """A stored row typed by its kind: an older record's missing figure is None, an unknown key joins the report."""
    kind = kinds.get(task)
    names = {f.name for f in fields(kind.Figures)} - {"report"}
    return kind.Figures(**{name: flat.get(name) for name in names},
                        report={key: value for key, value in flat.items() if key not in names})
