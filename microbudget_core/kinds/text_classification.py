"""Text classification: texts in, one of the dataset's labels out; scored by accuracy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import transformers

from .. import data
from ..models.bundle import TEXT, ModelBundle
from ..models.hf import TextPreprocessor, from_pretrained
from ..models.pooling import uses_layer_mean
from ..training import TrainConfig
# The classifiers' shared part of the kind's API.
from ._classification import (GPU_MEASURED, HIGHER_IS_BETTER, PROMPTED_FOR, QUALITY, Figures, Metrics,  # noqa: F401
                              StandardLoader, hf_loader, labelled, onnx_form, quality, quality_ratio, source_config,
                              speed_fields, speed_work)

ID = TEXT
DESCRIPTION = "text classifier"
DOES = "classifies text"
PICK = "a text model such as minilm-l6"
WORD_EMBEDDINGS = True  # its inputs are tokens looked up in a word table (frozen, trimmed by some techniques)
PIPELINE = "text-classification"  # transformers' pipeline for this kind
OPTIMUM_CLASS = "ORTModelForSequenceClassification"  # optimum.onnxruntime's class that exports this kind
INPUTS = data.TEXT_INPUTS
# The baseline recipe (a pretrained model's first fine-tune; the rate techniques take when given 0): every weight
# within minutes on 2 CPU cores. Frozen word embeddings: their gradient and AdamW update cost more than the 6 layers.
RECIPE = TrainConfig(epochs=1, learning_rate=1.5e-4, max_train_examples=None, freeze_embeddings=True)
ARCHITECTURE_WEIGHTS = "all"  # the Architectures page trains every weight of each network by default
FALLBACK = True  # a Hugging Face config that is neither a causal LM nor a vision model is taken for a text model
TOKENS = 64  # multiply-adds of a text model are counted for one input of this many tokens
card_usage = 'print([model.labels[i] for i in model.predict(["your text here"])])'  # the model card's snippet


def example_inputs() -> list[str]:
    """Two texts of different lengths, so an exported graph keeps batch and sequence axes free."""
    return ["a short example", "a longer example sentence, so the batch has padding"]


def counting_input() -> list[str]:
    """One input of TOKENS tokens, for counting multiply-adds."""
    return [" ".join(["word"] * (TOKENS - 2))]  # + [CLS] and [SEP]


def dynamic_axes(names: list[str]) -> dict[str, dict[int, str]]:
    return {name: {0: "batch", 1: "sequence"} for name in names}


def recognises(config: Any) -> bool:
    return True  # the fallback: asked after the other kinds


def hf_model_class(config: Any, fresh_head: bool = False) -> Any:
    """Ours for a BERT or MPNet encoder given a new head, and its saved results (it reads the mean of the layers);
    else Auto's."""
    # Imported here: it loads transformers' modeling code (and torchao's noisy import), which a bad id never needs.
    from ..models.layer_mean import CLASSES

    if config.model_type in CLASSES and (uses_layer_mean(config) or fresh_head):
        return CLASSES[config.model_type]
    return transformers.AutoModelForSequenceClassification


def standard_config(bundle: ModelBundle) -> transformers.PretrainedConfig:
    """The config an exported ONNX graph is loaded with: the model's (or its source's), naming the labels."""
    return labelled(source_config(bundle), bundle.labels)


def standard_preprocessor(bundle: ModelBundle) -> Any:
    """The tokenizer, cutting texts where the app does (a pipeline truncates at model_max_length)."""
    tokenizer = copy.deepcopy(bundle.preprocess.tokenizer)
    tokenizer.model_max_length = bundle.preprocess.max_length
    return tokenizer


def hf_preprocessor(source: str) -> TextPreprocessor:
    return TextPreprocessor(from_pretrained(transformers.AutoTokenizer, source))


# How the ecosystem loads an export: Optimum's class, transformers' pipeline (kinds._classification.onnx_form)
STANDARD = StandardLoader(OPTIMUM_CLASS, PIPELINE, "AutoTokenizer", "tokenizer", '["your text here"], truncation=True',
                          standard_config, standard_preprocessor)


def take_away(bundle: ModelBundle, folder: Path) -> str:
    """The ONNX form Optimum and transformers' pipeline load, written into the exported `folder`."""
    return onnx_form(bundle, folder, STANDARD)
