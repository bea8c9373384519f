"""2020s ImageNet classifiers: RegNetY-400MF, ConvNeXt-T."""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import ConvBNAct, SqueezeExcite, StochasticDepth, make_divisible, scaled


def regnet_stages(depth: int, w0: float, wa: float, wm: float, group_width: int):
    """The RegNet design rule ("Designing Network Design Spaces", Radosavovic et al., 2020): block j
    gets width u_j = w0 + wa * j, quantized to w0 * wm^round(log(u_j / w0) / log(wm)) and to a multiple of 8;
    consecutive blocks of equal width form a stage. Widths are then made multiples of the group width (bottleneck
    ratio 1). Returns [(width, blocks)] per stage."""
    widths = []
    for j in range(depth):
        s = round(math.log((w0 + wa * j) / w0) / math.log(wm))
        widths.append(int(round(w0 * wm ** s / 8) * 8))
    stages: list[list[int]] = []
    for w in widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    return [(int(round(w / min(group_width, w)) * min(group_width, w)), n) for w, n in stages]


class RegNetYBlock(nn.Module):
    """RegNet's X block with squeeze-excite (the "Y" block): 1x1 conv-BN-ReLU, 3x3 group conv (groups of
    `group_width` channels, the stage's stride)-BN-ReLU, SE squeezing to a quarter of the block's input width,
    1x1 conv-BN; projection shortcut (1x1 conv-BN) when the shape changes; ReLU after the sum."""

    def __init__(self, cin: int, cout: int, stride: int, group_width: int, se_ratio: float = 0.25):
        super().__init__()
        self.body = nn.Sequential(
            ConvBNAct(cin, cout, 1),
            ConvBNAct(cout, cout, 3, stride, groups=cout // group_width),
            SqueezeExcite(cout, int(round(se_ratio * cin))),
            ConvBNAct(cout, cout, 1, act=None),
        )
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else ConvBNAct(cin, cout, 1, stride, act=None)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.shortcut(x) + self.body(x))


class RegNetY(nn.Module):
    """RegNetY: 3x3/2 conv stem to 32, stages of Y blocks each starting with stride 2, global average pool,
    classifier. `width` scales the stage widths, kept multiples of the group width so the group conv divides."""

    def __init__(self, width: float = 1.0, num_classes: int = 1000, depth: int = 16, w0: float = 48,
                 wa: float = 27.89, wm: float = 2.09, group_width: int = 8):
        super().__init__()
        stem = scaled(32, width)
        self.stem = ConvBNAct(3, stem, 3, 2)
        blocks, cin = [], stem
        for w, n in regnet_stages(depth, w0, wa, wm, group_width):
            w = make_divisible(w * width, group_width)
            for i in range(n):
                blocks.append(RegNetYBlock(cin, w, 2 if i == 0 else 1, group_width))
                cin = w
        self.stages = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.stages(self.stem(x))), 1))


def regnet_y_400mf(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """RegNetY-400MF (the paper's published parameters: d=16, w0=48, wa=27.89, wm=2.09, g=8, SE 0.25),
    which gives stages of 48/104/208/440 channels with 1/3/6/6 blocks."""
    return RegNetY(width, num_classes)


class ChannelsLayerNorm(nn.Module):
    """LayerNorm over the channels of an (N, C, H, W) tensor, written as permute to (N, H, W, C) -> nn.LayerNorm(C)
    -> permute back (ConvNeXt's stem and downsampling layers)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block: 7x7 depthwise conv, then in channels-last layout LayerNorm -> Linear to 4C ->
    GELU -> Linear back to C -> layer scale (a learned per-channel factor, initialised to 1e-6), back to
    channels-first, stochastic depth, residual sum."""

    def __init__(self, dim: int, drop_path: float, layer_scale: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))
        self.drop_path = StochasticDepth(drop_path)

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        y = (self.gamma * y).permute(0, 3, 1, 2)
        return x + self.drop_path(y)


class ConvNeXt(nn.Module):
    """"A ConvNet for the 2020s" (Liu et al., 2022): "patchify" stem (4x4/4 conv + LayerNorm), four stages of
    ConvNeXt blocks, between them a LayerNorm + 2x2/2 conv downsampling, then global average pool, LayerNorm and
    classifier. Stochastic depth rises linearly from 0 to `drop_path` over all blocks."""

    def __init__(self, depths, dims, width: float = 1.0, num_classes: int = 1000, drop_path: float = 0.1):
        super().__init__()
        dims = [scaled(d, width, 4) for d in dims]
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), ChannelsLayerNorm(dims[0]))
        rates = [drop_path * i / max(1, sum(depths) - 1) for i in range(sum(depths))]
        stages: list[nn.Module] = []
        for i, (d, n) in enumerate(zip(dims, depths)):
            if i > 0:
                stages += [ChannelsLayerNorm(dims[i - 1]), nn.Conv2d(dims[i - 1], d, 2, 2)]
            stages += [ConvNeXtBlock(d, rates.pop(0)) for _ in range(n)]
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.head(self.norm(x.mean([-2, -1])))


def convnext_tiny(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """ConvNeXt-T: depths 3/3/9/3, channels 96/192/384/768, stochastic depth 0.1."""
    return ConvNeXt([3, 3, 9, 3], [96, 192, 384, 768], width, num_classes)
