"""A zoo of PyTorch CNNs for convbridge's whole-model conversion tests.

Every network is written here from its paper (see each builder's docstring); none is copied from torchvision or
timm, which are not dependencies. Each builder takes a `width` multiplier (scaling channel counts, kept integers
that the grouped/depthwise convolutions divide) and `num_classes`; the defaults are the published sizes, and
tests/python/test_zoo_models.py checks their parameter counts against the published ones.

ZOO[name] is a ZooEntry with two profiles:
- ci: a reduced width (a few 100k parameters or fewer) and small inputs, so a forward takes milliseconds on a CPU;
- full: the published model at its usual input size.
Each profile has two input shapes in PyTorch layout (N, C, *spatial), the second with odd spatial sizes.

build_eval(name, profile, seed) gives the model in eval mode with seeded weights and randomised normalisation
statistics (see randomize_batchnorm), ready for a converter to be compared against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from . import classic, dense, mobile, modern, nd, resnet
from .blocks import ConvBNAct, InvertedResidual, SqueezeExcite, StochasticDepth, make_divisible  # noqa: F401

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ZooEntry:
    name: str
    build: Callable[..., nn.Module]  # build(width=..., num_classes=...) -> nn.Module
    ci: dict  # builder kwargs of the reduced CI profile
    full: dict  # builder kwargs of the published, full-size profile
    ci_inputs: list[Shape]  # two input shapes (N, C, *spatial); the second has odd spatial sizes
    full_inputs: list[Shape]
    moves_channels: bool = False  # True when the net moves data across the channel axis (channel shuffle)
    dense: bool = False  # True when the output is per position: (N, classes, *input spatial) instead of (N, classes)

    def kwargs(self, profile: str) -> dict:
        return {"ci": self.ci, "full": self.full}[profile]

    def inputs(self, profile: str) -> list[Shape]:
        return {"ci": self.ci_inputs, "full": self.full_inputs}[profile]

    def output_shape(self, input_shape: Shape, profile: str = "ci") -> Shape:
        classes = self.kwargs(profile)["num_classes"]
        return (input_shape[0], classes, *input_shape[2:]) if self.dense else (input_shape[0], classes)


_IMAGENET = [(1, 3, 224, 224), (1, 3, 199, 199)]


def _entry(name, build, ci_width, ci_inputs, full_inputs=_IMAGENET, ci_classes=10, full_classes=1000, **kw):
    return ZooEntry(name, build, {"width": ci_width, "num_classes": ci_classes},
                    {"width": 1.0, "num_classes": full_classes}, list(ci_inputs), list(full_inputs), **kw)


_SMALL = [(1, 3, 64, 64), (1, 3, 67, 67)]

ZOO: dict[str, ZooEntry] = {e.name: e for e in [
    _entry("resnet18", resnet.resnet18, 0.125, _SMALL),
    _entry("resnet50", resnet.resnet50, 0.125, _SMALL),
    _entry("mobilenet_v2", mobile.mobilenet_v2, 0.25, _SMALL),
    _entry("mobilenet_v3_small", mobile.mobilenet_v3_small, 0.25, _SMALL),
    _entry("efficientnet_b0", mobile.efficientnet_b0, 0.25, _SMALL),
    # conv1 has no padding and three ceil-mode pools follow: 64 would still work; 96 keeps a 5x5 map at the end
    _entry("squeezenet1_0", classic.squeezenet1_0, 0.25, [(1, 3, 96, 96), (1, 3, 99, 99)]),
    _entry("googlenet", classic.googlenet, 0.125, [(1, 3, 96, 96), (1, 3, 99, 99)]),
    _entry("densenet121", resnet.densenet121, 0.125, _SMALL),
    _entry("shufflenet_v2", mobile.shufflenet_v2, 0.25, _SMALL, moves_channels=True),
    _entry("regnet_y", modern.regnet_y_400mf, 0.25, _SMALL),
    _entry("vgg11_bn", classic.vgg11_bn, 1 / 32, _SMALL),
    # 11x11/4 conv and three 3x3/2 pools: 128 leaves a 3x3 map, 163 a 4x4 one, both up-pooled to 6x6
    _entry("alexnet", classic.alexnet, 1 / 32, [(1, 3, 128, 128), (1, 3, 163, 163)]),
    _entry("convnext_tiny", modern.convnext_tiny, 0.125, _SMALL),
    _entry("unet", dense.unet, 0.125, [(1, 1, 64, 64), (1, 1, 67, 67)], [(1, 1, 256, 256), (1, 1, 255, 255)],
           ci_classes=2, full_classes=2, dense=True),
    _entry("seg_head", dense.seg_head, 0.125, _SMALL, [(1, 3, 256, 256), (1, 3, 255, 255)],
           ci_classes=5, full_classes=21, dense=True),
    _entry("audio_cnn_1d", nd.audio_cnn_1d, 0.25, [(2, 1, 4000), (1, 1, 3999)], [(1, 1, 32000), (1, 1, 31999)],
           full_classes=10),
    _entry("video_cnn_3d", nd.video_cnn_3d, 1 / 16, [(1, 3, 8, 32, 32), (1, 3, 9, 33, 33)],
           [(1, 3, 16, 112, 112), (1, 3, 15, 111, 111)], full_classes=101),
]}

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def randomize_batchnorm(model: nn.Module, seed: int) -> nn.Module:
    """Gives every BatchNorm non-trivial statistics and affine parameters: running_mean ~ U(-0.5, 0.5),
    running_var ~ U(0.5, 2), weight ~ U(0.5, 1.5) with random signs, bias ~ U(-0.5, 0.5). With PyTorch's defaults
    (mean 0, var 1, weight 1, bias 0) an eval-mode BatchNorm is almost the identity, so a converter that dropped or
    mis-ordered it would still pass. Returns the model."""
    g = torch.Generator().manual_seed(seed)
    u = lambda n, lo, hi: torch.rand(n, generator=g, dtype=torch.float64) * (hi - lo) + lo  # noqa: E731
    for m in model.modules():
        if isinstance(m, _BATCHNORM):
            c = m.num_features
            if m.track_running_stats:
                m.running_mean.copy_(u(c, -0.5, 0.5))
                m.running_var.copy_(u(c, 0.5, 2.0))
            if m.affine:
                sign = torch.where(torch.rand(c, generator=g) < 0.15, -1.0, 1.0).double()
                m.weight.copy_(u(c, 0.5, 1.5) * sign)
                m.bias.copy_(u(c, -0.5, 0.5))
    return model


@torch.no_grad()
def randomize_layer_norm_and_scale(model: nn.Module, seed: int) -> nn.Module:
    """Same idea for LayerNorm's affine parameters and ConvNeXt's layer scale (`gamma`, initialised to 1e-6, which
    would make every ConvNeXt block an identity that a converter could get wrong unnoticed): LayerNorm weight ~
    U(0.5, 1.5), bias ~ U(-0.5, 0.5), layer scale ~ U(0.2, 1)."""
    g = torch.Generator().manual_seed(seed + 1)
    u = lambda n, lo, hi: torch.rand(n, generator=g, dtype=torch.float64) * (hi - lo) + lo  # noqa: E731
    for m in model.modules():
        if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            m.weight.copy_(u(m.weight.shape, 0.5, 1.5))
            if m.bias is not None:
                m.bias.copy_(u(m.bias.shape, -0.5, 0.5))
        if isinstance(m, modern.ConvNeXtBlock):
            m.gamma.copy_(u(m.gamma.shape, 0.2, 1.0))
    return model


_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


@torch.no_grad()
def preserve_signal(model: nn.Module, input_shape: Shape, seed: int) -> nn.Module:
    """Rescales each convolution's and Linear's weight, in forward order, so that its output (without the bias)
    has unit standard deviation on a random normal input: the layer-sequential unit-variance idea of "All you need
    is a good init" (Mishkin & Matas, 2016), done in one eval-mode forward pass whose hooks pass the rescaled
    output on to the next layer.

    Why: with PyTorch's default initialisation every convolution shrinks the signal's variance (about 3x, and a ReLU
    halves it again), so after tens of layers the output of a randomly initialised net is its biases' constant,
    changing by ~1e-7 relative with the input, and a comparison of two frameworks' outputs could not tell a wrong
    layer from a right one. After this every layer's input-dependent part is O(1) and the output depends on the
    input at order 1. Random scalar per layer only: the weights keep their random structure. Returns the model."""
    was_training = model.training
    model.eval()
    done: set[int] = set()

    def hook(module, args, out):
        if id(module) in done:
            return None
        done.add(id(module))
        if module.bias is None:
            bias = torch.zeros(())
        elif isinstance(module, nn.Linear):
            bias = module.bias  # over the last dim
        else:
            bias = module.bias.view(-1, *[1] * (out.dim() - 2))  # over the channel dim
        s = float((out - bias).std())
        if not s > 0:
            return None
        module.weight.div_(s)
        return (out - bias) / s + bias

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _LINEAR)]
    try:
        g = torch.Generator().manual_seed(seed + 2)
        shape = (max(2, input_shape[0]), *input_shape[1:])
        model(torch.randn(shape, generator=g))
    finally:
        for h in handles:
            h.remove()
    return model.train(was_training)


def build(name: str, profile: str = "ci") -> nn.Module:
    entry = ZOO[name]
    return entry.build(**entry.kwargs(profile))


def build_eval(name: str, profile: str = "ci", seed: int = 0, signal: bool = True) -> nn.Module:
    """ZOO[name] in the given profile, in eval mode: weights from torch.manual_seed(seed) (without disturbing the
    caller's RNG), BatchNorm/LayerNorm statistics and affine parameters and ConvNeXt layer scales randomised, then
    (signal=True) the weights rescaled by preserve_signal so the output depends on the input. All deterministic in
    `seed`."""
    entry = ZOO[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(name, profile)
    randomize_batchnorm(model, seed)
    randomize_layer_norm_and_scale(model, seed)
    if signal:
        preserve_signal(model, entry.inputs(profile)[0], seed)
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
