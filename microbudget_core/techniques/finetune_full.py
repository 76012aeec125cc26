"""Full fine-tuning: every weight of the pretrained model trained, with early stopping on validation."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data import Dataset
from ..models import ModelBundle
from ..models.bundle import IMAGE, TEXT
from ..support.progress import Progress, no_progress
from ..runtimes import PYTORCH
from . import _finetune, applies_to

ID = "finetune-full"
DESCRIPTION = "Transfer learning, full fine-tuning: every pretrained weight trained, early stopping on validation"
TRAINS = True  # under `accelerate launch`, every process runs it and trains its share


@dataclass(frozen=True)
class Config:
    epochs: int = field(default=2, metadata={"min": 1})
    # 0: the baseline recipe's rate (1e-3 for vision, 1.5e-4 for text)
    learning_rate: float = field(default=0.0, metadata={"min": 0, "max": 1})
    # 0: all; else the first k of each class. 1,000 by default: a run finishes in a few minutes on 2 cores even on
    # a large dataset (MiniLM-L6 on Rotten Tomatoes: 2,000 of 11,452 training texts; every bundled image set is whole)
    examples_per_class: int = field(default=1000, metadata={"min": 0})
    patience: int = field(default=1, metadata={"min": 1})  # epochs without validation gain before stopping
    freeze_embeddings: bool = True  # text: the word table's update costs more than the layers on a CPU
    seed: int = 0


@applies_to(ID, (TEXT, IMAGE), (PYTORCH,))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    return _finetune.train_everything(ID, bundle, config, dataset, progress, from_scratch=False)
