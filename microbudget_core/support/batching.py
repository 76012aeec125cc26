"""Many inputs through a model a batch at a time, texts of similar length together, rows back in input order."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .progress import Progress, no_progress


def in_length_order(inputs: Sequence[Any], compute: Callable[[list[Any]], np.ndarray], batch_size: int = 64,
                    progress: Progress = no_progress, what: str = "examples") -> np.ndarray:
    """`compute(batch)` (one float row per input) over every batch: texts sorted by length share a batch, so
    little compute goes to padding; the rows come back in the order of `inputs`."""
    order = (np.argsort([len(x) for x in inputs], kind="stable") if inputs and isinstance(inputs[0], str)
             else np.arange(len(inputs)))
    rows = []
    for start in range(0, len(order), batch_size):
        rows.append(compute([inputs[i] for i in order[start:start + batch_size]]))
        done = min(len(order), start + batch_size)
        progress(done / len(order), f"{what}: {done:,} of {len(order):,}")
    result = np.empty((len(order), rows[0].shape[-1]), dtype=np.float32)
    result[order] = np.concatenate(rows)
    return result
