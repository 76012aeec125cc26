"""Saved models read back: a folder written by `ModelBundle.save()` -> the bundle, quantized ones included.

Each family of model (the one its meta names) says how its architecture is rebuilt; techniques that changed the
module structure (int8 modules, packed weights, half precision) are replayed on it; then the runtime fills the
stored weights. Adding a family is adding an entry to `FAMILIES`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import kinds, runtimes, techniques
from .support.exclusive import one_at_a_time
from .models.bundle import CAUSAL_LM, PROMPTED_LM, ModelBundle
from .models.hf import load_saved_hf
from .models.llm import load_saved_llm, saved_lm_file
from .models.pruned import PRUNED_SHAPES, reshaped
from .models.speech import WHISPER_FAMILY, load_saved_whisper
from .models.vision import FAMILIES as VISION_FAMILIES
from .models.vision import load_saved_network, preprocessor_of


@dataclass(frozen=True)
class Family:
    """How one family of saved model is rebuilt."""

    # (folder, info, with_weights) -> the bundle; info is the parsed microbudget.json
    architecture: Callable[[Path, dict[str, Any], bool], ModelBundle]
    reads_weights: bool = True  # False: `architecture` always returns it bare, for the runtime to fill
    # (folder, info) -> preprocessing, for a self-contained file (ONNX); None: the kind's saved tokenizer / processor
    preprocessor: Callable[[Path, dict[str, Any]], Any] | None = None
    # (loaded file, folder, info) -> the bundle, for a family whose self-contained file needs more than preprocessing
    from_file: Callable[[Any, Path, dict[str, Any]], ModelBundle] | None = None


LANGUAGE_MODEL = Family(load_saved_llm, reads_weights=False, from_file=saved_lm_file)
FAMILIES: dict[str, Family] = {
    **{family: Family(load_saved_network, preprocessor=lambda folder, info: preprocessor_of(info["meta"]))
       for family in VISION_FAMILIES},
    CAUSAL_LM: LANGUAGE_MODEL,
    PROMPTED_LM: LANGUAGE_MODEL,
    WHISPER_FAMILY: Family(load_saved_whisper, reads_weights=False),
}
HUGGING_FACE = Family(load_saved_hf)  # any other family: a transformers model


@one_at_a_time
def load_saved(folder: Path) -> ModelBundle:
    """Rebuild a bundle from a folder written by `ModelBundle.save()`."""
    info = json.loads((folder / "microbudget.json").read_text())
    meta = info["meta"]
    runtime, family = runtimes.of(meta), FAMILIES.get(meta.get("family"), HUGGING_FACE)
    if runtime.SELF_CONTAINED:  # the file is the whole model: only its preprocessing is rebuilt
        model = runtime.load(folder)
        if family.from_file:
            return family.from_file(model, folder, info)
        return ModelBundle(model=model, task=info["task"], labels=list(info["labels"]),
                           preprocess=saved_preprocessor(folder, info), name=info["name"], meta=dict(meta))
    structure, pruned = meta.get("structure", []), meta.get(PRUNED_SHAPES)
    bundle = family.architecture(folder, info, not (structure or pruned))
    if pruned:  # fewer channels, neurons or heads than the family builds
        bundle.model = reshaped(bundle.model, pruned)
    for technique_id in structure:
        bundle.model = techniques.get(technique_id).restructure(bundle.model, meta)
    if structure or pruned or not family.reads_weights or (folder / "model.pt").exists():
        runtime.load(folder, bundle.model)
    return bundle


def saved_preprocessor(folder: Path, info: dict[str, Any]) -> Any:
    """The preprocessing saved beside a model: its family's (the project's image transform), or the saved
    tokenizer / processor."""
    family = FAMILIES.get(info["meta"].get("family"), HUGGING_FACE)
    if family.preprocessor:
        return family.preprocessor(folder, info)
    return kinds.get(info["task"]).hf_preprocessor(str(folder))
