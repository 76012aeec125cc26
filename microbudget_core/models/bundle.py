"""ModelBundle: a model plus everything needed to feed it, measure it and ship it."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .. import runtimes
from ..runtimes.pytorch import parameter_count as count_params  # noqa: F401 (the models API)

TEXT = "text-classification"
IMAGE = "image-classification"
CAUSAL_LM = "causal-lm"
SPEECH = "speech-recognition"
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
    # family + constructor arguments, enough for `saved.load_saved` to rebuild it
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
        the technique ids that `saved.load_saved` replays to rebuild the saved artifact.
        """
        new_meta = {**self.meta, **meta}
        if note:
            new_meta["notes"] = [*self.meta.get("notes", []), note]
        if structure:
            new_meta["structure"] = [*self.meta.get("structure", []), structure]
        return replace(self, model=model, meta=new_meta)

    @property
    def runtime(self) -> ModuleType:
        """The module that runs, saves and counts this bundle's model (see runtimes)."""
        return runtimes.of(self.meta)

    def logits(self, inputs: Sequence[Any]) -> np.ndarray:
        """Raw inputs (texts or images) -> class logits as a numpy array."""
        return self.runtime.run(self.model, self.preprocess(inputs))

    def parameter_count(self) -> int:
        return self.runtime.parameter_count(self.model)

    def probabilities(self, inputs: Sequence[Any]) -> np.ndarray:
        """Softmax over the class logits, one row per input."""
        return torch.softmax(torch.from_numpy(self.logits(inputs)), dim=-1).numpy()

    def predict(self, inputs: Sequence[Any]) -> np.ndarray:
        return self.logits(inputs).argmax(axis=-1)

    def save(self, folder: Path) -> Path:
        """Write the artifact you would ship (weights, config, preprocessor) into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        self.runtime.save(self.model, folder)
        if hasattr(self.model, "config"):
            config = copy.deepcopy(self.model.config)  # the model's own config is shared: never edit it
            config.architectures = [type(self.model).__name__]
            config.save_pretrained(folder)
        saver = getattr(self.preprocess, "save_pretrained", None)
        if saver:
            saver(folder)
        # Each file's size, so a truncated or missing file is told from a whole artifact (artifact_state).
        files = {str(path.relative_to(folder)): path.stat().st_size for path in sorted(folder.rglob("*"))
                 if path.is_file() and path.name != "microbudget.json"}
        info = {"task": self.task, "labels": self.labels, "name": self.name, "meta": self.meta, "files": files}
        (folder / "microbudget.json").write_text(json.dumps(info, indent=2))
        return folder


SAVED, MISSING, DAMAGED = "saved", "missing", "damaged"  # what is left of a run's saved model


def artifact_state(artifact_path: str | Path | None) -> str:
    """SAVED; MISSING (no microbudget.json: deleted); or DAMAGED (a file it lists is gone or of another size,
    e.g. truncated by a full disk)."""
    info = Path(artifact_path) / "microbudget.json" if artifact_path else None
    if info is None or not info.exists():
        return MISSING
    try:
        files = json.loads(info.read_text(encoding="utf-8")).get("files", {})  # older artifacts list none
    except (ValueError, UnicodeDecodeError, AttributeError):
        return DAMAGED
    whole = all((Path(artifact_path) / name).is_file() and (Path(artifact_path) / name).stat().st_size == size
                for name, size in files.items())
    return SAVED if whole else DAMAGED
