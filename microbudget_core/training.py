"""Supervised training of a classifier bundle: seeded, with validation and early stopping."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np
import torch

from . import devices
from .support import limits
from .support.batching import in_length_order
from .data import Split
from .models import ModelBundle
from .support.progress import Progress, no_progress

# Small budgets get at least this many optimizer steps (their few examples repeated within each epoch), so 8
# examples per class are trained rather than touched. Every strategy and the baseline recipe have the same rule.
MIN_STEPS = 50

# (model being trained, a batch of raw inputs, their labels, their positions in the fit split) -> loss.
# The default is cross-entropy on the labels; distillation passes one that also reads the teacher's logits.
Objective = Callable[[ModelBundle, list[Any], torch.Tensor, np.ndarray], torch.Tensor]


def cross_entropy(bundle: ModelBundle, inputs: list[Any], labels: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
    """The supervised loss: the model's logits against the labels."""
    return torch.nn.functional.cross_entropy(logits_of(bundle, inputs), labels)


def logits_of(bundle: ModelBundle, inputs: list[Any]) -> torch.Tensor:
    """The model's logits for raw inputs, with gradients (unlike ModelBundle.logits)."""
    output = bundle.model(**bundle.preprocess(inputs))
    return getattr(output, "logits", output)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_train_examples: int | None = None  # a budget: the first N of the shuffled train split
    validation_examples: int = 300  # held out from the train split (at most a fifth; never eval)
    freeze_embeddings: bool = False  # text: the 30k x 384 table dominates backward cost on CPU
    patience: int = 1  # epochs without validation gain before stopping
    seed: int = 0


@dataclass
class TrainReport:
    train_seconds: float
    train_examples: int
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: loss, val_accuracy
    trainable_params: int = 0
    examples_per_class: int = 0  # mean over the classes of the examples trained on
    feature_seconds: float = 0.0  # head-only training: computing the frozen features (part of train_seconds)
    hardware: str = ""  # what trained: devices.training_hardware()


def train_classifier(bundle: ModelBundle, train: Split, config: TrainConfig, progress: Progress = no_progress, *,
                     lr_scales: Mapping[str, float] | None = None, examples_per_class: int = 0,
                     min_steps: int = 0, objective: Objective = cross_entropy,
                     validation: Split | None = None) -> tuple[ModelBundle, TrainReport]:
    """Train a copy of `bundle` on `train`; returns the best epoch's model by validation accuracy.

    `lr_scales`: parameter-name prefixes (module names) -> learning-rate multiplier; parameters under
    none of them stay frozen (None: every parameter at the full rate). `examples_per_class` keeps the
    first k of each class after validation is held out, so every budget is judged on the same
    validation examples. `min_steps`: small budgets see their examples several times per epoch, so
    8 examples per class are trained rather than touched. `objective` gives each batch's loss; its
    positions index the fit split: `split_for_training(train, config, examples_per_class)[0]`, or all of
    `train` when `validation` is given (the caller held it out and chose the budget).
    """
    # The operator's limits, here so that every training obeys them: techniques, labs and the baseline recipe.
    config, examples_per_class = limits.capped(config), limits.within("examples_per_class", examples_per_class)
    torch.manual_seed(config.seed)  # the same start in every process
    fit, validation = (train, validation) if validation else split_for_training(train, config, examples_per_class)
    result = bundle.copy(head_trained=True)
    model = result.model
    if config.freeze_embeddings and hasattr(model, "get_input_embeddings"):
        model.get_input_embeddings().requires_grad_(False)
    groups = _parameter_groups(model, lr_scales)
    optimizer = torch.optim.AdamW([{"params": params, "lr": config.learning_rate * scale}
                                   for scale, params in groups.items()], lr=config.learning_rate, weight_decay=0.01)
    batches_per_pass = -(-len(fit) // config.batch_size)
    # Small budgets repeat their examples within an epoch until the run makes min_steps updates.
    passes = max(1, -(-min_steps // (batches_per_pass * config.epochs)))
    batches_per_epoch = batches_per_pass * passes
    accelerator = devices.accelerator()
    total_steps = -(-batches_per_epoch * config.epochs // accelerator.gradient_accumulation_steps)
    # Short linear warm-up, then linear decay: the usual fine-tuning schedule (stepped with the optimizer).
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 10) * max(0.0, 1 - step / total_steps))
    # Accelerate places the model (and, with several processes, wraps it to average their gradients).
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    on_device = replace(result, preprocess=devices.sending(result.preprocess, accelerator.device))
    training = replace(on_device, model=wrapped)  # what the objective calls: gradients flow through the wrapper
    report = TrainReport(train_seconds=0.0, train_examples=len(fit),
                         trainable_params=sum(p.numel() for params in groups.values() for p in params),
                         examples_per_class=round(len(fit) / len(bundle.labels)),
                         hardware=devices.training_hardware())
    best_accuracy, best_state, stale = -1.0, None, 0
    generator = np.random.default_rng(config.seed)  # the same batches in every process; each trains its share
    start = time.perf_counter()
    for epoch in range(config.epochs):
        wrapped.train()
        _keep_frozen_batch_norm_statistics(model)
        losses = []
        epoch_batches = [idx for _ in range(passes) for idx in _batches(fit.inputs, config.batch_size, generator)]
        for batch_index, idx in enumerate(epoch_batches):
            mine = devices.share(idx)
            with accelerator.accumulate(wrapped):
                loss = objective(training, [fit.inputs[i] for i in mine],
                                 torch.as_tensor(fit.labels[mine], device=accelerator.device), mine)
                devices.update(accelerator, loss, optimizer, schedule)
            losses.append(loss.item())
            done = (epoch * batches_per_epoch + batch_index + 1) / (batches_per_epoch * config.epochs)
            progress(done, f"Epoch {epoch + 1}/{config.epochs}, batch {batch_index + 1}/{batches_per_epoch}, "
                           f"loss {np.mean(losses[-20:]):.3f}")
        accuracy = devices.same_everywhere(accuracy_on(on_device, validation))
        report.history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_accuracy": accuracy})
        progress((epoch + 1) / config.epochs, f"Epoch {epoch + 1}: validation accuracy {accuracy:.3f}",
                 **report.history[-1])
        if accuracy > best_accuracy:
            best_accuracy, best_state, stale = accuracy, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    model = devices.release(accelerator, wrapped)  # the result lives on the CPU, where it is measured and saved
    model.load_state_dict(best_state)
    model.eval().requires_grad_(True)
    report.train_seconds = time.perf_counter() - start
    return result, report


def split_for_training(train: Split, config: TrainConfig, examples_per_class: int = 0) -> tuple[Split, Split]:
    """(fit, validation): validation held out from the end of `train` (at most a fifth), the budget from the rest."""
    held_out = min(config.validation_examples, len(train) // 5)
    validation = Split(train.inputs[-held_out:], train.labels[-held_out:])
    fit = train.head(len(train) - len(validation)).head(config.max_train_examples).per_class(examples_per_class)
    return fit, validation


def _parameter_groups(model: torch.nn.Module,
                      lr_scales: Mapping[str, float] | None) -> dict[float, list[torch.nn.Parameter]]:
    """Learning-rate multiplier -> parameters to train at it; parameters left out are frozen here."""
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        scale: float | None = 1.0
        if lr_scales is not None:
            prefixes = [p for p in lr_scales if name == p or name.startswith(f"{p}.")]
            scale = lr_scales[max(prefixes, key=len)] if prefixes else None  # the closest prefix decides
        if scale is None:
            parameter.requires_grad_(False)
        elif parameter.requires_grad:
            groups.setdefault(scale, []).append(parameter)
    return groups


def _keep_frozen_batch_norm_statistics(model: torch.nn.Module) -> None:
    """Frozen BatchNorm layers stay in eval mode: training must not move their running statistics either."""
    for module in model.modules():
        weights = list(module.parameters(recurse=False))
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and weights and not any(
                w.requires_grad for w in weights):
            module.eval()


def _batches(inputs: list[Any], batch_size: int, generator: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches; texts of similar length batched together so little time goes to padding."""
    order = generator.permutation(len(inputs))
    if isinstance(inputs[0], str):
        window = batch_size * 50  # sort within windows: batches stay random across the epoch
        order = np.concatenate([sorted(order[i:i + window], key=lambda j: len(inputs[j]))
                                for i in range(0, len(order), window)])
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in generator.permutation(len(batches))]


def accuracy_on(bundle: ModelBundle, split: Split) -> float:
    """Share of `split` the model classifies right."""
    return float(np.mean(batched_logits(bundle, split.inputs).argmax(axis=-1) == split.labels))


def batched_logits(bundle: ModelBundle, inputs: list[Any], batch_size: int = 64,
                   progress: Progress = no_progress) -> np.ndarray:
    """Logits for many inputs, a batch at a time, in input order (texts of similar length batched together)."""
    return in_length_order(inputs, bundle.logits, batch_size, progress, "Examples")
