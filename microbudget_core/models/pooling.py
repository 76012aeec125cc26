"""The layer-mean text head's light part: which configs select it, and the pooling it reads (torch only).

Apart from models.layer_mean, whose classes load transformers' modeling code (and torchao's noisy import): what
only asks whether a model uses the head, or pools like it, needs none of that.
"""

from __future__ import annotations

from typing import Any

import torch

POOLING = "layer-mean"  # the config's `classifier_pooling` that selects the head (ModernBERT's key)


def mean_pooled(hidden_states: tuple[torch.Tensor, ...], attention_mask: torch.Tensor) -> torch.Tensor:
    """[batch, states, hidden]: each hidden state's mean over the tokens, padding left out."""
    mask = attention_mask.unsqueeze(-1).to(hidden_states[0].dtype)
    count = mask.sum(dim=1).clamp(min=1)
    return torch.stack([(states * mask).sum(dim=1) / count for states in hidden_states], dim=1)


def uses_layer_mean(config: Any) -> bool:
    """Whether a (saved or fresh) text classifier's config selects the layer-mean head."""
    return getattr(config, "classifier_pooling", None) == POOLING
