"""CTranslate2 through faster-whisper: a Whisper converted to CTranslate2's model.bin, transcribing as people run it.

faster-whisper is how most people run Whisper on CPUs, so its rows are the anchor the others are compared with:
the clip goes to `WhisperModel.transcribe` as it is (faster-whisper's own features, 30 s windows), greedy.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.whisper_ct2 import read_model_bin
from . import CT2
from ._folder import FolderModel

ID = CT2
NAME = "CTranslate2 (faster-whisper)"
SELF_CONTAINED = True  # model.bin holds the weights; the folder's JSON files the vocabulary and features
SUBFOLDER = "ctranslate2"
WEIGHTS = "model.bin"


class FasterWhisperModel(FolderModel):
    """faster-whisper's WhisperModel over a CTranslate2 folder that this object owns."""

    def open(self) -> None:
        from faster_whisper import WhisperModel  # a slow import, which most pages never need

        # "default": the precision the folder was converted to (int8 stays int8, float32 stays float32)
        self.whisper = WhisperModel(str(self.folder), device="cpu", compute_type="default", cpu_threads=self.threads,
                                    num_workers=1)


def transcribe(model: FasterWhisperModel, audio: np.ndarray) -> tuple[str, int]:
    """faster-whisper's transcript of one clip (greedy, English, no timestamps) and its count of text tokens."""
    segments, _ = model.whisper.transcribe(audio, language="en", beam_size=1, best_of=1, temperature=0.0,
                                           without_timestamps=True, condition_on_previous_text=False,
                                           vad_filter=False)
    segments = list(segments)  # a generator: the decoding happens here
    return " ".join(s.text.strip() for s in segments if s.text.strip()), sum(len(s.tokens) for s in segments)


def run(model: FasterWhisperModel, features: dict[str, torch.Tensor]) -> np.ndarray:
    """The first transcript token's logits for {"input_features" (30 s windows), "decoder_input_ids"}."""
    import ctranslate2

    mels = ctranslate2.StorageView.from_array(np.ascontiguousarray(features["input_features"].numpy()))
    prompts = features["decoder_input_ids"].tolist()
    results = model.whisper.model.generate(mels, prompts, max_length=len(prompts[0]) + 1, beam_size=1,
                                           return_logits_vocab=True)
    return np.stack([np.asarray(result.logits[0][0], dtype=np.float32) for result in results])


def save(model: FasterWhisperModel, folder: Path) -> None:
    target = folder / SUBFOLDER
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(model.folder, target)


def load(folder: Path, model: Any = None) -> FasterWhisperModel:
    return FasterWhisperModel.from_folder(folder / SUBFOLDER)


def parameter_count(model: FasterWhisperModel) -> int:
    """Elements of the model.bin's variables (int8 or float), as stored."""
    variables = read_model_bin(model.folder / WEIGHTS)[0]
    return sum(int(np.prod(value.shape)) for value in variables.values())


def digest(model: FasterWhisperModel, skip: Any = None) -> str:
    return hashlib.sha256((model.folder / WEIGHTS).read_bytes()).hexdigest()


def set_threads(model: FasterWhisperModel, threads: int) -> None:
    model.set_threads(threads)
