"""Speech recognition: audio in, WER out, through the same load_model, techniques, measure() and runs as the rest."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import HANG_GUARD_S
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.data import audio
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.kinds.speech_recognition import error_rate
from microbudget_core.models import SPEECH, ModelSpec, load_model
from microbudget_core.saved import load_saved
from microbudget_core.models.speech import transcribe
from microbudget_core.pipeline import Request, run_pipeline
from microbudget_core.runs import RunStore
from test_cli import cli


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV")
    return buffer.getvalue()


def test_word_error_rate_is_the_hand_count_after_whispers_normalizer() -> None:
    # one deletion ("the") and one substitution (sat -> sit) over 6 reference words
    assert error_rate(["the cat sat on the mat"], ["the cat sit on mat"]) == pytest.approx(2 / 6)
    # case, punctuation and spelled numbers are not errors
    assert error_rate(["ten of clubs"], ["10 of Clubs."]) == 0.0
    assert error_rate(["a b c d"], ["a b c d e f"]) == pytest.approx(2 / 4)  # insertions count too


def test_audio_is_resampled_to_16_khz_mono() -> None:
    stereo = np.random.default_rng(0).uniform(-0.5, 0.5, (8000, 2)).astype(np.float32)  # 1 s at 8 kHz
    waveform = audio.decode_audio(wav_bytes(stereo, 8000), "stereo.wav")
    assert waveform.dtype == np.float32 and waveform.shape == (audio.SAMPLE_RATE,)


@pytest.mark.parametrize("data, message", [
    (b"this is not audio at all", "damaged or not audio"),
    (wav_bytes(np.zeros(0, dtype=np.float32), 16000), "holds no audio"),
])
def test_bad_audio_gets_one_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(MicrobudgetError, match=message):
        audio.decode_audio(data, "clip.wav")


def test_too_long_audio_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "MAX_CLIP_SECONDS", 1)
    with pytest.raises(MicrobudgetError, match="minutes per clip"):
        audio.decode_audio(wav_bytes(np.zeros(32000, dtype=np.float32), 16000), "long.wav")


def test_audio_folder_splits_by_sentence(spoken_folder: Path) -> None:
    dataset = load_dataset(DatasetSpec(f"audio:{spoken_folder}"))
    assert dataset.modality == "audio" and len(dataset.train) + len(dataset.eval) == 6
    assert not set(dataset.train.labels) & set(dataset.eval.labels)
    assert dataset.train.fingerprint() != dataset.eval.fingerprint()


def test_audio_zip_with_txt_transcripts(spoken_folder: Path, tmp_path: Path) -> None:
    archive = tmp_path / "clips.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for n in range(3):
            zipped.write(spoken_folder / f"clip{n}.wav", f"clips/clip{n}.wav")
            zipped.writestr(f"clips/clip{n}.txt", f"sentence {n}")
    audios, texts = audio.read_audio_dataset(archive)
    assert texts == ["sentence 0", "sentence 1", "sentence 2"] and all(a.size > 1000 for a in audios)


@pytest.mark.parametrize("members, message", [
    ({"../evil.wav": b"x", "evil.txt": b"x"}, "rejected for safety"),
    ({"a.wav": b"RIFF", "b.txt": b"x"}, "no transcript for a.wav"),
    ({"notes.txt": b"x"}, "contains no audio files"),
    ({"a.wav": b"not audio", "a.txt": b"hello"}, "damaged or not audio"),
])
def test_bad_audio_zips_get_one_clear_message(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    with pytest.raises(MicrobudgetError, match=message):
        audio.read_audio_dataset(archive)


def test_spoken_text_keeps_sentences_apart_and_is_cached(monkeypatch: pytest.MonkeyPatch, private_home: Path) -> None:
    monkeypatch.setattr(audio, "SPOKEN_TRAIN", 6)
    monkeypatch.setattr(audio, "SPOKEN_EVAL", 3)
    first = load_dataset(DatasetSpec("spoken:rotten-tomatoes"))
    assert (len(first.train), len(first.eval)) == (6, 3)
    assert not set(first.train.labels) & set(first.eval.labels)
    again = load_dataset(DatasetSpec("spoken:rotten-tomatoes"))
    assert all(np.array_equal(a, b) for a, b in zip(first.train.inputs, again.train.inputs))
    assert len(list((private_home / "speech").iterdir())) == 2  # train and eval speech, synthesized once each
    with pytest.raises(MicrobudgetError, match="reads a text dataset aloud"):
        load_dataset(DatasetSpec("spoken:mnist-5k"))


def test_a_whisper_folder_loads_as_a_speech_model_and_transcribes(tiny_whisper: Path, spoken_folder: Path) -> None:
    bundle = load_model(ModelSpec(str(tiny_whisper)))
    assert bundle.task == SPEECH and bundle.runtime.ID == "pytorch"
    clip = audio.decode_audio((spoken_folder / "clip0.wav").read_bytes(), "clip0.wav")
    started = time.perf_counter()
    first, second = transcribe(bundle, clip), transcribe(bundle, clip)
    assert first.text == second.text  # greedy: deterministic
    assert 0 < first.seconds and first.seconds + second.seconds <= time.perf_counter() - started
    assert bundle.logits([clip]).shape[-1] == bundle.model.config.vocab_size


def test_a_speech_model_refuses_a_text_dataset(tiny_whisper: Path) -> None:
    with pytest.raises(MicrobudgetError, match="transcribes speech"):
        load_model(ModelSpec(str(tiny_whisper)), labels=["neg", "pos"], task="text-classification")


@pytest.mark.parametrize("technique, runtime", [("dynamic-int8", "pytorch"),
                                                ("onnx-int8-dynamic", "onnxruntime-seq2seq")])
def test_speech_runs_are_measured_stored_and_reload(tiny_whisper: Path, spoken_folder: Path, technique: str,
                                                    runtime: str) -> None:
    request = Request(str(tiny_whisper), f"audio:{spoken_folder}", [(technique, {})])
    run = run_pipeline(request)
    references = list(load_dataset(DatasetSpec(f"audio:{spoken_folder}")).eval.labels)
    for side in (run.baseline, run.result):  # the rates are those of the stored transcripts against the references
        assert side.wer == pytest.approx(error_rate(references, side.transcripts))
        assert side.cer == pytest.approx(error_rate(references, side.transcripts, characters=True))
        # One clip, timed once a round: the mean time per clip over the rounds gives both rates.
        per_clip_s = 1 / side.throughput_per_s
        assert side.rtf == pytest.approx(per_clip_s / side.audio_seconds)
        assert 0 < side.latency_ms_p25 <= side.latency_ms_p50 <= side.latency_ms_p75
        assert len(side.transcripts) == side.eval_examples
    if runtime != "pytorch":  # all weights int8 (PyTorch's keeps the embedding table fp32 beside the int8 output layer)
        assert run.result.size_bytes < run.baseline.size_bytes / 2
    assert set(run.ratios) == {"size", "latency", "latency_low", "latency_high", "wer"}
    assert RunStore().get(run.run_id) is not None
    saved = load_saved(Path(run.artifact_path))
    assert saved.runtime.ID == runtime and saved.task == SPEECH
    clips = load_dataset(DatasetSpec(f"audio:{spoken_folder}")).eval
    assert [transcribe(saved, clip).text for clip in clips.inputs] == run.result.transcripts


def test_cli_speech_contract_and_listing(tiny_whisper: Path, spoken_folder: Path) -> None:
    listed = json.loads(cli("list", "--json").stdout)
    models = {m["id"]: m for m in listed["models"]}
    assert models["whisper-tiny.en"]["task"] == SPEECH and "whisper-base" in models
    assert any(d["id"] == "speech-clips" for d in listed["datasets"]) == audio.recorded_installed()
    done = cli("run", "--model", str(tiny_whisper), "--dataset", f"audio:{spoken_folder}", "--technique", "fp16",
               "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads(done.stdout)
    assert {"wer", "cer", "rtf"} <= set(run["baseline"]) and "wer" in run["ratios"]


def test_speech_page_compares_and_marks_the_word_differences(tiny_whisper: Path, spoken_folder: Path) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).parent.parent / "views" / "speech.py"), default_timeout=HANG_GUARD_S)
    at.run()
    assert "No comparison" in at.info[0].value
    at.selectbox(key="speech_model").select("other…").run()
    at.text_input(key="speech_model_other").input(str(tiny_whisper)).run()
    at.selectbox(key="speech_dataset").select("other…").run()
    at.text_input(key="speech_dataset_other").input(f"audio:{spoken_folder}").run()
    at.multiselect(key="speech_rows_False").set_value(["int8 (PyTorch)"]).run()
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart") and "Against the original" in at.markdown[1].value
    table = at.dataframe[0].value
    assert list(table["model"]) == ["original", "int8 (PyTorch)"]
    assert any("<mark>" in m.value or "<s>" in m.value for m in at.markdown)  # a random model mishears


def test_marked_differences_show_substitutions_insertions_and_deletions() -> None:
    from microbudget_core.labs.speech import marked_differences

    assert marked_differences("ten of clubs", "10 of clubs") == "10 of clubs"  # the normalizer agrees
    marked = "the <mark>dog</mark> <s>cat</s> sat <mark>down</mark>"
    assert marked_differences("the cat sat", "the dog sat down") == marked


def test_an_upload_is_transcribed_by_the_original_and_each_row(tiny_whisper: Path, spoken_folder: Path) -> None:
    from microbudget_core.labs import speech

    sweep = speech.run_speech(str(tiny_whisper), f"audio:{spoken_folder}", ["int8 (PyTorch)"], larger=None)
    started = time.perf_counter()
    heard = speech.transcribe_upload((spoken_folder / "clip1.wav").read_bytes(), "clip1.wav", str(tiny_whisper),
                                     [run.run_id for run in sweep.runs])
    assert list(heard) == ["original", "int8 (PyTorch)"] and all(t.seconds > 0 for t in heard.values())
    assert sum(t.seconds for t in heard.values()) <= time.perf_counter() - started
    with pytest.raises(MicrobudgetError, match="not audio"):
        speech.transcribe_upload(b"garbage", "voice.wav", str(tiny_whisper), [])
