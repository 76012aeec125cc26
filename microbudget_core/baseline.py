"""The baseline is the task model: a pretrained encoder gets its head by transfer learning, once.

The trained baseline is cached on disk, keyed by a hash of (model, dataset, recipe), so the
second run (and every app session) starts from it without training.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import devices, kinds
from .support import limits
from .support.atomic import folder_atomically
from .data import Dataset
from .support.errors import move_aside
from .support.exclusive import one_at_a_time
from .models import OFFLINE_MODELS, ModelBundle, ModelSpec, load_model
from .saved import load_saved
from .models.bundle import DAMAGED, artifact_state
from .support.paths import home
from .support.progress import Progress, no_progress
from .techniques import finetune_head
from .training import MIN_STEPS, TrainConfig, train_classifier

# bump when training code changes what a cached baseline would contain (2: layer-mean text head, 3: MIN_STEPS)
RECIPE_VERSION = 3


@one_at_a_time  # it may fine-tune: a model job, queued like the others
def build_baseline(model_id: str, dataset: Dataset, task: str | None = None, recipe: TrainConfig | None = None,
                   progress: Progress = no_progress) -> ModelBundle:
    """The task model for `dataset`: as loaded if its head already fits, else fine-tuned and cached.

    `task` defaults to the dataset's classification task; "causal-lm" asks for a language model as it is.
    """
    task = task or kinds.for_inputs(dataset.modality).ID
    pretrained = load_model(ModelSpec(model_id), dataset.label_names, task, dataset.image_size)
    if pretrained.head_trained:
        return pretrained
    head = OFFLINE_MODELS[model_id].baseline_head if model_id in OFFLINE_MODELS else None
    if not recipe and head is not None:
        # mpnet-base (109M): a full fine-tune on 11k texts is about an hour on 2 cores, its frozen features once
        # about 8 minutes, and its layer-mean features are strong enough for a head alone. Its head trains longer
        # at a lower rate than finetune-head's default (rotten-tomatoes: 0.886 vs 0.875; scikit-learn's L2
        # logistic regression on the same features, C by hand, 0.882). docs/results.md: Default baselines.
        recipe = finetune_head.Config(**head)
    recipe = recipe or kinds.get(task).RECIPE
    folder = home() / "baselines" / _cache_key(model_id, dataset, recipe)
    if artifact_state(folder) == DAMAGED:  # a file truncated since it was written: kept aside, trained again
        warnings.warn(f"the cached baseline {folder.name} is damaged; moved aside to {move_aside(folder).name}")
    if not (folder / "microbudget.json").exists():
        _train_and_cache(pretrained, dataset, recipe, folder, progress)
    os.utime(folder)  # used now: `clean` removes the least recently used entries first
    return _load_cached(folder)


@lru_cache(maxsize=4)
def _load_cached(folder: Path) -> ModelBundle:
    return load_saved(folder)


def _train_and_cache(pretrained: ModelBundle, dataset: Dataset, recipe: Any, folder: Path,
                     progress: Progress) -> None:
    if isinstance(recipe, TrainConfig):
        progress(0.0, f"First run: fine-tuning {pretrained.name} on {dataset.id} (cached afterwards)")
        # A small dataset (photos-12: 165 examples, 6 batches an epoch) repeats its examples up to MIN_STEPS updates.
        trained, report = train_classifier(pretrained, dataset.train, recipe, progress, min_steps=MIN_STEPS)
    else:  # a head on the frozen features (finetune_head's Config)
        progress(0.0, f"First run: training a head on {pretrained.name}'s frozen features of {dataset.id} "
                      "(cached afterwards)")
        model, report, _ = finetune_head.fit_head(pretrained, dataset.train, recipe, progress)
        trained = replace(pretrained, model=model, head_trained=True, meta=dict(pretrained.meta))
    trained.meta.update(train_seconds=report.train_seconds, train_examples=report.train_examples,
                        history=report.history, trained_on=report.hardware, recipe=asdict(recipe), dataset=dataset.id)
    if devices.is_main():  # several processes trained it together: one writes it, the others then read it
        with folder_atomically(folder) as partial:  # an interrupted build leaves no half entry
            trained.save(partial)
    devices.wait_for_everyone()


def _cache_key(model_id: str, dataset: Dataset, recipe: Any) -> str:
    # The operator's limits change what the recipe trains on: a baseline made under them is kept apart.
    # So do mixed precision and gradient accumulation (named only where asked for: the default's keys stay).
    training = devices.current()
    changed = [training.mixed_precision, training.gradient_accumulation] if training != devices.Training(
        training.device) else []
    key = json.dumps([model_id, dataset.id, dataset.train.fingerprint(), asdict(recipe), limits.active(),
                      RECIPE_VERSION, *changed])
    readable = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{model_id}-{dataset.id}")[:60]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
