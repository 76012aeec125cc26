"""The speech lab: Whisper against a larger Whisper, its int8 forms and a distilled student, by WER and time per clip.

The talk's third demo: the distilled variants "are 50% smaller and up to 6 times faster with a very small quality
loss". Every row is a stored run made by the same techniques and measure() as the other labs, on the same clips.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from .. import labs
from ..data.audio import decode_audio
from ..support.errors import MicrobudgetError
from ..kinds.speech_recognition import normalize
from ..measure import MeasureConfig
from ..yardstick import speed_verdict
from ..models import SPEECH, ModelBundle, ModelSpec, load_model
from ..models.speech import Transcript, transcribe
from ..pipeline import Request, Sweep, prepare, resolve, run_rows, run_steps
from ..support.progress import Progress, no_progress, scaled
from ..support.rows import column
from ..figures import Measured
from ..runs import Run, RunStore, load_run_model

LARGER = {"whisper-tiny.en": "whisper-base"}  # the larger Whisper the talk sets beside the small one
# Row name -> steps on the model. PyTorch int8 also packs the embedding table (half of tiny.en's weights) to 8 bits
# per row. The students keep the teacher's weights and read the clip alone; they keep 4 decoder layers (all of
# tiny.en's): cut to 2, tiny.en's decoder did not recover within a CPU budget (WER over 100% after 4 epochs).
INT8 = ("dynamic-int8", {"backend": "torch.ao", "embeddings": True})
STUDENT = ("distill", {"layers": 4})
ROWS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "int8 (ONNX Runtime)": [("onnx-int8-dynamic", {})],
    "int8 (PyTorch)": [INT8],
    "fp16": [("fp16", {})],
    "control (reference transcripts)": [("distill", {"layers": 4, "alpha": 0})],  # the same student, no teacher
    "distilled": [STUDENT],
    "distilled + int8": [STUDENT, INT8],
    # faster-whisper (CTranslate2) as people run it on CPUs: the anchor users compare against
    "faster-whisper int8": [("faster-whisper", {"quantization": "int8"})],
    "faster-whisper float32": [("faster-whisper", {"quantization": "float32"})],
}
# The quick budget (the page's default; docs/first-visit.md) trains one student for one epoch; the full
# budget (benchmarks/speech.md's figures) trains the control too, each for the technique's epochs.
FASTER_WHISPER = ("faster-whisper int8", "faster-whisper float32")
DEFAULT_ROWS = ("int8 (ONNX Runtime)", "int8 (PyTorch)", *FASTER_WHISPER, "distilled", "distilled + int8")
FULL_ROWS = ("int8 (ONNX Runtime)", "int8 (PyTorch)", *FASTER_WHISPER, "control (reference transcripts)", "distilled",
             "distilled + int8")
QUICK_TRAINING = {"epochs": 1}
ORIGINAL = "original"
# The chart's panels: (row field, title, unit)
PANELS = [("size_mb", "Size", "MB"), ("seconds_per_clip", "Seconds per clip (p50, batch 1)", "s"),
          ("wer", "Word error rate (lower is better)", "%")]


@labs.job
def run_speech(model: str, dataset: str, rows: Sequence[str] = DEFAULT_ROWS, larger: str | None = "",
               eval_limit: int | None = None, full: bool = False, measure_config: MeasureConfig = MeasureConfig(),
               store: RunStore | None = None, progress: Progress = no_progress) -> Sweep:
    """Each row of `model` against one measurement of it, and the larger Whisper as it is (`larger` '' = the
    talk's, None = none), all on the same eval clips; students trained within the quick budget unless `full`."""
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        raise MicrobudgetError(f"Unknown rows: {', '.join(unknown)}.", f"Pick from: {', '.join(ROWS)}.")
    resolved = [resolve([(technique, settings if full or technique != "distill" else {**settings, **QUICK_TRAINING})
                         for technique, settings in ROWS[row]]) for row in rows]  # bad settings fail here
    larger = LARGER.get(model) if larger == "" else larger
    prepared = prepare(Request(model, dataset, eval_limit=eval_limit, task=SPEECH), measure_config,
                       scaled(progress, 0.0, 0.1))
    sweep = Sweep([], {})
    if larger:
        bigger = prepare(Request(larger, dataset, eval_limit=eval_limit, task=SPEECH), measure_config,
                         scaled(progress, 0.1, 0.2))
        sweep.runs.append(run_steps(bigger, [], store, measure_config, scaled(progress, 0.2, 0.25)))
    if resolved:
        rest = run_rows(prepared, resolved, store, measure_config, scaled(progress, 0.25, 1.0))
        sweep.runs += rest.runs
        sweep.skipped.update(rest.skipped)
    labs.remember_runs(labs.SPEECH, [model, dataset], sweep.runs, sweep.skipped)
    return sweep


def latest(model: str, dataset: str) -> list[Run]:
    """The runs of the last speech comparison of this model on this dataset (the page opens on them)."""
    return labs.recall_runs(labs.SPEECH, [model, dataset])[0]


@dataclass(frozen=True)
class SpeechRow:
    """One model of the comparison, against the original."""

    name: str = column("model")
    size_mb: float = column("size MB")
    x_smaller: float = column("x smaller")
    seconds_per_clip: float = column("s per clip (p50)")
    seconds_per_clip_p25: float = column("p25")
    seconds_per_clip_p75: float = column("p75")
    x_faster: float = column("x faster")
    rtf: float = column("real-time factor")
    wer: float = column("WER")
    cer: float = column("CER")
    train_s: float | None = column("train s")
    speed: str = column("speed")  # stable, or unstable and why (yardstick.speed_verdict)
    run_id: str = column("run")


def rows_of(runs: Sequence[Run]) -> list[SpeechRow]:
    """The original first, then each run (the larger Whisper is a run with no steps), against the original."""
    if not runs:
        return []
    original = _original(runs)
    # A technique's row is as much faster as its side-by-side timing with the original said; the larger Whisper
    # (a model as it is) was timed in its own window, so its ratio is of two windows' medians.
    return [_row(ORIGINAL, "", original, original, 1.0)] + [
        _row(name_of(run), run.run_id, run.result, original,
             run.ratios["latency"] if run.steps else original.latency_ms_p50 / run.result.latency_ms_p50)
        for run in runs]


def _original(runs: Sequence[Run]) -> Measured:
    """The original's measurement: the baseline of a run with steps (a larger Whisper's run has none)."""
    return next((run.baseline for run in runs if run.steps), runs[0].baseline)


def name_of(run: Run) -> str:
    """The ROWS name of a run's steps, or the model's id for a model as it is."""
    if not run.steps:
        return run.model
    return labs.row_name(run, ROWS)


def _row(name: str, run_id: str, metrics: Measured, original: Measured, x_faster: float) -> SpeechRow:
    return SpeechRow(name=name, size_mb=metrics.size_bytes / 1e6,
                     x_smaller=original.size_bytes / metrics.size_bytes,
                     seconds_per_clip=metrics.latency_ms_p50 / 1000,
                     seconds_per_clip_p25=(metrics.latency_ms_p25 or metrics.latency_ms_p50) / 1000,
                     seconds_per_clip_p75=(metrics.latency_ms_p75 or metrics.latency_ms_p50) / 1000,
                     x_faster=x_faster, rtf=metrics.rtf,
                     wer=metrics.wer, cer=metrics.cer, train_s=metrics.train_seconds,
                     speed=speed_verdict(metrics.speed_check), run_id=run_id)


def headline(rows: list[SpeechRow]) -> str:
    """Each row against the original in one sentence: smaller, faster, and the word error rate it reaches."""
    original = rows[0]
    parts = "; ".join(f"{row.name} {row.x_smaller:.1f}x smaller, {row.x_faster:.1f}x faster, WER {row.wer:.1%}"
                      for row in rows[1:])
    return (f"Against the original ({original.size_mb:.0f} MB, {original.seconds_per_clip:.2f} s per clip, "
            f"WER {original.wer:.1%}): {parts}.")


@dataclass(frozen=True)
class ClipRow:
    """One eval clip: its reference and what each model heard."""

    reference: str
    transcripts: dict[str, str]  # model name -> transcript


def clip_rows(runs: Sequence[Run], reference_texts: Sequence[str]) -> list[ClipRow]:
    """Per clip, the reference and every row's transcript (the original's from the runs' baseline)."""
    named = {ORIGINAL: _original(runs).transcripts}
    named |= {name_of(run): run.result.transcripts for run in runs}
    return [ClipRow(reference, {name: texts[n] for name, texts in named.items() if n < len(texts)})
            for n, reference in enumerate(reference_texts)]


def marked_differences(reference: str, transcript: str) -> str:
    """The transcript as HTML, its words that differ from the reference's (after Whisper's normalizer) marked:
    substituted or inserted words highlighted, missing ones struck through."""
    said, heard = normalize(reference).split(), normalize(transcript).split()
    pieces = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(a=said, b=heard, autojunk=False).get_opcodes():
        if op == "equal":
            pieces += [html.escape(w) for w in heard[b0:b1]]
        if op in ("replace", "insert"):
            pieces += [f"<mark>{html.escape(w)}</mark>" for w in heard[b0:b1]]
        if op in ("replace", "delete"):
            pieces += [f"<s>{html.escape(w)}</s>" for w in said[a0:a1]]
    return " ".join(pieces) or "<i>(nothing)</i>"


def transcribe_upload(data: bytes, name: str, model: str, run_ids: Sequence[str]) -> dict[str, Transcript]:
    """A recording or uploaded file transcribed by the original and by each stored run's model, each timed."""
    audio = decode_audio(data, name)  # one clear message for bad audio, before any model loads
    found = {ORIGINAL: transcribe(_model(model, ""), audio)}
    store = RunStore()
    for run_id in run_ids:
        run = store.get(run_id)
        if run is not None:
            found[name_of(run)] = transcribe(_model(model, run_id), audio)
    return found


@lru_cache(maxsize=3)  # the models tried last stay loaded: a second recording is transcribed at once
def _model(model: str, run_id: str) -> ModelBundle:
    if not run_id:
        return load_model(ModelSpec(model), task=SPEECH)
    run = RunStore().get(run_id)
    if run is None:
        raise MicrobudgetError(f"Run {run_id} was deleted.", "Run the comparison again.")
    return load_run_model(run)
