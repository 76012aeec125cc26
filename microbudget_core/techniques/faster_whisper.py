"""faster-whisper: a Whisper converted to CTranslate2 (int8 or float) by its own converter, run as people run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..data import Dataset
from ..models import ModelBundle
from ..models.bundle import SPEECH
from ..models.ctranslate2_whisper import QUANTIZATIONS, to_ctranslate2
from ..runtimes import CT2, PYTORCH
from ..runtimes._folder import new_storage
from ..runtimes.ct2 import FasterWhisperModel
from ..support.errors import MicrobudgetError
from ..support.progress import Progress, no_progress
from . import applies_to

ID = "faster-whisper"
DESCRIPTION = "CTranslate2 conversion run by faster-whisper (int8 or float weights; its own features and 30 s windows)"
RESULT_RUNTIME = CT2


@dataclass(frozen=True)
class Config:
    quantization: str = field(default="int8", metadata={"choices": QUANTIZATIONS})


@applies_to(ID, (SPEECH,), (PYTORCH,), instead="Convert the float model: put faster-whisper first.")
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    changed = bundle.meta.get("structure")
    if changed:  # int8 or half modules: CTranslate2 converts a float transformers Whisper
        raise MicrobudgetError(f"A model already changed in PyTorch ({', '.join(changed)}) cannot be converted for "
                               "faster-whisper.", "Put faster-whisper first: CTranslate2 quantizes the float weights.")
    progress(0.0, f"Converting to CTranslate2 ({config.quantization})")
    storage = new_storage()
    to_ctranslate2(bundle, {config.quantization: Path(storage.name)})
    note = (f"CTranslate2 {config.quantization} weights, run by faster-whisper (greedy, 30 s windows, its own "
            "log-mel features)." + (" This model was trained to read the clip alone; faster-whisper pads it to 30 s."
                                    if bundle.preprocess.clip_frames else ""))
    progress(1.0, "Converted")
    return bundle.derived(FasterWhisperModel(storage), note=note, runtime=CT2)
