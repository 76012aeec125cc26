"""Kinds of model: text classification, image classification, causal LM, speech recognition; one module each.

A kind owns what differs between kinds of model, so the rest of the engine asks it instead of
comparing task strings. Adding a kind is adding a module here that holds:

- `ID` (the task string a bundle and a run carry), `DESCRIPTION` ("text classifier"), `DOES`
  ("classifies text") and `PICK` (a model to suggest), for messages; `INPUTS`, the dataset modality
  it reads (data.TEXT_INPUTS, data.IMAGE_INPUTS or data.AUDIO_INPUTS); `WORD_EMBEDDINGS`, whether its inputs are looked up in a word table;
- `RECIPE`, the baseline recipe (a training.TrainConfig; None where the model is measured as it is), and
  `GPU_MEASURED`, whether measure() may run it on a GPU;
- `QUALITY` (the metric that ranks its runs: "accuracy", "perplexity", ...), `HIGHER_IS_BETTER`,
  `Metrics`, a dataclass of the figures `measure()` adds for it, and `Figures`, a row's whole figures (Metrics
  joined with figures.Measured: `@dataclass class Figures(Metrics, Measured)`);
- `quality(bundle, eval_split, reference, config, progress) -> (Metrics, predictions)`, the part of
  `measure()` that differs (predictions are what fidelity compares), and `quality_ratio(baseline, result)`,
  its part of the run's ratios;
- `example_inputs()` and `dynamic_axes(names)` for ONNX export, `counting_input()` for multiply-adds,
  `card_usage` (the model card's snippet), `OPTIMUM_CLASS` (Optimum's exporter for it); a kind whose ONNX form
  is not one graph has its own `to_onnx(bundle)` and `to_onnx_int8(bundle, preset, per_channel)` (speech);
- taking a run away: `PIPELINE` (transformers' pipeline task for it) and, where it has forms other tools load,
  `take_away(bundle, folder) -> str`, which writes them into an export and returns the model card's section on them;
- Hugging Face models of the kind: `recognises(config)` (the `FALLBACK` kind is asked last),
  `hf_loader(source, task, labels)`, `hf_model_class(config, fresh_head)`, `hf_preprocessor(source)`,
  and `PROMPTED_FOR`, the other tasks it answers from a prompt (a causal LM answers text classification).

Which techniques apply to a kind is declared by each technique (`@techniques.applies_to`).
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType
from typing import Any

from ..support.registry import entry, modules_by_id


@lru_cache(maxsize=1)
def registry() -> dict[str, ModuleType]:
    """Kind id (the task string) -> module, for every module in this package."""
    return modules_by_id(__name__, __path__)


def get(task: str) -> ModuleType:
    return entry(registry(), task, "kind of model")


def for_inputs(modality: str) -> ModuleType:
    """A dataset's default task: the kind that classifies its modality (text, image), else the one kind that reads
    it (audio: speech recognition)."""
    readers = [kind for kind in registry().values() if kind.INPUTS == modality]
    return next((kind for kind in readers if kind.QUALITY == "accuracy"), readers[0])


def for_config(config: Any) -> ModuleType:
    """The kind of a Hugging Face model, from its config (the fallback kind last)."""
    ordered = sorted(registry().values(), key=lambda kind: getattr(kind, "FALLBACK", False))
    return next(kind for kind in ordered if kind.recognises(config))


def answers(kind: ModuleType, task: str | None) -> bool:
    """Whether a model of this kind answers `task` (None: its own), as it is or from a prompt."""
    return task is None or task == kind.ID or prompted(kind, task)


def prompted(kind: ModuleType, task: str | None) -> bool:
    """Whether a model of this kind answers `task` only from a prompt (a causal LM asked to classify)."""
    return task in kind.PROMPTED_FOR


def of_figures(figures: Any) -> ModuleType:
    """The kind whose Figures these are (the two classifier kinds share theirs)."""
    return next(kind for kind in registry().values() if isinstance(figures, kind.Figures))


def ranked_by(quality: str) -> set[str]:
    """The kinds whose runs are ranked by this quality metric (runs compare only within one)."""
    return {kind.ID for kind in registry().values() if kind.QUALITY == quality}

