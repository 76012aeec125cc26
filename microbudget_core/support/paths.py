"""Where microbudget keeps its files.

`home()` holds what any user may share: cached baselines, features, converted models. `workspace()` holds one
user's own: runs, their artifacts, lab results, uploads. It is `home()` itself, except on a shared server in
private mode (MICROBUDGET_PRIVATE_SESSIONS=1, the Docker image's default), where each browser session gets a
folder of its own, seeded with the shared results (those `warm` computed) and removed a day after it was last used.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from .atomic import folder_atomically

SESSIONS = "sessions"
SESSION_DAYS = 1.0  # a private workspace unused this long is removed
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_session: ContextVar[str | None] = ContextVar("microbudget_session", default=None)


PERSISTENT = Path("/data")  # a Hugging Face Space's persistent storage, where it is turned on


def home() -> Path:
    """The data folder: $MICROBUDGET_HOME, else PERSISTENT/microbudget where that storage exists and is writable
    (results and caches then survive a Space's restart), else ~/.cache/microbudget."""
    persistent = PERSISTENT.is_dir() and os.access(PERSISTENT, os.W_OK)
    root = (os.environ.get("MICROBUDGET_HOME")
            or (PERSISTENT / "microbudget" if persistent else Path.home() / ".cache" / "microbudget"))
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def workspace() -> Path:
    """This user's folder: runs, artifacts, lab results, uploads (see the module's docstring)."""
    session = _session.get()
    return home() / SESSIONS / session if session else home()


def private_sessions() -> bool:
    """Whether the operator keeps each browser session's runs and uploads to itself."""
    return os.environ.get("MICROBUDGET_PRIVATE_SESSIONS", "0") == "1"


def new_session_id() -> str:
    """A private workspace's id: random, unguessable, safe in a URL and as a folder name."""
    return secrets.token_urlsafe(16)


def is_session_id(text: str) -> bool:
    """Whether `text` can name a workspace: ASCII letters, digits, - and _ only (nothing like ../ or /)."""
    return bool(SESSION_ID.fullmatch(text))


def session_exists(session: str) -> bool:
    """Whether a private workspace with this id is kept (not expired, not made up)."""
    return is_session_id(session) and (home() / SESSIONS / session).is_dir()


@contextmanager
def session_workspace(session: str) -> Iterator[Path]:
    """Within the block, `workspace()` is the session's own folder, created from the shared results if new."""
    if not is_session_id(session):  # it becomes a folder name
        raise ValueError(f"not a session id: {session!r}")
    folder = home() / SESSIONS / session
    if not folder.exists():
        _remove_stale_sessions()
        _seed(folder)
    os.utime(folder)  # used now: kept for another SESSION_DAYS
    token = _session.set(session)
    try:
        yield folder
    finally:
        _session.reset(token)


def _seed(folder: Path) -> None:
    """A new workspace starts with a copy of the shared runs store and lab results; their artifacts stay shared."""
    with folder_atomically(folder) as partial:
        partial.mkdir(parents=True)
        shared = home() / "runs.sqlite"
        if shared.exists():
            # SQLite's own backup: a consistent copy even while another process writes (WAL mode).
            try:
                with sqlite3.connect(shared, timeout=30) as source, sqlite3.connect(partial / "runs.sqlite") as copy:
                    source.backup(copy)
            except sqlite3.DatabaseError:  # a damaged shared store is not copied: the workspace starts without it
                (partial / "runs.sqlite").unlink(missing_ok=True)
        if (home() / "lab-results").exists():
            shutil.copytree(home() / "lab-results", partial / "lab-results", dirs_exist_ok=True)


def _remove_stale_sessions() -> None:
    now = time.time()
    for folder in (home() / SESSIONS).glob("*"):
        if now - folder.stat().st_mtime > SESSION_DAYS * 86400:
            shutil.rmtree(folder, ignore_errors=True)
