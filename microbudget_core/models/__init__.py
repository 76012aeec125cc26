"""Models: the offline defaults by id, hub ids and local folders through one `load_model()`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from ..assets import MINILM, asset_path
from ..errors import MicrobudgetError
from ..exclusive import one_at_a_time
from .bundle import CAUSAL_LM, IMAGE, PROMPTED_LM, TEXT, ModelBundle, ModelSpec, count_params

__all__ = ["ModelBundle", "ModelSpec", "load_model", "load_saved", "count_params", "OFFLINE_MODELS",
           "TEXT", "IMAGE", "CAUSAL_LM"]


@dataclass(frozen=True)
class OfflineModel:
    id: str
    task: str
    description: str
    load: Callable[[list[str] | None, int | None], ModelBundle]  # (labels, image_size)


def _minilm(labels: list[str] | None, image_size: int | None) -> ModelBundle:
    from .hf import load_hf_classifier

    folder = asset_path(MINILM).parent  # verifies the weights' sha256 first
    return load_hf_classifier(str(folder), TEXT, labels, name="minilm-l6")


def _smollm2(labels: list[str] | None, image_size: int | None) -> ModelBundle:
    from .llm import load_causal_lm, smollm2_folder

    return load_causal_lm(smollm2_folder(), name="smollm2-135m")


def _mobilenet(labels: list[str] | None, image_size: int | None) -> ModelBundle:
    from .vision import load_mobilenet_v2

    return load_mobilenet_v2(labels, image_size or 224)


OFFLINE_MODELS = {
    m.id: m
    for m in [
        OfflineModel("minilm-l6", TEXT, "all-MiniLM-L6-v2 sentence encoder (22.7M params), text", _minilm),
        OfflineModel("mobilenet-v2", IMAGE, "MobileNetV2, ImageNet-1k weights (3.5M params), vision", _mobilenet),
        OfflineModel("smollm2-135m", CAUSAL_LM, "SmolLM2-135M-Instruct language model (GGUF Q4_1, 135M params)",
                     _smollm2),
    ]
}


@one_at_a_time
def load_model(spec: ModelSpec, labels: list[str] | None = None, task: str | None = None,
               image_size: int | None = None) -> ModelBundle:
    """Load a model for `labels` (a fresh head where they differ). Cached: never mutate the result.

    `image_size` is the input resolution for the project's own vision models (hub models keep theirs).
    A causal LM asked for text classification answers zero-shot by scoring each label (see models.llm).
    """
    return _load_cached(spec.id, tuple(labels) if labels else None, task, image_size)


@lru_cache(maxsize=8)
def _load_cached(model_id: str, labels: tuple[str, ...] | None, task: str | None,
                 image_size: int | None) -> ModelBundle:
    from .hf import guess_task, load_hf_classifier

    label_list = list(labels) if labels else None
    if model_id in OFFLINE_MODELS:
        entry = OFFLINE_MODELS[model_id]
        if entry.task == CAUSAL_LM:
            return _language_model(model_id, lambda: entry.load(None, None), label_list, task)
        if task == CAUSAL_LM:
            raise MicrobudgetError(f"Model '{model_id}' is a classifier, not a language model.",
                                   "Pick a language model such as smollm2-135m.")
        if task and task != entry.task:
            kind = "images" if entry.task == IMAGE else "text"
            raise MicrobudgetError(f"Model '{model_id}' classifies {kind}, but this dataset needs a {task} model.",
                                   "Pick a model and dataset of the same kind (text or images).")
        return entry.load(label_list, image_size)
    path = Path(model_id).expanduser()
    if path.is_file() or (model_id.startswith((".", "/", "~")) and not path.exists()):
        raise MicrobudgetError(f"'{model_id}' is not a model folder.",
                               "Give a folder saved with save_pretrained(), a hub id, or one of: "
                               + ", ".join(OFFLINE_MODELS))
    found = guess_task(model_id)
    if found == CAUSAL_LM:
        from .llm import load_causal_lm

        return _language_model(model_id, lambda: load_causal_lm(model_id), label_list, task)
    if task == CAUSAL_LM:
        raise MicrobudgetError(f"Model '{model_id}' is not a causal language model.",
                               "Pick a language model such as smollm2-135m, or a hub id of one.")
    return load_hf_classifier(model_id, task or found, label_list)


def _language_model(model_id: str, load: Callable[[], ModelBundle], labels: list[str] | None,
                    task: str | None) -> ModelBundle:
    """A causal LM as it is, or (for a text classification task) answering zero-shot. Its weights are loaded
    once, as the LM (cached), and shared by every classifier made from it."""
    from .llm import as_classifier

    if task == CAUSAL_LM and not labels:
        return load()  # the one load, cached as (model_id, None, CAUSAL_LM, None)
    as_loaded = _load_cached(model_id, None, CAUSAL_LM, None)
    if task in (None, CAUSAL_LM):
        return as_loaded
    if task != TEXT or not labels:
        raise MicrobudgetError(f"Model '{as_loaded.name}' is a language model: it can answer text tasks, not {task}.",
                               "Pick a text dataset, or an image model for images.")
    return as_classifier(as_loaded, labels)


@one_at_a_time
def load_saved(folder: Path) -> ModelBundle:
    """Rebuild a bundle from a folder written by `ModelBundle.save()`, quantized ones included."""
    info = json.loads((folder / "microbudget.json").read_text())
    if (folder / "model.onnx").exists():
        from .onnx_model import load_saved_onnx

        return load_saved_onnx(folder, info)
    # Techniques that change module structure (int8 modules, packed weights, half precision)
    # are replayed on the bare architecture, then the stored weights fill it.
    structure = info["meta"].get("structure", [])
    family = info["meta"].get("family")
    if family == "mobilenet-v2":
        from .vision import load_saved_mobilenet

        bundle = load_saved_mobilenet(folder, info, with_weights=not structure)
    elif family in (CAUSAL_LM, PROMPTED_LM):
        from .llm import load_saved_llm

        bundle = load_saved_llm(folder, info)  # always the bare architecture: the weights are filled below
    else:
        from .hf import load_saved_hf

        bundle = load_saved_hf(folder, info, with_weights=not structure)
    if structure:
        from .. import techniques

        for technique_id in structure:
            bundle.model = techniques.get(technique_id).restructure(bundle.model, info["meta"])
    if (folder / "model.pt").exists():
        bundle.model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    elif structure or family in (CAUSAL_LM, PROMPTED_LM):
        from safetensors.torch import load_model

        load_model(bundle.model, str(folder / "model.safetensors"))
    return bundle
