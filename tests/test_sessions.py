"""A shared server: private workspaces per browser session, and the operator's training limits."""

from __future__ import annotations

import os
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from conftest import HANG_GUARD_S
from microbudget_core import labs
from microbudget_core.support import limits, paths
from microbudget_core.data.uploads import save_upload
from microbudget_core.pipeline import Request, resolve, run_pipeline
from microbudget_core.runs import Run, RunStore

ROOT = Path(__file__).resolve().parent.parent


def _run(model: str, artifact: Path | None = None) -> Run:
    metrics = {"accuracy": 0.8, "size_bytes": 1e6, "latency_ms_p50": 1.0, "throughput_per_s": 1.0, "params": 1}
    return RunStore().add(Run(model, "some-data", "text-classification", [{"technique": "fp16", "config": {}}],
                              metrics, metrics, {}, str(artifact) if artifact else None))


def test_each_session_starts_from_the_shared_results_and_keeps_its_own_to_itself(private_home):
    shared_artifact = private_home / "artifacts" / "shared-run"
    shared_artifact.mkdir(parents=True)
    shared = _run("shared", shared_artifact)  # what `warm` computed, before any visitor
    labs.remember_runs(labs.QUANTIZATION, ["m", "d"], [shared])
    with paths.session_workspace("a1") as folder_a:
        assert folder_a == private_home / "sessions" / "a1" == paths.workspace()
        assert [r.run_id for r in RunStore().list()] == [shared.run_id]
        assert labs.recall_runs(labs.QUANTIZATION, ["m", "d"])[0][0].run_id == shared.run_id
        own = _run("mine")
        upload = save_upload("reviews.csv", b"text,label\ngood film,pos\nbad film,neg\nfine film,pos\nawful,neg\n")
        assert upload.startswith(f"csv:{folder_a}")
        assert RunStore().delete(shared.run_id)  # gone from this session's list only
    assert shared_artifact.exists() and {r.run_id for r in RunStore().list()} == {shared.run_id}
    with paths.session_workspace("b2"):
        assert [r.run_id for r in RunStore().list()] == [shared.run_id]  # not a1's run, and the shared one kept
    with paths.session_workspace("a1"):
        assert [r.run_id for r in RunStore().list()] == [own.run_id]


def test_a_session_unused_for_a_day_is_removed_when_a_new_one_starts(private_home):
    with paths.session_workspace("old"):
        _run("forgotten")
    stale = time.time() - 2 * 86400
    os.utime(private_home / "sessions" / "old", (stale, stale))
    with paths.session_workspace("recent"):
        pass
    with paths.session_workspace("new"):
        pass
    assert sorted(p.name for p in (private_home / "sessions").iterdir()) == ["new", "recent"]


def test_a_session_id_never_becomes_a_path_outside_the_sessions_folder():
    for bad in ("../escape", "a/b", ""):
        try:
            with paths.session_workspace(bad):
                raise AssertionError(f"{bad!r} was accepted")
        except ValueError:
            pass


def test_the_app_in_private_mode_works_in_the_sessions_folder(private_home, monkeypatch):
    monkeypatch.setenv("MICROBUDGET_PRIVATE_SESSIONS", "1")
    monkeypatch.setenv("MICROBUDGET_MAX_EPOCHS", "2")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S).run()
    assert not at.exception
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "private to this workspace" in captions and "at most 2 epochs" in captions
    assert [p.name for p in (private_home / "sessions").iterdir()] == [at.session_state["workspace"]]


def test_the_operators_limits_cap_epochs_and_examples_of_every_technique(monkeypatch, tiny_text_model,
                                                                         sentiment_csv):
    assert limits.active() == {}
    (_, config), = resolve([("finetune-head", {"epochs": 9})])
    assert config.epochs == 9 and config.examples_per_class == 0
    monkeypatch.setenv("MICROBUDGET_MAX_EPOCHS", "1")
    monkeypatch.setenv("MICROBUDGET_MAX_EXAMPLES_PER_CLASS", "8")
    (_, config), (_, distill), _ = resolve([("finetune-head", {"epochs": 9}),
                                                  ("distill", {"examples_per_class": 100}), ("onnx", {})])
    assert (config.epochs, config.examples_per_class) == (1, 8)  # 0, "all", is over the limit too
    assert (distill.epochs, distill.examples_per_class) == (1, 8)
    run = run_pipeline(Request(str(tiny_text_model), f"csv:{sentiment_csv}", [("finetune-head", {"epochs": 4})]))
    assert run.result.train_examples <= 2 * 8 and run.steps[0]["config"]["epochs"] == 1
