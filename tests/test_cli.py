"""The CLI contract: JSON shapes, and bad input -> exit code 2 with one line on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HANG_GUARD_S

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "microbudget_core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)


def test_list_json_names_models_datasets_and_techniques():
    done = cli("list", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert {"minilm-l6", "mobilenet-v2"} <= {m["id"] for m in listing["models"]}
    assert {"rotten-tomatoes", "mnist-5k", "csv:PATH", "images:PATH", "hf:NAME"} <= {d["id"] for d in listing["datasets"]}
    assert "dynamic-int8" in {t["id"] for t in listing["techniques"]}
    assert all(entry["description"] for section in listing.values() for entry in section)


@pytest.mark.parametrize("args, message", [
    (["--model", "someone/no-such-model", "--dataset", "csv:{csv}"], "unreachable (offline?) or no such model id"),
    (["--model", "minilm-l6", "--dataset", "nope"], "Unknown dataset 'nope'"),
    (["--model", "minilm-l6", "--dataset", "csv:/no/such.csv"], "not found"),
    (["--model", "minilm-l6", "--dataset", "hf:someone/no-such-data"], "unreachable (offline?)"),
    (["--model", "minilm-l6", "--dataset", "rotten-tomatoes", "--technique", "magic"], "Unknown technique"),
    (["--model", "minilm-l6", "--dataset", "rotten-tomatoes", "--technique", "dynamic-int8", "--set", "bits=4"],
     "matches no chosen technique"),
    (["--model", "mobilenet-v2", "--dataset", "csv:{csv}"], "classifies images, but this dataset needs a text-classification"),
])
def test_bad_input_exits_2_with_one_line(args, message, sentiment_csv):
    done = cli("run", *[a.format(csv=sentiment_csv) for a in args], "--json")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip() and "%" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert done.stdout == ""


def test_runs_json_is_an_empty_list_on_a_new_store():
    done = cli("runs", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == []


@pytest.mark.parametrize("technique, settings, config", [
    ("dynamic-int8", [], {"backend": "auto", "embeddings": True}),
    # ONNX Runtime's entropy calibration prints to stdout: the JSON must still be all that stdout holds.
    ("onnx-int8-static", ["--set", "calibration=entropy", "--set", "calibration_examples=16"],
     {"calibration": "entropy", "calibration_examples": 16, "per_channel": True, "reduce_range": "auto"}),
])
def test_run_json_follows_the_contract(technique, settings, config, tiny_text_model, sentiment_csv):
    done = cli("run", "--model", str(tiny_text_model), "--dataset", f"csv:{sentiment_csv}",
               "--technique", technique, *settings, "--eval-limit", "40", "--no-memory", "--json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert {"run_id", "model", "dataset", "steps", "baseline", "result", "ratios"} <= run.keys()
    assert run["steps"] == [{"technique": technique, "config": config}]
    speeds = {f"{figure}{end}" for figure in ("latency", "throughput") for end in ("", "_low", "_high")}
    assert set(run["ratios"]) == {"size", "accuracy_retained", *speeds}
    assert run["ratios"]["latency_low"] <= run["ratios"]["latency"] <= run["ratios"]["latency_high"]
    for row in ("baseline", "result"):  # the speed's check rides with both rows: one window timed them
        assert {"unstable", "reasons", "threads", "others_cores", "calibration_x", "attempts"} <= \
            run[row]["speed_check"].keys()
    assert run["baseline"]["eval_examples"] == 40
    stored = json.loads(cli("runs", "--json").stdout)
    assert [r["run_id"] for r in stored] == [run["run_id"]]
