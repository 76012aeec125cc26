"""ONNX Runtime dynamic int8: every MatMul/Gemm weight (embeddings included) stored as int8."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import kinds
from ..data import Dataset
from ..models import ModelBundle
from ..models.bundle import IMAGE, SPEECH, TEXT
from ..models.onnx_model import cpu_preset, export_onnx, onnx_bundle, quantize_dynamic_int8
from ..support.progress import Progress, no_progress
from ..runtimes import ORT, ORT_SEQ2SEQ, PYTORCH
from . import applies_to

ID = "onnx-int8-dynamic"
DESCRIPTION = "ONNX Runtime dynamic int8 via Optimum (weights int8 incl. embeddings; preset from the CPU's flags)"
INT8_FOR = (TEXT,)  # the int8 path to pick for text models whose result runs in ONNX Runtime
RESULT_RUNTIME = ORT
PRESETS = ("auto", "avx2", "avx512", "avx512_vnni", "arm64")


@dataclass(frozen=True)
class Config:
    per_channel: bool = True  # one scale per output channel: less error than one per tensor
    preset: str = field(default="auto", metadata={"choices": PRESETS})  # auto = from this CPU's flags


@applies_to(ID, (TEXT, IMAGE, SPEECH), (PYTORCH, ORT, ORT_SEQ2SEQ))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    preset = cpu_preset() if config.preset == "auto" else config.preset
    chosen = "chosen from this CPU's flags" if config.preset == "auto" else "chosen by you"
    note = (f"ONNX Runtime dynamic int8, Optimum's {preset} preset ({chosen}), "
            f"per-channel {'on' if config.per_channel else 'off'}.")
    progress(0.0, "Exporting to ONNX, then quantizing to int8")
    kind = kinds.get(bundle.task)
    if hasattr(kind, "to_onnx_int8"):  # several graphs (an encoder and a decoder): the kind's own export
        result = kind.to_onnx_int8(bundle, preset, config.per_channel)
        progress(1.0, "Quantized")
        return result.derived(result.model, note=note + " Each graph (encoder, merged decoder) quantized.")
    onnx_bytes = export_onnx(bundle)
    progress(0.5, f"Quantizing to int8 with the {preset} preset")
    result = onnx_bundle(bundle, quantize_dynamic_int8(onnx_bytes, preset, config.per_channel), note)
    progress(1.0, "Quantized")
    return result
