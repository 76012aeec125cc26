"""Distil-Whisper students on a tiny local Whisper: built from the teacher, trained, reloaded, refused clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from microbudget_core import techniques
from microbudget_core.data import Dataset, Split
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.saved import load_saved
from microbudget_core.models.speech import load_whisper, transcribe
from microbudget_core.techniques._distill_speech import cut_decoder, decoder_layers

TEXTS = ["the film was good", "a dull plot", "great actors", "the story is weak", "it was brilliant",
         "a boring movie", "superb and moving", "clumsy and tedious", "the plot was great", "an awful film"]


@pytest.fixture(autouse=True)
def short_transcripts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A random Whisper rarely ends a transcript: 8 tokens keep greedy decoding (and these tests) quick."""
    monkeypatch.setattr("microbudget_core.models.speech.MAX_NEW_TOKENS", 8)


@pytest.fixture(scope="module")
def teacher_folder(tiny_whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conftest's tiny Whisper (tiny.en's tokenizer, d_model 64) with 4 decoder layers, so a student can keep 2."""
    folder = tmp_path_factory.mktemp("tiny-whisper-4")
    config = transformers.WhisperConfig.from_pretrained(tiny_whisper)
    config.update({"decoder_layers": 4})
    torch.manual_seed(0)
    transformers.WhisperForConditionalGeneration(config).save_pretrained(folder)
    transformers.WhisperProcessor.from_pretrained(tiny_whisper).save_pretrained(folder)
    transformers.GenerationConfig.from_pretrained(tiny_whisper).save_pretrained(folder)
    return folder


@pytest.fixture
def teacher(teacher_folder: Path):
    return load_whisper(teacher_folder, name="tiny-teacher")


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    """Ten short noise clips (0.5 to 2 s) with transcripts."""
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(int(16000 * (0.5 + 0.15 * n))).astype(np.float32) * 0.1 for n in range(10)]
    split = Split(clips, np.array(TEXTS, dtype=object))
    return Dataset(id="noise", modality="audio", label_names=[], train=split, calibration=split.head(2),
                   eval=split.head(2))


def distill(teacher, dataset, **settings: str):
    technique = techniques.get("distill")
    settings = {"epochs": "2", "learning_rate": "1e-3", **settings}
    return technique.apply(teacher, techniques.make_config(technique, settings), dataset)


def digest(bundle) -> str:
    return bundle.runtime.digest(bundle.model)


def test_decoder_cut_student_starts_as_the_teachers_kept_layers(teacher) -> None:
    assert decoder_layers(4, 2, "auto") == [0, 3] == decoder_layers(4, 2, "spaced")
    assert decoder_layers(4, 2, "first") == [0, 1] and decoder_layers(4, 1, "spaced") == [3]
    student = cut_decoder(teacher, [0, 3])
    assert student.model.config.decoder_layers == 2 and teacher.model.config.decoder_layers == 4
    kept = student.model.state_dict()
    for name, tensor in teacher.model.state_dict().items():
        if ".decoder.layers." in name:
            layer = int(name.split(".decoder.layers.")[1].split(".")[0])
            if layer in (0, 3):
                renamed = name.replace(f".layers.{layer}.", f".layers.{[0, 3].index(layer)}.")
                assert torch.equal(kept[renamed], tensor)
        else:
            assert torch.equal(kept[name], tensor)
    transcribe(student, np.zeros(16000, dtype=np.float32))  # the renumbered key/value cache works


def test_distillation_trains_and_leaves_the_teacher_bit_identical(teacher, dataset) -> None:
    before = digest(teacher)
    student = distill(teacher, dataset, epochs="3", patience="3")
    assert digest(teacher) == before
    history = student.meta["history"]
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]
    assert student.model.config.decoder_layers == 2 and student.meta["report"]["kl"] is True
    assert student.meta["report"]["distill_role"] == "student (distilled)"
    control = distill(teacher, dataset, alpha="0", epochs="1")
    assert control.meta["report"]["distill_role"] == "control (hard labels)" and digest(teacher) == before


def test_clip_student_reads_short_inputs_and_reloads_with_the_same_transcript(teacher, dataset, tmp_path) -> None:
    student = distill(teacher, dataset, epochs="1")
    features = student.preprocess([dataset.train.inputs[0]])["input_features"]
    assert features.shape[-1] == 100  # a 0.5 s clip: one second of frames, not 3000
    reloaded = load_saved(student.save(tmp_path / "student"))
    assert reloaded.preprocess.clip_frames == 100 and digest(reloaded) == digest(student)
    for clip in dataset.train.inputs[:3]:
        assert transcribe(reloaded, clip).text == transcribe(student, clip).text
    window = distill(teacher, dataset, epochs="1", audio_context="window")
    assert window.preprocess([dataset.train.inputs[0]])["input_features"].shape[-1] == 3000


@pytest.mark.parametrize("settings, message", [
    ({"student": "narrow"}, "no narrow Whisper"),
    ({"layers": "5"}, "Cannot keep 5 of 4 layers"),
    ({"alpha": "1.5"}, "alpha"),
    ({"width": "0.3"}, "apply to text and vision students"),
    ({"student": "model"}, "student_model"),
])
def test_bad_settings_give_one_clear_error(teacher, dataset, settings: dict[str, str], message: str) -> None:
    with pytest.raises(MicrobudgetError, match=message):
        distill(teacher, dataset, **settings)
    with pytest.raises(MicrobudgetError, match="out of range"):
        techniques.make_config(techniques.get("distill"), {"audio_context": "30s"})


def test_a_clip_student_in_int8_with_its_token_table_packed_still_transcribes_and_reloads(teacher, dataset,
                                                                                          tmp_path) -> None:
    student = distill(teacher, dataset, epochs="1")
    int8 = techniques.get("dynamic-int8")
    quantized = int8.apply(student, techniques.make_config(int8, {"backend": "torch.ao", "embeddings": "true"}),
                           dataset)
    decoder_table = quantized.model.model.decoder.embed_tokens
    assert type(decoder_table).__module__.startswith("torch.ao")  # the token table is 8-bit
    assert type(quantized.model.model.encoder.embed_positions) is torch.nn.Embedding  # read as .weight: kept
    clip = dataset.train.inputs[1]
    reloaded = load_saved(quantized.save(tmp_path / "int8"))
    assert transcribe(reloaded, clip).text == transcribe(quantized, clip).text
