"""PyTorch static int8: weights and activations int8, activation ranges calibrated beforehand.

FX graph mode (torch.ao.quantization.quantize_fx): it fuses Conv+BN(+ReLU), inserts the
quantize/dequantize steps around residual adds by itself, and converts to PyTorch's int8
kernels (x86/fbgemm, qnnpack on ARM). torchao's successor (pt2e) keeps fp32 kernels unless the
model is compiled with Inductor, so on a plain CPU install FX is the path that actually runs int8.
Models that do not trace symbolically (most transformers) get a clear message instead.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data import Dataset
from ..support.errors import MicrobudgetError
from ..models import ModelBundle
from ..models.bundle import IMAGE, TEXT
from ..support.progress import Progress, no_progress
from ..runtimes import PYTORCH
from . import applies_to

ID = "static-int8"
DESCRIPTION = "PyTorch static int8 (FX graph mode): Conv+BN folded, activations calibrated, per-channel weights"
INT8_FOR = (IMAGE,)  # the int8 path to pick for image models whose result runs in PyTorch
RESULT_RUNTIME = PYTORCH


@dataclass(frozen=True)
class Config:
    calibration_examples: int = field(default=128, metadata={"min": 1})
    # Swap ReLU6 for ReLU so Conv+BN+ReLU fuse into one int8 kernel. It changes the model:
    # activations above 6 are no longer clipped. Off, ReLU6 runs as its own int8 clamp.
    fuse_relu: bool = False


@applies_to(ID, (TEXT, IMAGE), (PYTORCH,), instead="Put it before any ONNX step.")
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    if dataset is None or len(dataset.calibration) == 0:
        raise MicrobudgetError("Static int8 needs calibration examples.", "Run it with a dataset.")
    inputs = dataset.calibration.inputs[: config.calibration_examples]
    batches = [bundle.preprocess(inputs[i:i + 16]) for i in range(0, len(inputs), 16)]
    shapes = {name: [1, *tensor.shape[1:]] for name, tensor in batches[0].items()}
    settings = {"fuse_relu": config.fuse_relu, "input_shapes": shapes}
    progress(0.1, f"Calibrating activation ranges on {len(inputs)} examples")
    model = _quantize(bundle.model, settings, batches, bundle.name)
    progress(1.0, "Quantized")
    note = (f"Static int8 ({torch.backends.quantized.engine} engine): activation ranges from {len(inputs)} "
            "calibration examples, per-channel weights, Conv+BN folded"
            + (", ReLU6 replaced by ReLU and fused." if config.fuse_relu else "; ReLU6 kept as an int8 clamp."))
    return bundle.derived(model, note=note, structure=ID, static_int8=settings)


def restructure(model: torch.nn.Module, meta: dict) -> torch.nn.Module:
    """The same int8 graph for a saved artifact; its state dict then fills in scales and weights."""
    settings = meta["static_int8"]
    zeros = {name: torch.zeros(shape) for name, shape in settings["input_shapes"].items()}
    return _quantize(model, settings, [zeros], "saved model")


def _quantize(model: torch.nn.Module, settings: dict[str, Any], batches: list[dict[str, torch.Tensor]],
              name: str) -> torch.nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    model = copy.deepcopy(model)  # the caller's model, often the cached baseline, stays untouched
    if settings["fuse_relu"]:
        _relu6_to_relu(model)
    model.eval()
    with warnings.catch_warnings():
        # torch.ao.quantization warns it is deprecated in favour of torchao (see the module docstring).
        warnings.simplefilter("ignore")
        try:
            prepared = prepare_fx(model, get_default_qconfig_mapping(torch.backends.quantized.engine),
                                  tuple(batches[0].values()))
        except Exception as error:  # torch.fx raises many types for untraceable code
            raise MicrobudgetError(
                f"Model '{name}' cannot be traced for PyTorch static int8 ({type(error).__name__}).",
                "Use onnx-int8-static (works for transformers too) or dynamic-int8.") from None
        with torch.inference_mode():
            for batch in batches:
                prepared(**batch)
        return convert_fx(prepared)


def _relu6_to_relu(model: torch.nn.Module) -> None:
    for module in model.modules():
        for child_name, child in module.named_children():
            if isinstance(child, torch.nn.ReLU6):
                setattr(module, child_name, torch.nn.ReLU(inplace=True))
