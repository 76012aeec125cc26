"""Kinds of model: text classification, image classification, causal LM; one module each.

A kind owns what differs between kinds of model, so the rest of the engine asks it instead of
comparing task strings. Adding a kind (speech recognition, say) is adding a module here that holds:

- `ID` (the task string a bundle and a run carry), `DESCRIPTION`, `INPUTS` (the dataset modality
  it reads: "text" or "image", data.TEXT / data.IMAGE);
- `QUALITY` (the metric that ranks its runs: "accuracy", "perplexity", ...), `HIGHER_IS_BETTER`,
  and `Metrics`, a dataclass of the figures `measure()` adds for it;
- `quality(bundle, eval_split, reference, config, progress) -> (Metrics, predictions)`, the part of
  `measure()` that differs, and `quality_ratio(baseline, result) -> dict`, its part of the ratios;
- `example_inputs()` (raw inputs for ONNX export and multiply-add counting), `dynamic_axes(names)`,
  `card_example` (the input the model card's snippet predicts on);
- `recognises(config)`, whether a Hugging Face config is of this kind (the `FALLBACK` kind is asked last).

Which techniques apply to a kind is declared by each technique (its `KINDS`), see techniques.applies().
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from types import ModuleType
from typing import Any

from ..registry import entry, modules_by_id


@lru_cache(maxsize=1)
def registry() -> dict[str, ModuleType]:
    """Kind id (the task string) -> module, for every module in this package."""
    return modules_by_id(__name__, __path__)


def get(task: str) -> ModuleType:
    return entry(registry(), task, "kind of model")


def for_inputs(modality: str) -> ModuleType:
    """The kind that classifies a dataset of this modality (text or image): a dataset's default task."""
    return next(kind for kind in registry().values() if kind.INPUTS == modality and kind.QUALITY == "accuracy")


def for_config(config: Any) -> ModuleType:
    """The kind of a Hugging Face model, from its config (the fallback kind last)."""
    ordered = sorted(registry().values(), key=lambda kind: getattr(kind, "FALLBACK", False))
    return next(kind for kind in ordered if kind.recognises(config))


def ranked_by(quality: str) -> set[str]:
    """The kinds whose runs are ranked by this quality metric (runs compare only within one)."""
    return {kind.ID for kind in registry().values() if kind.QUALITY == quality}


def as_dict(metrics: Any) -> dict[str, Any]:
    """A kind's Metrics as the run store keeps them (the same keys as before they were a type)."""
    return dataclasses.asdict(metrics)
