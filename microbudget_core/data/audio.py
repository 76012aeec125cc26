"""Speech data: audio decoded to 16 kHz mono, the recorded clips Debian ships, the user's audio, and spoken text.

A speech dataset's inputs are float32 waveforms at SAMPLE_RATE and its labels are the reference transcripts.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import subprocess
import tempfile
from math import gcd
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..support.atomic import folder_atomically
from ..support.errors import MicrobudgetError
from ..support.paths import home
from .files import Entry, archive_entries, within_limits

SAMPLE_RATE = 16_000  # what Whisper's feature extractor reads
MAX_CLIP_SECONDS = 600  # a longer file is refused: it is not a clip (the model reads it in 30 s windows)
AUDIO_EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg"}
LAYOUT = ("Give a zip or folder of audio files (wav, flac, mp3, ogg) with their transcripts: a CSV with columns "
          "file,text, or a .txt file of the same name beside each clip.")

# Debian's pocketsphinx-testdata: 10 recorded English clips (5 LibriVox readings, 5 spoken card names).
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
RECORDED = (("librivox", "transcription"), ("cards", "cards.transcription"))

# Debian's flite: voices that Whisper transcribes well (tiny.en: ~12-14% WER; espeak-ng was ~47%).
FLITE_VOICES = ("slt", "kal16", "rms", "awb")
MAX_SPOKEN_WORDS = 24  # about 10 s of flite speech: one Whisper window, and quick to synthesize
SPOKEN_TRAIN, SPOKEN_EVAL = 320, 40  # texts spoken from a text dataset's train and eval splits


def decode_audio(data: bytes, name: str) -> np.ndarray:
    """One audio file's bytes as a float32 mono waveform at SAMPLE_RATE; one clear message when it is not audio."""
    import soundfile  # libsndfile: wav, flac, mp3, ogg

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise MicrobudgetError(f"Could not read {name}: it is damaged or not audio (wav, flac, mp3 or ogg).",
                               "Replace that file with a recording in one of those formats.") from error
    if samples.shape[0] == 0:
        raise MicrobudgetError(f"{name} holds no audio (0 samples).", "Replace it with a recording of speech.")
    if samples.shape[0] / rate > MAX_CLIP_SECONDS:
        raise MicrobudgetError(f"{name} is {samples.shape[0] / rate / 60:.0f} minutes long; the limit is "
                               f"{MAX_CLIP_SECONDS // 60} minutes per clip.", "Cut it into shorter clips.")
    return resample(samples.mean(axis=1), rate)


def resample(waveform: np.ndarray, rate: int) -> np.ndarray:
    """A mono waveform at SAMPLE_RATE (scipy's polyphase filter: no aliasing, exact length ratio)."""
    if rate == SAMPLE_RATE:
        return waveform.astype(np.float32)
    from scipy.signal import resample_poly

    common = gcd(rate, SAMPLE_RATE)
    return resample_poly(waveform, SAMPLE_RATE // common, rate // common).astype(np.float32)


def recorded_installed() -> bool:
    return all((POCKETSPHINX / folder / listing).is_file() for folder, listing in RECORDED)


def recorded_clips() -> tuple[list[np.ndarray], list[str]]:
    """The 10 recorded clips and their reference transcripts (lines `<s> words </s> (clip id)`)."""
    if not recorded_installed():
        raise MicrobudgetError("The recorded speech clips are not installed on this machine.",
                               "Install Debian's package: sudo apt install pocketsphinx-testdata")
    audios, texts = [], []
    for folder, listing in RECORDED:
        for line in (POCKETSPHINX / folder / listing).read_text().splitlines():
            words, _, clip = line.rpartition("(")
            path = POCKETSPHINX / folder / f"{clip.strip(' )')}.wav"
            audios.append(decode_audio(path.read_bytes(), path.name))
            texts.append(" ".join(w for w in words.split() if w not in ("<s>", "</s>")))
    return audios, texts


def read_audio_dataset(source: str | Path | bytes) -> tuple[list[np.ndarray], list[str]]:
    """Clips and transcripts from a zip (path or upload bytes) or a folder: a `file,text` CSV or a .txt per clip."""
    with archive_entries(source, "Audio", LAYOUT) as (entries, name):
        entries = within_limits(entries, name, "clips")
        by_path = {"/".join(e.parts): e for e in entries}
        clips = [e for e in entries if PurePosixPath(e.parts[-1]).suffix.lower() in AUDIO_EXTENSIONS]
        if not clips:
            raise MicrobudgetError(f"The {name} contains no audio files.", LAYOUT)
        transcripts = _csv_transcripts(entries, name) or _txt_transcripts(clips, by_path, name)
        missing = [e.name for e in clips if "/".join(e.parts) not in transcripts]
        if missing:
            raise MicrobudgetError(f"The {name} has no transcript for {missing[0]}"
                                   f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}.", LAYOUT)
        return ([decode_audio(e.read(), e.name) for e in clips], [transcripts["/".join(e.parts)] for e in clips])


def _csv_transcripts(entries: list[Entry], name: str) -> dict[str, str]:
    """file -> text from the one CSV in the archive (paths relative to the CSV's folder); {} when there is none."""
    csvs = [e for e in entries if e.parts[-1].lower().endswith(".csv")]
    if not csvs:
        return {}
    if len(csvs) > 1:
        raise MicrobudgetError(f"The {name} holds {len(csvs)} CSV files; the transcripts need exactly one.", LAYOUT)
    frame = pd.read_csv(io.BytesIO(csvs[0].read()), dtype=str, keep_default_na=False)
    if not {"file", "text"} <= set(frame.columns):
        raise MicrobudgetError(f"{csvs[0].name} has columns {', '.join(frame.columns)}; it needs file and text.",
                               LAYOUT)
    folder = csvs[0].parts[:-1]
    return {"/".join((*folder, *PurePosixPath(f).parts)): t.strip() for f, t in zip(frame["file"], frame["text"])}


def _txt_transcripts(clips: list[Entry], by_path: dict[str, Entry], name: str) -> dict[str, str]:
    """clip path -> the text of the .txt file of the same name beside it."""
    found = {}
    for clip in clips:
        path = "/".join(clip.parts)
        text_file = by_path.get(str(PurePosixPath(path).with_suffix(".txt")))
        if text_file:
            found[path] = text_file.read().decode("utf-8", errors="replace").strip()
    return found


def flite_installed() -> bool:
    return shutil.which("flite") is not None


def spoken(texts: list[str], seed: int, source: str) -> list[np.ndarray]:
    """`texts` read aloud by flite, each in a voice picked with `seed`; synthesized once and cached."""
    if not flite_installed():
        raise MicrobudgetError("Speech synthesis (flite) is not installed on this machine.",
                               "Install Debian's package: sudo apt install flite")
    voices = random.Random(seed).choices(FLITE_VOICES, k=len(texts))
    key = hashlib.sha256(json.dumps([texts, voices]).encode()).hexdigest()[:16]
    folder = home() / "speech" / f"spoken-{''.join(c if c.isalnum() else '_' for c in source)[:40]}-{key}"
    if not (folder / "clips.npz").exists():
        with folder_atomically(folder) as partial, tempfile.TemporaryDirectory() as scratch:
            partial.mkdir(parents=True)
            clips = [_flite(text, voice, Path(scratch) / "clip.wav") for text, voice in zip(texts, voices)]
            # int16 at 16 kHz: what flite writes, at a quarter of float32's size
            np.savez(partial / "clips.npz", *[np.round(c * 32767).astype(np.int16) for c in clips])
            (partial / "voices.json").write_text(json.dumps({"texts": texts, "voices": voices}))
    with np.load(folder / "clips.npz") as stored:
        return [stored[f"arr_{i}"].astype(np.float32) / 32767 for i in range(len(texts))]


def _flite(text: str, voice: str, target: Path) -> np.ndarray:
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(target)], check=True, capture_output=True)
    return decode_audio(target.read_bytes(), target.name)


def speakable(texts: list[str], limit: int) -> list[str]:
    """Up to `limit` of the texts short enough to speak in one window, in their (already shuffled) order."""
    return [t for t in texts if 2 <= len(t.split()) <= MAX_SPOKEN_WORDS][:limit]
