"""From scratch: the same architecture with random weights, trained like finetune-full (the control for transfer)."""

from __future__ import annotations

from ..data import Dataset
from ..models import ModelBundle
from ..models.bundle import IMAGE, TEXT
from ..support.progress import Progress, no_progress
from ..runtimes import PYTORCH
from . import _finetune, applies_to
from .finetune_full import Config  # the same knobs and budget: only the starting weights differ

ID = "from-scratch"
DESCRIPTION = "Control for transfer learning: the same architecture randomly initialised, trained with the same budget"
TRAINS = True  # under `accelerate launch`, every process runs it and trains its share


@applies_to(ID, (TEXT, IMAGE), (PYTORCH,))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    return _finetune.train_everything(ID, bundle, config, dataset, progress, from_scratch=True)
