"""Compare: the Pareto frontier, the recommendation under limits, and the cost of serving."""

from __future__ import annotations

import pytest

from microbudget_core.labs.compare import (Candidate, Limits, candidates, comparison_rows, eval_sizes, measured_on,
                                     pareto_front, recommend, serving_cost)
from microbudget_core.figures import Measured
from microbudget_core.runs import Run, figures_of


def flat(accuracy: float, latency: float, size_mb: float, throughput: float = 100.0) -> dict:
    return {"accuracy": accuracy, "latency_ms_p50": latency, "size_bytes": size_mb * 1e6,
            "throughput_per_s": throughput}


def metrics(accuracy: float, latency: float, size_mb: float, **more) -> Measured:
    return figures_of("text-classification", {**flat(accuracy, latency, size_mb), **more})


def candidate(name: str, accuracy: float, latency: float, size_mb: float, original: bool = False) -> Candidate:
    return Candidate(name, "m", "original" if original else "t", metrics(accuracy, latency, size_mb),
                     None if original else name)


def test_pareto_front_against_hand_checked_points():
    # cost (lower is better), value (higher is better)
    costs = [1.0, 2.0, 3.0, 2.0, 4.0, 1.5]
    values = [0.5, 0.8, 0.9, 0.7, 0.9, 0.5]
    # (2, 0.7) loses to (2, 0.8); (4, 0.9) to (3, 0.9); (1.5, 0.5) to (1, 0.5)
    assert pareto_front(costs, values) == [True, True, True, False, False, False]


def test_pareto_front_keeps_duplicates_and_single_points():
    assert pareto_front([1.0], [0.5]) == [True]
    assert pareto_front([], []) == []
    assert pareto_front([1.0, 1.0, 2.0], [0.5, 0.5, 0.5]) == [True, True, False]
    # Equal cost: only the higher value survives; equal value: only the lower cost.
    assert pareto_front([1.0, 1.0], [0.4, 0.6]) == [False, True]
    assert pareto_front([3.0, 1.0], [0.6, 0.6]) == [False, True]


def test_recommend_picks_the_most_accurate_run_within_every_limit():
    found = [candidate("original", 0.82, 20.0, 90.0, original=True), candidate("int8", 0.81, 8.0, 24.0),
             candidate("half", 0.815, 15.0, 45.0), candidate("2-bit", 0.70, 7.0, 10.0)]
    pick = recommend(found, Limits(max_size_mb=50, max_latency_ms=16))
    assert pick.best.name == "half" and "Ship half" in pick.message
    assert recommend(found, Limits(max_size_mb=30, max_accuracy_drop_pt=1.5)).best.name == "int8"
    assert recommend(found, Limits()).best.name == "original"  # no limits: the most accurate


def test_recommend_ties_go_to_the_faster_then_the_smaller():
    found = [candidate("a", 0.8, 10.0, 20.0), candidate("b", 0.8, 5.0, 30.0), candidate("c", 0.8, 5.0, 25.0)]
    assert recommend(found, Limits()).best.name == "c"


def test_recommend_says_which_limit_nothing_meets_and_how_close_the_nearest_comes():
    found = [candidate("original", 0.82, 20.0, 90.0, original=True), candidate("int8", 0.81, 8.0, 24.0)]
    pick = recommend(found, Limits(max_size_mb=20))
    assert pick.best is None
    assert "No run meets the size limit" in pick.message and "int8" in pick.message
    assert pick.shortfalls == {"max_size_mb": pytest.approx(4.0)}
    # Each limit met by one run, never both at once.
    pick = recommend(found, Limits(max_latency_ms=10, min_accuracy=0.815))
    assert pick.best is None and "no run meets all of them" in pick.message
    assert recommend([], Limits()).best is None


def test_serving_cost_arithmetic():
    cost = serving_cost(throughput_per_s=100.0, price_per_hour=0.36, requests_per_s=250.0)
    # 360,000 predictions an hour for $0.36: $1 per million; 250/s needs 3 instances, 730 h a month.
    assert cost.per_million == pytest.approx(1.0)
    assert cost.instances == 3 and cost.per_month == pytest.approx(3 * 0.36 * 730)
    assert serving_cost(1000.0, 0.1, 0.5).instances == 1
    with pytest.raises(ValueError, match="throughput must be positive"):
        serving_cost(0.0)


def test_candidates_hold_one_original_per_model_and_every_result(tmp_path):
    def run(model: str, accuracy: float, created: str) -> Run:
        return Run(model, "d", "text-classification", [{"technique": "dynamic-int8", "config": {}}],
                   flat(0.8, 20, 90), flat(accuracy, 10, 30), {}, str(tmp_path / "gone"), created_at=created)

    found = candidates([run("a", 0.7, "1"), run("a", 0.75, "2"), run("b", 0.6, "3")])
    assert [c.name for c in found if c.is_original] == ["a (original)", "b (original)"]
    assert sum(not c.is_original for c in found) == 3
    assert all(c.artifact == "missing" for c in found if not c.is_original)  # the artifact folder does not exist


def test_comparison_rows_mark_each_frontier_and_price_each_row():
    found = [candidate("original", 0.82, 20.0, 90.0, original=True), candidate("int8", 0.81, 8.0, 24.0),
             candidate("worse", 0.80, 9.0, 20.0)]
    rows = comparison_rows(found, price_per_hour=0.36, requests_per_s=50)
    assert [r.pareto_latency for r in rows] == [True, True, False]  # "worse" is slower and less accurate
    assert [r.pareto_size for r in rows] == [True, True, True]  # ...but the smallest
    assert rows[1].cost_per_million == pytest.approx(1.0)  # 100 per second at $0.36 an hour
    assert rows[0].artifact == "original"


def test_only_runs_measured_on_the_same_eval_examples_are_compared():
    def run(eval_examples: int) -> Run:
        result = {**flat(0.8, 10, 30), "eval_examples": eval_examples}
        return Run("m", "d", "text-classification", [], result, result, {})

    runs = [run(300), run(1000), run(1000), run(300)]
    assert eval_sizes(runs) == [1000, 300]
    assert [r.result.eval_examples for r in measured_on(runs)] == [1000, 1000]  # the largest by default
    assert len(measured_on(runs, 300)) == 2 and measured_on([], None) == []


def speech_candidate(name: str, wer: float, latency: float, size_mb: float, original: bool = False) -> Candidate:
    return Candidate(name, "whisper", "original" if original else "t",
                     figures_of("speech-recognition", {"wer": wer, "latency_ms_p50": latency, "size_bytes": size_mb * 1e6,
                                                       "throughput_per_s": 3.0}),
                     None if original else name)


def test_speech_runs_rank_by_the_lowest_word_error_rate():
    found = [speech_candidate("original", 0.077, 350, 156, original=True), speech_candidate("int8", 0.066, 170, 66),
             speech_candidate("student", 0.09, 120, 120), speech_candidate("worse", 0.20, 400, 160)]
    assert recommend(found, Limits()).best.name == "int8"  # the lowest WER wins, not the highest
    assert recommend(found, Limits(max_latency_ms=150)).best.name == "student"
    # WER rise against the original: the student's 1.3 pt is within 2, not within 1
    assert recommend(found, Limits(max_latency_ms=150, max_accuracy_drop_pt=2)).best.name == "student"
    assert recommend(found, Limits(max_latency_ms=150, max_accuracy_drop_pt=1)).best is None
    assert "WER 6.6%" in recommend(found, Limits()).message
    rows = comparison_rows(found)
    assert [r.pareto_latency for r in rows] == [False, True, True, False]  # "worse" is slower and worse
    assert rows[1].wer == 0.066 and rows[1].accuracy is None


BUSY = {"speed_check": {"unstable": True, "reasons": ["other processes used 1.10 CPU cores during the timing"]}}
QUIET = {"speed_check": {"unstable": False, "reasons": []}}


def test_a_pick_that_leans_on_an_unstable_speed_says_so():
    original = candidate("original", 0.82, 20.0, 90.0, original=True)
    fast_but_busy = Candidate("int8", "m", "t", metrics(0.81, 8.0, 24.0, **BUSY), "int8")
    steady = Candidate("half", "m", "t", metrics(0.815, 15.0, 45.0, **QUIET), "half")
    # The latency limit was judged on the busy run's speed: the pick says so, naming it.
    pick = recommend([original, fast_but_busy, steady], Limits(max_latency_ms=16))
    assert pick.best.name == "half" and "Caution: the speed of int8 was measured on a busy machine" in pick.message
    # Nothing judged on speed and a quiet pick: no caveat; a pick whose own speed is unstable: the caveat.
    assert "Caution" not in recommend([original, fast_but_busy, steady], Limits(max_size_mb=50)).message
    assert "speed of int8" in recommend([fast_but_busy], Limits()).message
    rows = comparison_rows([original, fast_but_busy, steady])
    assert [row.speed for row in rows] == ["not checked (older run)",
                                           "unstable: other processes used 1.10 CPU cores during the timing", "stable"]


def test_charts_carry_the_spread_and_mark_an_unstable_speed():
    from microbudget_core.plots import comparison_figure, pareto_figure

    timed = {"latency_ms_p25": 9.0, "latency_ms_p75": 12.0, "accuracy": 0.8}
    run = Run("m", "d", "text-classification", [{"technique": "onnx-int8-dynamic", "config": {}}],
              baseline={**flat(0.82, 10.0, 90.0), **timed, **QUIET},
              result={**flat(0.81, 2.0, 24.0), "latency_ms_p25": 1.5, "latency_ms_p75": 2.5, **BUSY},
              ratios={"size": 3.75, "latency": 5.2, "latency_low": 4.8, "latency_high": 5.5})
    figure = comparison_figure(run)
    latency = figure.data[1]
    assert list(latency.error_y.array) == [2.0, 0.5] and list(latency.error_y.arrayminus) == [1.0, 0.5]
    assert list(latency.marker.pattern.shape) == ["", "/"]  # the busy row's speed hatched, the original's not
    assert list(figure.data[0].marker.pattern.shape) == ["", ""]  # size is not a speed
    title = figure.layout.annotations[1].text
    assert "5.20x faster (4.80-5.50) ⚠ unstable" in title  # the paired ratio, not 10 / 2
    pareto = pareto_figure(candidates([run]))
    symbols = {trace.name: list(trace.marker.symbol) for trace in pareto.data if trace.mode == "markers"}
    assert symbols["original"][0] == "star" and symbols["onnx-int8-dynamic"][0] == "circle-open"


def test_a_lineup_draws_speed_spreads_and_marks_unstable_rows():
    from dataclasses import dataclass

    from microbudget_core.plots import lineup_figure

    @dataclass
    class Row:
        model: str
        size_mb: float
        p50_ms: float
        p50_ms_p25: float
        p50_ms_p75: float
        speed: str

    rows = [Row("teacher", 400.0, 40.0, 38.0, 45.0, "stable"), Row("student", 90.0, 8.0, 7.0, 8.5, "unstable: busy")]
    figure = lineup_figure(rows, panels=[("size_mb", "Size", "MB"), ("p50_ms", "Latency", "ms")])
    size, latency = figure.data
    assert list(latency.x) == ["teacher", "student ⚠"]
    assert list(latency.error_y.array) == [5.0, 0.5] and list(latency.error_y.arrayminus) == [2.0, 1.0]
    assert list(latency.marker.pattern.shape) == ["", "/"] and list(size.marker.pattern.shape) == ["", ""]
    assert size.error_y.array is None  # a size has no spread
