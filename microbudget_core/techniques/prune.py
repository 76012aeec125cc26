"""Structured pruning: whole attention heads and feed-forward neurons (text) or conv channels (vision) removed, so
every dense kernel does less work; then the accuracy recovered by distillation from the unpruned model.

Zeroing single weights (prune-unstructured) leaves every matrix its size, and a dense kernel multiplies the zeros
too: no faster. Removing whole rows and columns makes smaller matrices. Torch-Pruning traces which weights depend on
each other (a channel cut from one conv is cut from its BatchNorm, the next conv and the residual branch) and ranks
each group by importance. Recovery is distill's training (techniques/distill.py): the pruned model is the student,
the unpruned one its teacher; `recover=labels` is the hard-label control.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
import torch_pruning as tp
from torch import nn

from .. import kinds
from ..data import Dataset
from ..models import IMAGE, TEXT, ModelBundle, count_params
from ..models.anatomy import head_name
from ..models.pooling import uses_layer_mean
from ..models.pruned import PRUNED_SHAPES, shapes_of
from ..models.variants import trim_vocab
from ..runtimes import PYTORCH
from ..support.errors import MicrobudgetError
from ..support.progress import Progress, no_progress, scaled
from ..training import TrainConfig, split_for_training
from . import applies_to, distill

ID = "prune"
DESCRIPTION = ("Structured pruning: remove attention heads and neurons (text) or channels (vision) for a real "
               "speed-up, then recover the accuracy by distillation from the unpruned model")
TRAINS = True  # under `accelerate launch`, every process runs it and trains its share
IMPORTANCES = {"magnitude": lambda: tp.importance.GroupMagnitudeImportance(p=2),  # L2 norm of each group's weights
               "lamp": lambda: tp.importance.LAMPImportance(p=2),  # magnitude rescaled per layer (Lee et al. 2021)
               "random": tp.importance.RandomImportance}  # the control: does the criterion matter?
SCOPES = ("per-layer", "global")
RECOVERIES = ("distill", "labels", "none")
# (query, key, value, head count) attribute names of the attention modules Torch-Pruning is told about
ATTENTION = (("query", "key", "value", "num_attention_heads"), ("q", "k", "v", "num_attention_heads"))  # BERT, MPNet


@dataclass(frozen=True)
class Config:
    # share of each layer's channels, neurons (and with `heads`, attention heads) removed
    ratio: float = field(default=0.5, metadata={"above": 0, "max": 0.9})
    importance: str = field(default="magnitude", metadata={"choices": tuple(IMPORTANCES)})
    # per-layer: every layer loses `ratio`; global: the least important groups anywhere (vision only: a text model's
    # attention needs one head count for all layers, in its config and in ONNX Runtime's fused attention)
    scope: str = field(default="per-layer", metadata={"choices": SCOPES})
    heads: bool = True  # text: remove whole attention heads too, at the same ratio
    width: bool = False  # text: the hidden width too (every layer's output, the word table): smaller, harder to recover
    # distill: trained on the unpruned model's soft targets and the labels; labels: on the labels alone (the control)
    recover: str = field(default="distill", metadata={"choices": RECOVERIES})
    epochs: int = field(default=2, metadata={"min": 1})
    learning_rate: float = field(default=0.0, metadata={"min": 0, "max": 1})  # 0: distill's rate for the kind
    # labelled budget of the recovery: 0 all, else the first k of each class
    examples_per_class: int = field(default=1000, metadata={"min": 0})
    temperature: float = field(default=2.0, metadata={"above": 0, "max": 100})
    alpha: float = field(default=0.5, metadata={"min": 0, "max": 1})  # weight of the teacher's soft targets
    trim_vocab: bool = False  # text: keep only the word-table rows of tokens the training texts use
    patience: int = field(default=2, metadata={"min": 1})
    seed: int = 0


@applies_to(ID, (TEXT, IMAGE), (PYTORCH,))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    _check(bundle, config, dataset)
    parts = "heads and neurons" if bundle.task == TEXT else "channels"
    progress(0.0, f"Pruning {config.ratio:.0%} of {bundle.name}'s {parts}")
    pruned = _pruned(bundle, config)
    before, after = count_params(bundle.model), count_params(pruned.model)
    details = {"params_before_pruning": before, "params_after_pruning": after, "pruning_ratio": config.ratio,
               **_counts(pruned.model)}
    note = (f"Pruned {config.ratio:.0%} ({config.scope}, {config.importance} importance): "
            f"{before / 1e6:.2f}M -> {after / 1e6:.2f}M parameters; {_describe(details)}.")
    if config.recover == "none":
        return pruned.derived(pruned.model, note=note + " Not recovered.",
                              **{PRUNED_SHAPES: shapes_of(pruned.model)},
                              report={**details, "recovery": "none"})
    _, validation = split_for_training(dataset.train, TrainConfig())
    details["val_accuracy_before_recovery"] = float((pruned.predict(validation.inputs) == validation.labels).mean())
    student = pruned.derived(pruned.model, note=note)
    trim = config.trim_vocab and kinds.get(bundle.task).WORD_EMBEDDINGS
    recovered = distill.teach(bundle, lambda texts: trim_vocab(student, texts) if trim else (student, 0),
                              _recovery(config), dataset, scaled(progress, 0.05, 1.0),
                              # a word table that lost columns (width) must adapt; a whole one stays as pretrained
                              freeze_words=not config.width)
    return recovered.derived(recovered.model, **{PRUNED_SHAPES: shapes_of(recovered.model)},
                             report={**recovered.meta["report"], **details, "recovery": config.recover})


def _check(bundle: ModelBundle, config: Config, dataset: Dataset | None) -> None:
    """Refuse what cannot work before any slow work."""
    if config.recover != "none" and (dataset is None or len(dataset.train) == 0):
        raise MicrobudgetError("prune recovers on a dataset, and none was given.",
                               "Run it with a dataset, or set recover=none.")
    if bundle.meta.get("structure") or any(p.dtype != torch.float32 for p in bundle.model.parameters()):
        raise MicrobudgetError(f"Pruning needs a full-precision PyTorch model; {bundle.name} was quantized.",
                               "Put prune before quantization in the pipeline.")
    if bundle.task == TEXT:
        if config.scope == "global":
            raise MicrobudgetError("Global pruning gives each layer of a text model its own head count, which its "
                                   "config and ONNX Runtime's fused attention cannot hold.", "Use scope=per-layer.")
        if not _attention_modules(bundle.model):
            raise MicrobudgetError(f"Found no BERT- or MPNet-style attention in {bundle.name}.",
                                   "Prune a BERT-family text model (minilm-l6, mpnet-base).")
        if config.heads and any(hasattr(module, "relative_attention_bias") for module in bundle.model.modules()):
            raise MicrobudgetError(f"{bundle.name} shares one relative position bias across every layer's heads, so "
                                   "each layer cannot lose its own heads.", "Set heads=false (neurons only).")
        if config.width and not uses_layer_mean(getattr(bundle.model, "config", None)):
            raise MicrobudgetError(f"Pruning the hidden width of {bundle.name} needs the project's layer-mean head.",
                                   "Set width=false.")


def _recovery(config: Config) -> distill.Config:
    """distill's settings for the recovery: the pruned model is a student built from its teacher's weights."""
    return distill.Config(student="narrow", init="teacher", trim_vocab=config.trim_vocab, hidden_weight=0.0,
                          alpha=config.alpha if config.recover == "distill" else 0.0,
                          temperature=config.temperature, epochs=config.epochs, learning_rate=config.learning_rate,
                          examples_per_class=config.examples_per_class, patience=config.patience, seed=config.seed)


def _pruned(bundle: ModelBundle, config: Config) -> ModelBundle:
    """A pruned copy (the bundle, often the cached baseline, is never touched)."""
    model = copy.deepcopy(bundle.model).eval()
    example = dict(bundle.preprocess(kinds.get(bundle.task).example_inputs()))
    head = model.get_submodule(head_name(model, len(bundle.labels)))
    # The classes stay; conv channels in multiples of 8, which the CPU's vector kernels want (without it, 50% of
    # MobileNetV2 ran 1.3x faster at batch 1, with it 2x)
    options = _text_options(model, head, config) if bundle.task == TEXT else {"ignored_layers": [head], "round_to": 8}
    pruner = tp.pruner.MetaPruner(model, example, importance=IMPORTANCES[config.importance](),
                                  pruning_ratio=config.ratio, global_pruning=config.scope == "global", **options)
    with torch.no_grad():
        pruner.step()
    if bundle.task == TEXT:
        _fit_text_model(model, bundle.model, pruner, config)
    return replace(bundle, model=model, meta=dict(bundle.meta), name=f"{bundle.name} pruned {config.ratio:.0%}")


def _attention_modules(model: nn.Module) -> list[tuple[nn.Module, tuple[str, str, str, str]]]:
    """Each self-attention module with the names of its query, key, value layers and head count."""
    return [(module, names) for module in model.modules() for names in ATTENTION
            if all(isinstance(getattr(module, name, None), nn.Linear) for name in names[:3])
            and hasattr(module, names[3])]


def _text_options(model: nn.Module, head: nn.Module, config: Config) -> dict:
    """MetaPruner's settings for a transformer: heads kept whole, the head and (unless `width`) the hidden width
    untouched."""
    heads = {getattr(module, name): getattr(module, names[3])
             for module, names in _attention_modules(model) for name in names[:3]}
    # The hidden width is every layer's output: the layers writing to it are left alone unless it is pruned.
    writers = [module for name, module in model.named_modules()
               if isinstance(module, nn.Linear) and name.endswith("output.dense")] if not config.width else []
    return {"ignored_layers": [head, *writers], "num_heads": heads, "prune_num_heads": config.heads,
            # at least one head stays in every layer (75% of 2 heads would leave none)
            "prune_head_dims": False, "head_pruning_ratio": min(config.ratio, 1 - 1 / min(heads.values()))
            if config.heads else 0.0,
            # traced from the last hidden state (every layer feeds it): the layer-mean head reads all of them
            # stacked, which Torch-Pruning cannot follow; its columns are cut by hand (_fit_text_model)
            "output_transform": lambda output: output.hidden_states[-1]}


@torch.no_grad()
def _fit_text_model(model: nn.Module, original: nn.Module, pruner: tp.pruner.MetaPruner, config: Config) -> None:
    """The attention modules' head counts, the config and the layer-mean head made to match the pruned weights."""
    for module, (query, _, _, count) in _attention_modules(model):
        setattr(module, count, pruner.num_heads[getattr(module, query)])
        module.all_head_size = getattr(module, query).out_features
        module.attention_head_size = module.all_head_size // getattr(module, count)
    attention, (query, _, _, count) = _attention_modules(model)[0]
    model.config = copy.deepcopy(model.config)  # the original's config is shared; never edit it
    model.config.num_attention_heads = getattr(attention, count)
    model.config.intermediate_size = model.base_model.encoder.layer[0].intermediate.dense.out_features
    if config.width:
        # Which hidden dimensions survived: each kept column of the word table is one of the original's.
        kept = torch.cdist(model.get_input_embeddings().weight.T, original.get_input_embeddings().weight.T).argmin(1)
        head = model.classifier
        weight = head.weight.reshape(head.out_features, -1, original.config.hidden_size)[:, :, kept]
        model.classifier = nn.Linear(weight.shape[1] * weight.shape[2], head.out_features)
        model.classifier.weight.copy_(weight.reshape(head.out_features, -1))
        model.classifier.bias.copy_(head.bias)
        model.config.hidden_size = len(kept)


def _counts(model: nn.Module) -> dict[str, int]:
    """What is left: attention heads and feed-forward neurons of the first layer (text), or conv channels."""
    attention = _attention_modules(model)
    if attention:
        config = model.config
        return {"heads_per_layer": config.num_attention_heads, "ffn_neurons_per_layer": config.intermediate_size,
                "hidden_width": config.hidden_size}
    return {"conv_channels": sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))}


def _describe(details: dict) -> str:
    if "heads_per_layer" in details:
        return (f"{details['heads_per_layer']} heads, {details['ffn_neurons_per_layer']} feed-forward neurons and a "
                f"hidden width of {details['hidden_width']} per layer")
    return f"{details['conv_channels']:,} conv channels in all"
