"""The results snapshot committed in the repository: what every page opens on before anything is measured here.

`python -m microbudget_core snapshot` (after `warm`) writes it (labs.talk.take_snapshot); `labs.recall` and
`RunStore` read it where the data folder has nothing of their own, so a result measured here always wins.
Reading it never writes to the data folder. MICROBUDGET_SNAPSHOT names another folder, or "off" for none.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .support.atomic import write_atomically

SCHEMA = 1  # bump when the layout changes: an older or newer snapshot is then ignored, with one notice
FILE = "results.json"
COMMITTED = Path(__file__).resolve().parent.parent / "snapshot"
MAX_BYTES = 5_000_000


@dataclass(frozen=True, eq=False)  # one object per file version (see _read): hashed by identity
class Snapshot:
    provenance: dict[str, Any]  # cpu, date, commit, command, plan
    labs: dict[str, Any]  # entry_key(lab, key) -> what the lab recorded
    runs: dict[str, dict[str, Any]]  # run id -> run record (Run.to_json)
    durations: dict[str, float]  # job -> seconds it took when the snapshot was measured

    @property
    def caption(self) -> str:
        """Where and when it was measured, for the pages' labels."""
        made = self.provenance
        return f"measured on {made['cpu']} on {made['date'][:10]} with `{made['command']}`"


def folder() -> Path | None:
    """The snapshot's folder: $MICROBUDGET_SNAPSHOT, else the repository's; None when turned off."""
    chosen = os.environ.get("MICROBUDGET_SNAPSHOT")
    if chosen is None:
        return COMMITTED
    return Path(chosen) if chosen.strip() not in ("", "off") else None


def entry_key(lab: str, key: list[str]) -> str:
    return json.dumps([lab, *key])


def load() -> Snapshot | None:
    """The snapshot, or None where there is none or it cannot be read (see `problem`)."""
    return _read_current()[0]


def problem() -> str:
    """Why the snapshot was ignored ("" when it was read, or there is none): the one notice the app shows."""
    return _read_current()[1]


def write(where: Path, provenance: dict[str, Any], labs: list[dict[str, Any]], runs: list[dict[str, Any]],
          durations: dict[str, float]) -> Path:
    """Write a snapshot (one readable JSON file, replaced whole) into `where`; its path."""
    data = {"schema": SCHEMA, "provenance": provenance, "labs": labs, "runs": runs, "durations": durations}
    path = where / FILE
    write_atomically(path, json.dumps(data, indent=1, sort_keys=True).encode())
    return path


def _read_current() -> tuple[Snapshot | None, str]:
    where = folder()
    path = where / FILE if where else None
    if path is None or not path.exists():
        return None, ""
    return _read(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)  # per file version: read (and warned about) once
def _read(path: Path, version: int) -> tuple[Snapshot | None, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            raise ValueError(f"it has schema {data.get('schema')!r}; this code reads schema {SCHEMA}")
        return Snapshot(data["provenance"], {entry_key(e["lab"], e["key"]): e["value"] for e in data["labs"]},
                        {r["run_id"]: r for r in data["runs"]}, dict(data.get("durations", {}))), ""
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
        message = (f"The results snapshot {path} cannot be read ({error}); pages open without it. "
                   "Make a new one: `make warm`, then `python -m microbudget_core snapshot`.")
        warnings.warn(message)
        return None, message
