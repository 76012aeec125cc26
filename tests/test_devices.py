"""Training through Accelerate: several processes, the device choice, mixed precision, and the hardware a run records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import HANG_GUARD_S, save_tiny_bert, sentiment_rows
from microbudget_core import devices
from microbudget_core.data import Split
from microbudget_core.labs.compare import NOT_RECORDED, hardware_choices, on_hardware
from microbudget_core.models import ModelSpec, load_model
from microbudget_core.runs import Run, RunStore, load_run_model
from microbudget_core.training import TrainConfig, accuracy_on, train_classifier

ROOT = Path(__file__).resolve().parent.parent
# Two processes each train on half of every batch and average their gradients: with dropout off, the same steps as
# one process up to float rounding, so the accuracies on the 48 eval examples agree within 2 of them.
TOLERANCE = 2 / 48
# Accelerate's torchrun launcher (--multi_gpu): on a machine without a GPU its processes train on the CPU, with gloo.
# `accelerate launch --cpu` starts a single process whatever --num_processes says.
TWO_PROCESSES = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                 "--dynamo_backend", "no"]


@pytest.fixture(scope="session")
def tiny_model_without_dropout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT without dropout: nothing random in training but the seeded batch order and initial weights."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-no-dropout"), hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0)


def microbudget(*args: str, launch: list[str] | None = None, home: Path) -> subprocess.CompletedProcess:
    """The CLI in a data folder of its own; `launch`: through `accelerate launch` with these options."""
    prefix = [sys.executable, "-m", "accelerate.commands.launch", *launch] if launch else [sys.executable]
    return subprocess.run([*prefix, "-m", "microbudget_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=HANG_GUARD_S, env={**os.environ, "MICROBUDGET_HOME": str(home)})


def test_two_processes_train_one_run_that_matches_one_process(tiny_model_without_dropout, sentiment_csv, tmp_path,
                                                               monkeypatch):
    run = ["run", "--model", str(tiny_model_without_dropout), "--dataset", f"csv:{sentiment_csv}",
           "--technique", "finetune-full", "--set", "epochs=2", "--set", "learning_rate=3e-3", "--no-memory", "--json"]
    two = microbudget(*run, launch=TWO_PROCESSES, home=tmp_path / "two")
    assert two.returncode == 0, two.stderr[-3000:]
    one = microbudget(*run, home=tmp_path / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    parallel, single = json.loads(two.stdout), json.loads(one.stdout)  # one JSON document: the main process's

    stored = RunStore(tmp_path / "two" / "runs.sqlite").list()
    assert [r.run_id for r in stored] == [parallel["run_id"]]  # one run, stored once
    assert parallel["result"]["trained_on"].endswith(" x 2 processes")
    assert parallel["baseline"]["trained_on"].endswith(" x 2 processes")  # the baseline recipe trained by both
    assert "processes" not in single["result"]["trained_on"]
    assert parallel["result"]["measured_on"] == single["result"]["measured_on"] == devices.hardware()
    assert len(list((tmp_path / "two" / "baselines").iterdir())) == 1  # written once, no partial folder left
    assert abs(parallel["result"]["accuracy"] - single["result"]["accuracy"]) <= TOLERANCE
    assert parallel["result"]["accuracy"] > parallel["baseline"]["accuracy"]  # it learned something
    assert [round(e["val_accuracy"], 3) for e in parallel["result"]["history"]] == pytest.approx(
        [round(e["val_accuracy"], 3) for e in single["result"]["history"]], abs=TOLERANCE)

    monkeypatch.setenv("MICROBUDGET_HOME", str(tmp_path / "two"))
    reloaded = load_run_model(stored[0])
    assert reloaded.parameter_count() == parallel["result"]["params"]
    assert all(p.device.type == "cpu" for p in reloaded.model.parameters())


@pytest.mark.parametrize("steps", [
    ["--technique", "finetune-head", "--set", "epochs=3"],
    ["--technique", "finetune-last-n", "--set", "epochs=1"],
    ["--technique", "from-scratch", "--set", "epochs=1"],
    ["--technique", "setfit-style", "--set", "pair_iterations=2", "--set", "epochs=2"],
    # a chain: the others leave after the distillation, the main process quantizes and measures both steps
    ["--technique", "distill", "--set", "layers=1", "--set", "distill.epochs=1", "--technique", "dynamic-int8"],
], ids=lambda steps: steps[1])
def test_every_training_technique_runs_on_two_processes(steps, tiny_text_model, sentiment_csv, tmp_path):
    done = microbudget("run", "--model", str(tiny_text_model), "--dataset", f"csv:{sentiment_csv}", *steps,
                       "--no-memory", "--json", launch=TWO_PROCESSES, home=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout)
    chain = [step["technique"] for step in run["steps"]]
    stored = RunStore(tmp_path / "runs.sqlite").list()
    assert [[s["technique"] for s in r.steps] for r in stored] == [chain[:n + 1] for n in range(len(chain))]
    assert run["result"]["trained_on"].endswith(" x 2 processes") and run["result"]["accuracy"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_is_one_clear_message(tiny_text_model, sentiment_csv, tmp_path):
    done = microbudget("run", "--model", str(tiny_text_model), "--dataset", f"csv:{sentiment_csv}",
                       "--technique", "finetune-full", "--device", "cuda", home=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: --device cuda: this machine has no such device (torch {torch.__version__} sees no CUDA GPU). "
        "Use --device cpu or auto."]
    assert not (tmp_path / "baselines").exists()  # refused before any training


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("args, message", [
    (["--mixed-precision", "fp16"], "fp16 mixed precision does not run on this cpu. Use --mixed-precision no or bf16."),
    (["--measure-device", "cuda"], "--measure-device cuda: this machine has no such device"),
    (["--gradient-accumulation", "0"], "Argument --gradient-accumulation: 0 is below 1."),
])
def test_training_options_a_machine_cannot_honour_are_refused_first(args, message, tiny_text_model, sentiment_csv,
                                                                     tmp_path):
    done = microbudget("run", "--model", str(tiny_text_model), "--dataset", f"csv:{sentiment_csv}",
                       "--technique", "finetune-full", *args, home=tmp_path)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr


def _classifier(folder: Path):
    return load_model(ModelSpec(str(folder)), ["neg", "pos"], "text-classification")


def _split(rows) -> Split:
    return Split([text for text, _ in rows], np.array([int(label == "pos") for _, label in rows]))


@pytest.mark.parametrize("settings", [devices.Training(mixed_precision="bf16"),
                                      devices.Training(gradient_accumulation=2)], ids=["bf16", "accumulation"])
def test_mixed_precision_and_accumulation_train_a_float32_model_on_the_cpu(settings, tiny_model_without_dropout):
    rows = sentiment_rows(240)
    train, held_out = _split(rows[:192]), _split(rows[192:])
    start = _classifier(tiny_model_without_dropout)
    config = TrainConfig(epochs=3, learning_rate=3e-3, batch_size=16, validation_examples=32)
    plain, plain_report = train_classifier(start, train, config)
    devices.use(settings)
    try:
        trained, report = train_classifier(start, train, config)
    finally:
        devices.use(devices.Training())
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in trained.model.parameters())
    assert trained.model.forward.__func__ is type(trained.model).forward  # Accelerate's autocast wrapper taken off
    assert accuracy_on(trained, held_out) >= 0.75 and accuracy_on(plain, held_out) >= 0.75
    if settings.gradient_accumulation == 2:  # half as many optimizer steps: a different model than the plain one
        assert not all(torch.equal(a, b) for a, b in zip(trained.model.parameters(), plain.model.parameters()))
    assert report.hardware == devices.hardware() == plain_report.hardware


def test_settings_follow_the_thread_that_set_them():
    import threading

    seen = []
    devices.use(devices.Training(gradient_accumulation=3))
    try:
        thread = threading.Thread(target=lambda: seen.append(devices.current()))
        thread.start()
        thread.join()
        assert not thread.is_alive() and seen == [devices.Training()]  # another visitor's page keeps its own
        assert devices.current().gradient_accumulation == 3
    finally:
        devices.use(devices.Training())


def test_share_splits_a_batch_between_processes(monkeypatch):
    batch = np.arange(7)
    assert list(devices.share(batch)) == list(batch)  # one process: all of it
    monkeypatch.setenv("WORLD_SIZE", "2")
    parts = []
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        parts.append(list(devices.share(batch)))
    assert sorted(parts[0] + parts[1]) == list(batch) and not set(parts[0]) & set(parts[1])
    assert list(devices.share(np.arange(1))) == [0]  # smaller than the processes: every process takes it whole


def _run(hardware: str | None, accuracy: float) -> Run:
    result = {"accuracy": accuracy, "latency_ms_p50": 1.0, "size_bytes": 10, "eval_examples": 100,
              **({"measured_on": hardware} if hardware else {})}
    return Run("m", "d", "text-classification", [], dict(result), result, {})


def test_compare_ranks_only_runs_measured_on_the_same_hardware():
    runs = [_run("NVIDIA H200, 140 GB", 0.9), _run("AMD EPYC, 2 cores", 0.8), _run("AMD EPYC, 2 cores", 0.7),
            _run(None, 0.6)]
    assert hardware_choices(runs) == ["AMD EPYC, 2 cores", "NVIDIA H200, 140 GB", NOT_RECORDED]  # most runs first
    assert [r.result.accuracy for r in on_hardware(runs)] == [0.8, 0.7]
    assert [r.result.accuracy for r in on_hardware(runs, "NVIDIA H200, 140 GB")] == [0.9]
    assert [r.result.accuracy for r in on_hardware(runs, NOT_RECORDED)] == [0.6]
    assert on_hardware([]) == []


def test_the_app_offers_a_device_only_where_there_is_more_than_the_cpu(monkeypatch):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S).run()
    assert not app.exception and "Train on" not in [box.label for box in app.sidebar.selectbox]
    monkeypatch.setattr(devices, "available", lambda: ["cpu", "cuda"])
    monkeypatch.setattr(devices, "precisions", lambda device: ["no", "bf16", "fp16"])
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_GUARD_S)
    app.session_state["train_device"] = "cpu"  # a real choice on this machine (it has no GPU to resolve to)
    app.run()
    assert not app.exception
    assert [box.label for box in app.sidebar.selectbox][:2] == ["Train on", "Mixed precision"]
    assert app.sidebar.selectbox(key="train_device").options == ["auto", "cpu", "cuda"]


def test_only_plain_pytorch_classifiers_would_be_measured_on_a_gpu(tiny_text_model):
    from microbudget_core.measure import measurable_on_device
    from microbudget_core.techniques import dynamic_int8, onnx

    model = _classifier(tiny_text_model)
    assert measurable_on_device(model)
    assert not measurable_on_device(dynamic_int8.apply(model, dynamic_int8.Config(backend="torch.ao")))
    assert not measurable_on_device(onnx.apply(model, onnx.Config()))
