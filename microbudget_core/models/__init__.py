"""Models: the offline defaults by id, hub ids and local folders through one `load_model()` (saved ones:
`saved.load_saved`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from .. import kinds
from ..support.assets import MINILM, MPNET_PARTS, SMOLLM2, WHISPER_BASE, WHISPER_TINY_EN, Asset, asset_path, package_dir
from ..support.errors import MicrobudgetError
from ..support.exclusive import one_at_a_time
from .bundle import CAUSAL_LM, IMAGE, SPEECH, TEXT, ModelBundle, ModelSpec, count_params
from .hf import hf_config, load_hf_classifier
from .llm import as_classifier, load_causal_lm, smollm2_folder
from .speech import converted_whisper, load_whisper
from .split_zip import SplitZip, unpacked
from .vision import FAMILIES as VISION_FAMILIES
from .vision import load_pretrained

__all__ = ["ModelBundle", "ModelSpec", "load_model", "count_params", "OFFLINE_MODELS",
           "TEXT", "IMAGE", "CAUSAL_LM", "SPEECH"]


@dataclass(frozen=True)
class OfflineModel:
    id: str
    task: str
    description: str
    load: Callable[[list[str] | None, int | None], ModelBundle]  # (labels, image_size)
    # For a model too large to fine-tune in minutes on 2 CPU cores: its baseline recipe trains only a head on its
    # frozen features, with these finetune-head settings (None: the task's recipe, every weight)
    baseline_head: dict[str, Any] | None = None
    packages: tuple[Asset, ...] = ()  # asset packages that are optional (the rest are always set up)

    def installed(self) -> bool:
        return all(package_dir(asset.package) for asset in self.packages)


def _minilm(labels: list[str] | None, image_size: int | None) -> ModelBundle:
    folder = asset_path(MINILM).parent  # verifies the weights' sha256 first
    return load_hf_classifier(str(folder), TEXT, labels, name="minilm-l6")


MPNET = SplitZip("all-mpnet-base-v2", MPNET_PARTS, "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
                 "all-mpnet-base-v2", (("model.safetensors",
                                        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),))


def _mpnet(labels: list[str] | None, image_size: int | None) -> ModelBundle:
    return load_hf_classifier(str(unpacked(MPNET)), TEXT, labels, name="mpnet-base")


def _smollm2(labels: list[str] | None, image_size: int | None) -> ModelBundle:
    bundle = load_causal_lm(smollm2_folder(), name="smollm2-135m")
    bundle.meta["gguf_file"] = str(asset_path(SMOLLM2))  # the gguf technique quantizes from the file itself
    return bundle


def _vision(family_id: str) -> Callable[[list[str] | None, int | None], ModelBundle]:
    return lambda labels, image_size: load_pretrained(family_id, labels, image_size)


def _whisper(model_id: str, parts: tuple[Asset, ...]) -> Callable[[list[str] | None, int | None], ModelBundle]:
    """A bundled CTranslate2 Whisper, converted to transformers once (cached under home()/models)."""
    def load(labels: list[str] | None, image_size: int | None) -> ModelBundle:
        files = [asset_path(part) for part in parts]  # verifies each file's sha256 first
        return load_whisper(converted_whisper(model_id, files, "".join(part.sha256 or "" for part in parts)),
                            name=model_id)
    return load


OFFLINE_MODELS = {
    m.id: m
    for m in [
        OfflineModel("minilm-l6", TEXT, "all-MiniLM-L6-v2 sentence encoder (22.7M params), text", _minilm),
        OfflineModel("mpnet-base", TEXT, "all-mpnet-base-v2 sentence encoder (109M params, 12 layers), text: the "
                     "large teacher", _mpnet, packages=MPNET_PARTS,
                     # longer, at a lower rate than finetune-head's default: 0.886 vs 0.875 (see baseline.py)
                     baseline_head={"learning_rate": 3e-5, "epochs": 40}),
        *(OfflineModel(family.id, IMAGE, family.description, _vision(family.id))
          for family in VISION_FAMILIES.values()),
        OfflineModel("smollm2-135m", CAUSAL_LM, "SmolLM2-135M-Instruct language model (GGUF Q4_1, 135M params)",
                     _smollm2),
        OfflineModel("whisper-tiny.en", SPEECH, "Whisper tiny.en speech recognizer (37.8M params), English speech",
                     _whisper("whisper-tiny.en", (WHISPER_TINY_EN,))),
        OfflineModel("whisper-base", SPEECH, "Whisper base speech recognizer, multilingual (72.6M params), speech",
                     _whisper("whisper-base", WHISPER_BASE)),
    ]
}


def installed_models(quality: str | None = None, inputs: str | None = None) -> list[OfflineModel]:
    """The offline models this machine has: those ranked by `quality` and reading `inputs`, where given."""
    return [m for m in OFFLINE_MODELS.values() if m.installed() and quality in (None, kinds.get(m.task).QUALITY)
            and inputs in (None, kinds.get(m.task).INPUTS)]


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
    label_list = list(labels) if labels else None
    if model_id in OFFLINE_MODELS:
        entry = OFFLINE_MODELS[model_id]
        kind, load = kinds.get(entry.task), lambda: entry.load(label_list, image_size)
    else:
        path = Path(model_id).expanduser()
        if path.is_file() or (model_id.startswith((".", "/", "~")) and not path.exists()):
            raise MicrobudgetError(f"'{model_id}' is not a model folder.",
                                   "Give a folder saved with save_pretrained(), a hub id, or one of: "
                                   + ", ".join(OFFLINE_MODELS))
        kind = kinds.for_config(hf_config(model_id))
        load = kind.hf_loader(model_id, task or kind.ID, label_list)
    if not kinds.answers(kind, task):
        needed = kinds.get(task)
        article = "an" if task[0] in "aeiou" else "a"
        raise MicrobudgetError(f"Model '{model_id}' {kind.DOES}, but this dataset needs {article} {task} model: "
                               f"it is not a {needed.DESCRIPTION}.", f"Pick {needed.PICK}, or a dataset of the "
                               "model's kind.")
    if kind.PROMPTED_FOR:  # a language model: its weights load once, shared by every classifier prompted from it
        return _prompted(model_id, kind, load, label_list, task)
    return load()


def _prompted(model_id: str, kind: ModuleType, load: Callable[[], ModelBundle], labels: list[str] | None,
              task: str | None) -> ModelBundle:
    """A causal LM as it is, or (for a text classification task) answering zero-shot from a prompt."""
    as_loaded = _load_cached(model_id, None, None, None) if task or labels else load()
    if not kinds.prompted(kind, task):
        return as_loaded
    if not labels:
        raise MicrobudgetError(f"Model '{as_loaded.name}' is a language model: it answers a {task} task only for "
                               "given labels.", "Pick a dataset with labels.")
    return as_classifier(as_loaded, labels)
