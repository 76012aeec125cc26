"""Convert a CTranslate2 Whisper model (faster-whisper's format) into a Hugging Face Whisper folder.

Hand-written with struct and numpy: CTranslate2 converts transformers models to its format, but nothing converts
back. `model.bin` is the plain binary written by CTranslate2's `ModelSpec._serialize`
(python/ctranslate2/specs/model_spec.py); the weight names are those set by its `WhisperLoader`
(python/ctranslate2/converters/transformers.py), which this module inverts. All integers are little-endian:

    u32 binary version, string spec name, u32 spec revision,
    u32 variable count, per variable: string name, u8 rank, u32 * rank shape, u8 dtype id, u32 byte count, bytes,
    u32 alias count, per alias: string alias, string target name.
    (string: u16 length including a trailing NUL, then the UTF-8 bytes and the NUL.)

The converted folder holds float32 weights: the project measures float32 as the original and applies its own
float16/int8 techniques.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..support.atomic import folder_atomically
from ..support.errors import MicrobudgetError

# Binary versions 4-6 share the layout above (dtype id + byte count, then aliases); 1-3 stored item sizes instead.
SUPPORTED_BINARY_VERSIONS = (4, 5, 6)
WHISPER_SPEC = "WhisperSpec"
WHISPER_REVISION = 3  # the newest WhisperSpec revision this converter knows
# CTranslate2's DataType enum (include/ctranslate2/types.h); numpy has no bfloat16, so it is read as raw uint16.
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}
_BFLOAT16 = 5
_MAX_RANK = 8  # more dims than any CTranslate2 variable has: the bytes are not a model.bin
_GELU = 3  # CTranslate2's Activation enum: RELU, GELUTanh, SWISH, GELU, ...
# Decoder/encoder flags whose value changes the maths; a model with other values is not a Whisper we can express.
_EXPECTED_FLAGS = {"activation": _GELU, "pre_norm": 1, "scale_embeddings": 0, "alibi": 0,
                   "start_from_zero_embedding": 0}
_TIMESTAMP = re.compile(r"<\|\d+\.\d\d\|>")
_HINT = "Pass the model.bin of a CTranslate2 Whisper model (e.g. a faster-whisper model folder)."


class _Stream:
    """Several open files read in order as one byte stream, so a model.bin split into parts needs no joined copy."""

    def __init__(self, files: list[BinaryIO], paths: list[Path]):
        self._files = list(files)
        self._paths = paths
        self.position = 0

    def readinto(self, buffer: memoryview) -> None:
        """Fill `buffer` completely, crossing part boundaries; a clear error where the stream ends early."""
        filled = 0
        while filled < len(buffer) and self._files:
            count = self._files[0].readinto(buffer[filled:])
            if not count:  # this part is used up: continue with the next
                self._files.pop(0)
                continue
            filled += count
        self.position += filled
        if filled < len(buffer):
            raise MicrobudgetError(f"{_describe(self._paths)} ends early: {len(buffer)} bytes wanted at byte "
                                   f"{self.position - filled}, {filled} left (truncated, or a part is missing).",
                                   _HINT)

    def read(self, size: int) -> bytes:
        buffer = bytearray(size)
        self.readinto(memoryview(buffer))
        return bytes(buffer)

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (length,) = self.unpack("H")
        raw = self.read(length)
        if not raw.endswith(b"\0"):
            raise MicrobudgetError(f"{_describe(self._paths)} is not a CTranslate2 model.bin (bad string at byte "
                                   f"{self.position - length}).", _HINT)
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise MicrobudgetError(f"{_describe(self._paths)} is not a CTranslate2 model.bin (a name is not UTF-8).",
                                   _HINT) from None

    def at_end(self) -> bool:
        return not any(file.read(1) for file in self._files)


def _describe(paths: list[Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} more parts)"


def read_model_bin(path_or_parts: Path | list[Path]) -> tuple[dict[str, np.ndarray], dict[str, str], str, int]:
    """Read a CTranslate2 model.bin (or its parts, in order, as one stream): variables, aliases, spec name and
    revision. bfloat16 variables come back as float32; scalars as 0-d arrays."""
    paths = [Path(p) for p in path_or_parts] if isinstance(path_or_parts, (list, tuple)) else [Path(path_or_parts)]
    for path in paths:
        if not path.is_file():
            raise MicrobudgetError(f"Model file {path} does not exist.", _HINT)
    with contextlib.ExitStack() as stack:
        stream = _Stream([stack.enter_context(open(path, "rb")) for path in paths], paths)
        (version,) = stream.unpack("I")
        if not 1 <= version <= max(SUPPORTED_BINARY_VERSIONS):
            raise MicrobudgetError(f"{_describe(paths)} is not a CTranslate2 model.bin (it starts with "
                                   f"{version:#010x}, not a binary version).", _HINT)
        if version not in SUPPORTED_BINARY_VERSIONS:  # an old layout (item sizes instead of dtype ids)
            raise MicrobudgetError(f"{_describe(paths)}: CTranslate2 binary version {version} is not supported "
                                   f"(only {', '.join(map(str, SUPPORTED_BINARY_VERSIONS))}).",
                                   "Re-convert the model with a current CTranslate2 (ct2-transformers-converter).")
        spec = stream.string()
        (revision,) = stream.unpack("I")
        (count,) = stream.unpack("I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = stream.string()
            variables[name] = _read_variable(stream, name, paths)
        (alias_count,) = stream.unpack("I")
        aliases = {stream.string(): stream.string() for _ in range(alias_count)}
        if not stream.at_end():
            raise MicrobudgetError(f"{_describe(paths)} has bytes after its last alias (not one model.bin, or parts "
                                   f"in the wrong order).", _HINT)
    return variables, aliases, spec, revision


def _read_variable(stream: _Stream, name: str, paths: list[Path]) -> np.ndarray:
    (rank,) = stream.unpack("B")
    if rank > _MAX_RANK:
        raise MicrobudgetError(f"{_describe(paths)} is not a CTranslate2 model.bin (variable '{name[:40]}' has "
                               f"rank {rank}).", _HINT)
    shape = stream.unpack(f"{rank}I")
    dtype_id, num_bytes = stream.unpack("BI")
    dtype = _DTYPES.get(dtype_id)
    expected = int(np.prod(shape, dtype=np.int64)) * (np.dtype(dtype).itemsize if dtype else 0)
    if dtype is None or num_bytes != expected:
        raise MicrobudgetError(f"{_describe(paths)} is not a CTranslate2 model.bin (variable '{name[:40]}': dtype id "
                               f"{dtype_id}, {num_bytes} bytes for shape {list(shape)}).", _HINT)
    array = np.empty(shape, dtype=dtype)
    stream.readinto(memoryview(array.reshape(-1).view(np.uint8)))
    if dtype_id == _BFLOAT16:  # bfloat16 is the top half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def convert(parts: list[Path], ct2_folder: Path, target: Path) -> Path:
    """Write a Hugging Face Whisper folder (float32 weights, configs, tokenizer, feature extractor) at `target` from
    a CTranslate2 model.bin (or its parts) and the CTranslate2 folder's config.json, vocabulary and tokenizer.json.
    Written atomically; if `target` appears meanwhile, that one is kept. Returns `target`."""
    import transformers
    from safetensors.numpy import save_file

    variables, aliases, spec, revision = read_model_bin(list(parts))
    if spec != WHISPER_SPEC or revision > WHISPER_REVISION:
        raise MicrobudgetError(f"{_describe(list(parts))} holds a {spec} (revision {revision}) model, not a "
                               f"{WHISPER_SPEC} up to revision {WHISPER_REVISION}.", _HINT)
    ct2_folder = Path(ct2_folder)
    ct2_config = _read_json(ct2_folder / "config.json")
    vocabulary = _read_vocabulary(ct2_folder)
    weights, dims = hf_state_dict(variables, aliases)
    if len(vocabulary) != dims["vocab_size"]:
        raise MicrobudgetError(f"The vocabulary in {ct2_folder} has {len(vocabulary)} tokens but the model has "
                               f"{dims['vocab_size']}.", "Use the vocabulary file that came with this model.bin.")
    ids = _special_ids(vocabulary, ct2_folder)
    config = transformers.WhisperConfig(
        **dims, tie_word_embeddings="proj_out.weight" not in weights, scale_embedding=False, activation_function="gelu",
        pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        suppress_tokens=None, begin_suppress_tokens=None,  # generation settings live in the generation config
    )
    config.architectures = ["WhisperForConditionalGeneration"]
    generation = _generation_config(config, ct2_config, vocabulary, ids)
    tokenizer = _tokenizer(ct2_folder, vocabulary)
    extractor = transformers.WhisperFeatureExtractor(feature_size=dims["num_mel_bins"])

    target = Path(target)
    with folder_atomically(target) as partial:
        partial.mkdir(parents=True)
        config.save_pretrained(partial)
        generation.save_pretrained(partial)
        save_file(weights, str(partial / "model.safetensors"), metadata={"format": "pt"})  # "pt": HF reads it
        transformers.WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(partial)
    return target


def hf_state_dict(variables: dict[str, np.ndarray], aliases: dict[str, str]) -> tuple[dict[str, np.ndarray], dict]:
    """Map CTranslate2 WhisperSpec variables to Hugging Face WhisperForConditionalGeneration weights (float32; a
    `proj_out.weight` only where it is not tied to the embeddings), and the WhisperConfig sizes (from the shapes and
    the stored head counts)."""
    used: set[str] = set()

    def get(name: str) -> np.ndarray:
        real = aliases.get(name, name)
        if real not in variables:
            raise MicrobudgetError(f"The model.bin lacks the variable '{name}': not a Whisper model this converter "
                                   f"knows.", _HINT)
        used.update({name, real})
        return _dequantized(real, variables, used)

    def linear(ct2: str, hf: str) -> None:
        weights[f"{hf}.weight"] = get(f"{ct2}/weight")
        weights[f"{hf}.bias"] = get(f"{ct2}/bias")

    def layer_norm(ct2: str, hf: str) -> None:
        weights[f"{hf}.weight"] = get(f"{ct2}/gamma")
        weights[f"{hf}.bias"] = get(f"{ct2}/beta")

    def fused(ct2: str, hf_names: list[str]) -> None:
        # CTranslate2 fuses q/k/v (or k/v) row-wise; HF's k_proj has no bias: CTranslate2 stores zeros there, and a
        # key bias adds the same q·b to every score of a query, which softmax cancels, so dropping it changes nothing.
        weight, bias = get(f"{ct2}/weight"), get(f"{ct2}/bias")
        for hf, w, b in zip(hf_names, np.split(weight, len(hf_names)), np.split(bias, len(hf_names))):
            weights[f"{hf}.weight"] = np.ascontiguousarray(w)
            if not hf.endswith("k_proj"):
                weights[f"{hf}.bias"] = np.ascontiguousarray(b)

    def attention_block(ct2: str, hf: str) -> None:
        fused(f"{ct2}/self_attention/linear_0", [f"{hf}.self_attn.{p}_proj" for p in "qkv"])
        linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
        layer_norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
        linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
        layer_norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")

    weights: dict[str, np.ndarray] = {}
    for stack in ("encoder", "decoder"):
        _check_flags(variables, stack)
    encoder_layers, decoder_layers = _layer_count(variables, "encoder"), _layer_count(variables, "decoder")

    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    weights["model.encoder.embed_positions.weight"] = get("encoder/position_encodings/encodings")
    layer_norm("encoder/layer_norm", "model.encoder.layer_norm")
    for i in range(encoder_layers):
        attention_block(f"encoder/layer_{i}", f"model.encoder.layers.{i}")

    weights["model.decoder.embed_tokens.weight"] = get("decoder/embeddings/weight")
    weights["model.decoder.embed_positions.weight"] = get("decoder/position_encodings/encodings")
    layer_norm("decoder/layer_norm", "model.decoder.layer_norm")
    for i in range(decoder_layers):
        ct2, hf = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        attention_block(ct2, hf)
        linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
        fused(f"{ct2}/attention/linear_1", [f"{hf}.encoder_attn.k_proj", f"{hf}.encoder_attn.v_proj"])
        linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
        layer_norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")

    # The output projection is normally an alias of the token embeddings (HF ties them); keep an untied one.
    projection = get("decoder/projection/weight")
    if not np.array_equal(projection, weights["model.decoder.embed_tokens.weight"]):
        weights["proj_out.weight"] = projection
    has_bias = "decoder/projection/bias" in variables or "decoder/projection/bias" in aliases
    if has_bias and np.any(get("decoder/projection/bias")):
        raise MicrobudgetError("The model.bin has an output bias, which HF Whisper cannot hold.", _HINT)

    # Scalars are flags (checked above or irrelevant to HF); a tensor left unmapped would be silently lost.
    leftover = sorted(name for name in set(variables) | set(aliases)
                      if name not in used and not _is_scalar(aliases.get(name, name), variables))
    if leftover:
        raise MicrobudgetError(f"The model.bin has variables this converter does not map: {', '.join(leftover[:5])}.",
                               _HINT)

    d_model = weights["model.encoder.conv1.weight"].shape[0]
    dims = {
        "vocab_size": weights["model.decoder.embed_tokens.weight"].shape[0],
        "num_mel_bins": weights["model.encoder.conv1.weight"].shape[1],
        "d_model": d_model,
        "encoder_layers": encoder_layers,
        "decoder_layers": decoder_layers,
        "encoder_attention_heads": _heads(variables, "encoder", d_model),
        "decoder_attention_heads": _heads(variables, "decoder", d_model),
        "encoder_ffn_dim": weights["model.encoder.layers.0.fc1.weight"].shape[0],
        "decoder_ffn_dim": weights["model.decoder.layers.0.fc1.weight"].shape[0],
        "max_source_positions": weights["model.encoder.embed_positions.weight"].shape[0],
        "max_target_positions": weights["model.decoder.embed_positions.weight"].shape[0],
    }
    return weights, dims


def _dequantized(name: str, variables: dict[str, np.ndarray], used: set[str]) -> np.ndarray:
    """A variable as float32; int8/int16 weights are divided by their stored `_scale` (CTranslate2's Dequantize)."""
    value = variables[name]
    if value.dtype in (np.int8, np.int16) and value.ndim > 0:
        scale_name = f"{name}_scale"  # `name` is already alias-resolved, and CTranslate2 aliases scales alongside
        if scale_name not in variables:
            raise MicrobudgetError(f"The model.bin has an integer weight '{name}' without its scale.", _HINT)
        used.add(scale_name)
        scale = variables[scale_name].astype(np.float32)
        return value.astype(np.float32) / (scale[:, None] if scale.ndim == 1 else scale)
    return value.astype(np.float32)


def _is_scalar(name: str, variables: dict[str, np.ndarray]) -> bool:
    return name in variables and variables[name].ndim == 0


def _check_flags(variables: dict[str, np.ndarray], stack: str) -> None:
    for flag, expected in _EXPECTED_FLAGS.items():
        value = variables.get(f"{stack}/{flag}")
        if value is not None and value.ndim == 0 and int(value) != expected:
            raise MicrobudgetError(f"The model.bin sets {stack}/{flag} = {int(value)}, not Whisper's {expected}.",
                                   _HINT)


def _layer_count(variables: dict[str, np.ndarray], stack: str) -> int:
    found = {int(m.group(1)) for name in variables if (m := re.match(rf"{stack}/layer_(\d+)/", name))}
    if not found or found != set(range(len(found))):
        raise MicrobudgetError(f"The model.bin has no consecutive {stack} layers.", _HINT)
    return len(found)


def _heads(variables: dict[str, np.ndarray], stack: str, d_model: int) -> int:
    # WhisperSpec stores num_heads as an int16 scalar; Whisper's heads are 64 wide where it is missing.
    value = variables.get(f"{stack}/num_heads")
    return int(value) if value is not None else d_model // 64


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MicrobudgetError(f"{path} is missing.", "The CTranslate2 model folder must keep its config.json, "
                               "vocabulary and tokenizer.json next to model.bin.") from None


def _read_vocabulary(folder: Path) -> list[str]:
    """The token strings by id: vocabulary.json (CTranslate2 >= 4) or vocabulary.txt (one token a line)."""
    if (folder / "vocabulary.json").is_file():
        return list(_read_json(folder / "vocabulary.json"))
    path = folder / "vocabulary.txt"
    if not path.is_file():
        raise MicrobudgetError(f"{folder} has no vocabulary.txt or vocabulary.json.",
                               "Keep the vocabulary file that came with the model.bin.")
    # split("\n"), not splitlines(): tokens may hold characters that splitlines treats as line breaks
    tokens = path.read_text(encoding="utf-8").split("\n")
    return tokens[:-1] if tokens and tokens[-1] == "" else tokens


def _special_ids(vocabulary: list[str], folder: Path) -> dict[str, int]:
    wanted = ["<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
              "<|startofprev|>", "<|notimestamps|>"]
    ids = {token: i for i, token in enumerate(vocabulary) if token.startswith("<|") and token.endswith("|>")}
    missing = [token for token in wanted if token not in ids]
    if missing:
        raise MicrobudgetError(f"The vocabulary in {folder} lacks {', '.join(missing)}: not a Whisper vocabulary.",
                               "Keep the vocabulary file that came with the model.bin.")
    return ids


def _generation_config(config, ct2_config: dict, vocabulary: list[str], ids: dict[str, int]):
    """Whisper's generation settings built locally (no hub): plain `generate(features)` transcribes English
    without timestamps, for English-only and multilingual models alike."""
    import transformers

    # CTranslate2's own rule (whisper.cc): multilingual vocabularies have one more token than the .en ones.
    multilingual = len(vocabulary) >= 51865
    eot = ids["<|endoftext|>"]
    settings = {
        "decoder_start_token_id": ids["<|startoftranscript|>"],
        "bos_token_id": eot, "eos_token_id": eot, "pad_token_id": eot,
        "no_timestamps_token_id": ids["<|notimestamps|>"], "prev_sot_token_id": ids["<|startofprev|>"],
        "suppress_tokens": list(ct2_config.get("suppress_ids") or []),
        "begin_suppress_tokens": list(ct2_config.get("suppress_ids_begin") or []),
        "max_length": config.max_target_positions, "max_initial_timestamp_index": 50, "return_timestamps": False,
        "is_multilingual": multilingual,
    }
    if ct2_config.get("alignment_heads"):
        settings["alignment_heads"] = [list(pair) for pair in ct2_config["alignment_heads"]]
    if multilingual:
        lang_ids = ct2_config.get("lang_ids") or [
            i for i in range(ids["<|startoftranscript|>"] + 1, ids["<|translate|>"])]
        settings["lang_to_id"] = {vocabulary[i]: i for i in lang_ids}
        settings["task_to_id"] = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
        # Default to English transcription (rather than language detection); generate(language=...) overrides it.
        settings["language"] = "en"
        settings["task"] = "transcribe"
    return transformers.GenerationConfig(**settings)


def _tokenizer(folder: Path, vocabulary: list[str]):
    """The fast tokenizer from the folder's tokenizer.json, with the timestamp tokens added (as HF's own Whisper
    tokenizers have them, not special) so that it covers the model's whole vocabulary."""
    import transformers
    from tokenizers import AddedToken

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise MicrobudgetError(f"{path} is missing.", "Keep the tokenizer.json that came with the model.bin.")
    added = sorted(_read_json(path).get("added_tokens", []), key=lambda token: token["id"])
    special = [token["content"] for token in added if token.get("special")]
    tokenizer = transformers.WhisperTokenizerFast(
        tokenizer_file=str(path), unk_token="<|endoftext|>", bos_token="<|endoftext|>", eos_token="<|endoftext|>",
        pad_token="<|endoftext|>", additional_special_tokens=special, model_max_length=1024)
    known = tokenizer.get_vocab()
    timestamps = [token for token in vocabulary if _TIMESTAMP.fullmatch(token) and token not in known]
    tokenizer.add_tokens([AddedToken(token, lstrip=False, rstrip=False, normalized=False, special=False)
                          for token in timestamps])
    known = tokenizer.get_vocab()
    wrong = [i for i, token in enumerate(vocabulary) if known.get(token, i) != i]
    if wrong or len(tokenizer) != len(vocabulary):
        raise MicrobudgetError(f"{path} does not match the model's vocabulary (token {wrong[:1] or len(tokenizer)}).",
                               "Use the tokenizer.json that came with this model.bin.")
    return tokenizer
