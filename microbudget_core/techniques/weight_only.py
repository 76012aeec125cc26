"""Weight-only round-to-nearest quantization of Linear layers to 8/4/3/2 bits, stored packed (the GGUF idea)."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch

from .. import quant_math
from ..data import Dataset
from ..support.errors import MicrobudgetError
from ..models import ModelBundle
from ..models.bundle import CAUSAL_LM, IMAGE, SPEECH, TEXT
from ..support.progress import Progress, no_progress
from ..runtimes import PYTORCH
from . import applies_to

ID = "weight-only"
DESCRIPTION = "Weight-only 8/4/3/2-bit round-to-nearest of Linear layers, packed, per-group scales (GGUF-style)"


@dataclass(frozen=True)
class Config:
    bits: int = field(default=4, metadata={"choices": (8, 4, 3, 2)})
    group_size: int = 64  # weights sharing one scale; <= 0 means one scale per output row
    symmetric: bool = False
    skip_head: bool = True  # keep the last Linear (the classifier) in fp32, as GGUF keeps output layers wider
    embeddings: bool = False  # also pack embedding tables (GGUF does; they are a fifth of a small LLM)


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
    def empty_like(cls, module: torch.nn.Module, config: Config) -> "PackedLinear":
        """Packed rows shaped like a Linear's weight or an embedding table (rows = outputs or tokens)."""
        rows, columns = module.weight.shape
        return cls(columns, rows, config.bits, config.group_size, getattr(module, "bias", None) is not None)

    @classmethod
    def from_module(cls, module: torch.nn.Module, config: Config) -> "PackedLinear":
        packed = cls.empty_like(module, config)
        codes, scales, zeros = quant_math.quantize_groups(module.weight.detach().float(), config.bits,
                                                          config.group_size, config.symmetric)
        packed.packed.copy_(quant_math.pack_bits(codes, config.bits))
        packed.scales.copy_(scales)
        packed.zeros.copy_(zeros)
        if packed.bias is not None:
            packed.bias.data.copy_(module.bias.detach())
        return packed

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


class PackedEmbedding(torch.nn.Module):
    """An embedding table read from packed rows: its own, or those of the LM head it is tied to."""

    def __init__(self, rows: PackedLinear, tied: bool):
        super().__init__()
        if tied:  # not registered as a child: the head's packed rows are stored once, as the tied table was
            object.__setattr__(self, "rows", rows)
        else:
            self.rows = rows

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding(ids, self.rows.weight())


@applies_to(ID, (TEXT, IMAGE, CAUSAL_LM, SPEECH), (PYTORCH,), instead="Put it before any ONNX step.")
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    if not _targets(bundle.model, config):
        raise MicrobudgetError(f"Model '{bundle.name}' has no PyTorch Linear layers to quantize weight-only.",
                               "Apply weight-only to a PyTorch transformer, before any ONNX step.")
    model = copy.deepcopy(bundle.model)
    targets = _targets(model, config)
    tables = _tables(model, targets, config)  # found before the Linears are replaced: ties are weight identity
    errors, names = {}, targets + list(tables)
    for number, name in enumerate(names):
        original = model.get_submodule(name)
        packed = None if tables.get(name) else PackedLinear.from_module(original, config)  # tied: the head's rows
        if packed is not None:
            errors[name] = quant_math.reconstruction_error(original.weight.detach().float(),
                                                           packed.weight())["relative"]
        model.set_submodule(name, _embedding(model, tables[name], packed) if name in tables else packed)
        progress((number + 1) / len(names), f"Quantized {name} to {config.bits} bits")
    worst = max(errors, key=errors.get)
    what = "Linear layers and embedding tables" if tables else "Linear layers"
    note = (f"{len(errors)} {what} stored in {config.bits} bits (group {config.group_size}); mean relative "
            f"weight error {sum(errors.values()) / len(errors):.3f}, worst {errors[worst]:.3f} ({worst}). No "
            "low-bit kernel runs on this CPU: latency is of weights dequantized to fp32; size is the packed bytes.")
    return bundle.derived(model, note=note, structure=ID, report={"layer_relative_error": errors},
                          **{ID: asdict(config)})


def restructure(model: torch.nn.Module, meta: dict) -> torch.nn.Module:
    """Empty PackedLinear modules where apply() put them, ready for the stored buffers."""
    config = Config(**meta[ID])
    model = copy.deepcopy(model)
    targets = _targets(model, config)
    tables = _tables(model, targets, config)
    for name in targets + list(tables):
        packed = PackedLinear.empty_like(model.get_submodule(name), config)
        model.set_submodule(name, _embedding(model, tables[name], packed) if name in tables else packed)
    return model


def _embedding(model: torch.nn.Module, tied: str, own: PackedLinear | None) -> PackedEmbedding:
    """A packed table: the rows of the (already packed) head `tied` to it, else its `own`."""
    return PackedEmbedding(model.get_submodule(tied), tied=True) if tied else PackedEmbedding(own, tied=False)


def _tables(model: torch.nn.Module, targets: list[str], config: Config) -> dict[str, str]:
    """With `embeddings`: each embedding table's name -> the name of the target Linear sharing its weight, or ''."""
    if not config.embeddings:
        return {}
    linears = {id(model.get_submodule(name).weight): name for name in targets}
    return {name: linears.get(id(module.weight), "") for name, module in model.named_modules()
            if isinstance(module, torch.nn.Embedding)}


def _targets(model: torch.nn.Module, config: Config) -> list[str]:
    """Names of the Linear layers to quantize: all, less the last one (the head) when skip_head."""
    names = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    return names[:-1] if config.skip_head else names
