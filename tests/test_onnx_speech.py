"""Whisper in ONNX Runtime on a tiny local model: PyTorch's logits and tokens, saved and copied intact, int8 smaller."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.models.onnx_model import cpu_preset
from microbudget_core.models.onnx_speech import export_speech_onnx, quantize_speech_int8
from microbudget_core.runtimes import ort_seq2seq
from microbudget_core.runtimes.ort_seq2seq import OnnxSpeechModel

NEW_TOKENS = 8


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, transformers.WhisperForConditionalGeneration]:
    """A 2-layer Whisper over a 100-token vocabulary, saved with its feature extractor like a hub folder."""
    folder = tmp_path_factory.mktemp("tiny-whisper")
    # Encoder positions stay at 1500: Optimum exports the encoder for 30 s of audio (3000 frames).
    # init_std well above the default 0.02, so the random model's greedy tokens vary rather than repeat one id.
    config = transformers.WhisperConfig(
        vocab_size=100, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=80,
        max_target_positions=32, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
        suppress_tokens=None, begin_suppress_tokens=None, init_std=0.2)
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def features(whisper) -> torch.Tensor:
    """Log-mel features of one second of noise, padded to 30 s as Whisper expects."""
    extractor = transformers.WhisperFeatureExtractor.from_pretrained(whisper[0])
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    return extractor(audio, sampling_rate=16000, return_tensors="pt").input_features


@pytest.fixture(scope="module")
def exported(whisper) -> OnnxSpeechModel:
    return export_speech_onnx(whisper[0])


def greedy(model, features: torch.Tensor) -> list[int]:
    with torch.inference_mode():
        return model.generate(features, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()


def total_size(model: OnnxSpeechModel) -> int:
    return sum(path.stat().st_size for path in model.onnx_files())


def test_export_matches_pytorch_logits_and_greedy_tokens(whisper, features, exported):
    _, torch_model = whisper
    assert sorted(path.name for path in exported.folder.iterdir()) == [
        "config.json", "decoder_model_merged.onnx", "encoder_model.onnx", "generation_config.json"]
    inputs = {"input_features": features, "decoder_input_ids": torch.tensor([[1, 5, 7, 9]])}
    with torch.inference_mode():
        expected = torch_model(**inputs).logits.numpy()
    logits = ort_seq2seq.run(exported, inputs)
    assert logits.dtype == np.float32 and logits.shape == (1, 4, 100)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    tokens = greedy(exported, features)
    assert tokens == greedy(torch_model, features) and len(set(tokens)) > 1
    # As stored, within a few positions' rows of PyTorch's count (the export folds some constants).
    torch_count = sum(p.numel() for p in torch_model.parameters())
    assert 0.95 * torch_count < ort_seq2seq.parameter_count(exported) <= torch_count


def test_save_and_load_round_trip(exported, features, tmp_path):
    (tmp_path / "microbudget.json").write_text("{}")  # the bundle's own files share the folder
    ort_seq2seq.save(exported, tmp_path)
    assert (tmp_path / "onnx" / "decoder_model_merged.onnx").is_file()
    loaded = ort_seq2seq.load(tmp_path)
    assert loaded.folder != exported.folder, "a loaded model owns its files"
    assert greedy(loaded, features) == greedy(exported, features)
    assert ort_seq2seq.digest(loaded) == ort_seq2seq.digest(exported)


@pytest.mark.parametrize("per_channel", [False, True])
def test_int8_is_smaller_and_still_generates(exported, features, per_channel):
    fp32_digest = ort_seq2seq.digest(exported)
    quantized = quantize_speech_int8(exported, cpu_preset(), per_channel=per_channel)
    assert total_size(quantized) < 0.8 * total_size(exported)
    assert len(greedy(quantized, features)) == NEW_TOKENS  # the tokens may differ from fp32's
    assert ort_seq2seq.digest(quantized) != fp32_digest == ort_seq2seq.digest(exported), "the input changed"


def test_quantize_and_export_failures_are_one_clear_error(exported, tmp_path):
    with pytest.raises(MicrobudgetError, match="could not quantize"):
        quantize_speech_int8(exported, "no-such-preset", per_channel=False)
    with pytest.raises(MicrobudgetError, match="could not export"):
        export_speech_onnx(tmp_path / "missing")


def test_threads_copies_and_pickles(exported, features):
    model = copy.deepcopy(exported)
    assert model.ort is not exported.ort and greedy(model, features) == greedy(exported, features)
    session = model.ort
    ort_seq2seq.set_threads(model, model.threads)
    assert model.ort is session, "the same count keeps the session"
    ort_seq2seq.set_threads(model, model.threads + 1)
    assert model.ort is not session and model.threads == exported.threads + 1
    assert model.ort.encoder.session.get_session_options().intra_op_num_threads == model.threads
    restored = pickle.loads(pickle.dumps(model))
    assert restored.threads == model.threads and greedy(restored, features) == greedy(exported, features)
