"""Speech recognition models (Whisper): the bundled tiny.en and base, any Whisper hub id or folder, one path.

A speech bundle's `preprocess` turns waveforms into log-mel features plus the decoder's start tokens, so
`bundle.logits()` is one forward pass (the first transcript token's logits: what the memory probe serves);
`transcribe()` is the real work: greedy decoding through transformers' `generate`, in any runtime.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import transformers

from ..data.audio import SAMPLE_RATE
from ..support.paths import home
from .bundle import SPEECH, ModelBundle
from .hf import from_pretrained, quiet
from .whisper_ct2 import convert

WINDOW_SECONDS = 30  # Whisper reads 30 s windows: longer audio is transcribed window by window
HOP = 160  # samples per log-mel frame: 100 frames a second
CLIP_FILE = "clip_frames.json"  # saved beside the processor when features are cut to the clip's length
MAX_NEW_TOKENS = 128  # a 30 s window holds at most ~100 words of speech


@dataclass(frozen=True)
class SpeechPreprocessor:
    """Waveforms (float32, 16 kHz) -> Whisper's log-mel `input_features` and the decoder's start tokens."""

    processor: Any  # transformers' WhisperProcessor: feature extractor + tokenizer
    generation: Any  # the model's GenerationConfig: its start tokens (saved with the processor: ONNX keeps no config)
    # 0: every window padded to 30 s; else only the clip's own frames, padded up to a multiple of this many (an
    # encoder that reads the clip alone, whisper.cpp's audio_ctx: see techniques._distill_speech.clip_encoder)
    clip_frames: int = 0

    @property
    def start_ids(self) -> list[int]:
        """<|startoftranscript|>, then English and transcribe on a multilingual model, then no timestamps."""
        ids = [self.generation.decoder_start_token_id]
        if getattr(self.generation, "is_multilingual", False):
            ids += [self.generation.lang_to_id["<|en|>"], self.generation.task_to_id["transcribe"]]
        return [*ids, self.generation.no_timestamps_token_id]

    def __call__(self, audios: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        cut = {"padding": "longest", "pad_to_multiple_of": self.clip_frames * HOP} if self.clip_frames else {}
        features = self.processor.feature_extractor([np.asarray(a, dtype=np.float32) for a in audios],
                                                    sampling_rate=SAMPLE_RATE, return_tensors="pt", **cut)
        starts = torch.tensor([self.start_ids] * len(audios))
        return {"input_features": features.input_features, "decoder_input_ids": starts}

    def decode(self, ids: Any) -> list[str]:
        return [text.strip() for text in self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def save_pretrained(self, folder: Path) -> None:
        self.processor.save_pretrained(folder)
        self.generation.save_pretrained(folder)
        if self.clip_frames:
            (Path(folder) / CLIP_FILE).write_text(json.dumps({"clip_frames": self.clip_frames}))


def is_whisper(config: Any) -> bool:
    return getattr(config, "model_type", None) == "whisper"


def speech_preprocessor(source: str | Path, generation: Any = None) -> SpeechPreprocessor:
    """The processor and generation config saved with a Whisper model (and its clip length, if it has one)."""
    processor = from_pretrained(transformers.WhisperProcessor, str(source))
    clip = Path(source) / CLIP_FILE
    clip_frames = json.loads(clip.read_text())["clip_frames"] if clip.is_file() else 0
    return SpeechPreprocessor(processor, generation or from_pretrained(transformers.GenerationConfig, str(source)),
                              clip_frames)


WHISPER_FAMILY = "whisper"


def load_whisper(source: str | Path, name: str | None = None, with_weights: bool = True) -> ModelBundle:
    """A Whisper model (hub id or folder saved with save_pretrained) as a speech bundle, in fp32; only its
    architecture when `with_weights` is False (saved.load_saved fills it)."""
    with quiet():
        if with_weights:
            model = from_pretrained(transformers.WhisperForConditionalGeneration, str(source),
                                    torch_dtype=torch.float32)
        else:
            config = from_pretrained(transformers.WhisperConfig, str(source))
            model = transformers.WhisperForConditionalGeneration(config)
    preprocess = speech_preprocessor(source)
    model.generation_config = preprocess.generation
    return ModelBundle(model=model.eval(), task=SPEECH, labels=[], name=name or str(source), preprocess=preprocess,
                       meta={"family": WHISPER_FAMILY, "source": str(source)})


def load_saved_whisper(folder: Path, info: dict[str, Any], with_weights: bool = False) -> ModelBundle:
    """The architecture of a saved Whisper, without weights (saved.load_saved fills them)."""
    bundle = load_whisper(folder, info["name"], with_weights=False)
    bundle.meta = dict(info["meta"])
    return bundle


CONVERSION_VERSION = 1  # bump when the CTranslate2 conversion changes what a converted folder holds


def converted_whisper(model_id: str, files: list[Path], checksum: str) -> Path:
    """The transformers folder converted once from a CTranslate2 model.bin (in parts, in order) and cached."""
    key = hashlib.sha256(f"{checksum}-{CONVERSION_VERSION}".encode()).hexdigest()[:16]
    target = home() / "models" / f"{model_id}-{key}"
    if not (target / "config.json").exists():
        convert(files, files[0].parent, target)
    return target


def windows(audio: np.ndarray) -> list[np.ndarray]:
    """A waveform cut into WINDOW_SECONDS pieces (one piece when it is shorter)."""
    step = WINDOW_SECONDS * SAMPLE_RATE
    return [audio[start:start + step] for start in range(0, max(len(audio), 1), step)]


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float  # wall time, preprocessing included
    tokens: int


def transcribe(bundle: ModelBundle, audio: np.ndarray) -> Transcript:
    """Greedy transcript of one clip, window by window (or as its runtime reads a clip, if it does), timed."""
    start, texts, tokens = time.perf_counter(), [], 0
    if hasattr(bundle.runtime, "transcribe"):  # faster-whisper: its own features and windows
        text, tokens = bundle.runtime.transcribe(bundle.model, audio)
        return Transcript(text, time.perf_counter() - start, tokens)
    for window in windows(audio):
        features = bundle.preprocess([window])
        ids = generate(bundle, features)
        tokens += int((ids < bundle.preprocess.generation.eos_token_id).sum())  # text tokens: specials come after
        texts += bundle.preprocess.decode(ids)
    return Transcript(" ".join(t for t in texts if t), time.perf_counter() - start, tokens)


@torch.inference_mode()
def generate(bundle: ModelBundle, features: dict[str, torch.Tensor]) -> torch.Tensor:
    """Greedy token ids, start tokens included: English transcription without timestamps.

    A PyTorch model goes through transformers' plain GenerationMixin.generate from the start tokens (the generation
    config's suppressed tokens applied): Whisper's own `generate` pads every input to a 30 s window, which would undo
    a student that reads the clip alone, and adds per-token work that short-form transcription does not need.
    ONNX Runtime's model keeps Optimum's Whisper generate (its encoder graph reads 30 s windows anyway).
    """
    model, inputs, starts = bundle.model, features["input_features"], features["decoder_input_ids"]
    dtype = getattr(model, "dtype", torch.float32)
    if dtype in (torch.float16, torch.bfloat16):  # half-precision weights want half inputs
        inputs = inputs.to(dtype)
    with quiet():  # transformers' notice about the pad token (the same as the end of text): expected here
        if isinstance(model, torch.nn.Module):
            return transformers.GenerationMixin.generate(model, input_features=inputs, decoder_input_ids=starts,
                                                         max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1)
        multilingual = getattr(bundle.preprocess.generation, "is_multilingual", False)
        ids = model.generate(input_features=inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1,
                             return_timestamps=False, language="en" if multilingual else None)
        return torch.cat([starts, ids], dim=1) if ids[0, 0] != starts[0, 0] else ids  # Whisper's drops them
