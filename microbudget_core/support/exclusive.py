"""One model job at a time in this process, first come first served, with each waiter told its place.

Why a lock: transformers' `from_pretrained` patches torch.nn for the whole process while it builds a model
(new parameters go to the meta device, init functions are skipped), so a job building modules in another
thread at that moment gets empty weights. Two browser sessions, or a rerun and the run it replaced, are two
threads. On 2 CPU cores two jobs would also only slow each other and skew each other's latencies. On a
shared Space, strangers' jobs therefore queue, and each sees how many jobs are ahead of it.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)

# Hand-written rather than a threading.Lock: a Lock neither grants in arrival order nor tells a waiter its place.
_state = threading.Condition()
_waiting: deque[int] = deque()  # thread ids, in arrival order
_owner: int | None = None  # the thread running a job
_depth = 0  # re-entrant: run_pipeline calls load_model


def one_at_a_time(function: F) -> F:
    """Run `function` alone, after the jobs that came first; a `progress=` keyword hears its place meanwhile."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        _enter(kwargs.get("progress"))
        try:
            return function(*args, **kwargs)
        finally:
            _leave()

    return wrapper  # type: ignore[return-value]


def jobs_ahead() -> int:
    """How many jobs a job arriving now would wait for (the running one and the queue)."""
    with _state:
        return len(_waiting) + (_owner is not None)


def _enter(progress: Callable | None) -> None:
    global _owner, _depth
    me = threading.get_ident()
    with _state:
        if _owner == me:
            _depth += 1
            return
        _waiting.append(me)
    told = None
    try:
        while True:
            with _state:
                if _owner is None and _waiting[0] == me:
                    _waiting.popleft()
                    _owner, _depth = me, 1
                    return
                ahead = _waiting.index(me) + (_owner is not None)
            if progress and ahead != told:  # outside the condition: a page stopped here must not hold it
                progress(0.0, f"Queued: {ahead} job{'s' if ahead > 1 else ''} ahead of yours (one runs at a time)")
                told = ahead
            with _state:
                _state.wait(timeout=0.5)
    except BaseException:  # the waiter left (a stopped page): give up its place
        with _state:
            if me in _waiting:
                _waiting.remove(me)
            _state.notify_all()
        raise


def _leave() -> None:
    global _owner, _depth
    with _state:
        _depth -= 1
        if _depth == 0:
            _owner = None
            _state.notify_all()
