"""Unstructured magnitude pruning: the smallest weights set to zero, every matrix keeping its shape.

The contrast to structured pruning (prune): "I pruned 50% and inference is no faster" is what users of every pruning
library report, because a dense kernel multiplies the zeros too. The stored file is as large as before; only a
compressor (or a sparse format and kernel, which this CPU path does not have) sees the zeros, so both sizes are
reported. PyTorch's own torch.nn.utils.prune does the work.
"""

from __future__ import annotations

import copy
import io
import zlib
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import prune

from ..data import Dataset
from ..models import IMAGE, TEXT, ModelBundle
from ..models.anatomy import head_name
from ..runtimes import PYTORCH
from ..support.progress import Progress, no_progress
from . import applies_to

ID = "prune-unstructured"
DESCRIPTION = ("Unstructured magnitude pruning: the smallest weights zeroed, shapes unchanged (smaller only when "
               "compressed, no faster on dense kernels): the contrast to prune")
SCOPES = ("global", "per-layer")


@dataclass(frozen=True)
class Config:
    ratio: float = field(default=0.5, metadata={"above": 0, "max": 0.99})  # share of the weights zeroed
    # global: the smallest weights of the whole model (layers lose different shares); per-layer: each loses `ratio`
    scope: str = field(default="global", metadata={"choices": SCOPES})


@applies_to(ID, (TEXT, IMAGE), (PYTORCH,))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    progress(0.0, f"Zeroing the smallest {config.ratio:.0%} of {bundle.name}'s weights")
    model = copy.deepcopy(bundle.model).eval()  # the bundle, often the cached baseline, is never touched
    head = model.get_submodule(head_name(model, len(bundle.labels)))
    # Every Linear and conv weight but the head's (word tables are lookups, not multiplications: left alone)
    weights = [(module, "weight") for module in model.modules()
               if isinstance(module, (nn.Linear, nn.Conv2d)) and module is not head]
    if config.scope == "global":
        prune.global_unstructured(weights, pruning_method=prune.L1Unstructured, amount=config.ratio)
    else:
        for module, name in weights:
            prune.l1_unstructured(module, name, amount=config.ratio)
    for module, name in weights:
        prune.remove(module, name)  # the mask applied for good: plain weights, no hooks
    zeros = sum(int((module.weight == 0).sum()) for module, _ in weights)
    total = sum(module.weight.numel() for module, _ in weights)
    before, after = compressed_bytes(bundle.model), compressed_bytes(model)
    note = (f"{zeros / total:.0%} of the {total / 1e6:.1f}M Linear and conv weights zeroed ({config.scope}); same "
            f"shapes, so the same stored size and dense kernels; compressed (zlib) {before / 1e6:.1f} -> "
            f"{after / 1e6:.1f} MB.")
    progress(1.0, "Pruned")
    return bundle.derived(model, note=note, report={"sparsity": zeros / total, "compressed_bytes_before": before,
                                                    "compressed_bytes": after, "pruning_ratio": config.ratio})


def compressed_bytes(model: nn.Module) -> int:
    """The weights' size once zlib-compressed: what a zip of the file would take, where zeros do count."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(zlib.compress(buffer.getvalue(), 6))
