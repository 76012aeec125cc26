"""Choosing an efficient architecture, measured: params, multiply-adds, size, latency, throughput, accuracy.

Every architecture is trained with the same budget on the same data (all weights, the same examples per
class and epochs) and measured with the same `measure()` as every run, so the rows compare like with like.
Figures quoted from the literature sit beside them, marked as quoted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from .. import kinds, labs
from ..support import limits, ranges
from ..data import DatasetSpec, Split, load_dataset
from ..support.errors import MicrobudgetError
from ..kinds.text_classification import TOKENS
from ..measure import MeasureConfig, measure
from ..models import OFFLINE_MODELS, ModelBundle, ModelSpec, load_model
from ..models.variants import keep_layers, narrow
from ..models.vision import FAMILIES as VISION_FAMILIES
from ..support.progress import Progress, no_progress, scaled
from ..techniques import finetune_head
from ..techniques._finetune import recipe_rate
from ..training import TrainConfig, TrainReport, train_classifier

TEXT_TOKENS = TOKENS  # multiply-adds of a text model are counted for one input of this many tokens


@dataclass(frozen=True)
class Architecture:
    id: str
    description: str
    base: str  # the model id it is built from
    build: Callable[[ModelBundle], ModelBundle]  # from the base, loaded with the dataset's labels
    default: bool = True  # in the page's default selection (the control rows are offered, not preselected)


def _as_is(bundle: ModelBundle) -> ModelBundle:
    return bundle


BUILT_IN = [
    Architecture("minilm-l6", "all-MiniLM-L6-v2 as shipped: 6 layers, 384 wide", "minilm-l6", _as_is),
    Architecture("minilm-l6 / 3 layers", "MiniLM-L6 keeping layers 1, 3, 5 (pretrained)", "minilm-l6",
                 lambda b: keep_layers(b, [1, 3, 5])),
    Architecture("minilm-l6 / 2 layers", "MiniLM-L6 keeping layers 2 and 5 (pretrained)", "minilm-l6",
                 lambda b: keep_layers(b, [2, 5])),
    # Offered, not preselected: all its weights at the default text budget take about 12 minutes on 2 cores
    # (head only: its features once, about 8 minutes, then seconds).
    Architecture("mpnet-base", "all-mpnet-base-v2 as shipped: 12 layers, 768 wide (the large teacher)",
                 "mpnet-base", _as_is, default=False),
    # Every vision network the project defines, pretrained, at the resolution it was trained at.
    *(Architecture(f.id, f"{f.name}, ImageNet weights, {f.image_size} px", f.id, _as_is)
      for f in VISION_FAMILIES.values()),
    # Controls: what pretraining is worth (no narrow MobileNetV2 weights ship offline, so these start random).
    Architecture("mobilenet-v2 x0.5 (random)", "MobileNetV2 at half width from random weights: what pretraining "
                 "is worth", "mobilenet-v2", lambda b: narrow(b, 0.5, from_teacher=False), default=False),
    Architecture("mobilenet-v2 x0.35 (random)", "MobileNetV2 at 0.35 width from random weights: what pretraining "
                 "is worth", "mobilenet-v2", lambda b: narrow(b, 0.35, from_teacher=False), default=False),
]

# Quoted, not measured here: ImageNet-1k (MobileNetV2: Sandler et al. 2018 and the TF-Slim table; EfficientNet-Lite:
# the TensorFlow TPU repository's Lite table, float and int8; ResNet-50: He et al. 2016 / torchvision), and the
# text encoders' model cards.
QUOTED = [
    {"model": "MobileNetV2 1.0 (224 px)", "params (M)": 3.47, "multiply-adds (G)": 0.300, "reported": "ImageNet top-1 71.8%"},
    {"model": "MobileNetV2 0.5 (224 px)", "params (M)": 1.95, "multiply-adds (G)": 0.097, "reported": "ImageNet top-1 65.4%"},
    {"model": "MobileNetV2 0.35 (224 px)", "params (M)": 1.66, "multiply-adds (G)": 0.059, "reported": "ImageNet top-1 60.3%"},
    {"model": "EfficientNet-Lite0 (224 px)", "params (M)": 4.7, "multiply-adds (G)": None,
     "reported": "ImageNet top-1 75.1% (int8 74.4%)"},
    {"model": "EfficientNet-Lite1 (240 px)", "params (M)": 5.4, "multiply-adds (G)": None,
     "reported": "ImageNet top-1 76.7% (int8 75.9%)"},
    {"model": "EfficientNet-Lite2 (260 px)", "params (M)": 6.1, "multiply-adds (G)": None,
     "reported": "ImageNet top-1 77.6% (int8 77.0%)"},
    {"model": "ResNet-50 (224 px)", "params (M)": 25.6, "multiply-adds (G)": 4.09, "reported": "ImageNet top-1 76.1%"},
    {"model": "BERT-base", "params (M)": 110, "multiply-adds (G)": None, "reported": "12 layers, 768 wide"},
    {"model": "DistilBERT", "params (M)": 66, "multiply-adds (G)": None, "reported": "97% of BERT-base on GLUE"},
    {"model": "all-MiniLM-L6-v2", "params (M)": 22.7, "multiply-adds (G)": None, "reported": "6 layers, 384 wide"},
    {"model": "all-mpnet-base-v2", "params (M)": 109.5, "multiply-adds (G)": None, "reported": "12 layers, 768 wide"},
]


WEIGHTS = ("all", "head")


@dataclass(frozen=True)
class Budget:
    """The same training for every architecture: `examples_per_class`, `epochs`, and which weights train.

    `weights` "all": every weight fine-tuned for `epochs`; "head": the backbone frozen and a linear head trained on
    its cached features (finetune-head's recipe: its own epochs and rate), which compares what each pretrained
    network's features are worth, in seconds.
    """

    examples_per_class: int = field(default=128, metadata={"min": 0})
    epochs: int = field(default=3, metadata={"min": 1})
    learning_rate: float = field(default=0.0, metadata={"min": 0, "max": 1})  # 0: the baseline recipe's rate
    weights: str = field(default="all", metadata={"choices": WEIGHTS})


def default_budget(task: str) -> Budget:
    """The page's default budget: the weights the kind trains when comparing its networks (ARCHITECTURE_WEIGHTS)."""
    return Budget(weights=kinds.get(task).ARCHITECTURE_WEIGHTS)


def defaults(task: str) -> list[Architecture]:
    """The page's default selection for a task: the pretrained architectures, not the controls."""
    return [a for a in choices(task) if a.default]


def choices(task: str) -> list[Architecture]:
    """The built-in architectures for a task (text or image classification)."""
    return [a for a in BUILT_IN if OFFLINE_MODELS[a.base].task == task and OFFLINE_MODELS[a.base].installed()]


def hub_architecture(model_id: str) -> Architecture:
    """Any hub id or local folder, used as it loads (a network is needed for hub ids)."""
    return Architecture(model_id, f"{model_id} (as published)", model_id, _as_is)


@labs.job
def compare_architectures(architectures: list[Architecture], dataset_id: str, budget: Budget = Budget(),
                          measure_config: MeasureConfig = MeasureConfig(memory=False),
                          progress: Progress = no_progress) -> list[dict[str, Any]]:
    """Build, train with the budget (within the operator's limits), and measure each architecture; one row each."""
    ranges.check(budget, "architectures")  # before any slow work
    budget = limits.capped(budget)
    dataset = load_dataset(DatasetSpec(dataset_id))
    task = kinds.for_inputs(dataset.modality).ID
    rows, first = [], None
    for n, architecture in enumerate(architectures):
        span = scaled(progress, n / len(architectures), (n + 1) / len(architectures))
        span(0.0, f"{architecture.id}: building")
        bundle = architecture.build(load_model(ModelSpec(architecture.base), dataset.label_names, task,
                                               dataset.image_size))
        trained, report = _train(bundle, dataset.train, budget, task, scaled(span, 0.0, 0.8))
        # Each later row is timed side by side with the first, so "x faster than the first" holds under load.
        measured = measure(trained, dataset.eval, config=measure_config, progress=scaled(span, 0.8, 1.0), against=first)
        first = first or trained
        family = VISION_FAMILIES.get(trained.meta.get("family"))
        rows.append({"architecture": architecture.id, "description": architecture.description,
                     "multiply_adds": multiply_adds(trained), "train_seconds": report.train_seconds,
                     # fully convolutional: also counted at the resolution it was published at, as quoted
                     "multiply_adds_published": multiply_adds(trained, family.image_size) if family else None,
                     "train_examples": report.train_examples, **measured.figures.to_json(),
                     "x_faster_than_first": measured.paired_ratios.get("latency", 1.0)})
    labs.remember(labs.ARCHITECTURES, [dataset_id], {"budget": asdict(budget), "rows": rows})
    return rows


def _train(bundle: ModelBundle, train: Split, budget: Budget, task: str,
           progress: Progress) -> tuple[ModelBundle, TrainReport]:
    """The budget's training: every weight, or a linear head on the frozen backbone's cached features."""
    if budget.weights == "head":
        config = finetune_head.Config(examples_per_class=budget.examples_per_class)
        model, report, _ = finetune_head.fit_head(bundle, train, config, progress)
        return bundle.derived(model), report
    rate = recipe_rate(budget, task)
    recipe = TrainConfig(epochs=budget.epochs, learning_rate=rate, patience=budget.epochs)
    return train_classifier(bundle, train, recipe, progress, examples_per_class=budget.examples_per_class)


def latest(dataset_id: str) -> tuple[Budget, list[dict[str, Any]]] | None:
    """The budget and rows of the last comparison on this dataset; None if there was none."""
    kept = labs.recall(labs.ARCHITECTURES, [dataset_id])
    return (Budget(**kept["budget"]), kept["rows"]) if kept else None


def multiply_adds(bundle: ModelBundle, image_size: int | None = None) -> int:
    """Multiply-adds of one forward pass at batch 1 (torch's FLOP counter / 2) on its kind's counting input (text
    at TEXT_TOKENS tokens, images as the bundle preprocesses them), or at `image_size` px (fully convolutional
    models)."""
    if image_size:
        features = {"pixel_values": torch.zeros(1, 3, image_size, image_size)}
    else:
        features = bundle.preprocess(kinds.get(bundle.task).counting_input())
    counter = FlopCounterMode(display=False)
    # The math attention kernel is made of matmuls the counter sees; the fused CPU kernel is invisible to it.
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), counter:
        bundle.model.eval()(**features)
    if counter.get_total_flops() == 0:
        raise MicrobudgetError(f"Could not count the operations of {bundle.name}.",
                               "Its layers are not standard torch ones.")
    return counter.get_total_flops() // 2
