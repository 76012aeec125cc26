"""Partial fine-tuning: the last N blocks of the backbone (and the layers above them) trained, the rest frozen."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data import Dataset
from ..models import ModelBundle
from ..models.anatomy import block_names, head_name, parameters_from, under
from ..models.bundle import IMAGE, TEXT
from ..support.progress import Progress, no_progress
from ..runtimes import PYTORCH
from . import _finetune, applies_to

ID = "finetune-last-n"
DESCRIPTION = "Transfer learning, last N blocks: the backbone's top fine-tuned at a lower rate, the rest frozen"
TRAINS = True  # under `accelerate launch`, every process runs it and trains its share


@dataclass(frozen=True)
class Config:
    # blocks: BERT layers (6 in MiniLM-L6), MobileNetV2's `features` (19)
    n: int = field(default=4, metadata={"min": 1})
    epochs: int = field(default=2, metadata={"min": 1})
    # the head's (0: the baseline recipe's); blocks get learning_rate * backbone_lr_scale
    learning_rate: float = field(default=1e-3, metadata={"min": 0, "max": 1})
    backbone_lr_scale: float = field(default=0.3, metadata={"above": 0, "max": 1})
    # 0: all; else the first k of each class. 1,000 by default: a run finishes in a few minutes on 2 cores even on
    # a large dataset (MiniLM-L6 on Rotten Tomatoes: 2,000 of 11,452 training texts; every bundled image set is whole)
    examples_per_class: int = field(default=1000, metadata={"min": 0})
    patience: int = field(default=1, metadata={"min": 1})  # epochs without validation gain before stopping
    seed: int = 0


@applies_to(ID, (TEXT, IMAGE), (PYTORCH,))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    start = _finetune.pretrained(ID, bundle, config, dataset)
    blocks = block_names(start.model)
    n = min(config.n, len(blocks))  # more than the model has: all of them, like examples_per_class
    head = head_name(start.model, len(start.labels))
    rate = _finetune.recipe_rate(config, start.task)
    # Everything from the first unfrozen block up trains (a pooler too, where there is one); the head at the full rate.
    scales = {name: 1.0 if under(name, head) else config.backbone_lr_scale
              for name in parameters_from(start.model, blocks[-n])}
    trained, report = _finetune.train(start, dataset.train, config, progress, rate, lr_scales=scales)
    note = (f"Last {n} of {len(blocks)} blocks and the head trained: "
            f"{_finetune.trainable(report, trained.model)}; head at learning rate {rate:g}, "
            f"blocks at {rate * config.backbone_lr_scale:g}.")
    return _finetune.result(start, trained.model, report, note, details={"blocks_trained": n,
                                                                         "blocks_total": len(blocks)})
