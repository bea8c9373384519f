"""The pre-BatchNorm-era ImageNet classifiers: AlexNet, VGG-11 (with BatchNorm), SqueezeNet 1.0, GoogLeNet."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBNAct, scaled


def alexnet(width: float = 1.0, num_classes: int = 1000, dropout: float = 0.5) -> nn.Module:
    """AlexNet in its single-tower form of "One weird trick for parallelizing convolutional neural networks"
    (Krizhevsky, 2014): the two-GPU columns of the 2012 paper ("ImageNet Classification with Deep Convolutional
    Neural Networks", Krizhevsky et al., 2012: 96-256-384-384-256 channels, LRN) merged into 64-192-384-256-256
    channels without LRN; the 61.10M-parameter form. Overlapping 3x3/2 max pools; the 6x6 adaptive average pool lets
    any input size reach the 256*6*6 classifier; two 4096-wide dropout-regularised hidden layers."""
    c = [scaled(v, width) for v in (64, 192, 384, 256, 256)]
    hidden = scaled(4096, width)
    return nn.Sequential(
        nn.Conv2d(3, c[0], 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(),
        nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(),
        nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(),
        nn.Dropout(dropout), nn.Linear(c[4] * 6 * 6, hidden), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


class VGG(nn.Module):
    """"Very Deep Convolutional Networks for Large-Scale Image Recognition" (Simonyan & Zisserman, 2015): stacks of
    3x3 convolutions (padding 1) separated by 2x2/2 max pools, then three fully connected layers. The "_bn" variant
    puts BatchNorm (Ioffe & Szegedy, 2015) after every convolution (the convolutions keep their bias)."""

    def __init__(self, config, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                cout = scaled(v, width)
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
                cin = cout
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))  # 224x224 inputs give 7x7 already; other sizes are pooled to it
        hidden = scaled(4096, width)
        self.classifier = nn.Sequential(
            nn.Linear(cin * 7 * 7, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg11_bn(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """Configuration "A" of the VGG paper (11 weight layers) with BatchNorm."""
    return VGG([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"], width, num_classes)


class Fire(nn.Module):
    """SqueezeNet's fire module: a 1x1 "squeeze" convolution to few channels, then parallel 1x1 and 3x3 "expand"
    convolutions whose outputs are concatenated along channels; every conv has a bias and a ReLU."""

    def __init__(self, cin: int, squeeze: int, expand1: int, expand3: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.expand1 = nn.Sequential(nn.Conv2d(squeeze, expand1, 1), nn.ReLU())
        self.expand3 = nn.Sequential(nn.Conv2d(squeeze, expand3, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.expand1(x), self.expand3(x)], 1)


def squeezenet1_0(width: float = 1.0, num_classes: int = 1000) -> nn.Module:
    """"SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size" (Iandola et al., 2016),
    version 1.0 (Table 1): 7x7/2 conv to 96 channels, fire2..fire9 with 3x3/2 max pools (ceil mode, as in the
    original Caffe model) after conv1, fire4 and fire8, dropout 0.5, and a 1x1 conv classifier (conv10) whose ReLU
    output is globally average pooled: there is no fully connected layer."""
    s = lambda v: scaled(v, width)  # noqa: E731
    layers: list[nn.Module] = [nn.Conv2d(3, s(96), 7, stride=2), nn.ReLU()]
    cin = s(96)
    # (squeeze, expand) of fire2..fire9; "M" is a 3x3/2 max pool
    for cfg in ["M", (16, 64), (16, 64), (32, 128), "M", (32, 128), (48, 192), (48, 192), (64, 256), "M", (64, 256)]:
        if cfg == "M":
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            continue
        layers.append(Fire(cin, s(cfg[0]), s(cfg[1]), s(cfg[1])))
        cin = 2 * s(cfg[1])
    layers += [nn.Dropout(0.5), nn.Conv2d(cin, num_classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class Inception(nn.Module):
    """The inception module of GoogLeNet: four parallel branches concatenated along channels -- 1x1; 1x1 reduce ->
    3x3; 1x1 reduce -> 5x5; 3x3/1 max pool -> 1x1 "pool proj"."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, pool_proj, kernel5: int = 5):
        super().__init__()
        conv = lambda i, o, k: ConvBNAct(i, o, k, bn_eps=1e-3)  # noqa: E731
        self.b1 = conv(cin, c1, 1)
        self.b2 = nn.Sequential(conv(cin, c3r, 1), conv(c3r, c3, 3))
        self.b3 = nn.Sequential(conv(cin, c5r, 1), conv(c5r, c5, kernel5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1, ceil_mode=True), conv(cin, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNet(nn.Module):
    """"Going Deeper with Convolutions" (Szegedy et al., 2015), the network of Table 1, with BatchNorm after each
    convolution in place of the paper's two local response normalisations (as in the widely used re-implementations;
    BatchNorm postdates the paper). Max pools are 3x3/2 in ceil mode (Caffe's rounding). The two auxiliary
    classifiers only exist in training and are left out (the model is converted in eval).

    kernel5: the paper's 5x5 convolutions in the third branch (default). kernel5=3 gives the torchvision variant,
    which has 3x3 there (a known discrepancy kept for weight compatibility) and is what its published 6.62M
    parameter count is for; the paper's 5x5 adds 16 * sum(reduce * out) = 380,928 weights.

    transform_input: the torchvision-style input transform, a per-channel scale and shift mapping input normalised
    with the ImageNet mean/std to the (x - 0.5) / 0.5 normalisation the original weights were trained with, written
    with channel slices and torch.cat."""

    # (c1, c3 reduce, c3, c5 reduce, c5, pool proj) of Table 1; "M" is a 3x3/2 max pool.
    CONFIG = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "M",
              (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
              (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128), "M",
              (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]

    def __init__(self, width: float = 1.0, num_classes: int = 1000, transform_input: bool = True,
                 kernel5: int = 5, dropout: float = 0.4):
        super().__init__()
        self.transform_input = transform_input
        s = lambda v: scaled(v, width)  # noqa: E731
        layers: list[nn.Module] = [
            ConvBNAct(3, s(64), 7, 2, bn_eps=1e-3), nn.MaxPool2d(3, 2, ceil_mode=True),
            ConvBNAct(s(64), s(64), 1, bn_eps=1e-3), ConvBNAct(s(64), s(192), 3, bn_eps=1e-3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
        ]
        cin = s(192)
        for cfg in self.CONFIG:
            if cfg == "M":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
                continue
            c1, c3r, c3, c5r, c5, pp = (s(v) for v in cfg)
            layers.append(Inception(cin, c1, c3r, c3, c5r, c5, pp, kernel5))
            cin = c1 + c3 + c5 + pp
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the paper's 7x7/1 average pool at 224x224
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)

    def _transform_input(self, x):
        x0 = x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x1 = x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x2 = x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return torch.cat([x0, x1, x2], 1)

    def forward(self, x):
        if self.transform_input:
            x = self._transform_input(x)
        x = self.avgpool(self.features(x))
        return self.fc(self.dropout(torch.flatten(x, 1)))


def googlenet(width: float = 1.0, num_classes: int = 1000, **kwargs) -> nn.Module:
    return GoogLeNet(width, num_classes, **kwargs)
