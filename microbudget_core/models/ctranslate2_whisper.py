"""A Whisper bundle converted by CTranslate2's own converter: the folder faster-whisper loads."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .bundle import ModelBundle

# Copied beside model.bin: faster-whisper reads its tokenizer and its feature settings from them.
FILES = ("tokenizer.json", "preprocessor_config.json")
QUANTIZATIONS = ("int8", "float32", "float16")


def to_ctranslate2(bundle: ModelBundle, targets: dict[str, Path]) -> None:
    """Write the bundle's float Whisper as CTranslate2 weights, once per quantization -> target folder (the bundle is
    saved once for all of them)."""
    from ctranslate2.converters import TransformersConverter  # a slow import, which most pages never need

    with tempfile.TemporaryDirectory() as scratch:
        source = bundle.save(Path(scratch))
        converter = TransformersConverter(str(source), copy_files=[name for name in FILES if (source / name).exists()])
        for quantization, target in targets.items():
            converter.convert(str(target), quantization=quantization, force=True)
