"""A causal LM answering a classification task: each label's log-likelihood, in any runtime that gives logits.

Shared by the runtimes' `prompted()` (PyTorch) and the llama.cpp model; see models.llm.as_classifier.
"""

from __future__ import annotations

from typing import Any

import torch


class PromptedClassifier(torch.nn.Module):
    """A causal LM read as a classifier: the logit of a label is the log-likelihood of its tokens."""

    def __init__(self, lm: torch.nn.Module, labels: int):
        super().__init__()
        self.lm, self.labels = lm, labels

    @property
    def config(self) -> Any:
        return self.lm.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        hidden = self.lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # The vocabulary projection only where a label token is predicted: it is a fifth of the model's work
        # per position, and the other positions' predictions are never read.
        rows, positions = torch.nonzero(scored[:, 1:], as_tuple=True)
        logits = self.lm.get_output_embeddings()(hidden[rows, positions])
        return label_log_likelihoods(logits, input_ids, rows, positions, self.labels)


def label_log_likelihoods(logits: torch.Tensor, input_ids: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor,
                          labels: int) -> torch.Tensor:
    """Each label's log-likelihood per text, from the logits at the positions that predict a label token."""
    token_scores = torch.log_softmax(logits.float(), dim=-1).gather(-1, input_ids[rows, positions + 1, None])[:, 0]
    per_row = torch.zeros(len(input_ids), dtype=token_scores.dtype).index_add_(0, rows, token_scores)
    return per_row.view(-1, labels)  # one row per text, one log-likelihood per label
