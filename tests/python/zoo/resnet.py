"""Residual and densely connected networks: ResNet-18/50, DenseNet-121."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBNAct, scaled


class BasicBlock(nn.Module):
    """ResNet's two-layer block: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the shortcut, then ReLU."""
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(cin, planes, 3, stride), ConvBNAct(planes, planes, 3, act=None))
        self.shortcut = _shortcut(cin, planes, stride)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet's three-layer bottleneck: 1x1 reduce, 3x3, 1x1 expand (x4), plus the shortcut, then ReLU. The stride
    sits on the 3x3 ("ResNet v1.5", the common re-implementation; the paper's Caffe model strided the first 1x1):
    the parameter count is the same."""
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(ConvBNAct(cin, planes, 1), ConvBNAct(planes, planes, 3, stride),
                                  ConvBNAct(planes, cout, 1, act=None))
        self.shortcut = _shortcut(cin, cout, stride)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    # Identity when the shape is kept, else the paper's projection shortcut (option B): 1x1 conv (stride) + BN.
    return nn.Identity() if stride == 1 and cin == cout else ConvBNAct(cin, cout, 1, stride, act=None)


class ResNet(nn.Module):
    """"Deep Residual Learning for Image Recognition" (He et al., 2016), Table 1: 7x7/2 conv, 3x3/2 max pool, four
    stages of residual blocks at 64/128/256/512 base channels (the first block of stages 2-4 has stride 2), global
    average pool, fully connected classifier."""

    def __init__(self, block, layers, width: float = 1.0, num_classes: int = 1000):
        super().__init__()
        planes = [scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(ConvBNAct(3, planes[0], 7, 2), nn.MaxPool2d(3, 2, padding=1))
        stages, cin = [], planes[0]
        for i, (p, n) in enumerate(zip(planes, layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, p, 2 if i > 0 and j == 0 else 1))
                cin = p * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.avgpool(self.stages(self.stem(x)))
        x = torch.flatten(x, 1)
        return self.fc(x)


def resnet18(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    return ResNet(BasicBlock, [2, 2, 2, 2], width, num_classes)


def resnet50(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    return ResNet(Bottleneck, [3, 4, 6, 3], width, num_classes)


def _bn_relu_conv(cin: int, cout: int, kernel_size: int) -> list[nn.Module]:
    # DenseNet's pre-activation composite function H: BN -> ReLU -> conv (no bias)
    return [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2, bias=False)]


class DenseLayer(nn.Module):
    """A DenseNet-B layer: BN-ReLU-1x1 conv to 4k channels (the bottleneck), BN-ReLU-3x3 conv to k (the growth
    rate) channels, concatenated onto its input: every layer sees the feature maps of all layers before it."""

    def __init__(self, cin: int, growth: int, bn_size: int = 4):
        super().__init__()
        self.body = nn.Sequential(*_bn_relu_conv(cin, bn_size * growth, 1), *_bn_relu_conv(bn_size * growth, growth, 3))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


class DenseNet(nn.Module):
    """"Densely Connected Convolutional Networks" (Huang et al., 2017), DenseNet-BC (Table 1): 7x7/2 conv to 2k
    channels, 3x3/2 max pool, dense blocks joined by transition layers (BN-ReLU-1x1 conv halving the channels --
    compression 0.5 -- then 2x2/2 average pool), a final BN-ReLU, global average pool, fully connected classifier."""

    def __init__(self, blocks, width: float = 1.0, num_classes: int = 1000, growth: int = 32):
        super().__init__()
        k = scaled(growth, width)
        c = 2 * k
        layers: list[nn.Module] = [nn.Conv2d(3, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                   nn.MaxPool2d(3, 2, padding=1)]
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c, k))
                c += k
            if i < len(blocks) - 1:  # transition layer
                layers += [*_bn_relu_conv(c, c // 2, 1), nn.AvgPool2d(2, 2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def densenet121(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    return DenseNet([6, 12, 24, 16], width, num_classes)
