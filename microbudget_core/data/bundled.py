"""The offline datasets that ship inside installed packages."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..support.assets import MNIST_5K, ROTTEN_TOMATOES, asset_path
from ..support.errors import MicrobudgetError
from .dataset import AUDIO_INPUTS, IMAGE_INPUTS, TEXT_INPUTS, BundledDataset, Dataset, Split, split, transcribed
from . import audio


def rotten_tomatoes() -> tuple[list[Any], list[str]]:
    """Critics' review snippets labelled fresh/rotten; plot summaries and duplicates dropped."""
    frame = pd.read_csv(asset_path(ROTTEN_TOMATOES))
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    frame = frame.assign(text=frame["text"].str.strip()).dropna(subset=["text"])
    frame = frame[frame["text"].str.len() > 0]
    # A snippet quoted twice with opposite labels is ambiguous: drop every copy of it.
    consistent = frame.groupby("text")["category"].transform("nunique") == 1
    frame = frame[consistent].drop_duplicates("text")
    return frame["text"].tolist(), frame["category"].tolist()


def mnist_5k() -> tuple[list[Any], list[str]]:
    """5,000 handwritten digits (500 per class), 28x28 grayscale uint8."""
    values = pd.read_csv(asset_path(MNIST_5K), header=None).to_numpy()
    images = [row.reshape(28, 28).astype(np.uint8) for row in values[:, :-1]]
    return images, [str(label) for label in values[:, -1]]


# Debian's dataset-fashion-mnist package (apt): the original IDX files, where apt is available.
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot"]


def fashion_mnist_5k() -> tuple[list[Any], list[str]]:
    """5,000 Zalando article images (the first 500 per class of the 10k test file), 28x28 grayscale uint8."""
    if not FASHION_MNIST.is_dir():
        raise MicrobudgetError("Fashion-MNIST is not installed on this machine.",
                               "Install Debian's package (sudo apt install dataset-fashion-mnist) or pick mnist-5k.")
    images = read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:500] for c in range(len(FASHION_CLASSES))]))
    return list(images[keep]), [FASHION_CLASSES[c] for c in labels[keep]]


def read_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file (MNIST's format) as a uint8 array. By hand: no installed library reads IDX offline."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    zero, kind, dimensions = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or kind != 0x08:  # 0x08: unsigned bytes, the only kind MNIST-style files use
        raise MicrobudgetError(f"{path} is not an IDX file of unsigned bytes.", "Reinstall the dataset package.")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dimensions))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dimensions).reshape(shape)


# Debian's tuxpaint-stamps-default package (apt): photo cut-outs (RGBA on transparent backgrounds) in folders by
# subject. The photo folders of 9 or more pictures; cartoons, SVG drawings and mirrored copies left out.
TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")
PHOTO_CLASSES = ["animals/mammals", "animals/birds", "food/fruit", "plants/flowers", "food/vegetables",
                 "seasonal/christmas", "vehicles", "household/tools", "animals/fish", "hobbies/music", "space/planets",
                 "animals/insects"]
PHOTO_SIZE = 224
PHOTOS = "photos-12"  # the image pages' default dataset where it is installed: the talk's demo is photos, not digits


@lru_cache(maxsize=1)
def photos_12() -> tuple[list[Any], list[str]]:
    """257 photos in 12 classes (9 to 65 each), composited on white and padded to a 224 px square, RGB uint8.

    Decoded once per process (about 5 s): every load returns these same arrays, so never change them in place.
    """
    if not TUXPAINT_STAMPS.is_dir():
        raise MicrobudgetError("The photos (Tux Paint's stamps) are not installed on this machine.",
                               "Install Debian's package (sudo apt install tuxpaint-stamps-default) or pick mnist-5k.")
    images, labels = [], []
    for folder in PHOTO_CLASSES:
        for path in sorted((TUXPAINT_STAMPS / folder).rglob("*.png")):
            if "cartoon" not in path.relative_to(TUXPAINT_STAMPS).parts and "_mirror" not in path.stem:
                images.append(_on_white_square(path, PHOTO_SIZE))
                labels.append(folder.rsplit("/", 1)[-1])
    return images, labels


def _on_white_square(path: Path, size: int) -> np.ndarray:
    """A cut-out composited on white, padded (white) to a square around its centre, resized to `size` px."""
    with Image.open(path) as picture:
        rgba = picture.convert("RGBA")
    side = max(rgba.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    return np.asarray(square.convert("RGB").resize((size, size), Image.Resampling.LANCZOS))


SPOKEN_SOURCE = "rotten-tomatoes"  # the text dataset read aloud for speech-clips' training speech


def speech_clips(seed: int) -> Dataset:
    """The recorded clips for evaluation; for training, flite reading snippets of SPOKEN_SOURCE (never the same
    sentences: the recorded ones are from a novel and card names)."""
    audios, texts = audio.recorded_clips()
    train = _spoken_split(load(SPOKEN_SOURCE, seed).train, audio.SPOKEN_TRAIN, seed, SPOKEN_SOURCE)
    return transcribed("speech-clips", train, Split(audios, np.array(texts, dtype=object)),
                       BUNDLED["speech-clips"].description)


def spoken_dataset(source: Dataset, seed: int) -> Dataset:
    """A text dataset's texts read aloud by flite: its train texts for training, its eval texts for evaluation."""
    source_id = source.id
    if source.modality != TEXT_INPUTS:
        raise MicrobudgetError(f"spoken:{source_id} reads a text dataset aloud, and '{source_id}' holds "
                               f"{source.modality}.", f"Use a text dataset, e.g. spoken:{SPOKEN_SOURCE}.")
    train = _spoken_split(source.train, audio.SPOKEN_TRAIN, seed, source_id)
    seen = {" ".join(t.lower().split()) for t in train.labels}  # a text quoted in both splits stays in train only
    held_out = [t for t in source.eval.inputs if " ".join(t.lower().split()) not in seen]
    eval_split = _spoken_split(Split(held_out, np.zeros(len(held_out))), audio.SPOKEN_EVAL, seed + 1, source_id)
    return transcribed(f"spoken:{source_id}", train, eval_split,
                       f"{source.description}, read aloud by flite in {len(audio.FLITE_VOICES)} voices")


def _spoken_split(texts: Split, limit: int, seed: int, source: str) -> Split:
    chosen = audio.speakable(texts.inputs, limit)
    if not chosen:
        raise MicrobudgetError(f"'{source}' has no text short enough to speak ({audio.MAX_SPOKEN_WORDS} words or "
                               "fewer).", "Use a dataset of sentences.")
    return Split(audio.spoken(chosen, seed, source), np.array(chosen, dtype=object))


BUNDLED = {
    d.id: d
    for d in [
        BundledDataset("rotten-tomatoes", TEXT_INPUTS,
                       "Rotten Tomatoes critics' snippets, fresh vs rotten (12.7k, offline)", rotten_tomatoes),
        # 28x28 digits upscaled to 64 px: plenty for MobileNetV2, and 12x cheaper than 224 px.
        BundledDataset("mnist-5k", IMAGE_INPUTS, "MNIST handwritten digits, 500 per class (5k, offline)", mnist_5k,
                       image_size=64),
        BundledDataset("fashion-mnist-5k", IMAGE_INPUTS, "Fashion-MNIST clothing, 500 per class (5k, Debian package)",
                       fashion_mnist_5k, image_size=64, installed=FASHION_MNIST.is_dir),
        # image_size None: each network runs at the resolution it was trained at (224, 240, 260 px).
        BundledDataset(PHOTOS, IMAGE_INPUTS, "Photos of 12 subjects (animals, fruit, flowers, vehicles, ...; 257 "
                       "cut-outs on white, Debian package)", photos_12, installed=TUXPAINT_STAMPS.is_dir),
        BundledDataset("speech-clips", AUDIO_INPUTS, "10 recorded English clips (LibriVox, spoken cards) with transcripts; "
                       "trains on flite speech (Debian packages)", lambda: ([], []),
                       installed=lambda: audio.recorded_installed() and audio.flite_installed(), splits=speech_clips),
    ]
}


def load(dataset_id: str, seed: int) -> Dataset:
    """A bundled dataset's seeded splits."""
    entry = BUNDLED[dataset_id]
    if entry.splits:
        return entry.splits(seed)
    inputs, labels = entry.load()
    dataset = split(dataset_id, entry.modality, inputs, labels, seed, entry.description)
    dataset.image_size = entry.image_size
    return dataset


def installed(modality: str | None = None) -> list[BundledDataset]:
    """The bundled datasets this machine can load (of `modality`, where given)."""
    return [d for d in BUNDLED.values() if d.installed() and modality in (None, d.modality)]


def installed_ids() -> list[str]:
    """The bundled dataset ids this machine can load."""
    return [d.id for d in installed()]
