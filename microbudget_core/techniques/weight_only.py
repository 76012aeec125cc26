"""Weight-only round-to-nearest quantization of Linear layers to 8/4/3/2 bits, stored packed (the GGUF idea)."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch

from .. import quant_math
from ..data import Dataset
from ..errors import MicrobudgetError
from ..models import ModelBundle
from ..progress import Progress, no_progress

ID = "weight-only"
DESCRIPTION = "Weight-only 8/4/3/2-bit round-to-nearest of Linear layers, packed, per-group scales (GGUF-style)"


@dataclass(frozen=True)
class Config:
    bits: int = field(default=4, metadata={"choices": (8, 4, 3, 2)})
    group_size: int = 64  # weights sharing one scale; <= 0 means one scale per output row
    symmetric: bool = False
    skip_head: bool = True  # keep the last Linear (the classifier) in fp32, as GGUF keeps output layers wider


class PackedLinear(torch.nn.Module):
    """A Linear whose weight is stored as packed low-bit codes plus fp16 scales and uint8 zero-points."""

    def __init__(self, in_features: int, out_features: int, bits: int, group_size: int, bias: bool):
        super().__init__()
        self.in_features, self.out_features, self.bits, self.group_size = in_features, out_features, bits, group_size
        width, groups = quant_math.group_layout(in_features, group_size)
        self.padded_in = width * groups  # each row zero-padded to whole groups before packing
        self.register_buffer("packed", torch.zeros(math.ceil(out_features * self.padded_in * bits / 8),
                                                   dtype=torch.uint8))
        self.register_buffer("scales", torch.zeros(out_features, groups, dtype=torch.float16))
        self.register_buffer("zeros", torch.zeros(out_features, groups, dtype=torch.uint8))
        self.bias = torch.nn.Parameter(torch.zeros(out_features)) if bias else None
        self._dequantized: torch.Tensor | None = None  # a cache, not part of the artifact

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear, config: Config) -> "PackedLinear":
        module = cls(linear.in_features, linear.out_features, config.bits, config.group_size, linear.bias is not None)
        codes, scales, zeros = quant_math.quantize_groups(linear.weight.detach().float(), config.bits,
                                                          config.group_size, config.symmetric)
        module.packed.copy_(quant_math.pack_bits(codes, config.bits))
        module.scales.copy_(scales)
        module.zeros.copy_(zeros)
        if linear.bias is not None:
            module.bias.data.copy_(linear.bias.detach())
        return module

    def weight(self) -> torch.Tensor:
        """The dequantized fp32 weight (also what count_params counts)."""
        if self._dequantized is None:
            codes = quant_math.unpack_bits(self.packed, self.bits, self.out_features * self.padded_in)
            codes = codes.view(self.out_features, self.padded_in)
            self._dequantized = quant_math.dequantize_groups(codes, self.scales, self.zeros, self.group_size,
                                                             self.in_features)
        return self._dequantized

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # No packed low-bit kernel runs on this CPU: compute with the weight dequantized once.
        return torch.nn.functional.linear(x, self.weight().to(x.dtype), self.bias)


def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    if not quant_math.MIN_BITS <= config.bits <= quant_math.MAX_BITS:
        raise MicrobudgetError(f"weight-only bits={config.bits} is out of range.", "Use 8, 4, 3 or 2 bits.")
    if not isinstance(bundle.model, torch.nn.Module) or not _targets(bundle.model, config):
        raise MicrobudgetError(f"Model '{bundle.name}' has no PyTorch Linear layers to quantize weight-only.",
                               "Apply weight-only to a PyTorch transformer, before any ONNX step.")
    model = copy.deepcopy(bundle.model)
    targets = _targets(model, config)
    errors = {}
    for number, name in enumerate(targets):
        linear = model.get_submodule(name)
        packed = PackedLinear.from_linear(linear, config)
        errors[name] = quant_math.reconstruction_error(linear.weight.detach().float(), packed.weight())["relative"]
        model.set_submodule(name, packed)
        progress((number + 1) / len(targets), f"Quantized {name} to {config.bits} bits")
    worst = max(errors, key=errors.get)
    note = (f"{len(errors)} Linear layers stored in {config.bits} bits (group {config.group_size}); mean relative "
            f"weight error {sum(errors.values()) / len(errors):.3f}, worst {errors[worst]:.3f} ({worst}). No "
            "low-bit kernel runs on this CPU: latency is of weights dequantized to fp32; size is the packed bytes.")
    return bundle.derived(model, note=note, structure=ID, report={"layer_relative_error": errors},
                          **{ID: asdict(config)})


def restructure(model: torch.nn.Module, meta: dict) -> torch.nn.Module:
    """Empty PackedLinear modules where apply() put them, ready for the stored buffers."""
    config = Config(**meta[ID])
    model = copy.deepcopy(model)
    for name in _targets(model, config):
        linear = model.get_submodule(name)
        model.set_submodule(name, PackedLinear(linear.in_features, linear.out_features, config.bits,
                                               config.group_size, linear.bias is not None))
    return model


def _targets(model: torch.nn.Module, config: Config) -> list[str]:
    """Names of the Linear layers to quantize: all, less the last one (the head) when skip_head."""
    names = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    return names[:-1] if config.skip_head else names
