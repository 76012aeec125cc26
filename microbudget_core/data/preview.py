"""A first look at a dataset before training: a few examples and the count of each class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import DatasetSpec, load_dataset


@dataclass(frozen=True)
class Preview:
    modality: str  # "text" or "image"
    examples: dict[str, list[Any]]  # class name -> its first few training examples
    counts: dict[str, int]  # class name -> examples in train + eval


def preview(dataset_id: str, per_class: int = 4) -> Preview:
    """Up to `per_class` training examples of every class, and how many examples each class has."""
    dataset = load_dataset(DatasetSpec(dataset_id))
    labels = np.concatenate([dataset.train.labels, dataset.eval.labels])
    examples = {name: [dataset.train.inputs[i] for i in np.flatnonzero(dataset.train.labels == index)[:per_class]]
                for index, name in enumerate(dataset.label_names)}
    counts = {name: int(np.sum(labels == index)) for index, name in enumerate(dataset.label_names)}
    return Preview(dataset.modality, examples, counts)
