"""The exceptions users see: what was wrong and what to do about it."""

from __future__ import annotations

import time
from pathlib import Path


class MicrobudgetError(Exception):
    """A problem with the user's input or environment, phrased for the user.

    The CLI prints it as one line and exits with code 2; the app shows it in one
    error box. Anything else escaping the core is a bug.
    """

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} {fix}".strip())


class DamagedFile(Exception):
    """A file microbudget keeps (the runs store, a lab's results) that cannot be read: damaged, or not ours.

    Not a MicrobudgetError, so no page or lab mistakes it for bad input and carries on: it stops the command
    (CLI: exit 2, with --move-damaged to move it aside) or the page (app.py offers the same move). The file is
    never deleted: `move_aside` renames it.
    """

    def __init__(self, path: Path, what: str, why: str):
        self.path, self.problem = path, f"The {what} {path} cannot be read ({why})."
        self.fix = f"It can be moved aside (kept as {path.name}.damaged-<time>: nothing is deleted) for a new one."
        super().__init__(f"{self.problem} {self.fix}")


def move_aside(path: Path) -> Path:
    """Rename a damaged file (and SQLite's -wal / -shm files beside it) to NAME.damaged-<time>; return the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    for companion in ("-wal", "-shm"):
        extra = path.with_name(path.name + companion)
        if extra.exists():
            extra.rename(target.with_name(target.name + companion))
    path.rename(target)
    return target
