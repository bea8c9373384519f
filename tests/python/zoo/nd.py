"""Networks over other than two spatial dimensions: a raw-waveform 1-D CNN and a C3D-style 3-D CNN for video."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBNAct, scaled


class AudioCNN1d(nn.Module):
    """The M5 network of "Very Deep Convolutional Neural Networks for Raw Waveforms" (Dai et al., 2017), Table 1: a
    wide first conv on the raw waveform (kernel 80, stride 4, 128 filters), then kernel-3 convs of 128/256/512
    filters, each conv followed by BatchNorm, ReLU and a 4x max pool; global average pooling over time (x.mean(-1))
    and a linear classifier. Defaults: 10 classes (UrbanSound8k), mono 8 kHz input."""

    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        c = [scaled(v, width) for v in (128, 128, 256, 512)]
        layers: list[nn.Module] = [ConvBNAct(in_channels, c[0], 80, 4, padding=0, dims=1), nn.MaxPool1d(4)]
        for cin, cout in zip(c, c[1:]):
            layers += [ConvBNAct(cin, cout, 3, dims=1), nn.MaxPool1d(4)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c[-1], num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(-1))


def audio_cnn_1d(width: float = 1.0, num_classes: int = 10) -> nn.Module:
    return AudioCNN1d(width, num_classes)


class VideoCNN3d(nn.Module):
    """After C3D, "Learning Spatiotemporal Features with 3D Convolutional Networks" (Tran et al., 2015), Figure 3:
    eight 3x3x3 convolutions (64, 128, 256x2, 512x2, 512x2 filters; stride 1, padding 1) with 3-D max pools, pool1
    1x2x2 (no early temporal pooling) and pool2..pool4 2x2x2. As in the later residual 3-D nets ("A Closer Look at
    Spatiotemporal Convolutions for Action Recognition", Tran et al., 2018) each conv is followed by BatchNorm and
    the pool5/fc6/fc7 head is replaced by global average pooling and one linear classifier. Default 101 classes
    (UCF101); input (N, 3, frames, H, W), e.g. 16 frames of 112x112."""

    def __init__(self, width: float = 1.0, num_classes: int = 101):
        super().__init__()
        s = lambda v: scaled(v, width)  # noqa: E731
        conv = lambda i, o: ConvBNAct(i, o, 3, dims=3)  # noqa: E731
        self.features = nn.Sequential(
            conv(3, s(64)), nn.MaxPool3d((1, 2, 2)),
            conv(s(64), s(128)), nn.MaxPool3d(2),
            conv(s(128), s(256)), conv(s(256), s(256)), nn.MaxPool3d(2),
            conv(s(256), s(512)), conv(s(512), s(512)), nn.MaxPool3d(2),
            conv(s(512), s(512)), conv(s(512), s(512)),
        )
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(s(512), num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def video_cnn_3d(width: float = 1.0, num_classes: int = 101) -> nn.Module:
    return VideoCNN3d(width, num_classes)
