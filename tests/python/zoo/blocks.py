"""Building blocks shared by the zoo's networks (each network is written from its paper; see the model modules).

- make_divisible / scaled: how a width multiplier turns a published channel count into an integer one.
- ConvBNAct: convolution (no bias) -> BatchNorm -> activation, the unit of almost every post-2015 CNN
  ("Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift", Ioffe & Szegedy,
  2015), in 1, 2 or 3 spatial dimensions.
- SqueezeExcite: "Squeeze-and-Excitation Networks" (Hu et al., 2018).
- StochasticDepth: "Deep Networks with Stochastic Depth" (Huang et al., 2016), per-sample residual-branch dropping.
- InvertedResidual: the MBConv block of "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (Sandler et al.,
  2018), with the squeeze-excite and activation choices of MobileNetV3 and EfficientNet.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Act = Callable[[], nn.Module] | None

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Nearest multiple of `divisor` to `value`, at least `min_value` (default: divisor) and never more than 10%
    below `value`: the rounding rule of the MobileNet reference code that the MobileNetV2 paper's width multiplier
    uses (also MobileNetV3, EfficientNet)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def scaled(channels: int, width: float, divisor: int = 1) -> int:
    """A published channel count times the width multiplier, as an integer multiple of `divisor` (>= divisor)."""
    return make_divisible(channels * width, divisor)


class ConvBNAct(nn.Sequential):
    """Conv (bias=False; BatchNorm's shift replaces the bias) -> BatchNorm -> optional activation.
    `padding=None` means "same" for odd kernels: (k - 1) // 2 * dilation."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride=1, groups: int = 1, act: Act = nn.ReLU,
                 dilation: int = 1, padding=None, bn_eps: float = 1e-5, dims: int = 2):
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            _CONV[dims](cin, cout, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False),
            _BN[dims](cout, eps=bn_eps),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze (global average pool) -> 1x1 conv to `squeeze` channels -> act -> 1x1 conv back -> gate, and the
    input is rescaled channel-wise by the gate (Hu et al., 2018)."""

    def __init__(self, channels: int, squeeze: int, act: Callable[[], nn.Module] = nn.ReLU,
                 gate: Callable[[], nn.Module] = nn.Sigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class StochasticDepth(nn.Module):
    """Drops the whole residual branch of a sample with probability p while training, and rescales the kept ones by
    1 / (1 - p) so that evaluation is the identity (Huang et al., 2016)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        p = self.p
        if not self.training or p == 0:
            return x
        keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(1 - p)
        return x * keep / (1 - p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class InvertedResidual(nn.Module):
    """MBConv (Sandler et al., 2018): 1x1 expansion (skipped when expanded == cin) -> depthwise k x k (stride) ->
    optional squeeze-excite on the expanded channels (MobileNetV3, EfficientNet) -> linear 1x1 projection (no
    activation: the "linear bottleneck"); residual connection when stride 1 and cin == cout, optionally through
    stochastic depth (EfficientNet)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, expanded: int, act: Act = nn.ReLU6,
                 se_channels: int = 0, se_act: Callable[[], nn.Module] = nn.ReLU,
                 se_gate: Callable[[], nn.Module] = nn.Sigmoid, drop_path: float = 0.0, bn_eps: float = 1e-5):
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(ConvBNAct(cin, expanded, 1, act=act, bn_eps=bn_eps))
        layers.append(ConvBNAct(expanded, expanded, kernel_size, stride, groups=expanded, act=act, bn_eps=bn_eps))
        if se_channels:
            layers.append(SqueezeExcite(expanded, se_channels, se_act, se_gate))
        layers.append(ConvBNAct(expanded, cout, 1, act=None, bn_eps=bn_eps))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.drop = StochasticDepth(drop_path) if self.residual and drop_path > 0 else nn.Identity()

    def forward(self, x):
        y = self.block(x)
        return x + self.drop(y) if self.residual else y
