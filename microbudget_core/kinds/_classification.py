"""What the two classifier kinds share: accuracy, balanced accuracy, macro-F1, confusion, agreement; batch-1
calls and batches of the eval inputs to time."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import transformers
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from ..data import Split
from ..figures import Measured
from .. import yardstick
from ..measure import MeasureConfig
from ..models.bundle import PROMPTED_LM, ModelBundle
from ..models.hf import from_pretrained, load_hf_classifier
from ..models.onnx_model import export_onnx
from ..runtimes import ORT
from ..support.progress import Progress

QUALITY = "accuracy"
PROMPTED_FOR: tuple[str, ...] = ()  # a classifier answers only its own kind of task
HIGHER_IS_BETTER = True
GPU_MEASURED = True  # measure() runs a plain PyTorch classifier on the GPU where there is one


@dataclass
class Metrics:
    accuracy: float
    balanced_accuracy: float  # mean recall over the classes: small classes count as much as large ones
    macro_f1: float
    fidelity: float  # share of eval predictions equal to the original's
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted, both in bundle.labels order


@dataclass
class Figures(Metrics, Measured):
    """A classifier's row: its Metrics beside what every row has."""


def quality(bundle: ModelBundle, eval_split: Split, reference: np.ndarray | None, config: MeasureConfig,
            progress: Progress) -> tuple[Metrics, np.ndarray]:
    """Scored on the eval labels; predictions are the classes, the reference for later rows' fidelity."""
    predictions = []
    for start in range(0, len(eval_split), config.batch_size):
        progress(start / len(eval_split), "Measuring accuracy")
        predictions.append(bundle.predict(eval_split.inputs[start:start + config.batch_size]))
    predictions, labels = np.concatenate(predictions), eval_split.labels
    metrics = Metrics(
        accuracy=float(accuracy_score(labels, predictions)),
        balanced_accuracy=float(balanced_accuracy_score(labels, predictions)),
        macro_f1=float(f1_score(labels, predictions, average="macro", zero_division=0)),
        fidelity=1.0 if reference is None else float(np.mean(predictions == reference)),
        confusion_matrix=confusion_matrix(labels, predictions, labels=range(len(bundle.labels))).tolist(),
    )
    return metrics, predictions


def speed_work(bundle: ModelBundle, eval_split: Split, config: MeasureConfig) -> yardstick.Work:
    """Each round, batch-1 calls on the first `latency_runs` inputs; then the first `batches` batches."""
    ones = [yardstick.call_of(bundle.logits, [x]) for x in eval_split.inputs[:config.latency_runs]]
    batches = [eval_split.inputs[n:n + config.batch_size]
               for n in range(0, min(len(eval_split), config.batches * config.batch_size), config.batch_size)]
    return {"latency": [ones] * config.rounds,
            "throughput": [[yardstick.call_of(bundle.logits, batch, units=len(batch)) for batch in batches]]
            * config.rounds}


def speed_fields(timing: dict[str, yardstick.Rounds], eval_split: Split) -> dict[str, float]:
    """Examples per second at the throughput batch size."""
    return {"throughput_per_s": 1 / yardstick.median(yardstick.flat(timing["throughput"]))}


def hf_loader(source: str, task: str, labels: list[str] | None) -> Callable[[], ModelBundle]:
    """How a Hugging Face classifier of this kind loads: with a fresh head where its labels differ."""
    return lambda: load_hf_classifier(source, task, labels)


def quality_ratio(baseline: Figures, result: Figures) -> dict[str, float]:
    """Accuracy kept, as a share of the original's."""
    return {"accuracy_retained": result.accuracy / baseline.accuracy if baseline.accuracy else 0.0}


def labelled(config: Any, labels: list[str]) -> Any:
    """A copy of a transformers config naming these labels (id2label / label2id), as pipelines read them."""
    config = copy.deepcopy(config)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: n for n, label in enumerate(labels)}
    return config


def source_config(bundle: ModelBundle) -> Any:
    """The transformers config of the bundle's model, or of the model it was made from (an ONNX graph has none)."""
    config = getattr(bundle.model, "config", None)
    return config if config is not None else from_pretrained(transformers.AutoConfig, bundle.meta["source"])


@dataclass(frozen=True)
class StandardLoader:
    """How the ecosystem loads one classifier kind's ONNX export: Optimum's class, transformers' pipeline and
    preprocessing, and the kind's functions giving the config.json and the preprocessing to save."""

    optimum_class: str
    pipeline: str
    processor_class: str
    processor_arg: str
    example: str  # the pipeline's input in the card's snippet
    config: Callable[[ModelBundle], Any]
    preprocessor: Callable[[ModelBundle], Any]


def onnx_form(bundle: ModelBundle, folder: Path, loader: StandardLoader) -> str:
    """Write the ONNX form that Optimum and transformers' pipeline load (the project's heads live in the graph) into
    the exported `folder`, with a config.json naming the labels and the preprocessing; the card's section on it."""
    if bundle.meta.get("family") == PROMPTED_LM:
        return ("## No ONNX form\n\nA language model answering from a prompt: take it away as GGUF (the `gguf` "
                "technique), which llama.cpp and Ollama run.\n")
    changed = bundle.meta.get("structure")
    if changed:
        return (f"## No ONNX form\n\nPyTorch's {', '.join(changed)} modules cannot be exported to ONNX. For an int8 "
                "model that loads without microbudget, quantize with `onnx-int8-dynamic` instead.\n")
    target = folder if bundle.runtime.ID == ORT else folder / "onnx"  # an ONNX Runtime run's model.onnx is there
    if target != folder:
        target.mkdir()
        (target / "model.onnx").write_bytes(export_onnx(bundle))
    loader.config(bundle).save_pretrained(target)
    loader.preprocessor(bundle).save_pretrained(target)
    where = f"{folder.name}/{target.relative_to(folder)}" if target != folder else folder.name
    return f"""## Load it with Optimum (ONNX Runtime) and a transformers pipeline

`{target.relative_to(folder) / "model.onnx"}` holds the whole model, head included; `config.json` names its labels.

```python
from optimum.onnxruntime import {loader.optimum_class}
from transformers import {loader.processor_class}, pipeline
model = {loader.optimum_class}.from_pretrained("{where}")
classify = pipeline("{loader.pipeline}", model=model,
                    {loader.processor_arg}={loader.processor_class}.from_pretrained("{where}"))
print(classify({loader.example}))
```
"""
