"""Few-shot prompting: a language model answering a classification task sees k labelled examples first."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..data import Dataset
from ..support.errors import MicrobudgetError
from ..models import ModelBundle
from ..models.bundle import TEXT
from ..models.llm import PromptPreprocessor
from ..support.progress import Progress, no_progress
from ..runtimes import LLAMACPP, PYTORCH
from . import applies_to

ID = "few-shot"
DESCRIPTION = "Few-shot prompting of a language model used as a classifier: k labelled training examples in the prompt"
MAX_SHOTS = 32


@dataclass(frozen=True)
class Config:
    # labelled training examples placed in the prompt, one class after another
    shots: int = field(default=4, metadata={"min": 0, "max": MAX_SHOTS})
    seed: int = 0  # which training examples


@applies_to(ID, (TEXT,), (PYTORCH, LLAMACPP),
            instead="Pick a language model such as smollm2-135m and a text dataset: it then answers as a classifier.")
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    if not isinstance(bundle.preprocess, PromptPreprocessor):
        raise MicrobudgetError(f"few-shot prompts a language model, and '{bundle.name}' is not one answering a "
                               "classification task.", "Pick a language model such as smollm2-135m and a text dataset.")
    if dataset is None:
        raise MicrobudgetError("few-shot takes its examples from a dataset's training split, and none was given.",
                               "Run it with a dataset.")
    progress(0.0, f"Choosing {config.shots} examples for the prompt")
    preprocess = dataclasses.replace(bundle.preprocess, shots=_shots(dataset, bundle.labels, config))
    preprocess([""])  # a prompt too long for the model's context fails here, with its message
    progress(1.0, "Prompt ready")
    note = f"{config.shots} labelled training examples in the prompt (labels scored, not generated)."
    return dataclasses.replace(bundle.derived(bundle.model, note=note, shots=[list(s) for s in preprocess.shots]),
                               preprocess=preprocess)


def _shots(dataset: Dataset, labels: list[str], config: Config) -> tuple[tuple[str, str], ...]:
    """k training examples taken in turn from each class (seeded), as (text, label name)."""
    order = np.random.default_rng(config.seed).permutation(len(dataset.train))
    queues = [[i for i in order if dataset.train.labels[i] == label] for label in range(len(labels))]
    picked = [queue[turn] for turn in range(config.shots) for queue in queues if turn < len(queue)][: config.shots]
    return tuple((dataset.train.inputs[i], labels[dataset.train.labels[i]]) for i in picked)
