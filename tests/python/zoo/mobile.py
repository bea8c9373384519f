"""Mobile-sized ImageNet classifiers: MobileNetV2, MobileNetV3-Small, EfficientNet-B0, ShuffleNetV2."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBNAct, InvertedResidual, make_divisible


def _classify(cin: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes))


def mobilenet_v2(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """"MobileNetV2: Inverted Residuals and Linear Bottlenecks" (Sandler et al., 2018), Table 2: 3x3/2 conv to 32,
    seven stages of inverted residual blocks (expansion t, channels c, repeats n, first stride s), 1x1 conv to 1280,
    global average pool, dropout 0.2, classifier. ReLU6 everywhere except the linear bottleneck projections. The
    width multiplier scales every layer (to multiples of 8) except the final 1280, which it only ever enlarges."""
    d = lambda c: make_divisible(c * width, 8)  # noqa: E731
    cin = d(32)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2, act=nn.ReLU6)]
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            layers.append(InvertedResidual(cin, d(c), 3, s if i == 0 else 1, int(round(cin * t)), act=nn.ReLU6))
            cin = d(c)
    last = make_divisible(1280 * max(1.0, width), 8)
    layers.append(ConvBNAct(cin, last, 1, act=nn.ReLU6))
    return nn.Sequential(nn.Sequential(*layers), _classify(last, num_classes, 0.2))


def mobilenet_v3_small(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """"Searching for MobileNetV3" (Howard et al., 2019), MobileNetV3-Small (Table 2): 3x3/2 conv to 16 (hardswish),
    eleven inverted residual blocks (kernel, expanded, out, SE, ReLU/hardswish, stride), 1x1 conv to 576
    (hardswish), global average pool, 1x1 "conv" (a Linear on the pooled vector) to 1024 with hardswish, dropout
    0.2, classifier. Squeeze-excite squeezes to a quarter of the expanded channels (rounded to 8) with ReLU inside
    and a hard sigmoid gate. The 576 conv has no SE, as in the authors' reference model (whose count the published
    2.54M is)."""
    d = lambda c: make_divisible(c * width, 8)  # noqa: E731
    hs, re = nn.Hardswish, nn.ReLU
    cin = d(16)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2, act=hs)]
    for k, exp, out, se, act, s in [
        (3, 16, 16, True, re, 2), (3, 72, 24, False, re, 2), (3, 88, 24, False, re, 1),
        (5, 96, 40, True, hs, 2), (5, 240, 40, True, hs, 1), (5, 240, 40, True, hs, 1),
        (5, 120, 48, True, hs, 1), (5, 144, 48, True, hs, 1), (5, 288, 96, True, hs, 2),
        (5, 576, 96, True, hs, 1), (5, 576, 96, True, hs, 1),
    ]:
        e = d(exp)
        se_channels = make_divisible(e // 4, 8) if se else 0
        layers.append(InvertedResidual(cin, d(out), k, s, e, act=act, se_channels=se_channels, se_act=nn.ReLU,
                                       se_gate=nn.Hardsigmoid))
        cin = d(out)
    layers.append(ConvBNAct(cin, 6 * cin, 1, act=hs))
    last = d(1024)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6 * cin, last), nn.Hardswish(),
                         nn.Dropout(0.2), nn.Linear(last, num_classes))
    return nn.Sequential(nn.Sequential(*layers), head)


def efficientnet_b0(width: float = 1.0, num_classes: int = 1000, drop_path: float = 0.2) -> nn.Module:
    """"EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks" (Tan & Le, 2019), B0 (Table 1):
    3x3/2 conv to 32, seven stages of MBConv blocks (expansion, kernel, first stride, out channels, repeats) with
    squeeze-excite (squeezing to a quarter of the block's input channels) and SiLU ("swish"), 1x1 conv to 4x the
    last stage's channels, global average pool, dropout 0.2, classifier. Residual branches use stochastic depth
    whose drop probability rises linearly from 0 to `drop_path` over the blocks. BatchNorm eps 1e-3, as in the
    reference TensorFlow model."""
    d = lambda c: make_divisible(c * width, 8)  # noqa: E731
    config = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
    total = sum(n for *_, n in config)
    cin = d(32)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2, act=nn.SiLU, bn_eps=1e-3)]
    index = 0
    for t, k, s, c, n in config:
        for i in range(n):
            layers.append(InvertedResidual(cin, d(c), k, s if i == 0 else 1, cin * t, act=nn.SiLU,
                                           se_channels=max(1, cin // 4), se_act=nn.SiLU, se_gate=nn.Sigmoid,
                                           drop_path=drop_path * index / total, bn_eps=1e-3))
            cin, index = d(c), index + 1
    layers.append(ConvBNAct(cin, 4 * cin, 1, act=nn.SiLU, bn_eps=1e-3))
    return nn.Sequential(nn.Sequential(*layers), _classify(4 * cin, num_classes, 0.2))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (N, g*c, H, W) -> (N, g, c, H, W) -> swap g and c -> (N, c*g, H, W), so that
    channel i*g + j of the output is channel j*c + i of the input."""
    n, ch, h, w = x.shape
    x = x.view(n, groups, ch // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, ch, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit (Figure 3c/d). Stride 1: channel split in two halves (x.chunk), one kept as is, the other
    through 1x1 conv-BN-ReLU, 3x3 depthwise conv-BN, 1x1 conv-BN-ReLU; stride 2: no split, both branches see the whole
    input, the left one a 3x3/2 depthwise conv-BN and 1x1 conv-BN-ReLU. Then concat and channel shuffle (2 groups)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(ConvBNAct(cin, cin, 3, stride, groups=cin, act=None),
                                         ConvBNAct(cin, half, 1))
        b2_in = cin if stride > 1 else half
        self.branch2 = nn.Sequential(ConvBNAct(b2_in, half, 1), ConvBNAct(half, half, 3, stride, groups=half, act=None),
                                     ConvBNAct(half, half, 1))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat([x1, self.branch2(x2)], 1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """"ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design" (Ma et al., 2018), Table 5: 3x3/2
    conv to 24, 3x3/2 max pool, stages of 4/8/4 units (the first with stride 2), 1x1 conv to 1024 (2048 at 2x),
    global average pool (x.mean over H, W), classifier. Stage channels are Table 5's for 0.5x/1x/1.5x/2x and
    116 * width (a multiple of 4, so both halves of every split are even) for any other width."""

    TABLE5 = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024),
              2.0: (244, 488, 976, 2048)}

    def __init__(self, width: float = 1.0, num_classes: int = 1000):
        super().__init__()
        if width in self.TABLE5:
            *stage_channels, last = self.TABLE5[width]
        else:
            c = make_divisible(116 * width, 4)
            stage_channels, last = [c, 2 * c, 4 * c], 1024 if width <= 1.5 else 2048
        self.stem = nn.Sequential(ConvBNAct(3, 24, 3, 2), nn.MaxPool2d(3, 2, padding=1))
        stages, cin = [], 24
        for c, n in zip(stage_channels, (4, 8, 4)):
            stages += [ShuffleUnit(cin, c, 2)] + [ShuffleUnit(c, c, 1) for _ in range(n - 1)]
            cin = c
        self.stages = nn.Sequential(*stages)
        self.conv5 = ConvBNAct(cin, last, 1)
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x):
        x = self.conv5(self.stages(self.stem(x)))
        return self.fc(x.mean([2, 3]))


def shufflenet_v2(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    return ShuffleNetV2(width, num_classes)
