"""The quantization explainer: what round-to-nearest quantization does to one layer's weights.

Per-tensor quantization gives the whole weight one scale S and zero-point z; per-channel gives every
output channel (the weight's first dimension) its own. The math is quant_math's; this module only
arranges the rows and collects what the explainer page shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from . import quant_math
from .support.errors import MicrobudgetError
from .models import ModelSpec, load_model

MAX_SAMPLE = 200_000  # weights kept for the histogram; the error always covers the whole weight
# Embeddings are left out: a vocabulary table (11.7M weights in minilm-l6) takes over a second to round-trip
# and measure, and its rows are tokens, not output channels.
LAYER_TYPES = (torch.nn.Linear, torch.nn.Conv2d)


@lru_cache(maxsize=4)
def pretrained_model(model_id: str) -> torch.nn.Module:
    """The pretrained network behind a model id, shared with load_model's cache: read it, never change it."""
    try:
        return load_model(ModelSpec(model_id)).model
    except MicrobudgetError:
        # A bare encoder (minilm-l6) only loads with labels, and then with an untrained placeholder head;
        # its pretrained layers are the same either way. Any other problem raises again here.
        return load_model(ModelSpec(model_id), labels=["0", "1"]).model


def layers(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Name -> weight shape of every Linear and Conv2d layer, in module order."""
    return {name: tuple(module.weight.shape) for name, module in model.named_modules()
            if isinstance(module, LAYER_TYPES)}


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields have no single truth value
class Explanation:
    """One weight before and after a quantize -> dequantize round trip."""

    original: np.ndarray  # flat float32 sample of the weight, at most MAX_SAMPLE values
    restored: np.ndarray  # the same positions after the round trip
    scales: np.ndarray  # S per row: one row per-tensor, one per output channel per-channel
    zero_points: np.ndarray  # integer z per row
    channel: int  # the row whose grid is shown: the widest range (largest S); 0 per-tensor
    grid: np.ndarray  # (q - z) * S of that row for every code q in 0..2**bits - 1
    error: dict[str, float]  # quant_math.reconstruction_error over the whole weight
    bits: int
    symmetric: bool
    per_channel: bool
    stored_bytes: int  # codes packed at `bits` + fp32 S per row (+ fp32 z per row when asymmetric)
    fp32_bytes: int

    @property
    def scale(self) -> float:
        """S of the shown row."""
        return float(self.scales[self.channel])

    @property
    def zero_point(self) -> int:
        """z of the shown row."""
        return int(self.zero_points[self.channel])


def explain(weight: torch.Tensor, bits: int, symmetric: bool, per_channel: bool) -> Explanation:
    """Quantize `weight` per-tensor or per output channel and measure what the round trip loses."""
    rows = weight.detach().float().reshape(weight.shape[0] if per_channel else 1, -1)
    codes, scale, zero = quant_math.quantize(rows, bits, symmetric)
    restored = quant_math.dequantize(codes, scale, zero)
    channel = int(scale.argmax())
    sample = _sample(rows.numel())
    # Symmetric z is always 2**(bits-1), so only asymmetric formats store it.
    per_row_bytes = 4 if symmetric else 8
    return Explanation(
        original=rows.flatten()[sample].numpy(),
        restored=restored.flatten()[sample].numpy(),
        scales=scale.flatten().numpy(),
        zero_points=zero.flatten().long().numpy(),
        channel=channel,
        grid=quant_math.dequantize(torch.arange(2**bits), scale[channel], zero[channel]).numpy(),
        error=quant_math.reconstruction_error(rows, restored),
        bits=bits, symmetric=symmetric, per_channel=per_channel,
        stored_bytes=math.ceil(rows.numel() * bits / 8) + rows.shape[0] * per_row_bytes,
        fp32_bytes=rows.numel() * 4,
    )


def explain_layer(model: torch.nn.Module, name: str, bits: int, symmetric: bool, per_channel: bool) -> Explanation:
    """explain() for the weight of the layer called `name` (a key of layers(model))."""
    return explain(model.get_submodule(name).weight, bits, symmetric, per_channel)


def _sample(count: int) -> torch.Tensor:
    """Positions of at most MAX_SAMPLE weights, the same on every call (seeded), so the histogram is steady.

    Indexing with them copies, so the arrays handed out never alias the model's weights.
    """
    if count <= MAX_SAMPLE:
        return torch.arange(count)
    return torch.randint(count, (MAX_SAMPLE,), generator=torch.Generator().manual_seed(0))
