"""The committed results snapshot: it loads with this code, holds every lab of the talk, and its numbers agree."""

from __future__ import annotations

import pytest

from microbudget_core import kinds, labs, snapshot
from microbudget_core.labs import talk
from microbudget_core.runs import RunStore


@pytest.fixture
def committed(monkeypatch: pytest.MonkeyPatch) -> snapshot.Snapshot:
    monkeypatch.delenv("MICROBUDGET_SNAPSHOT")  # the repository's own (tests turn it off elsewhere)
    shot = snapshot.load()
    assert shot is not None and not snapshot.problem()
    return shot


def test_the_committed_snapshot_is_small_and_says_where_it_was_measured(committed):
    assert (snapshot.COMMITTED / snapshot.FILE).stat().st_size <= snapshot.MAX_BYTES
    made = committed.provenance
    assert made["cpu"] and made["date"] and made["commit"] and made["command"] == talk.SNAPSHOT_COMMAND
    assert committed.caption.startswith(f"measured on {made['cpu']} on {made['date'][:10]}")


def test_every_lab_of_the_talk_plan_is_in_the_committed_snapshot(committed):
    plan = talk.last_plan()
    assert plan == talk.Plan(**{**committed.provenance["plan"], **{
        name: tuple(committed.provenance["plan"][name]) for name in ("architectures", "speech_rows")}})
    for lab, key, _ in talk._jobs(plan):
        kept = labs.recall(lab, key)
        assert kept is not None, (lab, key)
        assert "runs" not in kept or labs.recall_runs(lab, key)[0], (lab, key)  # every run it names is there
    for number in range(len(talk.STEPS)):
        assert talk.slide(number, plan).figures, talk.STEPS[number].title


def test_each_stored_row_s_ratios_agree_with_its_own_metrics(committed):
    runs = RunStore().list(quality=None)
    assert len(runs) == len(committed.runs) and all(run.snapshot for run in runs)
    for run in runs:
        assert run.ratios["size"] == pytest.approx(run.baseline.size_bytes / run.result.size_bytes), run.label
        for speed in ("latency", "throughput"):  # timed side by side: the median ratio inside its spread
            if f"{speed}_low" in run.ratios:
                assert run.ratios[f"{speed}_low"] <= run.ratios[speed] <= run.ratios[f"{speed}_high"], run.label
        for name, value in kinds.get(run.task).quality_ratio(run.baseline, run.result).items():
            assert run.ratios[name] == pytest.approx(value), (run.label, name)
