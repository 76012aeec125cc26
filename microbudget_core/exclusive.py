"""One model job at a time in this process.

Why a lock: transformers' `from_pretrained` patches torch.nn for the whole process while it builds a model
(new parameters go to the meta device, init functions are skipped), so a job building modules in another
thread at that moment gets empty weights. Two browser sessions, or a rerun and the run it replaced, are two
threads. On 2 CPU cores two jobs would also only slow each other and skew each other's latencies.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable, TypeVar

_LOCK = threading.RLock()  # re-entrant: run_pipeline calls load_model
F = TypeVar("F", bound=Callable)


def one_at_a_time(function: F) -> F:
    """Run `function` holding the process-wide model lock; a `progress=` keyword hears when it has to wait."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if not _LOCK.acquire(blocking=False):
            if kwargs.get("progress"):
                kwargs["progress"](0.0, "Waiting for another job in this app to finish (one at a time)")
            _LOCK.acquire()
        try:
            return function(*args, **kwargs)
        finally:
            _LOCK.release()

    return wrapper  # type: ignore[return-value]
