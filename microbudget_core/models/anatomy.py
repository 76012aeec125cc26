"""Where a classifier's parts are (its head, its backbone's repeated blocks), and fresh weights for it.

Parts are returned by name, not as modules, so the same name finds the same part in any copy.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..support.batching import in_length_order
from ..support.errors import MicrobudgetError
from ..support.progress import Progress, no_progress


def head_name(model: nn.Module, num_labels: int) -> str:
    """The classification head: the last Linear with one output per label (BERT `classifier`, ours `classifier.1`)."""
    names = [name for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and module.out_features == num_labels]
    if not names:
        raise MicrobudgetError(f"Found no classification layer (a Linear with {num_labels} outputs) in this model.",
                               "Use a classifier whose last layer is a Linear layer, such as BERT or MobileNetV2.")
    return names[-1]


def block_names(model: nn.Module) -> list[str]:
    """The backbone's repeated blocks in order: the ModuleList or Sequential with the most children.

    That is `encoder.layer` in BERT-like models and `features` in our MobileNetV2.
    """
    stacks = [(name, module) for name, module in model.named_modules()
              if isinstance(module, (nn.ModuleList, nn.Sequential)) and len(module) >= 2]
    if not stacks:
        raise MicrobudgetError("Found no stack of repeated blocks in this model.",
                               "Use finetune-head or finetune-full, which need none.")
    name, stack = max(stacks, key=lambda item: len(item[1]))  # the first (outermost) of equal length
    return [f"{name}.{child}" if name else child for child, _ in stack.named_children()]


def parameters_from(model: nn.Module, module: str) -> list[str]:
    """Names of the parameters registered from `module` on: that module and every layer above it."""
    names = [name for name, _ in model.named_parameters()]
    first = next((i for i, name in enumerate(names) if under(name, module)), None)
    if first is None:
        raise ValueError(f"{module} holds no parameters")
    return names[first:]


def under(name: str, prefix: str) -> bool:
    """Whether parameter or module `name` is `prefix` or inside it."""
    return name == prefix or name.startswith(f"{prefix}.")


@torch.inference_mode()
def head_inputs(model: nn.Module, head: str, preprocess: Callable[[Sequence[Any]], dict[str, torch.Tensor]],
                inputs: Sequence[Any], batch_size: int = 64, progress: Progress = no_progress) -> np.ndarray:
    """What the head receives for each input (the frozen features), as float32 rows in input order."""
    captured: list[torch.Tensor] = []
    hook = model.get_submodule(head).register_forward_pre_hook(lambda _, args: captured.append(args[0].float().cpu()))

    def features(batch: list[Any]) -> np.ndarray:
        model(**preprocess(batch))
        return captured.pop().numpy()

    try:
        model.eval()
        return in_length_order(inputs, features, batch_size, progress, "Computing frozen features")
    finally:
        hook.remove()


def reinitialised(model: nn.Module, seed: int) -> nn.Module:
    """A copy of `model` with every weight drawn afresh, as before any training."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):  # Linear, Conv, norms, Embedding: PyTorch's defaults
                module.reset_parameters()
        if hasattr(fresh, "_init_weights"):  # Hugging Face: the ranges the architecture was designed with
            fresh.apply(fresh._init_weights)
    # A weight still equal to the pretrained one leaks what transfer would give; constants (LayerNorm
    # ones, zero biases) carry nothing learned.
    kept = [name for (name, new), old in zip(fresh.named_parameters(), model.parameters())
            if torch.equal(new, old) and new.numel() > 1 and not torch.all(new == new.flatten()[0])]
    if kept:
        raise MicrobudgetError(f"Could not re-initialise {len(kept)} weights of this model (first: {kept[0]}).",
                               "Use a model built from standard PyTorch or Hugging Face layers.")
    return fresh
