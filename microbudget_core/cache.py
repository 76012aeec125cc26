"""Arrays computed once from a model and a dataset (frozen features, a teacher's logits), cached on disk."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .paths import home


def weights_digest(model: torch.nn.Module, skip: Callable[[str], bool] = lambda name: False) -> str:
    """A sha256 of the model's weights (those `skip` does not name; an ONNX graph's bytes): a retrained model
    gets a new key."""
    digest = hashlib.sha256()
    if hasattr(model, "onnx_bytes"):
        digest.update(model.onnx_bytes)
        return digest.hexdigest()
    for name, tensor in model.state_dict().items():
        if not skip(name):
            digest.update(name.encode() + tensor.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cached_array(kind: str, name: str, key: list[Any], compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
    """`compute()` stored under home()/kind, keyed by `key` (JSON); also whether it came from the cache."""
    readable = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[-40:]
    path = home() / kind / f"{readable}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as stored:
            return stored["array"], True
    array = compute()
    _write_atomically(path, array)
    return array, False


def _write_atomically(path: Path, array: np.ndarray) -> None:
    """Write to a private name, then rename: an interrupted run leaves no entry, whole or half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.partial-{os.getpid()}.npz")
    try:
        with open(partial, "wb") as file:
            np.savez(file, array=array)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
