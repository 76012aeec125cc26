"""ONNX Runtime static int8: weights and activations int8, activation ranges calibrated beforehand."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..support.cpu import has_vnni
from ..data import Dataset
from ..support.errors import MicrobudgetError
from ..models import ModelBundle
from ..models.bundle import IMAGE, TEXT
from ..models.onnx_model import export_onnx, onnx_bundle, quantize_static_int8
from ..support.progress import Progress, no_progress
from ..runtimes import ORT, PYTORCH
from . import applies_to

ID = "onnx-int8-static"
DESCRIPTION = "ONNX Runtime static int8 (QDQ): activations calibrated on the calibration split (minmax/entropy/percentile)"
INT8_FOR = (IMAGE,)  # the int8 path to pick for image models whose result runs in ONNX Runtime
RESULT_RUNTIME = ORT
METHODS = ("minmax", "entropy", "percentile")
SWITCH = ("auto", "on", "off")


@dataclass(frozen=True)
class Config:
    # how activation ranges are chosen from the calibration batches
    calibration: str = field(default="minmax", metadata={"choices": METHODS})
    calibration_examples: int = field(default=128, metadata={"min": 1})
    per_channel: bool = True
    # 7-bit weights. On x86 without VNNI, ORT's u8 x s8 int8 kernels add pairs of products in 16 bits,
    # which can saturate; 7-bit weights cannot. MobileNetV2/mnist-5k here: -1.6 pt off, +0.1 pt on.
    reduce_range: str = field(default="auto", metadata={"choices": SWITCH})


@applies_to(ID, (TEXT, IMAGE), (PYTORCH, ORT))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    reduce_range = config.reduce_range == "on" or (config.reduce_range == "auto" and not has_vnni())
    if dataset is None or len(dataset.calibration) == 0:
        raise MicrobudgetError("Static int8 needs calibration examples.", "Run it with a dataset.")
    progress(0.0, "Exporting to ONNX")
    onnx_bytes = export_onnx(bundle)
    inputs = dataset.calibration.inputs[: config.calibration_examples]
    batches = [{name: tensor.numpy() for name, tensor in bundle.preprocess(inputs[i:i + 8]).items()}
               for i in range(0, len(inputs), 8)]
    progress(0.3, f"Calibrating on {len(inputs)} examples ({config.calibration}) and quantizing")
    note = (f"Static int8 (QDQ), {config.calibration} calibration on {len(inputs)} examples "
            f"of the calibration split, per-channel {'on' if config.per_channel else 'off'}, "
            + ("7-bit weights (reduce_range: this CPU has no VNNI, so 8-bit products could saturate)."
               if reduce_range else "8-bit weights."))
    quantized = quantize_static_int8(onnx_bytes, batches, config.calibration, config.per_channel, reduce_range)
    result = onnx_bundle(bundle, quantized, note)
    progress(1.0, "Quantized")
    return result
