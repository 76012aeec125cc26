"""Take-away artifacts and the store under pressure: export round trip, delete, concurrent writers, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import HANG_GUARD_S
from microbudget_core import kinds
from microbudget_core.cli import main
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.export import CARD_NAME, export_run
from microbudget_core.measure import MeasureConfig
from microbudget_core.saved import load_saved
from microbudget_core.pipeline import Request, run_pipeline
from microbudget_core.runs import Run, RunStore
from microbudget_core.training import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
FAST = MeasureConfig(memory=False, warmup=1, latency_runs=3)


@pytest.fixture
def stored_run(tiny_text_model, sentiment_csv, monkeypatch) -> Run:
    recipe = TrainConfig(epochs=4, learning_rate=3e-3, batch_size=16, patience=2)
    monkeypatch.setattr(kinds.get("text-classification"), "RECIPE", recipe)
    request = Request(str(tiny_text_model), f"csv:{sentiment_csv}", [("dynamic-int8", {"backend": "torch.ao"})],
                      eval_limit=20)
    return run_pipeline(request, measure_config=FAST)


def test_an_export_loads_in_a_fresh_process_with_the_model_cards_snippet(stored_run, tmp_path):
    folder = export_run(stored_run, tmp_path / "export" / stored_run.run_id)
    card = (folder / CARD_NAME).read_text()
    assert "dynamic-int8" in card and stored_run.dataset in card
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    texts = ["good great film", "bad boring plot", "the actors were superb"]
    snippet = snippet.replace('["your text here"]', json.dumps(texts))
    fresh = subprocess.run([sys.executable, "-c", snippet], cwd=folder.parent, capture_output=True, text=True,
                           env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
                           timeout=HANG_GUARD_S)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    original = load_saved(Path(stored_run.artifact_path))
    expected = [original.labels[i] for i in original.predict(texts)]
    assert fresh.stdout.strip().splitlines()[-1] == str(expected)
    with pytest.raises(MicrobudgetError, match="not empty"):
        export_run(stored_run, folder)


def test_a_deleted_artifact_is_reported_and_deleting_a_run_removes_its_files(stored_run, tmp_path):
    store = RunStore()
    artifact = Path(stored_run.artifact_path)
    assert artifact.is_dir()
    assert store.delete(stored_run.run_id) and store.get(stored_run.run_id) is None
    assert not artifact.exists()
    assert not store.delete(stored_run.run_id)
    with pytest.raises(MicrobudgetError, match="artifact missing"):
        export_run(stored_run, tmp_path / "out")


def test_delete_never_touches_a_folder_outside_the_apps_own(tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    store = RunStore()
    run = store.add(Run("m", "d", "text-classification", [], {}, {}, {}, artifact_path=str(outside)))
    assert store.delete(run.run_id)
    assert outside.is_dir()


def test_two_writers_at_once_lose_no_run(tmp_path):
    store_path = tmp_path / "runs.sqlite"
    RunStore(store_path)

    def write(worker: int) -> None:
        store = RunStore(store_path)  # each app session opens its own connection
        for n in range(25):
            store.add(Run(f"m{worker}", "d", "text-classification", [], {"n": n}, {}, {}))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = RunStore(store_path).list()
    assert len(runs) == 100 and len({r.run_id for r in runs}) == 100


def test_cli_compare_recommends_and_export_writes_the_artifact(stored_run, tmp_path, capsys):
    size_mb = stored_run.result.size_bytes / 1e6
    assert main(["compare", "--dataset", stored_run.dataset, "--max-size-mb", f"{size_mb * 1.01}", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["recommendation"]["run_id"] == stored_run.run_id  # the original is too big
    assert main(["compare", "--dataset", stored_run.dataset, "--max-size-mb", f"{size_mb / 2}", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["recommendation"] is None and "No run meets the size limit" in answer["message"]
    assert answer["shortfalls"]["max_size_mb"] == pytest.approx(size_mb / 2, rel=1e-3)
    assert main(["export", stored_run.run_id, str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / CARD_NAME).exists() and (tmp_path / "out" / "microbudget.json").exists()
    assert main(["export", "no-such-run", str(tmp_path / "other")]) == 2
    assert "No run with id 'no-such-run'" in capsys.readouterr().err

