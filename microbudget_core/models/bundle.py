"""ModelBundle: a model plus everything needed to feed it, measure it and ship it."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

TEXT = "text-classification"
IMAGE = "image-classification"
CAUSAL_LM = "causal-lm"
PROMPTED_LM = "prompted-lm"  # the family of a causal LM wrapped as a prompted classifier


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for: a registry id (`minilm-l6`), a hub id, or a local folder."""

    id: str


@dataclass
class ModelBundle:
    """A task model and its preprocessing. Treat as read-only: techniques work on `copy()`."""

    model: torch.nn.Module
    task: str
    labels: list[str]
    preprocess: Callable[[Sequence[Any]], dict[str, torch.Tensor]]
    name: str
    # family + constructor arguments, enough for `models.load_saved` to rebuild it
    meta: dict[str, Any] = field(default_factory=dict)
    # False while the classification head is freshly initialised (needs training)
    head_trained: bool = True

    def copy(self, **changes: Any) -> "ModelBundle":
        """A deep copy of the model (preprocessing shared; it is stateless)."""
        return replace(self, model=copy.deepcopy(self.model), meta=dict(self.meta), **changes)

    def derived(self, model: Any, note: str | None = None, structure: str | None = None,
                **meta: Any) -> "ModelBundle":
        """A technique's result: `model` in place of ours, meta extended (ours is never mutated).

        `note` joins meta["notes"] (shown beside the run); `structure` joins meta["structure"],
        the technique ids that `models.load_saved` replays to rebuild the saved artifact.
        """
        new_meta = {**self.meta, **meta}
        if note:
            new_meta["notes"] = [*self.meta.get("notes", []), note]
        if structure:
            new_meta["structure"] = [*self.meta.get("structure", []), structure]
        return replace(self, model=model, meta=new_meta)

    @torch.inference_mode()
    def logits(self, inputs: Sequence[Any]) -> np.ndarray:
        """Raw inputs (texts or images) -> class logits as a numpy array."""
        features = self.preprocess(inputs)
        if isinstance(self.model, torch.nn.Module):
            self.model.eval()
            dtype = next(self.model.parameters(), torch.empty(0)).dtype
            if dtype in (torch.float16, torch.bfloat16):  # half-precision weights want half inputs
                features = {k: v.to(dtype) if v.is_floating_point() else v for k, v in features.items()}
        output = self.model(**features)
        output = getattr(output, "logits", output)
        return output.float().numpy()

    def probabilities(self, inputs: Sequence[Any]) -> np.ndarray:
        """Softmax over the class logits, one row per input."""
        return torch.softmax(torch.from_numpy(self.logits(inputs)), dim=-1).numpy()

    def predict(self, inputs: Sequence[Any]) -> np.ndarray:
        return self.logits(inputs).argmax(axis=-1)

    def save(self, folder: Path) -> Path:
        """Write the artifact you would ship (weights, config, preprocessor) into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        onnx_bytes = getattr(self.model, "onnx_bytes", None)
        state = self.model.state_dict() if onnx_bytes is None else {}
        if onnx_bytes is not None:
            (folder / "model.onnx").write_bytes(onnx_bytes)
        elif all(type(t) is torch.Tensor and not t.is_quantized for t in state.values()):
            from safetensors.torch import save_model

            save_model(self.model, str(folder / "model.safetensors"))
        else:
            # Quantized modules keep packed params (torch.ao) or tensor subclasses (torchao) that safetensors cannot hold;
            # torch.save of a state_dict loads back with weights_only=True.
            torch.save(state, folder / "model.pt")
        if hasattr(self.model, "config"):
            config = copy.deepcopy(self.model.config)  # the model's own config is shared: never edit it
            config.architectures = [type(self.model).__name__]
            config.save_pretrained(folder)
        saver = getattr(self.preprocess, "save_pretrained", None)
        if saver:
            saver(folder)
        info = {"task": self.task, "labels": self.labels, "name": self.name, "meta": self.meta}
        (folder / "microbudget.json").write_text(json.dumps(info, indent=2))
        return folder


def count_params(model: torch.nn.Module) -> int:
    """Weights and biases, counting quantized modules (whose weights are not Parameters)."""
    if hasattr(model, "parameter_count"):  # an ONNX graph counts its own initializers
        return model.parameter_count()
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if callable(weight):  # torch.ao quantized Linear/Conv: weight() unpacks int8 weights
            total += weight().numel()
            bias = module.bias() if callable(getattr(module, "bias", None)) else None
            total += bias.numel() if bias is not None else 0
    return total
