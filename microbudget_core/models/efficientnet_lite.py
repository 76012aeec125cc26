"""EfficientNet-Lite0/1/2 (Tan & Le 2019, the mobile "Lite" variant), defined here: no timm or torchvision.

Lite is EfficientNet made friendly to int8 and mobile accelerators: no squeeze-excite, ReLU6 instead of
swish, stem and head fixed at 32 and 1280 channels. The shipped weights (efficientnet_pytorch's key
layout) were trained in TensorFlow, so convolutions pad the TensorFlow "SAME" way: a stride-2 layer on an
even input pads one more pixel right and below than left and above. The padding is fixed when the network
is built for an input size, as efficientnet_pytorch's static-padding convolutions do, so the graph traces
(FX int8, ONNX) with no shape arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

BN_EPS = 1e-3  # TensorFlow's
BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99, in PyTorch's convention

# kernel, stride, expansion, output channels, repeats (EfficientNet-B0's stages, Table 1 of the paper)
STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
          (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]


@dataclass(frozen=True)
class Scaling:
    """How a Lite variant scales B0: channels, repeats, the input size it was trained at, and dropout."""

    width: float
    depth: float
    image_size: int
    dropout: float


SCALINGS = {"efficientnet-lite0": Scaling(1.0, 1.0, 224, 0.2), "efficientnet-lite1": Scaling(1.0, 1.1, 240, 0.2),
            "efficientnet-lite2": Scaling(1.1, 1.2, 260, 0.3)}


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Channels times `width`, to a multiple of 8, never more than 10% below (efficientnet's round_filters)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) for one spatial side of `size` pixels."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _padded_conv(inp: int, out: int, kernel: int, stride: int, size: int,
                 groups: int = 1) -> tuple[nn.Module, nn.Conv2d]:
    """(padding module, convolution) for TensorFlow SAME padding at input `size`."""
    before, after = _same_padding(size, kernel, stride)
    conv = nn.Conv2d(inp, out, kernel, stride, before if before == after else 0, groups=groups, bias=False)
    pad = nn.Identity() if before == after else nn.ZeroPad2d((before, after, before, after))
    return pad, conv


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Expand (1x1) -> depthwise (k x k) -> project (1x1, linear), with a skip when shapes match; no SE."""

    def __init__(self, inp: int, out: int, kernel: int, stride: int, expansion: int, size: int):
        super().__init__()
        hidden = inp * expansion
        self.use_residual = stride == 1 and inp == out
        self._expand_conv = nn.Conv2d(inp, hidden, 1, bias=False) if expansion != 1 else None
        self._bn0 = _bn(hidden) if expansion != 1 else None
        self._depthwise_pad, self._depthwise_conv = _padded_conv(hidden, hidden, kernel, stride, size, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = nn.Conv2d(hidden, out, 1, bias=False)
        self._bn2 = _bn(out)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self._expand_conv is not None:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(self._depthwise_pad(y))))
        y = self._bn2(self._project_conv(y))
        return x + y if self.use_residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite in efficientnet_pytorch's module names, so its state dicts load with strict=True."""

    def __init__(self, variant: str, num_classes: int = 1000, image_size: int | None = None):
        super().__init__()
        scaling = SCALINGS[variant]
        size = image_size or scaling.image_size
        self._stem_pad, self._conv_stem = _padded_conv(3, 32, 3, 2, size)  # stem fixed at 32 channels (Lite)
        self._bn0 = _bn(32)
        size = math.ceil(size / 2)
        blocks, channels = [], 32
        for n, (kernel, stride, expansion, out, repeats) in enumerate(STAGES):
            out = _round_channels(out, scaling.width)
            # Lite keeps the first and last stages at one block; the others repeat ceil(depth x repeats) times.
            repeats = repeats if n in (0, len(STAGES) - 1) else math.ceil(scaling.depth * repeats)
            for i in range(repeats):
                blocks.append(MBConvBlock(channels, out, kernel, stride if i == 0 else 1, expansion, size))
                size, channels = (math.ceil(size / stride) if i == 0 else size), out
        self._blocks = nn.ModuleList(blocks)
        self.last_channel = 1280  # head fixed at 1280 channels (Lite)
        self._conv_head = nn.Conv2d(channels, self.last_channel, 1, bias=False)
        self._bn1 = _bn(self.last_channel)
        self.act = nn.ReLU6(inplace=True)
        self._dropout = nn.Dropout(scaling.dropout)
        self._fc = nn.Linear(self.last_channel, num_classes)

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Globally pooled features (N x 1280), the input of the classifier."""
        x = self.act(self._bn0(self._conv_stem(self._stem_pad(pixel_values))))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.forward_features(pixel_values)))
