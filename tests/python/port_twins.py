"""Hand-written Keras twins of four zoo CNNs, for `convbridge port` (issue 14): a user re-writes an architecture by
hand in Keras and copies trained PyTorch weights into it.

Each twin is written the way a careful Keras user writes it, from the paper, not from the PyTorch code:
- Keras 3 Functional API, channels_last, at a fixed input size (the lint judges padding at that size);
- layer names deliberately unlike the PyTorch module names ("stem_conv", "block3a_conv1", "mb4_dw",
  "block2_conv1", ...), so a matcher cannot rely on them;
- PyTorch's symmetric padding written as ZeroPadding2D(p) + padding="valid", or padding="same" only where TF's
  "same" is symmetric too (stride 1 with an odd kernel; 1x1 kernels at any stride pad nothing);
- BatchNormalization(epsilon=1e-5), PyTorch's default (Keras' default is 1e-3);
- global average pooling + Dense heads, and VGG's Flatten -> Dense on an NHWC tensor: the Dense rows are in
  (H, W, C) order where PyTorch's Linear rows are (C, H, W). Permuting them is port's job, not the twin's.
- the layers are created in the paper's order, which is not always PyTorch's registration order (block3a of the
  ResNet builds its projection shortcut before its two convolutions; PyTorch registers body before shortcut).
  Keras' Functional model.layers then orders them by graph depth, so in every projection block the shortcut's
  conv and BN come between the body's (conv1, bn1, conv2, proj_conv, bn2, proj_bn): neither names nor the order
  of the weighted layers line up with the state_dict's.

Mistake switches give mis-written twins that weights cannot fix, which port's lint must catch:
- same_at_stride2: the stride-2 convolutions use padding="same" without ZeroPadding2D. On an even input TF pads
  0 before / 1 after (the extra row/column goes at the end) where PyTorch pads p on both sides.
- default_eps: every BatchNormalization keeps Keras' default epsilon 1e-3 (PyTorch's twin has 1e-5).
- missing_bias (plain VGG-11 only): True drops the bias of one convolution (block3_conv1); "classifier" drops the
  bias of the last Dense ("predictions"). PyTorch has a bias in both.
build_keras() returns the model and, per mistake, the names of the Keras layers it touched.

The PyTorch twins are the zoo's resnet18, mobilenet_v2 and vgg11_bn at the "ci" profile (tests/python/zoo), and
a plain VGG-11 (no BatchNorm, convolutions with bias) written here from the VGG paper, at the same CI width.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import torch  # noqa: E402
from keras import layers as L  # noqa: E402
from torch import nn  # noqa: E402

import zoo  # noqa: E402
from zoo.blocks import make_divisible, scaled  # noqa: E402

NAMES = ("resnet18", "mobilenet_v2", "vgg11_bn", "vgg11")
TORCH_EPS = 1e-5  # PyTorch's BatchNorm default; Keras' is 1e-3
VGG_A = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]  # configuration "A": 11 weight layers


def ci_kwargs(name: str) -> dict:
    """width and num_classes of the zoo's CI profile (plain VGG-11 uses vgg11_bn's)."""
    return dict(zoo.ZOO["vgg11_bn" if name == "vgg11" else name].ci)


# ---- PyTorch: the plain VGG-11 and the twins ----------------------------------------------------------------


class VGG11(nn.Module):
    """"Very Deep Convolutional Networks for Large-Scale Image Recognition" (Simonyan & Zisserman, 2015),
    configuration A without BatchNorm: eight 3x3 convolutions (stride 1, padding 1, with bias, each followed by a
    ReLU) in five groups separated by 2x2/2 max pools, then three fully connected layers (4096, 4096, classes) with
    ReLU and dropout after the first two. The 7x7 adaptive average pool (224x224 inputs give 7x7 already) lets other
    input sizes reach the 512*7*7 classifier."""

    def __init__(self, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in VGG_A:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(cin, scaled(v, width), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = scaled(v, width)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        hidden = scaled(4096, width)
        self.classifier = nn.Sequential(nn.Linear(cin * 49, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                        nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def build_torch(name: str, seed: int = 0, input_size: int = 64) -> nn.Module:
    """The PyTorch twin in eval mode: the zoo's build_eval (seeded weights, random BatchNorm statistics and affine
    parameters, signal-preserving weight scales) for the zoo models; the plain VGG-11 likewise, with its biases
    drawn from U(-0.2, 0.2) so that a dropped bias shows."""
    if name != "vgg11":
        return zoo.build_eval(name, "ci", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VGG11(**ci_kwargs(name))
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.bias.uniform_(-0.2, 0.2)
    zoo.preserve_signal(model, (1, 3, input_size, input_size), seed)
    return model.eval()


# ---- Keras twins ------------------------------------------------------------------------------------------------


@dataclass
class KerasTwin:
    model: keras.Model
    # mistake switch -> names of the Keras layers it mis-wrote (only the switches that were on)
    touched: dict[str, list[str]] = field(default_factory=dict)


class _Writer:
    """Shared pieces of the four twins; records which layers each mistake touched."""

    def __init__(self, same_at_stride2=False, default_eps=False, missing_bias=False):
        self.same_at_stride2 = bool(same_at_stride2)
        self.default_eps = bool(default_eps)
        self.missing_bias = missing_bias
        self.touched: dict[str, list[str]] = {}

    def touch(self, mistake: str, layer_name: str) -> None:
        self.touched.setdefault(mistake, []).append(layer_name)

    def bn(self, x, name: str):
        if self.default_eps:
            self.touch("default_eps", name)
            return L.BatchNormalization(name=name)(x)  # Keras' default epsilon=1e-3
        return L.BatchNormalization(epsilon=TORCH_EPS, name=name)(x)

    def conv(self, x, filters: int, kernel: int, stride: int, name: str, use_bias: bool = False,
             depthwise: bool = False):
        """A k x k convolution with PyTorch's padding (k - 1) // 2 on every side."""
        pad = (kernel - 1) // 2
        make = ((lambda **kw: L.DepthwiseConv2D(kernel, strides=stride, use_bias=use_bias, name=name, **kw))
                if depthwise else
                (lambda **kw: L.Conv2D(filters, kernel, strides=stride, use_bias=use_bias, name=name, **kw)))
        if stride == 1 or pad == 0:
            # stride 1, odd kernel: TF's "same" pads (k - 1) / 2 on both sides, as PyTorch; a 1x1 kernel pads nothing
            return make(padding="same" if pad else "valid")(x)
        if self.same_at_stride2:
            self.touch("same_at_stride2", name)
            return make(padding="same")(x)  # the mistake: TF pads 0 before / 1 after on even sizes
        x = L.ZeroPadding2D(pad, name=f"{name}_pad")(x)
        return make(padding="valid")(x)


def _resnet18(size: int, w: _Writer) -> keras.Model:
    """ResNet-18 (He et al., 2016, Table 1): 7x7/2 conv 64, 3x3/2 max pool, four stages of two basic blocks (3x3
    conv-BN-ReLU, 3x3 conv-BN, + shortcut, ReLU) at 64/128/256/512 channels, the first block of stages 3-5 strided
    with a 1x1/2 projection shortcut + BN; global average pool, Dense classifier. Stage numbering follows the
    paper's conv2_x..conv5_x: blocks are named block2a..block5b."""
    kw = ci_kwargs("resnet18")
    planes = [scaled(c, kw["width"]) for c in (64, 128, 256, 512)]
    inputs = keras.Input((size, size, 3), name="image")
    x = w.conv(inputs, planes[0], 7, 2, "stem_conv")
    x = w.bn(x, "stem_bn")
    x = L.ReLU(name="stem_relu")(x)
    # PyTorch's MaxPool2d(3, 2, padding=1) pads with -inf. Zero padding is exact here only because the input is a
    # ReLU output (>= 0) and every window holds at least one real value, so a 0 never wins over a real maximum.
    # (MaxPooling2D(padding="same") would pad 0 before / 1 after on even sizes: not PyTorch's window positions.)
    x = L.ZeroPadding2D(1, name="stem_pool_pad")(x)
    x = L.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    cin = planes[0]
    for stage, p in enumerate(planes):
        for j in range(2):
            stride = 2 if stage > 0 and j == 0 else 1
            prefix = f"block{stage + 2}{'ab'[j]}"
            project = stride != 1 or cin != p

            def shortcut(t):
                if not project:
                    return t
                t = w.conv(t, p, 1, stride, f"{prefix}_proj_conv")
                return w.bn(t, f"{prefix}_proj_bn")

            if prefix == "block3a":  # the paper's order in this block: the projection shortcut first
                s = shortcut(x)
            y = w.conv(x, p, 3, stride, f"{prefix}_conv1")
            y = w.bn(y, f"{prefix}_bn1")
            y = L.ReLU(name=f"{prefix}_relu1")(y)
            y = w.conv(y, p, 3, 1, f"{prefix}_conv2")
            y = w.bn(y, f"{prefix}_bn2")
            if prefix != "block3a":
                s = shortcut(x)
            x = L.Add(name=f"{prefix}_add")([y, s])
            x = L.ReLU(name=f"{prefix}_out")(x)
            cin = p
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = L.Dense(kw["num_classes"], name="logits")(x)
    return keras.Model(inputs, outputs, name="resnet18_twin")


def _mobilenet_v2(size: int, w: _Writer) -> keras.Model:
    """MobileNetV2 (Sandler et al., 2018, Table 2): 3x3/2 conv 32, seventeen inverted residual blocks (1x1 expand
    x t + ReLU6 unless t == 1, 3x3 depthwise (stride s) + ReLU6, linear 1x1 projection; identity residual at stride
    1 when the channels agree), 1x1 conv to 1280 + ReLU6, global average pool, dropout, Dense. Channels scaled by
    the width multiplier to multiples of 8; the last 1280 is never reduced. Blocks are named mb1..mb17."""
    kw = ci_kwargs("mobilenet_v2")
    d = lambda c: make_divisible(c * kw["width"], 8)  # noqa: E731
    relu6 = lambda name: L.ReLU(max_value=6.0, name=name)  # noqa: E731
    inputs = keras.Input((size, size, 3), name="image")
    cin = d(32)
    x = w.conv(inputs, cin, 3, 2, "stem_conv")
    x = relu6("stem_relu6")(w.bn(x, "stem_bn"))
    k = 0
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            k += 1
            stride, cout, expanded = (s if i == 0 else 1), d(c), int(round(cin * t))
            y = x
            if expanded != cin:
                y = w.conv(y, expanded, 1, 1, f"mb{k}_expand")
                y = relu6(f"mb{k}_expand_relu6")(w.bn(y, f"mb{k}_expand_bn"))
            y = w.conv(y, expanded, 3, stride, f"mb{k}_dw", depthwise=True)
            y = relu6(f"mb{k}_dw_relu6")(w.bn(y, f"mb{k}_dw_bn"))
            y = w.conv(y, cout, 1, 1, f"mb{k}_project")
            y = w.bn(y, f"mb{k}_project_bn")  # linear bottleneck: no activation
            x = L.Add(name=f"mb{k}_add")([x, y]) if stride == 1 and cin == cout else y
            cin = cout
    last = make_divisible(1280 * max(1.0, kw["width"]), 8)
    x = w.conv(x, last, 1, 1, "head_conv")
    x = relu6("head_relu6")(w.bn(x, "head_bn"))
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    x = L.Dropout(0.2, name="dropout")(x)
    outputs = L.Dense(kw["num_classes"], name="logits")(x)
    return keras.Model(inputs, outputs, name="mobilenet_v2_twin")


def _adaptive_avg_pool_to_7(x, side: int):
    """PyTorch's AdaptiveAvgPool2d((7, 7)) written with Keras layers for the map sizes VGG reaches here.
    Output bin i averages input [floor(i * n / 7), ceil((i + 1) * n / 7)). n = 7: the identity; n = 1: every bin
    is the one value (nearest upsampling by 7); n = 2 (inputs 64..95): the bins are x0, x0, x0, (x0 + x1) / 2, x1,
    x1, x1 per axis, which is nearest upsampling by 4 (x0 x4, x1 x4) then a 2x2 average pool at stride 1."""
    if side == 7:
        return x
    if side == 1:
        return L.UpSampling2D(7, name="avgpool_up")(x)
    if side == 2:
        x = L.UpSampling2D(4, name="avgpool_up")(x)
        return L.AveragePooling2D(2, strides=1, name="avgpool")(x)
    raise NotImplementedError(f"the VGG twin writes the 7x7 adaptive pool for a 1, 2 or 7 map only, not {side}")


def _vgg11(size: int, w: _Writer, batch_norm: bool) -> keras.Model:
    """VGG-11 (Simonyan & Zisserman, 2015, configuration A), optionally with BatchNorm after every convolution
    (the convolutions keep their bias): 3x3 convs (same padding: stride 1, odd kernel) with ReLU, 2x2/2 max pools,
    the 7x7 average pool, Flatten (of an NHWC map: (H, W, C) order), Dense 4096 - 4096 - classes. Layers are named
    like Keras' own VGG: block1_conv1 .. block5_conv2, fc1, fc2, predictions."""
    kw = ci_kwargs("vgg11")
    inputs = keras.Input((size, size, 3), name="image")
    x, side = inputs, size
    block, index = 1, 0
    for v in VGG_A:
        if v == "M":
            x = L.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)  # no padding: floor, as PyTorch
            block, index, side = block + 1, 0, side // 2
            continue
        index += 1
        name = f"block{block}_conv{index}"
        use_bias = True
        if w.missing_bias is True and name == "block3_conv1":
            w.touch("missing_bias", name)
            use_bias = False
        x = w.conv(x, scaled(v, kw["width"]), 3, 1, name, use_bias=use_bias)
        if batch_norm:
            x = w.bn(x, f"block{block}_bn{index}")
        x = L.ReLU(name=f"block{block}_relu{index}")(x)
    x = _adaptive_avg_pool_to_7(x, side)
    x = L.Flatten(name="flatten")(x)  # NHWC: rows of fc1 in (H, W, C) order; PyTorch flattens (C, H, W)
    hidden = scaled(4096, kw["width"])
    x = L.Dense(hidden, activation="relu", name="fc1")(x)
    x = L.Dropout(0.5, name="drop1")(x)
    x = L.Dense(hidden, activation="relu", name="fc2")(x)
    x = L.Dropout(0.5, name="drop2")(x)
    head_bias = True
    if w.missing_bias == "classifier":
        w.touch("missing_bias", "predictions")
        head_bias = False
    outputs = L.Dense(kw["num_classes"], use_bias=head_bias, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"vgg11{'_bn' if batch_norm else ''}_twin")


def build_keras(name: str, input_size: int = 64, *, same_at_stride2: bool = False, default_eps: bool = False,
                missing_bias: bool | str = False) -> KerasTwin:
    """The Keras twin of `name` at a fixed input_size, mis-written by the switches that are on (see the module
    docstring), with the names of the layers each mistake touched."""
    if name not in NAMES:
        raise KeyError(name)
    if missing_bias and name != "vgg11":
        raise ValueError("missing_bias applies to the plain VGG-11 (the others' convolutions have no bias)")
    if missing_bias not in (False, True, "classifier"):
        raise ValueError(f"missing_bias: False, True or 'classifier', not {missing_bias!r}")
    if default_eps and name == "vgg11":
        raise ValueError("default_eps: the plain VGG-11 has no BatchNorm")
    w = _Writer(same_at_stride2, default_eps, missing_bias)
    if name == "resnet18":
        model = _resnet18(input_size, w)
    elif name == "mobilenet_v2":
        model = _mobilenet_v2(input_size, w)
    else:
        model = _vgg11(input_size, w, batch_norm=name == "vgg11_bn")
    for mistake, on in (("same_at_stride2", same_at_stride2), ("default_eps", default_eps),
                        ("missing_bias", missing_bias)):
        if on and not w.touched.get(mistake):
            raise ValueError(f"{mistake} touches no layer of {name} at input {input_size}")
    return KerasTwin(model, w.touched)


def keras_resnet18(input_size: int = 64, **mistakes) -> keras.Model:
    return build_keras("resnet18", input_size, **mistakes).model


def keras_mobilenet_v2(input_size: int = 64, **mistakes) -> keras.Model:
    return build_keras("mobilenet_v2", input_size, **mistakes).model


def keras_vgg11_bn(input_size: int = 64, **mistakes) -> keras.Model:
    return build_keras("vgg11_bn", input_size, **mistakes).model


def keras_vgg11(input_size: int = 64, **mistakes) -> keras.Model:
    return build_keras("vgg11", input_size, **mistakes).model


def mistake_layers(name: str, input_size: int = 64, **mistakes) -> dict[str, list[str]]:
    """{mistake: [Keras layer names]} that the switches touch in the twin of `name`."""
    return build_keras(name, input_size, **mistakes).touched
