"""Smaller members of the bundled families, built in the project: fewer layers of a BERT, a narrower MobileNetV2."""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from ..errors import MicrobudgetError
from .bundle import ModelBundle
from .vision import MobileNetV2


def keep_layers(bundle: ModelBundle, layers: list[int]) -> ModelBundle:
    """A copy of a BERT classifier with only the encoder layers at `layers` (0-based, in order).

    The kept layers keep their pretrained weights (the DistilBERT recipe's initialisation). A layer-mean
    head reads one slice per hidden state; it keeps the slices of the embeddings and of the kept layers.
    """
    from .layer_mean import uses_layer_mean

    config = getattr(bundle.model, "config", None)
    total = getattr(config, "num_hidden_layers", 0)
    if not hasattr(getattr(bundle.model, "bert", None), "encoder"):
        raise MicrobudgetError(f"Keeping layers needs a BERT-family text model; {bundle.name} is not one.",
                               "Pick minilm-l6 or another BERT encoder.")
    if not layers or sorted(set(layers)) != list(layers) or layers[0] < 0 or layers[-1] >= total:
        raise MicrobudgetError(f"Cannot keep layers {layers} of a {total}-layer model.",
                               f"Give distinct layer numbers from 0 to {total - 1}, in order.")
    model = copy.deepcopy(bundle.model)
    model.bert.encoder.layer = nn.ModuleList(model.bert.encoder.layer[i] for i in layers)
    model.config = copy.deepcopy(config)  # the original's config is shared; never edit it
    model.config.num_hidden_layers = len(layers)
    if uses_layer_mean(config):
        hidden = config.hidden_size
        states = [0] + [i + 1 for i in layers]  # hidden state 0 is the embeddings' output
        old = model.classifier
        model.classifier = nn.Linear(hidden * len(states), old.out_features)
        with torch.no_grad():
            model.classifier.weight.copy_(torch.cat([old.weight[:, s * hidden:(s + 1) * hidden] for s in states], 1))
            model.classifier.bias.copy_(old.bias)
    return replace(bundle, model=model.eval(), meta=dict(bundle.meta), name=f"{bundle.name} layers {layers}")


def narrow_mobilenet(bundle: ModelBundle, width: float, seed: int = 0) -> ModelBundle:
    """A MobileNetV2 at `width` times the channels, randomly initialised: no narrower ImageNet weights ship offline."""
    if bundle.meta.get("family") != "mobilenet-v2":
        raise MicrobudgetError(f"A narrower width needs a MobileNetV2; {bundle.name} is not one.",
                               "Pick mobilenet-v2.")
    if not 0.1 <= width <= 1.0:
        raise MicrobudgetError(f"Width {width} is out of range.", "Give a width from 0.1 to 1.0, e.g. 0.5 or 0.35.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MobileNetV2(num_classes=len(bundle.labels), width_mult=width)
    meta = {**bundle.meta, "width_mult": width}
    return replace(bundle, model=model.eval(), meta=meta, name=f"{bundle.name} x{width:g}", head_trained=False)
