"""Arrays computed once from a model and a dataset (frozen features, a teacher's logits), cached on disk."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from typing import Any, Callable

import numpy as np

from . import devices
from .support.atomic import write_atomically
from .support.errors import move_aside
from .support.paths import home


def cached_array(kind: str, name: str, key: list[Any], compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
    """`compute()` stored under home()/kind, keyed by `key` (JSON); also whether it came from the cache."""
    readable = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[-40:]
    path = home() / kind / f"{readable}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]}.npz"
    with devices.main_first():  # several processes: the main one computes and writes, the others then read
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as stored:
                    array = stored["array"]
                os.utime(path)  # used now: `clean` removes the least recently used entries first
                return array, True
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # damaged since written
                warnings.warn(f"the cache entry {path.name} is damaged ({error}); moved aside to "
                              f"{move_aside(path).name}, computed again")
        array = compute()
        write_atomically(path, lambda file: np.savez(file, array=array))
        return array, False

