"""A structurally pruned model's new shapes, kept in its meta, so a saved one rebuilds before its weights load.

Structured pruning (techniques/prune.py) gives layers fewer channels, neurons or heads than the architecture its
family rebuilds. `shapes_of` records the pruned model's shapes (its tensors', and the sizes its layers compute with);
`reshaped` gives them to the rebuilt architecture, whose weights the runtime then fills. Torch-Pruning's own
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
                   "all_head_size")


def shapes_of(model: nn.Module) -> dict[str, Any]:
    """Every tensor's shape and every layer's size attributes: all of them, since the architecture rebuilt from a
    pruned config (one head count, one width for all layers) can differ from the pruned model anywhere."""
    tensors = {name: list(tensor.shape) for name, tensor in model.state_dict().items()}
    attributes = {name: {key: _plain(getattr(module, key)) for key in SIZE_ATTRIBUTES if hasattr(module, key)}
                  for name, module in model.named_modules()}
    return {"tensors": tensors, "attributes": {name: sizes for name, sizes in attributes.items() if sizes}}


@torch.no_grad()
def reshaped(model: nn.Module, shapes: dict[str, Any]) -> nn.Module:
    """`model` (a freshly built architecture) with the recorded shapes, its changed tensors empty for the weights
    to fill."""
    for name, values in shapes["attributes"].items():
        module = model.get_submodule(name)
        for key, value in values.items():
            setattr(module, key, tuple(value) if isinstance(value, list) else value)
    current = model.state_dict()
    for name, shape in shapes["tensors"].items():
        if list(current[name].shape) == shape:
            continue
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
