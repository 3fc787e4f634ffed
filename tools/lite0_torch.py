"""EfficientNet-Lite0 in PyTorch, keyed like the published checkpoint (`_conv_stem`, `_blocks.N`, `_fc`).

Used only by the offline tools (conversion check, training on an accelerator); nothing at run time imports torch.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# (kernel, stride, expand ratio, output channels, repeats) for the seven stages of EfficientNet-B0/Lite0.
STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def block_specs() -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expand, in, out) of each of the 16 MBConv blocks."""
    specs, channels = [], 32
    for kernel, stride, expand, out, repeats in STAGES:
        for i in range(repeats):
            specs.append((kernel, stride if i == 0 else 1, expand, channels, out))
            channels = out
    return specs


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: the odd extra pixel goes bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int, drop: float = 0.0):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = bn(cout)
        self.residual = stride == 1 and cin == cout
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if self.residual:
            if self.training and self.drop > 0:
                keep = torch.rand(y.shape[0], 1, 1, 1, device=y.device) >= self.drop
                y = y * keep / (1 - self.drop)
            y = y + x
        return y


class Lite0(nn.Module):
    """EfficientNet-Lite0: stem 32, 16 MBConv blocks without squeeze-excitation, ReLU6, head 1280."""

    def __init__(self, classes: int = 1000, dropout: float = 0.2, drop_connect: float = 0.0):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = bn(32)
        specs = block_specs()
        self._blocks = nn.ModuleList(
            MBConv(*spec, drop=drop_connect * i / len(specs)) for i, spec in enumerate(specs))
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1,280-d features from 0-255 RGB input (NCHW)."""
        x = (x - 127.0) / 128.0
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))
