"""Speech recognition in ONNX: Optimum's export of a Whisper folder, and ONNX Runtime's dynamic int8 of its graphs.

The result runs in runtimes.ort_seq2seq: an encoder and one merged decoder, generating with
ORTModelForSpeechSeq2Seq on the CPU.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..runtimes._folder import new_storage
from ..runtimes.ort_seq2seq import OnnxSpeechModel, quiet
from .onnx_model import one_clear_error


@one_clear_error("export")
def export_speech_onnx(hf_folder: Path) -> OnnxSpeechModel:
    """A Whisper saved with save_pretrained (its processor beside it) as an encoder and a merged decoder."""
    from optimum.onnxruntime import ORTModelForSpeechSeq2Seq  # a slow import, which most pages never need

    with quiet():
        # use_merged: one decoder graph serves the first step and the cached ones, so its weights are stored once
        # (the separate decoder and decoder-with-past files would hold them twice).
        exported = ORTModelForSpeechSeq2Seq.from_pretrained(hf_folder, export=True, use_merged=True)
        storage = new_storage()
        exported.save_pretrained(storage.name)  # only what it runs: the export also leaves the unmerged decoders
    return OnnxSpeechModel(storage)


@one_clear_error("quantize (dynamic int8)")
def quantize_speech_int8(model: OnnxSpeechModel, preset: str, per_channel: bool) -> OnnxSpeechModel:
    """ONNX Runtime dynamic int8 of each graph through Optimum's ORTQuantizer and its per-CPU preset."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    config = getattr(AutoQuantizationConfig, preset)(is_static=False, per_channel=per_channel)
    storage = new_storage()
    target = Path(storage.name)
    with quiet(), tempfile.TemporaryDirectory() as scratch:
        for source in model.folder.iterdir():
            if source.suffix == ".json":
                shutil.copy2(source, target)
            elif source.suffix == ".onnx":  # ORTQuantizer takes one file at a time
                quantizer = ORTQuantizer.from_pretrained(model.folder, file_name=source.name)
                quantizer.quantize(save_dir=scratch, quantization_config=config)
                # The original name, so the folder loads as the fp32 one does.
                shutil.move(Path(scratch) / f"{source.stem}_quantized.onnx", target / source.name)
    return OnnxSpeechModel(storage, model.threads)
