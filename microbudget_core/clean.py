"""What the data folder holds, and keeping it bounded: orphans removed, and over a cap the least recently used
cache entries (a stored run's model only when asked: `runs=True`). `python -m microbudget_core clean`.

Every entry can be made again from the bundled assets (a cache) or is one run's model; the runs store, lab
results and uploads are never removed here.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .support.errors import DamagedFile
from .support.paths import SESSIONS, home
from .runs import RunStore

# Folder under the data folder -> the kind of entry its children are. Caches first: they are what a cap removes.
CACHES = {"baselines": "baselines", "features": "features", "teacher-logits": "teacher features",
          "speech-teacher": "teacher features", "speech-teacher-encoder": "teacher features",
          "speech-encoder": "teacher features", "models": "converted models", "speech": "spoken clips",
          "scratch": "scratch", "logs": "logs"}
KEPT = {"lab-results": "lab results", "uploads": "uploads"}  # the user's own: only their partial writes go
ARTIFACTS, SESSION = "run artifacts", "sessions"
PARTIAL = re.compile(r"\.partial-(\d+)")  # support/atomic.py's private names (with the writer's pid): an interrupted write
CAP_VARIABLE = "MICROBUDGET_MAX_GB"  # an operator's cap, kept by the app (the Space image sets one)


@dataclass
class Entry:
    kind: str
    path: Path
    size: int  # bytes
    last_used: float  # modification time: caches touch an entry each time they read it
    why: str = ""  # why it is removed (empty: kept)


def survey() -> list[Entry]:
    """Every entry of the data folder: cache entries, run artifacts, private sessions."""
    root = home()
    entries = [_entry(kind, path) for folder, kind in {**CACHES, **KEPT}.items() for path in _children(root / folder)]
    entries += [_entry(ARTIFACTS, path) for path in _children(root / "artifacts")]
    return entries + [_entry(SESSION, path) for path in _children(root / SESSIONS)]


def plan(entries: list[Entry], max_gb: float | None = None, runs: bool = False) -> list[Entry]:
    """The entries to remove: orphans, then (over `max_gb`) cache entries, least recently used first, and with
    `runs` stored runs' models too."""
    stored = _stored_run_ids()
    removed = [entry for entry in entries if _orphan(entry, stored)]
    if max_gb is not None:
        total = sum(entry.size for entry in entries) - sum(entry.size for entry in removed)
        evictable = sorted((entry for entry in entries if entry not in removed
                            and (entry.kind in CACHES.values() or (runs and entry.kind == ARTIFACTS))),
                           key=lambda entry: entry.last_used)
        for entry in evictable:
            if total <= max_gb * 1e9:
                break
            entry.why = f"least recently used, over the {max_gb:g} GB cap"
            removed.append(entry)
            total -= entry.size
    return removed


def remove(entries: list[Entry]) -> int:
    """Delete the planned entries; the bytes freed."""
    for entry in entries:
        if entry.path.is_dir():
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            entry.path.unlink(missing_ok=True)
    return sum(entry.size for entry in entries)


def within_cap() -> int:
    """Keep the data folder under the operator's cap (MICROBUDGET_MAX_GB; unset: no cap) by removing orphans and
    least recently used cache entries; the bytes freed."""
    cap = os.environ.get(CAP_VARIABLE)
    return remove(plan(survey(), float(cap))) if cap else 0


def folder_size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file() and not file.is_symlink())


def _children(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _entry(kind: str, path: Path) -> Entry:
    try:
        return Entry(kind, path, folder_size(path), path.stat().st_mtime)
    except FileNotFoundError:  # removed meanwhile by another process
        return Entry(kind, path, 0, time.time())


def _orphan(entry: Entry, stored: set[str] | None) -> bool:
    """A partial write whose writer is gone, or a run artifact no stored run names (`stored`: None where the
    store cannot be read, and then none is); says why in `entry.why`."""
    partial = PARTIAL.search(entry.path.name)
    if partial and not _running(int(partial.group(1))):
        entry.why = "left by an interrupted write"
    elif entry.kind == ARTIFACTS and stored is not None and entry.path.name not in stored:
        entry.why = "the model of a run no longer stored"
    return bool(entry.why)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _stored_run_ids() -> set[str] | None:
    """The ids of the runs in the shared store; None where it cannot be read."""
    store = home() / "runs.sqlite"
    if not store.exists():  # no store yet: none stored (and a dry run creates none)
        return set()
    try:
        return {run.run_id for run in RunStore(store).list(quality=None)}
    except DamagedFile:
        return None
