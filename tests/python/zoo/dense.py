"""Dense-prediction networks, whose output has the input's spatial size: U-Net and a small DeepLabv3-style net."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBNAct, scaled


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    # U-Net's two 3x3 convolutions, each followed by ReLU (and here BatchNorm)
    return nn.Sequential(ConvBNAct(cin, cout, 3), ConvBNAct(cout, cout, 3))


def _pad_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Zero-pads x (bottom/right first) to ref's H, W: after floor-mode 2x2 pooling of an odd size the up-sampled map
    is one pixel short of its skip connection. The paper crops the skip instead (its convolutions are unpadded)."""
    dh, dw = ref.shape[-2] - x.shape[-2], ref.shape[-1] - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    return F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])


class UpStage(nn.Module):
    """U-Net's expansive step: 2x up-sampling that halves the channels (2x2/2 transposed conv, the paper's
    "up-convolution"; or bilinear up-sampling with align_corners=True followed by a 1x1 conv), concatenation with the
    contracting path's feature map, two 3x3 convolutions."""

    def __init__(self, cin: int, cout: int, bilinear: bool = False):
        super().__init__()
        if bilinear:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                    nn.Conv2d(cin, cout, 1))
        else:
            self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = _double_conv(2 * cout, cout)

    def forward(self, x, skip):
        x = _pad_to(self.up(x), skip)
        return self.conv(torch.cat([skip, x], 1))


class UNet(nn.Module):
    """"U-Net: Convolutional Networks for Biomedical Image Segmentation" (Ronneberger et al., 2015), Figure 1: a
    contracting path of double 3x3 convs and 2x2/2 max pools (64..1024 channels), an expansive path of up-sampling,
    skip concatenation and double convs, and a 1x1 conv to the classes. Unlike the paper the 3x3 convs are padded
    (so the output has the input's size) and followed by BatchNorm; the deepest expansive step up-samples bilinearly
    (align_corners=True) instead of with a transposed conv, as the common "bilinear" U-Net variant does."""

    def __init__(self, width: float = 1.0, num_classes: int = 2, in_channels: int = 1, bilinear_stages: int = 1):
        super().__init__()
        c = [scaled(v, width) for v in (64, 128, 256, 512, 1024)]
        self.inc = _double_conv(in_channels, c[0])
        self.down = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), _double_conv(c[i], c[i + 1])) for i in range(4))
        self.up = nn.ModuleList(UpStage(c[i + 1], c[i], bilinear=(3 - i) < bilinear_stages) for i in reversed(range(4)))
        self.outc = nn.Conv2d(c[0], num_classes, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.outc(x)


def unet(width: float = 1.0, num_classes: int = 2, **kwargs) -> nn.Module:
    return UNet(width, num_classes, **kwargs)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3): parallel 1x1 and dilated 3x3 conv-BN-ReLU branches
    plus an image-level branch (global average pool, 1x1 conv-BN-ReLU, bilinear up-sampling back to the map's size),
    concatenated and projected by a 1x1 conv-BN-ReLU."""

    def __init__(self, cin: int, cout: int, rates=(2, 4)):
        super().__init__()
        self.branches = nn.ModuleList([ConvBNAct(cin, cout, 1)] + [ConvBNAct(cin, cout, 3, dilation=r) for r in rates])
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBNAct(cin, cout, 1))
        self.project = ConvBNAct((len(rates) + 2) * cout, cout, 1)

    def forward(self, x):
        pooled = F.interpolate(self.image_pool(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], 1))


class SegHead(nn.Module):
    """A small semantic-segmentation net after "Rethinking Atrous Convolution for Semantic Image Segmentation"
    (DeepLabv3, Chen et al., 2017): a plain conv-BN-ReLU backbone of output stride 8 (three stride-2 stages, the
    last followed by a dilation-2 conv in place of a fourth downsampling), an ASPP head with rates 2 and 4 (the
    paper's 12/24/36 are for 513x513 crops; these suit the small feature maps here), a 3x3 conv and a 1x1
    classifier, then bilinear up-sampling (align_corners=False) to the input's size."""

    def __init__(self, width: float = 1.0, num_classes: int = 21):
        super().__init__()
        c1, c2, c3 = (scaled(v, width) for v in (64, 128, 256))
        self.backbone = nn.Sequential(
            ConvBNAct(3, c1, 3, 2), ConvBNAct(c1, c1, 3),
            ConvBNAct(c1, c2, 3, 2), ConvBNAct(c2, c2, 3),
            ConvBNAct(c2, c3, 3, 2), ConvBNAct(c3, c3, 3, dilation=2),
        )
        self.aspp = ASPP(c3, c3)
        self.head = nn.Sequential(ConvBNAct(c3, c3, 3), nn.Conv2d(c3, num_classes, 1))

    def forward(self, x):
        y = self.head(self.aspp(self.backbone(x)))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def seg_head(width: float = 1.0, num_classes: int = 21) -> nn.Module:
    return SegHead(width, num_classes)
