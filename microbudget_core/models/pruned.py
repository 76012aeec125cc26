"""A structurally pruned model's new shapes, kept in its meta, so a saved one rebuilds before its weights load.

Structured pruning (techniques/prune.py) gives layers fewer channels, neurons or heads than the architecture its
family rebuilds. `shapes_changed` records what differs (tensor shapes, and the attributes layers compute with);
`reshaped` applies it to the rebuilt architecture, whose weights the runtime then fills. Torch-Pruning's own
serializer pickles whole modules, which `torch.load(weights_only=True)` refuses: this keeps JSON only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

PRUNED_SHAPES = "pruned_shapes"  # the meta key
# The attributes a layer's forward reads its size from (torch layers, and transformers' attention modules).
SIZE_ATTRIBUTES = ("in_features", "out_features", "in_channels", "out_channels", "groups", "num_features",
                   "normalized_shape", "embedding_dim", "num_embeddings", "num_attention_heads", "attention_head_size",
                   "all_head_size", "n_heads")


def shapes_changed(before: nn.Module, after: nn.Module) -> dict[str, Any]:
    """What pruning changed between two models with the same module names: tensor shapes and size attributes."""
    old_tensors = dict(before.state_dict(keep_vars=True))
    tensors = {name: list(t.shape) for name, t in after.state_dict(keep_vars=True).items()
               if name in old_tensors and t.shape != old_tensors[name].shape}
    old_modules = dict(before.named_modules())
    attributes = {}
    for name, module in after.named_modules():
        sizes = {key: getattr(module, key) for key in SIZE_ATTRIBUTES if hasattr(module, key)}
        # all of a changed module's sizes: the architecture rebuilt from a pruned config may differ in others
        if any(value != getattr(old_modules[name], key, None) for key, value in sizes.items()):
            attributes[name] = {key: _plain(value) for key, value in sizes.items()}
    return {"tensors": tensors, "attributes": attributes}


@torch.no_grad()
def reshaped(model: nn.Module, shapes: dict[str, Any]) -> nn.Module:
    """`model` (a freshly built architecture) with the recorded shapes, its changed tensors empty for the weights
    to fill."""
    for name, values in shapes["attributes"].items():
        module = model.get_submodule(name)
        for key, value in values.items():
            setattr(module, key, tuple(value) if isinstance(value, list) else value)
    for name, shape in shapes["tensors"].items():
        owner, _, attribute = name.rpartition(".")
        module = model.get_submodule(owner)
        empty = torch.empty(shape, dtype=getattr(module, attribute).dtype)
        if isinstance(getattr(module, attribute), nn.Parameter):
            setattr(module, attribute, nn.Parameter(empty))
        else:
            module.register_buffer(attribute, empty)
    return model


def _plain(value: Any) -> Any:
    """A size attribute as JSON holds it (normalized_shape is a tuple)."""
    return list(value) if isinstance(value, tuple) else value
