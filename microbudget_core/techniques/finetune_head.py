"""Head only: the pretrained backbone frozen, a new head trained on its features (computed once, cached on disk)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .. import devices
from ..cache import cached_array
from ..data import Dataset, Split, fingerprint
from ..models import ModelBundle
from ..models.anatomy import head_inputs, head_name, under
from ..models.bundle import IMAGE, TEXT
from ..support.progress import Progress, no_progress, scaled
from ..runtimes import PYTORCH
from ..training import TrainReport, split_for_training
from . import _finetune, applies_to

ID = "finetune-head"
DESCRIPTION = "Transfer learning, head only: the backbone frozen, a linear or MLP head trained on its cached features"
TRAINS = True  # under `accelerate launch`, every process runs it and trains its share
HEADS = ("linear", "mlp")
MLP_HIDDEN = 256
# Head learning rates by kind (a rate of 0 picks these). Frozen text features are wide (MiniLM 7 x 384, mpnet-base
# 13 x 768) and overfit at the image rate; rotten-tomatoes head-only at 3e-3 -> 3e-4: MiniLM 0.764 -> 0.774,
# mpnet-base 0.841 -> 0.875. MobileNetV2's 1280 ImageNet features are trained at 3e-3 (docs/results.md: Transfer, Photos).
RATES = {TEXT: 3e-4, IMAGE: 3e-3}
FEATURES_VERSION = 3  # bump when the way features are computed or stored changes: old cache entries stop matching


@dataclass(frozen=True)
class Config:
    head: str = field(default="linear", metadata={"choices": HEADS})
    epochs: int = field(default=20, metadata={"min": 1})  # cheap: an epoch runs only the head, on cached features
    learning_rate: float = field(default=0.0, metadata={"min": 0, "max": 1})  # 0: by kind (RATES)
    examples_per_class: int = field(default=0, metadata={"min": 0})  # 0: all; else the first k of each class
    # epochs without validation gain before stopping (late epochs, at low rates, still help)
    patience: int = field(default=10, metadata={"min": 1})
    # Vision: frozen ImageNet features see small images (28 px digits) better enlarged; 0 keeps the baseline's size.
    # MobileNetV2 on mnist-5k, linear head: 96 px 0.944, 128 px 0.955, 160 px 0.948 eval accuracy (features
    # computed once in 54 s at 128 px).
    min_image_size: int = field(default=128, metadata={"min": 0, "max": 1024})
    seed: int = 0


@applies_to(ID, (TEXT, IMAGE), (PYTORCH,))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    size = bundle.meta.get("image_size")
    start = _finetune.pretrained(ID, bundle, config, dataset, size and max(size, config.min_image_size))
    model, report, cached = fit_head(start, dataset.train, config, progress)
    feature_seconds = report.feature_seconds
    how = ("loaded from the cache" if cached else f"computed once ({feature_seconds:.0f} s) and cached")
    note = f"Head only ({config.head}): {_finetune.trainable(report, model)}; backbone frozen, its features {how}."
    mlp = config.head == "mlp"
    details = {"head": config.head, "features_cached": cached, "feature_seconds": feature_seconds}
    head = head_name(start.model, len(start.labels))  # where the new head went (an MLP's last Linear is inside it)
    return _finetune.result(start, model, report, note, structure=ID if mlp else None, details=details,
                            **({"mlp_head": {"module": head, "hidden": MLP_HIDDEN}} if mlp else {}))


def fit_head(start: ModelBundle, train: Split, config: Config,
             progress: Progress = no_progress) -> tuple[nn.Module, TrainReport, bool]:
    """A copy of `start`'s model with a new head trained on its frozen features; its report; whether the features
    came from the cache. The report's train_seconds include computing the features (the run that does pays)."""
    config = replace(config, learning_rate=config.learning_rate or RATES[start.task])
    model = copy.deepcopy(start.model)  # the result; load_model's cached original stays as it is
    head = head_name(model, len(start.labels))
    started = time.perf_counter()
    features, cached = frozen_features(start, model, head, train.inputs, scaled(progress, 0.0, 0.4))
    feature_seconds = time.perf_counter() - started
    trained_head, report = train_head(start, model.get_submodule(head), Split(list(features), train.labels),
                                      config, scaled(progress, 0.0 if cached else 0.4, 1.0), config.head)
    model.set_submodule(head, trained_head)
    report.train_seconds += feature_seconds
    report.feature_seconds = feature_seconds
    return model, report, cached


def train_head(start: ModelBundle, old_head: nn.Linear, rows: Split, config: Any, progress: Progress,
               kind: str = "linear") -> tuple[nn.Module, TrainReport]:
    """A fresh head (`kind` linear or mlp) trained on feature rows, taking raw features once folded.

    `config`: any technique config with epochs, learning_rate, examples_per_class, patience and seed.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        head = nn.Linear(old_head.in_features, old_head.out_features) if kind == "linear" else _mlp(old_head)
    rate = _finetune.recipe_rate(config, start.task)
    fit, _ = split_for_training(rows, _finetune.recipe(config, rate), config.examples_per_class)
    on_features = ModelBundle(_OnFeatures(head, np.stack(fit.inputs)), start.task, start.labels, _stack_rows,
                              start.name)
    trained, report = _finetune.train(on_features, rows, config, progress, rate)
    return trained.model.folded(), report


def restructure(model: nn.Module, meta: dict) -> nn.Module:
    """The MLP head in place of the Linear one, for a saved artifact (its weights are loaded afterwards)."""
    spec = meta["mlp_head"]
    model.set_submodule(spec["module"], _mlp(model.get_submodule(spec["module"]), spec["hidden"]))
    return model


def _mlp(linear: nn.Linear, hidden: int = MLP_HIDDEN) -> nn.Sequential:
    return nn.Sequential(nn.Linear(linear.in_features, hidden), nn.ReLU(), nn.Linear(hidden, linear.out_features))


class _OnFeatures(nn.Module):
    """The head alone, fed the cached features, centred and scaled as its training examples' statistics say.

    Raw features can be tiny or far from zero (BERT's pooler outputs are about 0.05), which a head learns slowly from;
    `folded()` then moves the standardisation into the head's first Linear, so the model keeps its structure.
    """

    def __init__(self, head: nn.Module, examples: np.ndarray):
        super().__init__()
        self.head = head
        self.register_buffer("mean", torch.from_numpy(examples.mean(axis=0)), persistent=False)  # moves with it
        self.scale = float(np.sqrt(np.mean((examples - examples.mean(axis=0)) ** 2))) or 1.0  # one scale for all

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head((features - self.mean) / self.scale)

    @torch.no_grad()
    def folded(self) -> nn.Module:
        """The head alone, taking raw features: W (x - mean) / scale + b = (W / scale) x + (b - (W / scale) mean)."""
        first = self.head if isinstance(self.head, nn.Linear) else self.head[0]
        first.weight.div_(self.scale)
        first.bias.sub_(first.weight @ self.mean)
        return self.head


def _stack_rows(rows: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    return {"features": torch.from_numpy(np.stack(rows))}


def frozen_features(start: ModelBundle, model: nn.Module, head: str, inputs: list,
                    progress: Progress = no_progress) -> tuple[np.ndarray, bool]:
    """The head's input for every one of `inputs` (and whether it came from the cache).

    Keyed by model id, backbone weights (a retrained local folder gets new features), inputs, image size and head:
    not by the head's weights, so a teacher reads the features its own head was trained on (distill).
    """
    key = [start.name, start.runtime.digest(model, skip=lambda name: under(name, head)),
           fingerprint(inputs),
           start.meta.get("image_size"), head, FEATURES_VERSION]
    return cached_array("features", start.name, key,  # computed on the training device, by the main process
                        lambda: head_inputs(devices.placed(model), head, devices.sending(start.preprocess), inputs,
                                            progress=progress))
