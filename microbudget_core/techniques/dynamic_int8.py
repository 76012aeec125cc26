"""PyTorch dynamic int8: Linear weights stored as int8, activations quantized on the fly."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..data import Dataset
from ..errors import MicrobudgetError
from ..models import ModelBundle
from ..progress import Progress, no_progress

ID = "dynamic-int8"
DESCRIPTION = "PyTorch dynamic int8 on Linear layers (weights int8, activations quantized per call)"


@dataclass(frozen=True)
class Config:
    """No knobs yet: every nn.Linear is quantized per-tensor with the default x86 engine."""


def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    if not isinstance(bundle.model, torch.nn.Module) or not any(
            isinstance(module, torch.nn.Linear) for module in bundle.model.modules()):
        raise MicrobudgetError(f"Model '{bundle.name}' has no Linear layers, so dynamic int8 changes nothing.",
                               "Pick a transformer model, or a quantization technique for convolutions.")
    progress(0.0, "Quantizing Linear layers to int8")
    model = restructure(bundle.model, bundle.meta)
    progress(1.0, "Quantized")
    share = _linear_share(bundle.model)
    note = (f"{share:.0%} of the weights are in Linear layers and became int8; the rest (embeddings, "
            "convolutions, norms) stay fp32.")
    if share < 0.2:
        note += " So dynamic int8 barely changes this model: convolutional models need static int8."
    return bundle.derived(model, note=note, structure=ID)


def _linear_share(model: torch.nn.Module) -> float:
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return linear / sum(p.numel() for p in model.parameters())


def restructure(model: torch.nn.Module, meta: dict) -> torch.nn.Module:
    """A quantized copy of `model`: every nn.Linear becomes a dynamic int8 Linear."""
    with warnings.catch_warnings():
        # torch.ao.quantization warns it is deprecated in favour of torchao; it is still the
        # fastest dynamic int8 path on this CPU (see DESIGN.md's measurements).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)
