"""Talk mode with the network unplugged: `warm` fills every lab once, every page then opens on its results with
no button pressed, and the presenter view walks the steps and re-runs one live."""

from __future__ import annotations

import dataclasses

import errno
import json
import shutil
import socket
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from conftest import HANG_GUARD_S
from microbudget_core import labs, snapshot
from microbudget_core.support import cpu
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.labs import quantization, talk
from microbudget_core.runs import RunStore, load_run_model

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _unplug(patch: pytest.MonkeyPatch) -> None:
    """As with the cable out: names do not resolve and connections beyond this machine fail. The Hub libraries
    are not told to stay offline, so nothing passes only because it was asked not to try."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        return real_connect(self, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host not in LOOPBACK and host is not None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    patch.delenv("HF_HUB_OFFLINE", raising=False)
    patch.setattr(socket.socket, "connect", connect)
    patch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def unplugged(monkeypatch: pytest.MonkeyPatch) -> None:
    _unplug(monkeypatch)


@pytest.fixture(scope="module")
def warmed(tmp_path_factory, tiny_text_model, tiny_gguf_llama, sentiment_csv, tiny_whisper,
           spoken_folder) -> tuple[Path, talk.Plan, list, float]:
    """One warm of a tiny plan, unplugged, in a data folder of its own: (folder, plan, what warm reported, the
    seconds it took)."""
    plan = talk.Plan(model=str(tiny_text_model), dataset=f"csv:{sentiment_csv}", llm=str(tiny_gguf_llama),
                     eval_limit=40, llm_texts=16, llm_levels=("GGUF Q4_K_M",), live_examples_per_class=16,
                     architectures=(str(tiny_text_model),),
                     speech_model=str(tiny_whisper), speech_dataset=f"audio:{spoken_folder}",
                     speech_rows=("int8 (PyTorch)",), vision_model="", teacher="")
    home = tmp_path_factory.mktemp("warmed-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MICROBUDGET_HOME", str(home))
        _unplug(patch)
        started = time.perf_counter()
        report = talk.warm(plan)
    return home, plan, report, time.perf_counter() - started


@pytest.fixture
def warmed_home(warmed, tmp_path, monkeypatch) -> talk.Plan:
    """A copy of the warmed data folder as this test's own (a test may add runs)."""
    home, plan, _, _ = warmed
    shutil.copytree(home, tmp_path / "home")
    monkeypatch.setenv("MICROBUDGET_HOME", str(tmp_path / "home"))
    return plan


def test_warm_computes_every_lab_once_then_keeps_them(warmed, monkeypatch, unplugged):
    home, plan, report, seconds = warmed
    assert [w.lab for w in report] == [labs.TRANSFER, labs.DISTILLATION, labs.PRUNING, labs.QUANTIZATION,
                                       labs.ARCHITECTURES,
                                       labs.CURVE, labs.LLM_LEVELS, labs.SPECIALIST, labs.SPEECH]
    assert all(w.status == "computed" for w in report), report
    assert 0 < min(w.seconds for w in report) and sum(w.seconds for w in report) <= seconds  # each lab's own time
    monkeypatch.setenv("MICROBUDGET_HOME", str(home))
    assert talk.last_plan() == plan
    assert {w.status for w in talk.warm(plan)} == {"kept"}


def test_warm_also_runs_the_image_pages_on_photos_where_the_labs_read_text(tiny_text_model, sentiment_csv):
    plan = talk.Plan(model=str(tiny_text_model), dataset=f"csv:{sentiment_csv}")
    jobs = [(lab, key) for lab, key, _ in talk._jobs(plan)]
    # The large teacher distils for a text plan (MiniLM-L6 its student); without one, the labs' model teaches.
    assert plan.teacher == "mpnet-base" and (labs.DISTILLATION, ["mpnet-base", plan.dataset]) in jobs
    assert (labs.DISTILLATION, [plan.model, plan.dataset]) in [
        (lab, key) for lab, key, _ in talk._jobs(dataclasses.replace(plan, teacher=""))]
    assert (labs.TRANSFER, ["mobilenet-v2", "photos-12"]) in jobs and (labs.ARCHITECTURES, ["photos-12"]) in jobs
    assert (labs.TRANSFER, ["mobilenet-v2", "photos-12"]) not in [
        (lab, key) for lab, key, _ in talk._jobs(dataclasses.replace(plan, vision_model=""))]


def test_warm_recomputes_a_lab_whose_run_was_deleted(warmed_home, unplugged):
    plan = warmed_home
    run = labs.recall_runs(labs.QUANTIZATION, [plan.model, plan.dataset])[0][0]
    assert RunStore().delete(run.run_id)
    again = {w.lab: w.status for w in talk.warm(plan)}
    assert again.pop(labs.QUANTIZATION) == "computed" and set(again.values()) == {"kept"}
    assert labs.recall_runs(labs.QUANTIZATION, [plan.model, plan.dataset])[0][0].run_id != run.run_id


def test_every_slide_has_a_headline_and_charts_with_data(warmed_home):
    for number, step in enumerate(talk.STEPS):
        shown = talk.slide(number, warmed_home)
        assert shown.title == step.title and shown.headline and shown.live
        assert shown.figures and all(trace.y is not None and len(trace.y) for figure in shown.figures
                                     for trace in figure.data), step.title
    assert talk.slide(0, warmed_home).headline.startswith("finetune-head of pretrained ")
    assert talk.slide(2, warmed_home).headline.startswith("Structured pruning of ")
    assert talk.slide(4, warmed_home).headline.startswith("Against fp32 (as loaded) ")
    assert "GGUF Q4_K_M" in talk.slide(4, warmed_home).headline  # the talk's LLM demo, on llama.cpp
    assert talk.slide(5, warmed_home).headline.startswith("Against the original (")  # the talk's Whisper demo
    assert "int8 (PyTorch)" in talk.slide(5, warmed_home).headline
    assert talk.slide(len(talk.STEPS) - 1, warmed_home).headline.startswith("At most 1 pt of accuracy lost: ")


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _has_data(chart: dict) -> bool:
    return any(len(trace.get("y") or trace.get("z") or []) for trace in chart["data"])


def _pick(at: AppTest, plan: talk.Plan) -> AppTest:
    at.selectbox(key="model_choice").set_value(ui.OTHER).run()
    at.text_input(key="model_other").input(plan.model)
    at.selectbox(key="dataset_choice_text").set_value(ui.OTHER).run()
    at.text_input(key="dataset_other").input(plan.dataset)
    return at.run()


@pytest.mark.parametrize("view, charts", [("transfer", 2), ("distillation", 2), ("pruning", 1),
                                         ("quantization", 3)])
def test_lab_pages_open_on_the_warmed_results_with_no_button_pressed(warmed_home, unplugged, view, charts):
    at = _pick(AppTest.from_file(str(ROOT / "views" / f"{view}.py"), default_timeout=HANG_GUARD_S).run(), warmed_home)
    assert not at.exception and not at.error
    assert len([c for c in _charts(at) if _has_data(c)]) >= charts


def test_the_other_pages_open_on_the_warmed_results(warmed_home, unplugged):
    plan = warmed_home
    at = AppTest.from_file(str(ROOT / "views" / "architectures.py"), default_timeout=HANG_GUARD_S).run()
    at.text_input(key="arch_dataset_other_text").input(plan.dataset).run()
    assert not at.exception and _has_data(_charts(at)[0])
    for view, key in [("llm_quantization", "llmq"), ("specialist", "spec")]:
        at = AppTest.from_file(str(ROOT / "views" / f"{view}.py"), default_timeout=HANG_GUARD_S).run()
        at.selectbox(key=f"{key}_model").set_value(ui.OTHER).run()
        at.text_input(key=f"{key}_model_other").input(plan.llm)
        at.selectbox(key=f"{key}_dataset").set_value(ui.OTHER).run()
        at.text_input(key=f"{key}_dataset_other").input(plan.dataset).run()
        assert not at.exception and not at.error, view
        assert _charts(at) and all(_has_data(chart) for chart in _charts(at)), view


def test_presenter_view_walks_the_talk_and_reruns_a_step_live(warmed_home, unplugged):
    plan = warmed_home
    at = AppTest.from_file(str(ROOT / "views" / "talk.py"), default_timeout=HANG_GUARD_S).run()
    for step in talk.STEPS:
        assert not at.exception and at.title[0].value == step.title
        assert at.markdown and _charts(at) and all(_has_data(chart) for chart in _charts(at))
        if step.title == "Quantization":  # the live re-run: a new ONNX int8 run replaces the warmed one
            before = labs.recall_runs(labs.QUANTIZATION, [plan.model, plan.dataset])[0][0].run_id
            at.button(key="live_3").click().run()
            assert not at.exception and not at.error
            after = labs.recall_runs(labs.QUANTIZATION, [plan.model, plan.dataset])[0][0].run_id
            assert after != before and at.title[0].value == step.title
        if step is not talk.STEPS[-1]:
            next(b for b in at.button if b.label.startswith("Next")).click().run()
    assert at.query_params["step"] == str(len(talk.STEPS))
    next(b for b in at.button if b.label.startswith("← Back")).click().run()
    assert at.title[0].value == talk.STEPS[-2].title


def test_a_snapshot_of_a_warm_round_trips_and_a_fresh_data_folder_opens_every_page_on_it(
        warmed, tmp_path, monkeypatch, unplugged):
    home, plan, _, _ = warmed
    monkeypatch.setenv("MICROBUDGET_HOME", str(home))
    path = talk.take_snapshot(tmp_path / "snapshot")
    made = json.loads(path.read_text())
    assert made["schema"] == snapshot.SCHEMA and path.stat().st_size <= snapshot.MAX_BYTES
    assert made["provenance"]["cpu"] == cpu.describe() and made["provenance"]["command"] == talk.SNAPSHOT_COMMAND
    shown = {lab + json.dumps(key): labs.recall(lab, key) for lab, key, _ in talk._jobs(plan)}
    fresh = tmp_path / "fresh-home"
    monkeypatch.setenv("MICROBUDGET_HOME", str(fresh))
    monkeypatch.setenv("MICROBUDGET_SNAPSHOT", str(path.parent))
    assert {lab + json.dumps(key): labs.recall(lab, key) for lab, key, _ in talk._jobs(plan)} == shown
    assert talk.last_plan() == plan and labs.from_snapshot(labs.TALK, [])
    # Each lab button says how long its job took when the snapshot was measured.
    assert labs.expected_seconds(quantization.run_sweep) == (made["durations"]["quantization.run_sweep"],
                                                             snapshot.load().caption)
    runs = labs.recall_runs(labs.QUANTIZATION, [plan.model, plan.dataset])[0]
    assert runs and all(run.snapshot and run.label.endswith(" (snapshot)") for run in runs)
    with pytest.raises(MicrobudgetError, match="comes from the results snapshot") as refused:
        load_run_model(runs[0])  # the model is not here: the error says how to make it
    assert f"--model {plan.model}" in refused.value.fix and "--technique" in refused.value.fix
    assert not RunStore().delete(runs[0].run_id)

    for view, charts in [("transfer", 2), ("distillation", 2), ("quantization", 3)]:
        at = _pick(AppTest.from_file(str(ROOT / "views" / f"{view}.py"), default_timeout=HANG_GUARD_S).run(), plan)
        assert not at.exception and not at.error, view
        assert len([c for c in _charts(at) if _has_data(c)]) >= charts, view
        assert any("From the results snapshot: measured on" in box.value for box in at.info), view
        assert any(caption.value.startswith("Took about ") for caption in at.caption), view
    at = AppTest.from_file(str(ROOT / "views" / "talk.py"), default_timeout=HANG_GUARD_S).run()
    for step in talk.STEPS:
        assert not at.exception and _charts(at) and all(_has_data(chart) for chart in _charts(at)), step.title
        if step is not talk.STEPS[-1]:
            next(b for b in at.button if b.label.startswith("Next")).click().run()
    assert not [file for file in fresh.rglob("*") if file.is_file()]  # opening pages wrote nothing

    # warm computes here what the snapshot shows; a result measured here wins over the snapshot's.
    assert not any(talk._ready(lab, key) for lab, key, _ in talk._jobs(plan))
    talk.run_live(3, plan)
    mine = labs.recall_runs(labs.QUANTIZATION, [plan.model, plan.dataset])[0]
    assert mine and not mine[0].snapshot and not labs.from_snapshot(labs.QUANTIZATION, [plan.model, plan.dataset])
    assert labs.expected_seconds(quantization.run_quantization)[1] == "here"


def test_a_snapshot_this_code_cannot_read_is_ignored_with_one_notice(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROBUDGET_SNAPSHOT", str(tmp_path))
    for text, why in [('{"schema": 999, "labs": [], "runs": []}', "schema 999"), ("{half a file", "cannot be read")]:
        (tmp_path / snapshot.FILE).write_text(text)
        with pytest.warns(UserWarning, match=why):
            assert snapshot.load() is None
        assert why in snapshot.problem() and labs.recall(labs.TALK, []) is None and not RunStore().list()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S).run()
        assert not at.exception and [box for box in at.sidebar.warning if why in box.value]
