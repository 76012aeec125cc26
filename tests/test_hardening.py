"""Hardening: bad input refused before slow work, one line on stderr, a damaged store survived, a killed job
leaves nothing broken, the data folder kept bounded, and a private workspace that survives a reload."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import HANG_GUARD_S
from microbudget_core import clean, labs, pipeline, techniques
from microbudget_core.support import paths
from microbudget_core.cache import cached_array
from microbudget_core.support.errors import DamagedFile, MicrobudgetError
from microbudget_core.export import export_run
from microbudget_core.labs.compare import candidates
from microbudget_core.models.bundle import DAMAGED, MISSING, SAVED, artifact_state
from microbudget_core.pipeline import Request, run_pipeline
from microbudget_core.runs import RunStore

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "microbudget_core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=HANG_GUARD_S, **kwargs)


def _outside(field: dataclasses.Field) -> list:
    """Values just outside a field's declared range."""
    meta, step = field.metadata, 1 if field.type in ("int", int) else 0.001
    return ([meta["min"] - step] if "min" in meta else []) + ([meta["above"]] if "above" in meta else []) \
        + ([meta["max"] + step] if "max" in meta else [])


def test_every_declared_range_refuses_the_value_just_outside_it_and_takes_its_bounds():
    checked = 0
    for technique in techniques.registry().values():
        for field in dataclasses.fields(technique.Config):
            for value in _outside(field):
                with pytest.raises(MicrobudgetError, match=rf"{technique.ID}\.{field.name}=.* is out of range"):
                    techniques.make_config(technique, {field.name: str(value)})
                checked += 1
            for bound in (field.metadata.get("min"), field.metadata.get("max")):
                if bound is not None and technique.ID != "setfit-style":  # its max_pairs >= batch_size rule
                    assert getattr(techniques.make_config(technique, {field.name: str(bound)}), field.name) == bound
    assert checked >= 30  # epochs, rates, patience, budgets... of every training technique
    with pytest.raises(MicrobudgetError, match="temperature=inf is out of range"):
        techniques.make_config(techniques.get("distill"), {"temperature": "inf"})
    with pytest.raises(MicrobudgetError, match="student_model is empty"):
        techniques.make_config(techniques.get("distill"), {"student": "model"})
    with pytest.raises(MicrobudgetError, match="max_pairs=8 is below batch_size"):
        techniques.make_config(techniques.get("setfit-style"), {"max_pairs": "8", "batch_size": "16"})


def test_a_config_built_in_code_is_refused_by_apply_as_by_make_config(tiny_text_model, sentiment_csv):
    from microbudget_core.data import DatasetSpec, load_dataset
    from microbudget_core.models import ModelSpec, load_model

    dataset = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    bundle = load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification")
    full = techniques.get("finetune-full")
    with pytest.raises(MicrobudgetError, match="finetune-full.epochs=0 is out of range: it must be at least 1"):
        full.apply(bundle, full.Config(epochs=0), dataset)
    int8 = techniques.get("dynamic-int8")
    with pytest.raises(MicrobudgetError, match="backend='tensorrt' is out of range"):
        int8.apply(bundle, int8.Config(backend="tensorrt"), dataset)


@pytest.mark.parametrize("steps, eval_limit, message", [
    ([("finetune-full", {"epochs": "-3"})], None, "epochs=-3 is out of range"),
    ([("weight-only", {"bits": "1"})], None, "bits=1 is out of range"),
    ([("distill", {"alpha": "1.5"})], None, "alpha=1.5 is out of range"),
    ([("dynamic-int8", {})], 0, "eval limit of 0 measures nothing"),
])
def test_bad_settings_fail_before_any_dataset_or_model_is_loaded(monkeypatch, steps, eval_limit, message):
    def slow_work(*args, **kwargs):
        raise AssertionError("slow work started before the settings were checked")

    monkeypatch.setattr(pipeline, "load_dataset", slow_work)
    monkeypatch.setattr(pipeline, "build_baseline", slow_work)
    with pytest.raises(MicrobudgetError, match=message):
        run_pipeline(Request("minilm-l6", "rotten-tomatoes", steps, eval_limit))


def test_a_bad_architectures_budget_fails_before_the_dataset_is_read(monkeypatch):
    from microbudget_core.labs import architectures

    monkeypatch.setattr(architectures, "load_dataset", lambda *a: pytest.fail("the dataset was read first"))
    with pytest.raises(MicrobudgetError, match="architectures.epochs=0 is out of range"):
        architectures.compare_architectures(architectures.choices("text-classification"), "rotten-tomatoes",
                                            architectures.Budget(epochs=0))


def test_the_app_widgets_take_the_declared_bounds():
    def page():
        import ui
        from microbudget_core import techniques

        ui.technique_settings(techniques.get("distill"), "knobs")

    at = AppTest.from_function(page, default_timeout=HANG_GUARD_S).run()
    field = {f.name: f for f in dataclasses.fields(techniques.get("distill").Config)}
    for name in ("epochs", "alpha", "layers"):
        widget = at.number_input(key=f"knobs.{name}").proto
        assert widget.has_min and widget.min == field[name].metadata["min"], name
    alpha = at.number_input(key="knobs.alpha").proto
    assert alpha.has_max and alpha.max == 1.0
    assert at.selectbox(key="knobs.student").options == list(field["student"].metadata["choices"])


@pytest.mark.parametrize("args, message", [
    (["run", "--model", "minilm-l6", "--dataset", "rotten-tomatoes", "--technique", "dynamic-int8",
      "--eval-limit", "0"], "--eval-limit: 0 is below 1"),
    (["run", "--model", "minilm-l6", "--dataset", "rotten-tomatoes", "--threads", "two"], "'two' is not a whole"),
    (["run", "--model", "minilm-l6", "--dataset", "rotten-tomatoes", "--technique", "weight-only",
      "--set", "bits=1"], "weight-only.bits=1 is out of range"),
    (["run", "--model", "minilm-l6", "--dataset", "rotten-tomatoes", "--technique", "finetune-full",
      "--set", "epochs=-3"], "finetune-full.epochs=-3 is out of range"),
    (["run", "--model", "minilm-l6"], "The following arguments are required: --dataset"),
    (["compare", "--dataset", "rotten-tomatoes", "--min-accuracy", "nan"], "nan is not a finite number"),
    (["runs", "--bogus"], "Unrecognized arguments: --bogus"),
])
def test_bad_input_prints_exactly_one_line_on_stderr(args, message):
    done = cli(*args)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith("error: "), done.stderr
    assert message in done.stderr and done.stdout == ""


def test_libraries_warnings_go_to_the_log_not_the_terminal(tiny_text_model, sentiment_csv, private_home):
    done = cli("run", "--model", str(tiny_text_model), "--dataset", f"csv:{sentiment_csv}", "--technique", "onnx",
               "--eval-limit", "20", "--no-memory", "--json")
    assert done.returncode == 0, done.stderr
    # The progress bar's redraws are the only thing on stderr (tqdm separates them by carriage returns).
    bar = [piece for line in done.stderr.splitlines() for piece in line.split("\r") if piece.strip()]
    assert bar and all("%|" in piece for piece in bar), done.stderr
    log = next((private_home / "logs").glob("cli-*.log")).read_text()
    assert "TorchScript-based ONNX export" in log  # torch's DeprecationWarning, kept for whoever looks
    assert json.loads(done.stdout)["steps"][0]["technique"] == "onnx"
    verbose = cli("run", "--model", str(tiny_text_model), "--dataset", f"csv:{sentiment_csv}", "--technique",
                  "onnx", "--eval-limit", "20", "--no-memory", "--json", "--verbose")
    assert "TorchScript-based ONNX export" in verbose.stderr


def _damage(path: Path) -> bytes:
    junk = b"this is not a SQLite database, but it is someone's file" * 20
    path.write_bytes(junk)
    return junk


def test_a_damaged_runs_store_gives_one_line_and_is_moved_aside_never_deleted(private_home):
    junk = _damage(private_home / "runs.sqlite")
    done = cli("runs", "--json")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert str(private_home / "runs.sqlite") in done.stderr and "--move-damaged" in done.stderr
    assert (private_home / "runs.sqlite").read_bytes() == junk  # untouched until asked
    moved = cli("runs", "--json", "--move-damaged")
    assert moved.returncode == 0 and json.loads(moved.stdout) == [], moved.stderr
    kept = list(private_home.glob("runs.sqlite.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == junk
    assert RunStore().list() == []  # a new, working store


def test_a_damaged_store_stops_only_the_pages_that_read_it_and_the_app_offers_the_move(private_home):
    junk = _damage(private_home / "runs.sqlite")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S).run()
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert any("cannot be read" in error.value and "runs.sqlite" in error.value for error in at.error)
    at.switch_page("views/architectures.py").run()  # a page that does not read it works
    assert not at.exception and not at.error
    at.switch_page("views/compare.py").run()
    at.button[0].click().run()
    assert not at.error and not at.exception
    assert [p.read_bytes() for p in private_home.glob("runs.sqlite.damaged-*")] == [junk]


def test_a_bad_record_hides_no_other_run_and_a_damaged_lab_file_is_named(private_home, tiny_text_model,
                                                                        sentiment_csv):
    run = run_pipeline(Request(str(tiny_text_model), f"csv:{sentiment_csv}", [("dynamic-int8",
                                                                             {"backend": "torch.ao"})], 20))
    import sqlite3

    with sqlite3.connect(private_home / "runs.sqlite") as connection:
        connection.execute("INSERT INTO runs VALUES ('broken', '2000-01-01', '{not json')")
    with pytest.warns(UserWarning, match="cannot be read"):
        assert [r.run_id for r in RunStore().list()] == [run.run_id]
    labs.remember_runs(labs.QUANTIZATION, ["m", "d"], [run])
    lab_file = next((private_home / "lab-results").glob("quantization-*.json"))
    lab_file.write_bytes(b'{"runs": ["' + run.run_id.encode()[:4])  # cut off mid-write by a full disk
    with pytest.raises(DamagedFile, match="quantization lab's saved results") as damaged:
        labs.recall(labs.QUANTIZATION, ["m", "d"])
    assert damaged.value.path == lab_file
    from microbudget_core.support.errors import move_aside

    move_aside(damaged.value.path)
    assert labs.recall(labs.QUANTIZATION, ["m", "d"]) is None


def test_a_truncated_artifact_is_shown_damaged_and_cannot_be_exported(private_home, tiny_text_model, sentiment_csv,
                                                                     tmp_path):
    run = run_pipeline(Request(str(tiny_text_model), f"csv:{sentiment_csv}", [("dynamic-int8",
                                                                             {"backend": "torch.ao"})], 20))
    assert artifact_state(run.artifact_path) == SAVED
    weights = max(Path(run.artifact_path).iterdir(), key=lambda p: p.stat().st_size)
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert artifact_state(run.artifact_path) == DAMAGED
    assert [c.artifact for c in candidates(RunStore().list()) if not c.is_original] == [DAMAGED]
    with pytest.raises(MicrobudgetError, match="artifact damaged"):
        export_run(run, tmp_path / "out")
    at = AppTest.from_file(str(ROOT / "views" / "compare.py"), default_timeout=HANG_GUARD_S).run()
    assert any("Artifact damaged" in error.value for error in at.error)
    assert at.get("download_button")[-1].proto.disabled
    (Path(run.artifact_path) / "microbudget.json").unlink()
    assert artifact_state(run.artifact_path) == MISSING


def test_a_damaged_cache_entry_is_moved_aside_and_computed_again(private_home):
    computed = []

    def compute():
        computed.append(1)
        return np.arange(6.0)

    array, cached = cached_array("features", "x", ["key"], compute)
    entry = next((private_home / "features").glob("x-*.npz"))
    entry.write_bytes(entry.read_bytes()[:40])  # half an entry
    with pytest.warns(UserWarning, match="is damaged"):
        again, cached = cached_array("features", "x", ["key"], compute)
    assert not cached and len(computed) == 2 and np.array_equal(again, array)
    assert len(list((private_home / "features").glob("x-*.npz.damaged-*"))) == 1
    assert cached_array("features", "x", ["key"], compute)[1]  # whole again


def test_a_damaged_cached_baseline_is_trained_again(private_home, tiny_text_model, sentiment_csv):
    from microbudget_core.baseline import build_baseline
    from microbudget_core.data import DatasetSpec, load_dataset

    dataset = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    build_baseline(str(tiny_text_model), dataset)
    folder = next((private_home / "baselines").iterdir())
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    reports = []
    with pytest.warns(UserWarning, match="damaged"):
        rebuilt = build_baseline(str(tiny_text_model), dataset, progress=lambda *a, **k: reports.append(a))
    assert reports and artifact_state(folder) == SAVED and rebuilt.head_trained
    assert len(list((private_home / "baselines").glob("*.damaged-*"))) == 1


def _kill_when(process: subprocess.Popen, ready) -> None:
    """SIGKILL the process as soon as `ready()` holds (it must hold before the process ends by itself)."""
    while not ready():
        assert process.poll() is None, "the process ended before the moment to kill it"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=HANG_GUARD_S)
    assert process.returncode == -signal.SIGKILL


def _assert_intact(earlier: list[str]) -> None:
    store = RunStore()  # it opens
    runs = store.list(quality=None)
    assert [r.run_id for r in runs][: len(earlier)] == earlier
    assert all(artifact_state(r.artifact_path) == SAVED for r in runs)  # no partial artifact is listed


@pytest.mark.parametrize("moment", ["training", "measurement"])
def test_a_run_killed_mid_job_leaves_the_store_whole_and_runs_again(private_home, tiny_text_model, sentiment_csv,
                                                                    moment, tmp_path):
    base = ["run", "--model", str(tiny_text_model), "--dataset", f"csv:{sentiment_csv}", "--eval-limit", "60",
            "--json"]
    first = cli(*base, "--no-memory", "--technique", "dynamic-int8", "--set", "backend=torch.ao")  # baseline, a run
    assert first.returncode == 0, first.stderr
    earlier = [json.loads(first.stdout)["run_id"]]
    # Measured with the peak-memory probe: a fresh process of some seconds, after the artifact is written, so the
    # kill lands inside the measurement however fast the rest of it is.
    command = [*base, "--technique", "finetune-full", "--set", "epochs=40", "--set", "patience=40"]
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "microbudget_core", *command], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=sink)
        artifacts = private_home / "artifacts"
        if moment == "training":
            _kill_when(process, lambda: "Epoch 2" in stderr.read_text())
        else:  # the result's measurement writes its artifact first
            _kill_when(process, lambda: len(list(artifacts.iterdir())) > len(earlier))
    _assert_intact(earlier)
    again = cli(*command)  # the same command
    assert again.returncode == 0, again.stderr
    _assert_intact(earlier + [json.loads(again.stdout)["run_id"]])
    orphans = clean.plan(clean.survey())
    assert all(entry.kind == clean.ARTIFACTS for entry in orphans)  # a killed measurement's folder, and only it
    assert len(orphans) == (1 if moment == "measurement" else 0)


def test_warm_killed_mid_way_resumes_where_it_stopped(private_home, tiny_text_model, sentiment_csv):
    plan = (f"Plan(model={str(tiny_text_model)!r}, dataset='csv:{sentiment_csv}', llm='', eval_limit=40, "
            f"live_examples_per_class=16, architectures=({str(tiny_text_model)!r},), speech_model='', "
            "vision_model='', teacher='')")
    script = (f"from microbudget_core.labs.talk import Plan, warm\n"
              f"for w in warm({plan}): print(w.lab, w.status, flush=True)")
    process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    results = private_home / "lab-results"
    _kill_when(process, lambda: any(results.glob(f"{labs.TRANSFER}-*.json")))
    _assert_intact([])
    again = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    statuses = {}
    for line in again.stdout:  # the labs after the quantization one are not this test's: stopped there
        lab, status = line.split()
        statuses[lab] = status
        if lab == labs.QUANTIZATION:
            break
    again.kill()
    again.wait(timeout=HANG_GUARD_S)
    assert statuses[labs.TRANSFER] == "kept" and statuses[labs.QUANTIZATION] == "computed", statuses
    _assert_intact([])


def _aged(path: Path, days: float) -> Path:
    then = time.time() - days * 86400
    os.utime(path, (then, then))
    return path


def test_clean_lists_by_kind_removes_orphans_and_over_a_cap_the_least_recently_used(private_home, tiny_text_model,
                                                                                   sentiment_csv):
    run = run_pipeline(Request(str(tiny_text_model), f"csv:{sentiment_csv}", [("dynamic-int8",
                                                                             {"backend": "torch.ao"})], 20))
    orphan = private_home / "artifacts" / "deadbeef0000"
    orphan.mkdir()
    (orphan / "model.pt").write_bytes(b"x" * 1000)
    writer = subprocess.Popen(["true"])  # a writer that has ended
    writer.wait()
    partial = private_home / "models" / f"whatever.partial-{writer.pid}"
    partial.mkdir(parents=True)
    features = private_home / "features"
    features.mkdir()
    features.joinpath("old.npz").write_bytes(b"o" * 3_000_000)
    features.joinpath("new.npz").write_bytes(b"n" * 3_000_000)
    _aged(features / "old.npz", 30)
    listed = cli("clean", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "run artifacts" in listed.stdout and "features" in listed.stdout and "baselines" in listed.stdout
    assert "would remove run artifacts: deadbeef0000" in listed.stdout and orphan.exists() and partial.exists()
    total = sum(entry.size for entry in clean.survey())
    cap_gb = (total - 2_000_000) / 1e9  # removing the old feature file (3 MB) is enough
    done = cli("clean", "--max-gb", f"{cap_gb:.9f}")
    assert done.returncode == 0, done.stderr
    assert not orphan.exists() and not partial.exists() and not (features / "old.npz").exists()
    assert (features / "new.npz").exists()
    assert artifact_state(run.artifact_path) == SAVED  # a stored run's model stays without --runs
    assert cli("clean", "--max-gb", "0").returncode == 0
    assert artifact_state(run.artifact_path) == SAVED and not any(features.iterdir())
    assert cli("clean", "--max-gb", "0", "--runs").returncode == 0
    assert artifact_state(run.artifact_path) == MISSING and RunStore().get(run.run_id)  # its measurements stay


def test_the_sidebar_shows_the_data_folder_and_the_cap_is_kept(private_home, monkeypatch):
    (private_home / "features").mkdir()
    (private_home / "features" / "old.npz").write_bytes(b"o" * 2_000_000)
    monkeypatch.setenv(clean.CAP_VARIABLE, "0.001")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S).run()
    assert any("Data folder:" in caption.value and "cap 0.001 GB" in caption.value for caption in at.sidebar.caption)
    assert not (private_home / "features" / "old.npz").exists()


def test_a_private_workspace_lives_in_the_page_address_and_survives_a_reload(private_home, monkeypatch):
    monkeypatch.setenv("MICROBUDGET_PRIVATE_SESSIONS", "1")
    first = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S).run()
    token = first.query_params["workspace"]
    token = token[0] if isinstance(token, list) else token
    assert paths.is_session_id(token) and len(token) >= 20 and (private_home / "sessions" / token).is_dir()
    reload = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S)
    reload.query_params["workspace"] = token
    reload.run()
    assert reload.session_state["workspace"] == token and not reload.sidebar.warning
    for bad in ("../../etc", "no-such-workspace-token"):
        stranger = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S)
        stranger.query_params["workspace"] = bad
        stranger.run()
        assert stranger.session_state["workspace"] not in (bad, token)
        assert any("unknown or has expired" in w.value for w in stranger.sidebar.warning)
    assert not (private_home / "etc").exists()


def test_a_new_private_workspace_starts_even_where_the_shared_store_is_damaged(private_home, monkeypatch):
    junk = _damage(private_home / "runs.sqlite")
    monkeypatch.setenv("MICROBUDGET_PRIVATE_SESSIONS", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S).run()
    assert not at.exception and not at.error
    with paths.session_workspace(at.session_state["workspace"]):
        assert RunStore().list() == []
    assert (private_home / "runs.sqlite").read_bytes() == junk
