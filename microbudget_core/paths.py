"""Where microbudget keeps its files: cached baselines, run artifacts, the runs store."""

import os
from pathlib import Path


def home() -> Path:
    """The data folder: $MICROBUDGET_HOME, else ~/.cache/microbudget."""
    root = os.environ.get("MICROBUDGET_HOME") or Path.home() / ".cache" / "microbudget"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
