"""A dataset's shape: seeded train / calibration / eval splits of raw examples and integer labels (or transcripts),
and the functions that split them; the loaders live beside this module."""


from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from ..support.errors import MicrobudgetError

TEXT_INPUTS = "text"
IMAGE_INPUTS = "image"
AUDIO_INPUTS = "audio"  # 16 kHz mono float32 waveforms, transcripts as labels


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset id (`rotten-tomatoes`, `mnist-5k`, `speech-clips`, `csv:PATH`, `images:PATH`, `audio:PATH`,
    `spoken:DATASET`, `hf:NAME`) and options."""

    id: str
    text_column: str | None = None  # csv only; auto-detected when None
    label_column: str | None = None
    seed: int = 0


@dataclass
class Split:
    inputs: list[Any]  # texts (str), images (uint8 numpy arrays) or waveforms (float32 at 16 kHz)
    labels: np.ndarray  # int64 class indices, or (speech) an object array of transcripts

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int | None) -> "Split":
        """The first n examples (the splits are already shuffled)."""
        return self if n is None else Split(self.inputs[:n], self.labels[:n])

    def per_class(self, k: int) -> "Split":
        """The first k examples of each class, in split order (already shuffled); k=0 keeps all."""
        return self if k <= 0 else self._where(self.first_of_each_class(k))

    def beyond_per_class(self, k: int) -> "Split":
        """What per_class(k) leaves out (nothing for k=0)."""
        return self._where(~self.first_of_each_class(k)) if k > 0 else self.head(0)

    def first_of_each_class(self, k: int) -> np.ndarray:
        """A mask of the first k examples of each class."""
        mask = np.zeros(len(self), dtype=bool)
        for label in np.unique(self.labels):
            mask[np.flatnonzero(self.labels == label)[:k]] = True
        return mask

    def _where(self, mask: np.ndarray) -> "Split":
        return Split([x for x, keep in zip(self.inputs, mask) if keep], self.labels[mask])

    def fingerprint(self) -> str:
        """A sha256 of the examples and labels, for cache keys that must change when the data does."""
        return fingerprint(self.inputs, self.labels)


@dataclass
class Dataset:
    id: str
    modality: str  # TEXT_INPUTS, IMAGE_INPUTS or AUDIO_INPUTS
    label_names: list[str]
    train: Split
    calibration: Split  # a slice of train, for quantization calibration
    eval: Split  # never overlaps train
    description: str = ""
    image_size: int | None = None  # a suggested model input size (small images need no 224 px)


@dataclass(frozen=True)
class BundledDataset:
    id: str
    modality: str
    description: str
    load: Callable[[], tuple[list[Any], list[str]]]  # -> (inputs, label strings)
    image_size: int | None = None
    installed: Callable[[], bool] = lambda: True  # a system package's dataset is listed only where it is
    splits: Callable[[int], Dataset] | None = None  # a dataset that comes split (seed -> Dataset), instead of load


def fingerprint(inputs: Sequence[Any], labels: np.ndarray | None = None) -> str:
    """A sha256 of inputs (and their labels, where given: a model's outputs depend on the inputs alone)."""
    digest = hashlib.sha256()
    for example in inputs:
        if isinstance(example, str):
            digest.update(example.encode())
        else:
            array = np.asarray(example)
            digest.update(str(array.shape).encode() + array.tobytes())
        digest.update(b"\0")  # a boundary, so ["ab"] and ["a", "b"] differ
    if labels is not None:
        digest.update("\0".join(labels).encode() if labels.dtype == object else labels.tobytes())  # object: transcripts
    return digest.hexdigest()


def split(dataset_id: str, modality: str, inputs: list[Any], labels: list[str], seed: int = 0,
          description: str = "", eval_fraction: float = 0.2, max_eval: int = 1000,
          calibration_size: int = 256) -> Dataset:
    """Stratified, seeded train / eval split; calibration is the first part of train."""
    label_names = sorted(set(labels), key=_natural_key)
    if len(label_names) < 2:
        raise MicrobudgetError(
            f"Dataset '{dataset_id}' has only one class ({label_names[0] if label_names else 'none'}).",
            "A classifier needs at least two classes: add examples of another class.")
    counts = {name: labels.count(name) for name in label_names}
    rare = [name for name, count in counts.items() if count < 2]
    if rare:
        raise MicrobudgetError(
            f"Dataset '{dataset_id}': class {rare[0]!r} has fewer than 2 examples.",
            "Every class needs at least 2 examples (one to train on, one to evaluate).")
    index = {name: i for i, name in enumerate(label_names)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    n_eval = min(max_eval, max(len(label_names), round(len(y) * eval_fraction)))
    train_idx, eval_idx = train_test_split(np.arange(len(y)), test_size=n_eval, random_state=seed, stratify=y)

    def take(idx: np.ndarray) -> Split:
        return Split([inputs[i] for i in idx], y[idx])

    train = take(train_idx)
    return Dataset(dataset_id, modality, label_names, train, train.head(calibration_size),
                   take(eval_idx), description)


def transcribed(dataset_id: str, train: Split, eval_split: Split, description: str,
                calibration_size: int = 32) -> Dataset:
    """A speech dataset from its train and eval clips (transcripts as labels)."""
    return Dataset(dataset_id, AUDIO_INPUTS, [], train, train.head(calibration_size), eval_split, description)


def split_transcribed(dataset_id: str, audios: list[Any], texts: list[str], seed: int, description: str,
                      eval_fraction: float = 0.2) -> Dataset:
    """Seeded train / eval split of transcribed clips; clips of the same sentence stay on the same side."""
    from sklearn.model_selection import GroupShuffleSplit

    if len(audios) < 2:
        raise MicrobudgetError(f"Dataset '{dataset_id}' has {len(audios)} clip; it needs at least 2.",
                               "Add clips: one to train on, one to evaluate.")
    groups = [" ".join(text.lower().split()) for text in texts]
    if len(set(groups)) < 2:
        raise MicrobudgetError(f"Every clip of dataset '{dataset_id}' says the same sentence.",
                               "Add clips of other sentences, so the evaluation hears sentences training did not.")
    n_eval = max(1, round(len(set(groups)) * eval_fraction))
    train_idx, eval_idx = next(GroupShuffleSplit(1, test_size=n_eval, random_state=seed).split(audios, groups=groups))
    labels = np.array(texts, dtype=object)
    take = lambda idx: Split([audios[i] for i in idx], labels[idx])  # noqa: E731
    return transcribed(dataset_id, take(train_idx), take(eval_idx), description)


def _natural_key(name: str) -> tuple:
    """Sort '2' before '10' and names alphabetically."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)
