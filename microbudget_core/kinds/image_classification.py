"""Image classification: uint8 RGB arrays in, one of the dataset's labels out; scored by accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import transformers

from .. import data
from ..models.bundle import IMAGE, ModelBundle
from ..models.hf import HubImagePreprocessor, from_pretrained
from ..models.vision import hf_config, is_project_network, preprocessor_of
from ..training import TrainConfig
# The classifiers' shared part of the kind's API.
from ._classification import (GPU_MEASURED, HIGHER_IS_BETTER, PROMPTED_FOR, QUALITY, Figures, Metrics,  # noqa: F401
                              StandardLoader, hf_loader, labelled, onnx_form, quality, quality_ratio, source_config,
                              speed_fields, speed_work)

ID = IMAGE
DESCRIPTION = "image classifier"
DOES = "classifies images"
PICK = "an image model such as mobilenet-v2"
WORD_EMBEDDINGS = False
PIPELINE = "image-classification"  # transformers' pipeline for this kind
OPTIMUM_CLASS = "ORTModelForImageClassification"  # optimum.onnxruntime's class that exports this kind
INPUTS = data.IMAGE_INPUTS
# The Architectures page trains each network's head only by default: the photo sets are small, and the networks'
# pretrained features are what differs.
ARCHITECTURE_WEIGHTS = "head"
# The baseline recipe (a pretrained model's first fine-tune; the rate techniques take when given 0): every weight
# within minutes on 2 CPU cores.
RECIPE = TrainConfig(epochs=2, learning_rate=1e-3, max_train_examples=None)
card_usage = ('import numpy, PIL.Image\n'  # the model card's snippet
              'print([model.labels[i] for i in model.predict([numpy.asarray(PIL.Image.open("your-image.png"))])])')


def example_inputs() -> list[np.ndarray]:
    return [np.zeros((32, 32, 3), dtype=np.uint8)] * 2


def counting_input() -> list[np.ndarray]:
    """One input, as the bundle preprocesses it, for counting multiply-adds."""
    return example_inputs()[:1]


def dynamic_axes(names: list[str]) -> dict[str, dict[int, str]]:
    return {name: {0: "batch"} for name in names}


def recognises(config: Any) -> bool:
    return hasattr(config, "num_channels") or hasattr(config, "image_size")


def hf_model_class(config: Any, fresh_head: bool = False) -> Any:
    return transformers.AutoModelForImageClassification


def hf_preprocessor(source: str) -> HubImagePreprocessor:
    return HubImagePreprocessor(from_pretrained(transformers.AutoImageProcessor, source))


def standard_config(bundle: ModelBundle) -> transformers.PretrainedConfig:
    """The config an exported ONNX graph is loaded with, naming the labels: for the project's own networks, that of
    transformers' class of the same architecture."""
    config = hf_config(bundle.meta) if is_project_network(bundle.meta) else source_config(bundle)
    return labelled(config, bundle.labels)


def standard_preprocessor(bundle: ModelBundle) -> Any:
    """transformers' image processor doing what the app's preprocessing does."""
    if is_project_network(bundle.meta):
        return preprocessor_of(bundle.meta).hf_processor()
    return bundle.preprocess.processor


# How the ecosystem loads an export: Optimum's class, transformers' pipeline (kinds._classification.onnx_form)
STANDARD = StandardLoader(OPTIMUM_CLASS, PIPELINE, "AutoImageProcessor", "image_processor", '"your-image.png"',
                          standard_config, standard_preprocessor)


def take_away(bundle: ModelBundle, folder: Path) -> str:
    """The ONNX form Optimum and transformers' pipeline load, written into the exported `folder`."""
    return onnx_form(bundle, folder, STANDARD)
