"""The runs each lab showed last, per model and dataset: a page opens on them, never empty after one run."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .paths import home


def remember(lab: str, key: list[str], run_ids: list[str]) -> None:
    """Record `run_ids` as the lab's latest for `key` (written whole, then renamed: never half a file)."""
    path = _file(lab, key)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(run_ids))
    partial.replace(path)


def recall(lab: str, key: list[str]) -> list[str]:
    """The run ids the lab last recorded for `key`; none yet is an empty list."""
    path = _file(lab, key)
    return json.loads(path.read_text()) if path.exists() else []


def _file(lab: str, key: list[str]) -> Path:
    folder = home() / "labs"
    folder.mkdir(exist_ok=True)
    return folder / f"{lab}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]}.json"
