"""Datasets: bundled offline sets, the user's CSV, image zip or audio, spoken text, and hub datasets.

Every classification loader returns raw examples and integer labels; `split()` turns them into the
seeded train / calibration / eval splits every technique and measurement share. A speech dataset's
labels are its transcripts (strings); `transcribed()` splits it so that no sentence is on both sides.
"""

from __future__ import annotations

from ..support.errors import MicrobudgetError
from . import audio, bundled, files, hub
from .dataset import (AUDIO_INPUTS, IMAGE_INPUTS, TEXT_INPUTS, BundledDataset, Dataset, DatasetSpec, Split,  # noqa: F401 (the API)
                      fingerprint, split, split_transcribed, transcribed)


def load_dataset(spec: DatasetSpec) -> Dataset:
    """Resolve a dataset id to seeded splits; a clear error for ids that do not resolve."""
    kind, _, rest = spec.id.partition(":")
    if spec.id in bundled.BUNDLED:
        return bundled.load(spec.id, spec.seed)
    if kind == "csv" and rest:
        inputs, labels = files.read_csv(rest, spec.text_column, spec.label_column)
        return split(spec.id, TEXT_INPUTS, inputs, labels, spec.seed, f"CSV file {rest}")
    if kind == "images" and rest:
        inputs, labels = files.read_images(rest)
        return split(spec.id, IMAGE_INPUTS, inputs, labels, spec.seed, f"Image folders from {rest}")
    if kind == "audio" and rest:
        audios, texts = audio.read_audio_dataset(rest)
        return split_transcribed(spec.id, audios, texts, spec.seed, f"Audio clips from {rest}")
    if kind == "spoken" and rest:
        return bundled.spoken_dataset(load_dataset(DatasetSpec(rest, seed=spec.seed)), spec.seed)
    if kind == "hf" and rest:
        modality, inputs, labels = hub.read_hub_dataset(rest, spec.text_column, spec.label_column)
        return split(spec.id, modality, inputs, labels, spec.seed, f"Hugging Face dataset {rest}")
    raise MicrobudgetError(
        f"Unknown dataset '{spec.id}'.",
        f"Use one of {', '.join(bundled.installed_ids())}, csv:PATH, images:PATH (zip or folder of class folders), "
        "audio:PATH (zip or folder of clips and transcripts), spoken:DATASET (a text dataset read aloud) "
        "or hf:NAME (needs a network).")
