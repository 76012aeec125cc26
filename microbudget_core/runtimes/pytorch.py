"""PyTorch: the model is a torch.nn.Module, its weights saved as safetensors (or a weights-only torch.save)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from . import PYTORCH
from ._scoring import PromptedClassifier

ID = PYTORCH
NAME = "PyTorch"
SELF_CONTAINED = False  # the saved weights fill an architecture rebuilt from the saved config


@torch.inference_mode()
def run(model: torch.nn.Module, features: dict[str, torch.Tensor]) -> np.ndarray:
    """The model's logits for preprocessed features, inputs cast to half where the weights are half."""
    model.eval()
    dtype = next(model.parameters(), torch.empty(0)).dtype
    if dtype in (torch.float16, torch.bfloat16):  # half-precision weights want half inputs
        features = {k: v.to(dtype) if v.is_floating_point() else v for k, v in features.items()}
    output = model(**features)
    return getattr(output, "logits", output).float().cpu().numpy()  # from whatever device it ran on


@torch.inference_mode()
def greedy(model: torch.nn.Module, ids: list[int]) -> Iterator[int]:
    """A causal LM's most likely next token, again and again, reusing its key/value cache."""
    model.eval()
    past, step = None, torch.tensor([ids])
    while True:
        output = model(input_ids=step, past_key_values=past, use_cache=True)
        past, step = output.past_key_values, output.logits[:, -1:].argmax(dim=-1)
        yield int(step[0, 0])


def prompted(model: torch.nn.Module, labels: int) -> torch.nn.Module:
    """A causal LM answering a classification task: each label's log-likelihood (see models.llm.as_classifier)."""
    return PromptedClassifier(model, labels)


def save(model: torch.nn.Module, folder: Path) -> None:
    state = model.state_dict()
    if all(type(t) is torch.Tensor and not t.is_quantized for t in state.values()):
        # format=pt: transformers refuses a file without it, and safetensors' own metadata (the names of tied weights
        # it stored once, e.g. Whisper's output layer) would otherwise be all there is.
        save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        # Quantized modules keep packed params (torch.ao) or tensor subclasses (torchao) that safetensors cannot hold;
        # torch.save of a state_dict loads back with weights_only=True.
        torch.save(state, folder / "model.pt")


def load(folder: Path, model: torch.nn.Module | None = None) -> torch.nn.Module:
    """Fill the rebuilt architecture `model` with the weights saved in `folder`."""
    if model is None:
        raise ValueError("PyTorch weights need the model's architecture to fill")
    if (folder / "model.pt").exists():
        model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    else:
        load_model(model, str(folder / "model.safetensors"))
    return model


def parameter_count(model: torch.nn.Module) -> int:
    """Weights and biases, counting quantized modules (whose weights are not Parameters)."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if callable(weight):  # torch.ao quantized Linear/Conv: weight() unpacks int8 weights
            total += weight().numel()
            bias = module.bias() if callable(getattr(module, "bias", None)) else None
            total += bias.numel() if bias is not None else 0
    return total


def digest(model: torch.nn.Module, skip: Callable[[str], bool] = lambda name: False) -> str:
    """A sha256 of the weights that `skip` does not name: a retrained model gets a new key."""
    found = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if not skip(name):
            found.update(name.encode() + tensor.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return found.hexdigest()


def set_threads(model: torch.nn.Module, threads: int) -> None:
    torch.set_num_threads(threads)  # PyTorch's thread count is the process's
