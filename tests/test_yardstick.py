"""The yardstick on a fake machine: pairing survives a load swing, and a busy machine is timed again, then flagged."""

from __future__ import annotations

import pytest

from microbudget_core import yardstick


class FakeMachine(yardstick.Machine):
    """A clock that only the models' calls move, a load that multiplies their time, and scripted machine readings
    per window (other processes' CPU cores, calibration seconds)."""

    def __init__(self, others: list[float] | None = None, calibrations: list[float | tuple] | None = None,
                 swings: dict[int, float] | None = None):
        self.time, self.load, self.order = 0.0, 1.0, []
        self.swings = swings or {}  # from the n-th call on (warm-ups counted), the load becomes this
        self.others = others or [0.0]  # per window; the last repeats
        self.calibrations = calibrations or [0.01]  # per window, or (before, after) of a window
        self.calibrated, self.busy = 0, 0.0

    def clock(self) -> float:
        return self.time

    def now(self) -> float:
        return self.time

    def busy_seconds(self) -> float:
        return self.busy

    def own_seconds(self) -> float:
        return 0.0

    @property
    def window(self) -> int:
        """Which window is being timed: the calibration runs before and after each."""
        return self.calibrated // 2

    def calibrate(self) -> float:
        seconds = self.calibrations[min(self.window, len(self.calibrations) - 1)]
        seconds = seconds[self.calibrated % 2] if isinstance(seconds, tuple) else seconds
        self.calibrated += 1
        return seconds

    def best_calibration(self, seconds: float, threads: int) -> float:
        return 0.01

    def load_average(self) -> float:
        return 0.5

    def sleep(self, seconds: float) -> None:
        pass

    def model(self, name: str, seconds: float, units: int = 1) -> yardstick.Call:
        """A call of a model that takes `seconds` times the current load, and bills the window's other processes."""
        def call() -> int:
            self.order.append(name)
            self.load = self.swings.get(len(self.order), self.load)
            spent = seconds * self.load
            self.time += spent
            self.busy += spent * self.others[min(self.window, len(self.others) - 1)]
            return units
        return call


def work(machine: FakeMachine, name: str, seconds: float, blocks: int = 6) -> yardstick.Work:
    return {"latency": [[machine.model(name, seconds)] for _ in range(blocks)]}


def test_blocks_alternate_and_the_ratio_survives_a_load_swing():
    # The machine is five times slower from the 8th call to the 12th (2 warm-up calls come first).
    machine = FakeMachine(swings={8: 5.0, 13: 1.0})
    window = yardstick.time_together([work(machine, "A", 0.010), work(machine, "B", 0.002)], warmup=1, threads=2,
                                     attempts=1, machine=machine)
    # One warm-up call each, then A B, B A, A B, ... over the same six inputs.
    assert machine.order == ["A", "B"] + ["A", "B", "B", "A"] * 3
    paired = yardstick.ratio(window.timings[0]["latency"], window.timings[1]["latency"])
    # The swing hit both models' blocks alike; the one pair it split (A quiet, B slow) is the outlier the median
    # leaves out.
    assert (paired.median, paired.low, paired.high, paired.pairs) == (pytest.approx(5.0), pytest.approx(5.0),
                                                                      pytest.approx(5.0), 6)
    medians = [sorted(yardstick.flat(timing["latency"]))[2:4] for timing in window.timings]
    assert sum(medians[0]) / sum(medians[1]) < 2  # what comparing the two models' separate medians says


def test_a_quiet_window_is_kept_at_once():
    machine = FakeMachine(others=[0.0])
    window = yardstick.time_together([work(machine, "A", 0.1), work(machine, "B", 0.05)], 1, 2, machine=machine)
    check = window.check
    assert not check.unstable and check.reasons == [] and check.attempts == 1
    assert check.others_cores == 0.0 and check.calibration_x == 1.0 and check.spread == 0.0 and check.threads == 2


def test_a_busy_window_is_timed_again_and_the_calm_one_kept():
    machine = FakeMachine(others=[1.5, 0.0])
    window = yardstick.time_together([work(machine, "A", 0.1)], 1, 2, machine=machine)
    assert window.check.attempts == 2 and not window.check.unstable
    assert window.check.others_cores == 0.0


def test_a_machine_busy_throughout_is_flagged_with_the_reason():
    machine = FakeMachine(others=[1.2])
    window = yardstick.time_together([work(machine, "A", 0.1), work(machine, "B", 0.1)], 1, 2, attempts=3,
                                     machine=machine)
    assert window.check.unstable and window.check.attempts == 3
    assert window.check.reasons == ["other processes used 1.20 CPU cores during the timing"]


def test_a_slow_calibration_and_a_wide_spread_are_reasons_too():
    machine = FakeMachine(calibrations=[0.02])
    noisy = {"latency": [[machine.model("B", seconds)] for seconds in (0.1, 0.4, 0.1, 0.4)]}
    window = yardstick.time_together([work(machine, "A", 1.0, blocks=4), noisy], 1, 2, attempts=1, machine=machine)
    reasons = " | ".join(window.check.reasons)
    assert "calibration ran 2.0x slower" in reasons and "timed rounds varied" in reasons
    assert window.check.unstable


def test_a_cpu_slow_from_before_the_window_is_flagged_at_once_and_one_that_slowed_during_it_is_timed_again():
    machine = FakeMachine(calibrations=[0.02])  # 2x slower than its best before and after: a lasting slowdown
    window = yardstick.time_together([work(machine, "A", 0.1), work(machine, "B", 0.1)], 1, 2, machine=machine)
    assert window.check.unstable and window.check.attempts == 1
    assert window.check.reasons == ["a fixed CPU calibration ran 2.0x slower than this machine's best"]
    machine = FakeMachine(calibrations=[(0.01, 0.02), 0.01])  # slowed during the first window only
    window = yardstick.time_together([work(machine, "A", 0.1), work(machine, "B", 0.1)], 1, 2, machine=machine)
    assert not window.check.unstable and window.check.attempts == 2


def test_a_short_window_does_not_judge_other_processes_or_spread():
    machine = FakeMachine(others=[3.0])  # 3 cores busy, but over a window shorter than /proc/stat can tell
    noisy = {"latency": [[machine.model("B", seconds)] for seconds in (0.001, 0.004, 0.001, 0.004)]}
    window = yardstick.time_together([work(machine, "A", 0.001, blocks=4), noisy], 1, 2, machine=machine)
    assert window.check.others_cores is None and window.check.spread > yardstick.SPREAD_LIMIT
    assert not window.check.unstable and window.check.attempts == 1


def test_threads_never_exceed_the_free_cores():
    class Busy(FakeMachine):
        def cores(self) -> int:
            return 2

        def sleep(self, seconds: float) -> None:  # others use `self.others[0]` cores while we look
            self.time += seconds
            self.busy += seconds * self.others[0]
    assert yardstick.threads_for(2, Busy(others=[0.1])) == 2
    assert yardstick.threads_for(2, Busy(others=[0.9])) == 1  # one core taken: one thread
    assert yardstick.threads_for(2, Busy(others=[2.0])) == 1  # never none
    assert yardstick.threads_for(1, Busy(others=[0.0])) == 1
