"""One job at a time: first come first served, each waiter told its place, a waiter that leaves gives it up."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import HANG_GUARD_S
from microbudget_core.support.exclusive import jobs_ahead, one_at_a_time

finished: list[str] = []
gates = {"first": threading.Event(), "second": threading.Event()}  # these jobs wait for their gate to open


@one_at_a_time
def job(name: str, progress=None) -> None:
    if name in gates:
        gates[name].wait()
    finished.append(name)


@pytest.fixture(autouse=True)
def open_gates_after():
    yield
    for gate in gates.values():
        gate.set()  # a failed test leaves no job at its gate, holding the queue for the tests after it


@one_at_a_time
def outer(progress=None) -> str:
    return inner()


@one_at_a_time
def inner(progress=None) -> str:
    return "nested"


def _start(name: str, heard: list[str]) -> threading.Thread:
    thread = threading.Thread(target=job, args=(name,), kwargs={"progress": lambda f, m, **_: heard.append(m)})
    thread.start()
    return thread


def _until(condition) -> None:
    deadline = time.time() + HANG_GUARD_S
    while not condition():
        assert time.time() < deadline
        time.sleep(0.01)


def test_jobs_run_in_arrival_order_and_each_waiter_hears_its_place():
    finished.clear()
    for gate in gates.values():
        gate.clear()
    heard: dict[str, list[str]] = {name: [] for name in ("first", "second", "third")}
    threads = [_start("first", heard["first"])]
    _until(lambda: jobs_ahead() == 1)
    threads.append(_start("second", heard["second"]))
    _until(lambda: jobs_ahead() == 2)
    threads.append(_start("third", heard["third"]))
    _until(lambda: jobs_ahead() == 3 and heard["third"])
    assert "1 job ahead" in heard["second"][0] and "2 jobs ahead" in heard["third"][0]
    gates["first"].set()
    _until(lambda: any("1 job ahead" in message for message in heard["third"]))  # told again as the queue moved
    gates["second"].set()
    for thread in threads:
        thread.join(timeout=HANG_GUARD_S)
        assert not thread.is_alive()
    assert finished == ["first", "second", "third"] and jobs_ahead() == 0 and heard["first"] == []


def test_a_job_may_call_another_job():
    assert outer() == "nested" and jobs_ahead() == 0


def test_a_waiter_that_leaves_gives_up_its_place():
    finished.clear()
    gates["first"].clear()
    first = _start("first", [])
    _until(lambda: jobs_ahead() == 1)

    def leave(fraction, message, **_):
        raise KeyboardInterrupt("the page was stopped")  # as a stopped page's script thread would

    with pytest.raises(KeyboardInterrupt, match="the page was stopped"):
        job("leaver", progress=leave)
    assert jobs_ahead() == 1  # only the running job
    gates["first"].set()
    first.join(timeout=HANG_GUARD_S)
    assert not first.is_alive()
    job("after")
    assert finished == ["first", "after"]
