"""The offline datasets that ship inside installed packages."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..assets import MNIST_5K, ROTTEN_TOMATOES, asset_path
from . import IMAGE, TEXT, BundledDataset


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


BUNDLED = {
    d.id: d
    for d in [
        BundledDataset("rotten-tomatoes", TEXT,
                       "Rotten Tomatoes critics' snippets, fresh vs rotten (12.7k, offline)", rotten_tomatoes),
        # 28x28 digits upscaled to 64 px: plenty for MobileNetV2, and 12x cheaper than 224 px.
        BundledDataset("mnist-5k", IMAGE, "MNIST handwritten digits, 500 per class (5k, offline)", mnist_5k,
                       image_size=64),
    ]
}
