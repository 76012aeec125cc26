"""SetFit-style few-shot learning: contrastive tuning of the sentence encoder on example pairs, then a head.

The SetFit recipe (Tunstall et al., 2022): pairs of examples of the same class are pulled together and
pairs of different classes pushed apart (cosine similarity regressed to 1 or 0), so a handful of examples
per class shape the encoder's sentence vectors; a linear head is then trained on the tuned vectors.

Why by hand and not the `setfit` library (it installs with our pins): SetFit's model is a
sentence-transformers encoder with mean pooling plus a scikit-learn head, not a transformers classifier,
so its result could not be measured, exported to ONNX or quantized like every other run here. The recipe
is short; here it tunes the classifier's own sentence vector (the input of its head: for BERT encoders
every layer's mean-pooled tokens, see models/layer_mean.py).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import devices
from ..data import Dataset, Split
from ..support.errors import MicrobudgetError
from ..models import TEXT, ModelBundle
from ..models.anatomy import head_inputs, head_name, under
from ..support.progress import Progress, no_progress, scaled
from ..runtimes import PYTORCH
from ..training import split_for_training
from . import _finetune, applies_to
from .finetune_head import train_head

ID = "setfit-style"
DESCRIPTION = "Transfer learning, few-shot (text): the encoder tuned on same/different-class pairs, then a head"
TRAINS = True  # under `accelerate launch`, every process runs it and trains its share


@dataclass(frozen=True)
class Config:
    # the few-shot budget (0: all, with pairs capped by max_pairs)
    examples_per_class: int = field(default=8, metadata={"min": 0})
    # SetFit's num_iterations: one same-class and one other-class pair per example each
    pair_iterations: int = field(default=20, metadata={"min": 1})
    max_pairs: int = field(default=2560, metadata={"min": 1})  # a cap for large budgets: 160 steps of 16 pairs
    body_learning_rate: float = field(default=2e-5, metadata={"above": 0, "max": 1})  # SetFit's default for the encoder
    batch_size: int = field(default=16, metadata={"min": 1})  # pairs per step
    epochs: int = field(default=20, metadata={"min": 1})  # the head's, on the tuned encoder's features
    learning_rate: float = field(default=3e-3, metadata={"min": 0, "max": 1})  # the head's (0: the baseline recipe's)
    patience: int = field(default=10, metadata={"min": 1})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_pairs < self.batch_size:
            raise MicrobudgetError(f"Setting setfit-style.max_pairs={self.max_pairs} is below batch_size "
                                   f"({self.batch_size}).", "Raise max_pairs or lower batch_size.")


@applies_to(ID, (TEXT,), (PYTORCH,), instead="For images use finetune-head or finetune-last-n.")
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    start = _finetune.pretrained(ID, bundle, config, dataset)
    model = copy.deepcopy(start.model)  # load_model's cached original stays as it is
    head = head_name(model, len(start.labels))
    rate = _finetune.recipe_rate(config, start.task)
    train = dataset.train
    # The same budget and validation rows every strategy uses, found as indices into the train split.
    fit, validation = split_for_training(Split(list(range(len(train))), train.labels),
                                         _finetune.recipe(config, rate), config.examples_per_class)
    started = time.perf_counter()
    pairs = sentence_pairs(fit.labels, config.pair_iterations, config.max_pairs, config.seed)
    pair_loss = _tune_encoder(model, head, start.preprocess, [train.inputs[i] for i in fit.inputs], pairs, config,
                              scaled(progress, 0.0, 0.6))
    # Features of the tuned encoder for the rows the head's training reads; the rest (never read) stay zero.
    features = np.zeros((len(train), model.get_submodule(head).in_features), dtype=np.float32)
    needed = fit.inputs + validation.inputs
    features[needed] = head_inputs(model, head, start.preprocess, [train.inputs[i] for i in needed],
                                   progress=scaled(progress, 0.6, 0.7))
    encoder_seconds = time.perf_counter() - started
    trained_head, report = train_head(start, model.get_submodule(head), Split(list(features), train.labels),
                                      config, scaled(progress, 0.7, 1.0))
    model.set_submodule(head, trained_head)
    report.train_seconds += encoder_seconds
    report.trainable_params += sum(p.numel() for name, p in model.named_parameters() if not under(name, head))
    note = (f"SetFit-style: the encoder tuned on {len(pairs):,} pairs of {len(fit):,} examples "
            f"(learning rate {config.body_learning_rate:g}, final pair loss {pair_loss:.3f}), then a linear head "
            f"on its features: {_finetune.trainable(report, model)}.")
    return _finetune.result(start, model, report, note, details={"pairs": len(pairs), "pair_loss": pair_loss,
                                                                 "encoder_seconds": encoder_seconds})


def sentence_pairs(labels: np.ndarray, iterations: int, max_pairs: int, seed: int) -> np.ndarray:
    """Rows (i, j, same): per iteration, each example with a random same-class and a random other-class partner.

    A class with one example pairs with itself (SetFit does too); the rows are shuffled, then capped.
    """
    generator = np.random.default_rng(seed)
    members = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
    others = {label: np.flatnonzero(labels != label) for label in members}
    rows = []
    for _ in range(iterations):
        for i, label in enumerate(labels):
            rows.append((i, generator.choice(members[label]), 1))
            rows.append((i, generator.choice(others[label]), 0))
    pairs = np.array(rows, dtype=np.int64)
    return pairs[generator.permutation(len(pairs))][:max_pairs]


def _tune_encoder(model: nn.Module, head: str, preprocess, texts: list[str], pairs: np.ndarray, config: Config,
                  progress: Progress) -> float:
    """One pass over the pairs: cosine similarity of the two sentence vectors regressed to 1 (same) or 0."""
    vectors: list[torch.Tensor] = []
    hook = model.get_submodule(head).register_forward_pre_hook(lambda _, args: vectors.append(args[0].float()))
    head_weights = list(model.get_submodule(head).parameters())
    for weight in head_weights:  # untouched here; frozen so that several processes expect no gradient for them
        weight.requires_grad_(False)
    parameters = [p for name, p in model.named_parameters() if not under(name, head)]
    optimizer = torch.optim.AdamW(parameters, lr=config.body_learning_rate)
    steps = -(-len(pairs) // config.batch_size)
    warmup = max(1, steps // 10)  # SetFit's 10% warm-up, then linear decay
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))))
    torch.manual_seed(config.seed)
    accelerator = devices.accelerator()  # the device, precision and processes of every training here
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    preprocess = devices.sending(preprocess, accelerator.device)
    losses = []
    try:
        # Dropout off: with a few examples its noise swamped the pair targets (MiniLM-L6, rotten-tomatoes,
        # 32 per class: 0.573 eval accuracy without dropout, 0.539 with; a tiny BERT learned nothing with it).
        model.eval()
        for step in range(steps):
            batch = devices.share(pairs[step * config.batch_size:(step + 1) * config.batch_size])
            with accelerator.accumulate(wrapped):
                vectors.clear()
                wrapped(**preprocess([texts[i] for i in batch[:, 0]] + [texts[j] for j in batch[:, 1]]))
                first, second = vectors[0].split(len(batch))
                similarity = torch.nn.functional.cosine_similarity(first, second)
                loss = torch.nn.functional.mse_loss(similarity, torch.as_tensor(batch[:, 2], dtype=similarity.dtype,
                                                                                device=similarity.device))
                devices.update(accelerator, loss, optimizer, schedule)
            losses.append(loss.item())
            progress((step + 1) / steps, f"Tuning the encoder on pairs: step {step + 1}/{steps}, "
                                         f"loss {np.mean(losses[-20:]):.3f}")
    finally:
        hook.remove()
        for weight in head_weights:
            weight.requires_grad_(True)
        devices.release(accelerator, wrapped)
    return float(np.mean(losses[-20:]))
