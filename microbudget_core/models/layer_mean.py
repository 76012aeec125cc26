"""A BERT (or MPNet) classifier whose head reads every layer's mean-pooled token vectors, not the [CLS] pooler.

Sentence encoders such as all-MiniLM-L6-v2 are trained to be read by mean pooling, and their last
layer is tuned for sentence similarity, which keeps less of what a task like sentiment needs than the
middle layers do. Linear probes on frozen MiniLM-L6, rotten-tomatoes (1,000 eval snippets): BERT's
pooler 0.72, last layer mean-pooled 0.73, layer 5 mean-pooled 0.78, all seven (embeddings + 6 layers)
concatenated 0.79. transformers has no such head; these are BertForSequenceClassification (and MPNet's) with
another sentence vector, and the same parameter names (`bert`, `classifier`) so every technique finds its parts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel, MPNetConfig, MPNetModel, MPNetPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .pooling import POOLING, mean_pooled



class _LayerMeanHead:
    """The shared part: encoder -> mean of the tokens of each hidden state, concatenated -> dropout -> Linear."""

    def _add_head(self, config: Any, encoder: nn.Module) -> None:
        config.classifier_pooling = POOLING
        self.num_labels = config.num_labels
        setattr(self, self.base_model_prefix, encoder)  # `bert`, `mpnet`: the names transformers' classes use
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size * (config.num_hidden_layers + 1), config.num_labels)
        self.post_init()

    @classmethod
    def from_config(cls, config: Any) -> Any:
        """As the Auto classes spell it, so callers build either the same way."""
        return cls._from_config(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **_: Any) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        segments = {} if token_type_ids is None else {"token_type_ids": token_type_ids}  # MPNet has none
        hidden_states = self.base_model(input_ids, attention_mask=attention_mask, output_hidden_states=True,
                                        **segments).hidden_states
        sentence = mean_pooled(hidden_states, attention_mask).flatten(1)
        # The hidden states go out too: distillation can match a student's layers to these.
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(sentence)), hidden_states=hidden_states)


class LayerMeanBertForSequenceClassification(_LayerMeanHead, BertPreTrainedModel):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self._add_head(config, BertModel(config, add_pooling_layer=False))


class LayerMeanMPNetForSequenceClassification(_LayerMeanHead, MPNetPreTrainedModel):
    def __init__(self, config: MPNetConfig):
        super().__init__(config)
        self._add_head(config, MPNetModel(config, add_pooling_layer=False))


CLASSES = {"bert": LayerMeanBertForSequenceClassification, "mpnet": LayerMeanMPNetForSequenceClassification}
