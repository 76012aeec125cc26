"""Two jobs at once in one process, as two browser sessions (or a rerun and its stale run) make them."""

from __future__ import annotations

import threading
import time

import torch

from microbudget_core import models
from microbudget_core.pipeline import Request, run_pipeline
from microbudget_core.runs import RunStore


def test_loading_a_model_while_another_job_trains_leaves_both_intact(tiny_text_model, sentiment_csv, tmp_path):
    # transformers' from_pretrained patches torch.nn globally while it builds a model (parameters on the meta
    # device, init functions skipped); a job building modules in another thread at that moment broke.
    stop, loaded, failures = threading.Event(), [], []

    def keep_loading() -> None:
        while not stop.is_set():
            models._load_cached.cache_clear()  # load for real each time, not from the cache
            try:
                bundle = models.load_model(models.ModelSpec(str(tiny_text_model)), ["neg", "pos"])
                loaded.append(all(p.device.type == "cpu" for p in bundle.model.parameters()))
            except Exception as error:  # noqa: BLE001 - the test reports whatever the loader thread hit
                failures.append(error)
            time.sleep(0.05)  # let the other job take its turn

    loader = threading.Thread(target=keep_loading)
    loader.start()
    try:
        request = Request(str(tiny_text_model), f"csv:{sentiment_csv}", [("dynamic-int8", {})], eval_limit=30)
        run = run_pipeline(request, RunStore(tmp_path / "runs.sqlite"))
    finally:
        stop.set()
        loader.join()
    assert not failures and loaded and all(loaded)
    assert run.result.accuracy > 0 and torch.get_default_device().type == "cpu"
