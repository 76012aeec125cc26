"""Hugging Face models: the bundled MiniLM-L6, any hub id and any local folder, one code path."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import transformers
from PIL import Image

from .. import kinds
from ..support.errors import MicrobudgetError
from ..support.network import hub_reachable
from .bundle import ModelBundle

OFFLINE_HINT = ("Use an offline model (minilm-l6, mobilenet-v2, smollm2-135m) or a local model folder, or connect "
                "to the network.")


@dataclass(frozen=True)
class TextPreprocessor:
    """Tokenize a batch of texts to padded tensors (picklable, unlike a closure)."""

    tokenizer: Any
    max_length: int = 128

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(list(texts), padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
        return dict(encoded)

    def save_pretrained(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(folder)


@dataclass(frozen=True)
class HubImagePreprocessor:
    """Wrap a transformers image processor so it takes our uint8 arrays."""

    processor: Any

    def __call__(self, images: Sequence[Any]) -> dict[str, torch.Tensor]:
        rgb = [Image.fromarray(np.asarray(image)).convert("RGB") for image in images]
        return dict(self.processor(images=rgb, return_tensors="pt"))

    def save_pretrained(self, folder: Path) -> None:
        self.processor.save_pretrained(folder)


def load_hf_classifier(source: str, task: str, labels: list[str] | None, name: str | None = None) -> ModelBundle:
    """Load a sequence or image classifier; a fresh head when its labels differ from `labels`."""
    config = hf_config(source)
    head = _trained_head_labels(config)
    keep_head = head is not None and (labels is None or [l.lower() for l in labels] == [h.lower() for h in head])
    if labels is None and head is None:
        raise MicrobudgetError(f"Model '{source}' has no classification head.",
                               "Pick a dataset so a head can be trained for its labels.")
    labels = head if keep_head else labels
    kind = kinds.get(task)
    auto = kind.hf_model_class(config, fresh_head=not keep_head)
    torch.manual_seed(0)  # the fresh head's initialisation is part of the experiment
    with quiet():
        model = from_pretrained(
            auto, source, num_labels=len(labels), ignore_mismatched_sizes=not keep_head,
            id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    return ModelBundle(model=model.eval(), task=task, labels=list(labels), preprocess=kind.hf_preprocessor(source),
                       name=name or source, meta={"family": "hf", "source": str(source)},
                       head_trained=keep_head)


def load_saved_hf(folder: Path, info: dict[str, Any], with_weights: bool = True) -> ModelBundle:
    """A bundle from a saved folder: with its fp32 weights, or only the architecture (see load_saved)."""
    if with_weights:
        bundle = load_hf_classifier(str(folder), info["task"], info["labels"], name=info["name"])
    else:
        config = transformers.AutoConfig.from_pretrained(folder)
        kind = kinds.get(info["task"])
        bundle = ModelBundle(model=kind.hf_model_class(config).from_config(config).eval(), task=info["task"],
                             labels=info["labels"], preprocess=kind.hf_preprocessor(str(folder)), name=info["name"])
    bundle.meta, bundle.head_trained = dict(info["meta"]), True
    return bundle


def hf_config(source: str) -> Any:
    """The model's transformers config (from the hub, or a local folder)."""
    return from_pretrained(transformers.AutoConfig, source)


def _trained_head_labels(config: Any) -> list[str] | None:
    """The labels of a fine-tuned classification head, or None for a bare encoder."""
    architectures = config.architectures or []
    if not any(a.endswith(("ForSequenceClassification", "ForImageClassification")) for a in architectures):
        return None
    return [config.id2label[i] for i in range(config.num_labels)]


def from_pretrained(auto: Any, source: str, **kwargs: Any) -> Any:
    """`from_pretrained` with remote code refused and hub failures turned into one clear error."""
    if not Path(source).is_dir() and not hub_reachable():
        # Offline: use the local Hugging Face cache if it has the files, and fail at once if not
        # (instead of huggingface_hub's ~30 s of retries).
        kwargs["local_files_only"] = True
    try:
        return auto.from_pretrained(source, trust_remote_code=False, **kwargs)
    except (OSError, ValueError) as error:
        if Path(source).is_dir():
            raise MicrobudgetError(f"The folder '{source}' is not a usable Hugging Face model ({error}).",
                                   "Point to a folder saved with save_pretrained().") from error
        raise MicrobudgetError(
            f"Could not load model '{source}': the Hugging Face Hub is unreachable (offline?) "
            "or no such model id exists.", OFFLINE_HINT) from error


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence transformers' 'newly initialized weights' notice: a fresh head is intended here."""
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)
