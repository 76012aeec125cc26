"""Speech recognition: audio in, a transcript out; scored by word error rate (jiwer) after Whisper's normalizer."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import transformers

from .. import data, yardstick
from ..data import Split
from ..figures import Measured
from ..data.audio import SAMPLE_RATE
from ..measure import MeasureConfig
from ..models.bundle import SPEECH, ModelBundle
from ..models.ctranslate2_whisper import to_ctranslate2
from ..models.onnx_model import refuse_changed
from ..models.onnx_speech import export_speech_onnx, quantize_speech_int8
from ..models.speech import (MAX_NEW_TOKENS, SpeechPreprocessor, is_whisper, load_whisper, speech_preprocessor,
                             transcribe)
from ..support.progress import Progress
from ..runtimes import CT2, ORT_SEQ2SEQ
from ..runtimes.ct2 import SUBFOLDER as CT2_SUBFOLDER

ID = SPEECH
DESCRIPTION = "speech recognizer"
DOES = "transcribes speech"
PICK = "a speech model such as whisper-tiny.en"
WORD_EMBEDDINGS = False  # the decoder has a token table, but techniques that trim or freeze one target text encoders
PROMPTED_FOR: tuple[str, ...] = ()
OPTIMUM_CLASS = "ORTModelForSpeechSeq2Seq"  # optimum.onnxruntime's class: an encoder and a decoder graph
RECIPE = None  # no baseline training: the model is measured as it is
INPUTS = data.AUDIO_INPUTS
QUALITY = "wer"
HIGHER_IS_BETTER = False
GPU_MEASURED = False  # measured on the CPU: its decoding loop (models.speech.transcribe) feeds CPU tensors
TIMED_CLIPS = 3  # clips timed a round: each is a whole transcript, 0.1-1 s on 2 cores
CLIP_SECONDS = 5  # multiply-adds are counted for a clip this long (the encoder still reads a 30 s window)
card_usage = ('from microbudget_core.models.speech import transcribe\n'
              'print(transcribe(model, waveform_16khz_float32).text)')
PIPELINE = "automatic-speech-recognition"  # transformers' pipeline for a PyTorch Whisper export
TAKE_AWAY = ("int8", "float32")  # the CTranslate2 folders a float PyTorch Whisper's export carries


@dataclass
class Metrics:
    wer: float  # word error rate against the references, after Whisper's English normalizer
    cer: float  # character error rate, same normalization
    fidelity: float  # 1 - WER of these transcripts against the original model's (0 at worst)
    audio_seconds: float
    transcripts: list[str]


@dataclass
class Figures(Metrics, Measured):
    """A speech recognizer's row: its Metrics beside what every row has."""


def quality(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None, config: MeasureConfig,
            progress: Progress) -> tuple[Metrics, np.ndarray]:
    """Every eval clip transcribed at batch 1; the transcripts are the predictions."""
    texts = []
    for n, clip in enumerate(eval_split.inputs):
        progress(n / len(eval_split), f"Transcribing clip {n + 1} of {len(eval_split)}")
        texts.append(transcribe(bundle, clip).text)
    metrics = Metrics(
        wer=error_rate(list(eval_split.labels), texts),
        cer=error_rate(list(eval_split.labels), texts, characters=True),
        fidelity=1.0 if reference is None else max(0.0, 1 - error_rate(list(reference), texts)),
        audio_seconds=sum(len(clip) for clip in eval_split.inputs) / SAMPLE_RATE,
        transcripts=texts,
    )
    return metrics, np.array(texts, dtype=object)


def speed_work(bundle: ModelBundle, eval_split: Split, config: MeasureConfig) -> yardstick.Work:
    """Each round, the first clips' whole transcripts at batch 1."""
    clips = eval_split.inputs[:min(config.latency_runs, TIMED_CLIPS)]
    return {"latency": [[yardstick.call_of(transcribe, bundle, clip) for clip in clips]] * config.rounds}


def speed_fields(timing: dict[str, yardstick.Rounds], eval_split: Split) -> dict[str, float]:
    """The real-time factor (processing seconds per second of audio, below 1 = faster than real time) and clips
    per second, one after another, over the timed clips."""
    rounds = timing["latency"]
    audio = len(rounds) * sum(len(clip) for clip in eval_split.inputs[:len(rounds[0])]) / SAMPLE_RATE
    seconds = yardstick.flat(rounds)
    return {"rtf": sum(seconds) / audio, "throughput_per_s": len(seconds) / sum(seconds)}


def normalize(text: str) -> str:
    """Whisper's English normalizer: case, punctuation, numbers ("ten" = "10"), contractions. Its British-to-American
    spelling table is a hub file, absent offline, so spellings are compared as written."""
    return _normalizer()(text)


def error_rate(references: list[str], hypotheses: list[str], characters: bool = False) -> float:
    """jiwer's WER (or CER) over the normalized pairs, whose references are not empty after normalizing."""
    import jiwer

    pairs = [(normalize(r), normalize(h)) for r, h in zip(references, hypotheses)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return 0.0
    measure = jiwer.cer if characters else jiwer.wer
    return float(measure([r for r, _ in pairs], [h for _, h in pairs]))


_english: list[Any] = []


def _normalizer() -> Any:
    if not _english:
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

        _english.append(EnglishTextNormalizer({}))
    return _english[0]


def quality_ratio(baseline: Figures, result: Figures) -> dict[str, float | None]:
    """How much the word error rate grew (1 = unchanged; None when the original made no error)."""
    return {"wer": result.wer / baseline.wer if baseline.wer else None}


def example_inputs() -> list[np.ndarray]:
    """Two clips of different lengths (silence)."""
    return [np.zeros(SAMPLE_RATE, dtype=np.float32), np.zeros(2 * SAMPLE_RATE, dtype=np.float32)]


def counting_input() -> list[np.ndarray]:
    return [np.zeros(CLIP_SECONDS * SAMPLE_RATE, dtype=np.float32)]


def dynamic_axes(names: list[str]) -> dict[str, dict[int, str]]:
    return {name: {0: "batch"} for name in names}


def to_onnx(bundle: ModelBundle) -> ModelBundle:
    """The model as Optimum exports Whisper: an encoder and a merged decoder graph (runtimes.ort_seq2seq)."""
    if bundle.runtime.ID == ORT_SEQ2SEQ:
        return bundle
    refuse_changed(bundle)
    with tempfile.TemporaryDirectory() as folder:
        model = export_speech_onnx(bundle.save(Path(folder)))
    return bundle.derived(model, runtime=ORT_SEQ2SEQ)


def to_onnx_int8(bundle: ModelBundle, preset: str, per_channel: bool) -> ModelBundle:
    """The exported graphs with ONNX Runtime's dynamic int8 (each graph quantized by Optimum's ORTQuantizer)."""
    exported = to_onnx(bundle)
    return exported.derived(quantize_speech_int8(exported.model, preset, per_channel))


def recognises(config: Any) -> bool:
    return is_whisper(config)


def hf_loader(source: str, task: str, labels: list[str] | None) -> Callable[[], ModelBundle]:
    return lambda: load_whisper(source)


def hf_model_class(config: Any, fresh_head: bool = False) -> Any:
    return transformers.WhisperForConditionalGeneration


def hf_preprocessor(source: str) -> SpeechPreprocessor:
    return speech_preprocessor(source)


def take_away(bundle: ModelBundle, folder: Path) -> str:
    """The forms faster-whisper and Optimum load, written into the exported `folder`; the card's section on them."""
    if bundle.runtime.ID == ORT_SEQ2SEQ:
        return _optimum_section(folder.name)
    if bundle.runtime.ID == CT2:
        return _faster_whisper_section([f"{folder.name}/{CT2_SUBFOLDER}"], "")
    if bundle.meta.get("structure"):
        return (f"## No faster-whisper or ONNX form\n\nPyTorch's {', '.join(bundle.meta['structure'])} modules load "
                "only through microbudget. For int8 that runs elsewhere, use `faster-whisper` or "
                "`onnx-int8-dynamic`.\n")
    to_ctranslate2(bundle, {quantization: folder / f"faster-whisper-{quantization}" for quantization in TAKE_AWAY})
    reads_clip = (" This model was trained to read the clip alone (`clip_frames.json`); faster-whisper and "
                  "transformers pad every clip to 30 s." if bundle.preprocess.clip_frames else "")
    return _faster_whisper_section([f"{folder.name}/faster-whisper-{q}" for q in TAKE_AWAY],
                                   "CTranslate2's converter wrote these folders from this model's float weights "
                                   f"({' and '.join(TAKE_AWAY)}: CTranslate2 quantizes int8 itself).{reads_clip}\n\n")


def _faster_whisper_section(folders: list[str], note: str) -> str:
    loads = "\n".join(f'{"# or: " if n else ""}model = WhisperModel("{path}", device="cpu", compute_type="default")'
                      for n, path in enumerate(folders))
    return f"""## Run it with faster-whisper

{note}```python
from faster_whisper import WhisperModel
{loads}
segments, _ = model.transcribe("your-clip.wav", language="en", beam_size=1, without_timestamps=True)
print(" ".join(segment.text.strip() for segment in segments))
```
"""


def _optimum_section(name: str) -> str:
    return f"""## Load it with Optimum (ONNX Runtime)

`onnx/` holds the encoder and the merged decoder graphs; the processor files are beside them, in this folder.

```python
import soundfile
from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
from transformers import AutoProcessor
processor = AutoProcessor.from_pretrained("{name}")
model = ORTModelForSpeechSeq2Seq.from_pretrained("{name}/onnx")
audio, rate = soundfile.read("your-clip.wav", dtype="float32")  # 16 kHz mono
features = processor(audio, sampling_rate=rate, return_tensors="pt").input_features
ids = model.generate(features, max_new_tokens={MAX_NEW_TOKENS})  # greedy, as the app transcribes
print(processor.batch_decode(ids, skip_special_tokens=True)[0])
```
"""
