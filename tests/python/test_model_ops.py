"""Whole-model conversion, op by op: differential tests of every graph op against real PyTorch.

Each case is a small nn.Module written here, converted with convbridge.convert(model.eval(), shape) and then
checked independently of convbridge's own per-node verification: the returned keras_model runs on a fresh input
(not the one convert() verified on) moved to channels_last, and its output is compared with the real PyTorch
model's output on the same input, moved to channels_last (rank >= 3: permute (0, 2, ..., 1); rank <= 2 as is).

Criterion: max |keras - torch| / max |torch| <= 1e-4 per output tensor, both in float32 (the PyTorch model as the
user runs it). Weights and norm statistics are randomised (biases, running stats, affine parameters far from their
identity defaults) so a dropped or misplaced parameter is orders of magnitude above the bound.

A case convbridge cannot convert yet stays here, marked xfail(strict=True) with the exact failure: it turns into a
failure (XPASS) the day it is fixed, so the mark must then be removed.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import convbridge  # noqa: E402
from model_support import channels_last, randomize, relative_difference  # noqa: E402

RELATIVE_TOLERANCE = 1e-4


# ---- harness -------------------------------------------------------------------------------------------------


class Fn(nn.Module):
    """forward(*xs) = fn(self, *xs); keyword arguments become submodules (nn.Module) or parameters (tensors)."""

    def __init__(self, fn, **members):
        super().__init__()
        self.fn = fn
        for name, value in members.items():
            if isinstance(value, nn.Module):
                self.add_module(name, value)
            else:
                self.register_parameter(name, nn.Parameter(torch.as_tensor(value, dtype=torch.float32)))

    def forward(self, *xs):
        return self.fn(self, *xs)


def standard_normal(shape, g):
    return torch.randn(*shape, generator=g)


def away_from_zero(shape, g):
    """Magnitudes in [0.5, 1.5] with random signs: a safe divisor."""
    sign = torch.where(torch.rand(*shape, generator=g) < 0.5, -1.0, 1.0)
    return sign * (torch.rand(*shape, generator=g) + 0.5)


def assert_same_structure(got, want, where="output"):
    """got (what keras_model returned) has want's (PyTorch's) nesting, keys and order, and the same numbers."""
    if isinstance(want, torch.Tensor):
        assert not isinstance(got, (tuple, list, dict)), f"{where}: Keras returned a {type(got).__name__}"
        expected = channels_last(want.detach().numpy())
        actual = np.asarray(got)
        assert actual.shape == expected.shape, f"{where}: Keras shape {actual.shape}, PyTorch {expected.shape}"
        assert np.all(np.isfinite(actual)), f"{where}: non-finite values from Keras"
        difference = relative_difference(actual, expected)
        assert difference <= RELATIVE_TOLERANCE, f"{where}: max relative difference {difference:.3g} > 1e-4"
        return
    assert type(got) is type(want), f"{where}: Keras returned a {type(got).__name__}, PyTorch a {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} (Keras) vs {list(want)} (PyTorch)"
        for key in want:
            assert_same_structure(got[key], want[key], f"{where}[{key!r}]")
    else:
        assert len(got) == len(want), f"{where}: {len(got)} entries (Keras) vs {len(want)} (PyTorch)"
        for index, (g, w) in enumerate(zip(got, want)):
            assert_same_structure(g, w, f"{where}[{index}]")


def check(model: nn.Module, input_shape, *, make_input=standard_normal, runtime_transposes=None, seed=7):
    """convert() the model, then compare its keras_model with PyTorch on an input of our own."""
    model = model.eval()
    conversion = convbridge.convert(model, input_shape)
    shapes = input_shape if isinstance(input_shape[0], (tuple, list)) else [input_shape]
    g = torch.Generator().manual_seed(seed)
    xs = [make_input(shape, g) for shape in shapes]
    with torch.no_grad():
        want = model(*xs)
    feeds = [channels_last(x.numpy()) for x in xs]
    got = conversion.keras_model(feeds if len(feeds) > 1 else feeds[0])
    assert_same_structure(got, want)
    if runtime_transposes is not None:
        assert conversion.runtime_transposes == runtime_transposes, conversion.explain()
    return conversion


def case(name, fn, shape, *, marks=(), **options):
    """One parametrized case: fn builds the module (a lambda, so every case gets fresh weights)."""
    return pytest.param(fn, shape, options, id=name, marks=marks)


def xfail(reason, raises):
    return pytest.mark.xfail(strict=True, reason=reason, raises=raises)


def run_case(build, shape, options):
    torch.manual_seed(0)
    check(randomize(build()), shape, **options)


def conv(cin=4, cout=4, k=3, **kw):
    return nn.Conv2d(cin, cout, k, padding=k // 2, **kw)


# Known failures (xfail strict), one reason per cause.
ONE_OUTPUT = ("keras.Model unwraps a 1-element outputs list or tuple (Keras 3.15 Functional): model.py writes "
              "outputs=(y,) as captured, but the Keras model returns an EagerTensor")

S4 = (2, 4, 6, 6)  # N, C, H, W: batch 2 so a batch-axis mix-up shows
SR = (2, 4, 5, 7)  # H != W: a swapped spatial axis shows


# ---- arithmetic ----------------------------------------------------------------------------------------------

ARITHMETIC = [
    # between two activations of the same shape
    case("add_same", lambda: Fn(lambda m, x: m.a(x) + m.b(x), a=conv(), b=conv()), SR),
    case("sub_same", lambda: Fn(lambda m, x: m.a(x) - m.b(x), a=conv(), b=conv()), SR),
    case("mul_same", lambda: Fn(lambda m, x: m.a(x) * m.b(x), a=conv(), b=conv()), SR),
    case("div_same", lambda: Fn(lambda m, x: x / m.b(x).sigmoid().add(0.5), b=conv()), SR),
    case("div_input_by_input", lambda: Fn(lambda m, x, y: x / y), [SR, SR], make_input=away_from_zero),
    case("mul_input_by_itself", lambda: Fn(lambda m, x: x * x), SR),
    # broadcast (N, C, 1, 1) against (N, C, H, W), either side
    case("mul_broadcast_gate_right", lambda: Fn(lambda m, x: m.a(x) * x.mean((2, 3), keepdim=True), a=conv()), SR),
    case("mul_broadcast_gate_left", lambda: Fn(lambda m, x: x.mean((2, 3), keepdim=True) * m.a(x), a=conv()), SR),
    case("add_broadcast_left", lambda: Fn(lambda m, x: x.amax((2, 3), keepdim=True) + x), SR),
    case("sub_broadcast_right", lambda: Fn(lambda m, x: x - x.mean((2, 3), keepdim=True)), SR),
    case("sub_broadcast_left", lambda: Fn(lambda m, x: x.mean((2, 3), keepdim=True) - x), SR),
    case("div_broadcast_right", lambda: Fn(lambda m, x, y: x / y.amax((2, 3), keepdim=True)), [SR, SR],
         make_input=lambda s, g: away_from_zero(s, g).abs()),
    case("div_broadcast_left", lambda: Fn(lambda m, x, y: x.mean((2, 3), keepdim=True) / y), [SR, SR],
         make_input=away_from_zero),
    # broadcast (N, 1, H, W) against (N, C, H, W): a spatial attention map
    case("mul_broadcast_spatial", lambda: Fn(lambda m, x: x * x.mean(1, keepdim=True).sigmoid()), SR),
    # squeeze-excite: (N, C) gate unsqueezed back to (N, C, 1, 1)
    case("squeeze_excite", lambda: Fn(lambda m, x: x * m.fc(x.mean((2, 3))).sigmoid()[:, :, None, None],
                                      fc=nn.Linear(4, 4)), SR),
    # operands in different layouts: one transposed spatially (square input), one flattened
    case("add_mixed_layouts", lambda: Fn(lambda m, x: x + x.transpose(2, 3)), (2, 4, 6, 6), runtime_transposes=1),
    case("mul_permuted_both", lambda: Fn(lambda m, x: x.permute(0, 2, 3, 1) * x.permute(0, 2, 3, 1)), SR,
         runtime_transposes=1),  # returned as (N, H, W, C): its channels_last is (N, W, C, H)
    case("mul_flattened_then_linear", lambda: Fn(lambda m, x: m.fc(x.flatten(1) * 2), fc=nn.Linear(140, 3)), SR),
    # numbers on either side
    case("rsub_number", lambda: Fn(lambda m, x: 1.0 - x), SR),
    case("number_div", lambda: Fn(lambda m, x: 2 / x), SR, make_input=away_from_zero),
    case("mul_number", lambda: Fn(lambda m, x: x * 0.5), SR),
    case("number_mul", lambda: Fn(lambda m, x: 0.5 * x), SR),
    case("add_int", lambda: Fn(lambda m, x: x + 3), SR),
    case("int_add", lambda: Fn(lambda m, x: 3 + x), SR),
    case("sub_number", lambda: Fn(lambda m, x: x - 0.25), SR),
    case("div_number", lambda: Fn(lambda m, x: x / 4.0), SR),
    case("add_alpha_number", lambda: Fn(lambda m, x: torch.add(x, 3, alpha=2)), SR),
    case("sub_alpha_number", lambda: Fn(lambda m, x: torch.sub(x, 1.5, alpha=2)), SR),
    case("number_ops_on_2d", lambda: Fn(lambda m, x: (1.0 - m.fc(x.flatten(1))) * 2 + 1, fc=nn.Linear(4 * 35, 6)),
         SR),
    # parameters: layer scale and learned bias, both sides, each broadcast shape
    case("param_c11_mul_right", lambda: Fn(lambda m, x: x * m.gamma, gamma=torch.ones(4, 1, 1)), SR),
    case("param_c11_mul_left", lambda: Fn(lambda m, x: m.gamma * x, gamma=torch.ones(4, 1, 1)), SR),
    case("param_c11_add_right", lambda: Fn(lambda m, x: x + m.bias, bias=torch.zeros(4, 1, 1)), SR),
    case("param_c11_sub_left", lambda: Fn(lambda m, x: m.bias - x, bias=torch.zeros(4, 1, 1)), SR),
    case("param_c11_div_left", lambda: Fn(lambda m, x: m.gamma / x, gamma=torch.ones(4, 1, 1)), SR,
         make_input=away_from_zero),
    case("param_1c11_mul_right", lambda: Fn(lambda m, x: x * m.gamma, gamma=torch.ones(1, 4, 1, 1)), SR),
    case("param_1c11_add_left", lambda: Fn(lambda m, x: m.bias + x, bias=torch.zeros(1, 4, 1, 1)), SR),
    case("param_1c11_div_right", lambda: Fn(lambda m, x: x / m.gamma, gamma=torch.ones(1, 4, 1, 1)), SR),
    case("param_1c11_sub_right", lambda: Fn(lambda m, x: x - m.bias, bias=torch.zeros(1, 4, 1, 1)), SR),
    # (C,) broadcasts against the last axis: channels_last after a permute (ConvNeXt's layer scale) ...
    case("param_c_layer_scale_permuted",
         lambda: Fn(lambda m, x: (x.permute(0, 2, 3, 1) * m.gamma).permute(0, 3, 1, 2), gamma=torch.ones(4)), SR),
    case("param_c_bias_left_permuted",
         lambda: Fn(lambda m, x: (m.bias + x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), bias=torch.zeros(4)), SR),
    # ... on (N, C) after pooling ...
    case("param_c_on_2d_mul", lambda: Fn(lambda m, x: x.mean((2, 3)) * m.gamma, gamma=torch.ones(4)), SR),
    case("param_c_on_2d_sub_left", lambda: Fn(lambda m, x: m.bias - x.mean((2, 3)), bias=torch.zeros(4)), SR),
    # ... and against W of an NCHW tensor (W == 7 here): plain broadcasting over the width axis
    case("param_w_broadcast_nchw", lambda: Fn(lambda m, x: x * m.gamma + m.bias, gamma=torch.ones(7),
                                              bias=torch.zeros(7)), SR),
]


@pytest.mark.parametrize("build, shape, options", ARITHMETIC)
def test_arithmetic(build, shape, options):
    run_case(build, shape, options)


# ---- concatenation and splitting -----------------------------------------------------------------------------

S5 = (2, 2, 3, 4, 5)
S3 = (2, 4, 9)

CONCAT_SPLIT = [
    case("cat_dim1", lambda: Fn(lambda m, x: torch.cat([x, m.a(x)], 1), a=conv(4, 3)), SR),
    case("cat_dim2", lambda: Fn(lambda m, x: torch.cat([x, x[:, :, :2] * 2], 2)), SR),
    case("cat_dim3", lambda: Fn(lambda m, x: torch.cat([m.a(x), x], 3), a=conv()), SR),
    case("cat_dim_minus1", lambda: Fn(lambda m, x: torch.cat([x, x * 3, x[..., :1]], -1)), SR),
    case("cat_then_conv", lambda: Fn(lambda m, x: m.b(torch.cat([x, m.a(x)], 1)), a=conv(), b=conv(8, 4)), SR),
    # inputs in different layouts (one transposed back and forth, one transposed spatially)
    case("cat_mixed_layouts", lambda: Fn(lambda m, x: torch.cat([x, x.transpose(2, 3)], 1)), (2, 4, 6, 6)),
    case("cat_3d_dim1", lambda: Fn(lambda m, x: torch.cat([x, x * 2], 1)), S3),
    case("cat_3d_dim2", lambda: Fn(lambda m, x: torch.cat([x, x[:, :, 1:4]], 2)), S3),
    case("cat_5d_dim1", lambda: Fn(lambda m, x: torch.cat([x, x * 2], 1)), S5),
    case("cat_5d_dim2", lambda: Fn(lambda m, x: torch.cat([x, x * 2], 2)), S5),
    case("cat_5d_dim4", lambda: Fn(lambda m, x: torch.cat([x, x * 2], 4)), S5),
    case("cat_5d_dim_minus2", lambda: Fn(lambda m, x: torch.cat([x, x * 2], -2)), S5),
    case("cat_2d", lambda: Fn(lambda m, x: torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)), SR),
    case("chunk_2_dim1", lambda: Fn(lambda m, x: x.chunk(2, 1)), SR),
    case("chunk_2_dim1_glu", lambda: Fn(lambda m, x: (lambda a, b: a * b.sigmoid())(*m.a(x).chunk(2, 1)),
                                        a=conv(4, 8)), SR),
    case("chunk_3_dim2", lambda: Fn(lambda m, x: x.chunk(3, 2)), (2, 4, 8, 5)),  # 8 -> 3, 3, 2
    case("split_sizes_dim1", lambda: Fn(lambda m, x: torch.split(x, [2, 3], dim=1)), (2, 5, 4, 6)),
    case("split_sizes_dim1_then_convs",
         lambda: Fn(lambda m, x: (lambda a, b: torch.cat([m.a(a), m.b(b)], 1))(*torch.split(x, [2, 3], dim=1)),
                    a=conv(2, 3), b=conv(3, 2)), (2, 5, 4, 6)),
    case("split_spatial_w", lambda: Fn(lambda m, x: torch.split(x, 3, dim=3)), SR),  # W 7 -> 3, 3, 1
    case("split_spatial_h_sizes", lambda: Fn(lambda m, x: torch.split(x, [1, 4], dim=2)), SR),
    case("split_3d", lambda: Fn(lambda m, x: torch.split(x, [4, 5], dim=-1)), S3),
    case("chunk_5d", lambda: Fn(lambda m, x: x.chunk(2, 2)), (2, 2, 4, 3, 3)),
    case("chunk_one_piece_used", lambda: Fn(lambda m, x: x.chunk(2, 1)[1] * 2), SR),
]


@pytest.mark.parametrize("build, shape, options", CONCAT_SPLIT)
def test_concat_split(build, shape, options):
    run_case(build, shape, options)


# ---- slicing and indexing ------------------------------------------------------------------------------------

SLICING = [
    case("slice_channels", lambda: Fn(lambda m, x: x[:, 1:3]), SR),
    case("slice_h_step2", lambda: Fn(lambda m, x: x[:, :, ::2]), SR),
    case("slice_w_step3", lambda: Fn(lambda m, x: x[:, :, :, 1::3]), SR),
    case("slice_last_1_minus1", lambda: Fn(lambda m, x: x[..., 1:-1]), SR),
    case("slice_two_axes", lambda: Fn(lambda m, x: x[:, 1:, 1:-1, 2:5]), SR),
    case("slice_then_conv", lambda: Fn(lambda m, x: m.a(x[:, 1:3]), a=conv(2, 4)), SR),
    case("slice_channels_of_permuted", lambda: Fn(lambda m, x: x.permute(0, 2, 3, 1)[..., 1:3]), SR),
    case("select_channel", lambda: Fn(lambda m, x: x[:, 0]), SR),
    case("select_channel_last", lambda: Fn(lambda m, x: x[:, -1]), SR),
    case("select_h", lambda: Fn(lambda m, x: x[:, :, 2]), SR),
    case("select_w_of_3d", lambda: Fn(lambda m, x: x[:, :, 4]), S3),
    case("select_then_unsqueeze", lambda: Fn(lambda m, x: m.a(x[:, 0].unsqueeze(1)), a=conv(1, 3)), SR),
    # Focus / space-to-depth by strided slices (YOLOv5)
    case("space_to_depth_slices", lambda: Fn(lambda m, x: torch.cat(
        [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)), (2, 3, 6, 8)),
]


@pytest.mark.parametrize("build, shape, options", SLICING)
def test_slicing(build, shape, options):
    run_case(build, shape, options)


# ---- permutes, views, flatten --------------------------------------------------------------------------------


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


VIEWS = [
    case("permute_roundtrip", lambda: Fn(lambda m, x: x.permute(0, 2, 3, 1).permute(0, 3, 1, 2)), SR,
         runtime_transposes=0),
    case("transpose_roundtrip", lambda: Fn(lambda m, x: x.transpose(1, 3).transpose(1, 3)), SR,
         runtime_transposes=0),
    case("permute_chain_three", lambda: Fn(lambda m, x: x.permute(0, 3, 1, 2).permute(0, 3, 2, 1).permute(0, 2, 1, 3)
                                        .permute(0, 1, 3, 2)), SR),
    case("permute_roundtrip_then_conv", lambda: Fn(lambda m, x: m.a(x.permute(0, 2, 3, 1).permute(0, 3, 1, 2)),
                                                   a=conv()), SR, runtime_transposes=0),
    case("transpose_hw_then_conv", lambda: Fn(lambda m, x: m.a(x.transpose(2, 3)), a=conv()), SR,
         runtime_transposes=1),
    case("permute_returned_nhwc", lambda: Fn(lambda m, x: x.permute(0, 2, 3, 1)), SR),
    case("permute_linear_last_axis", lambda: Fn(lambda m, x: m.fc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2),
                                                fc=nn.Linear(4, 6)), SR, runtime_transposes=0),
    case("permute_linear_returned_nhwc", lambda: Fn(lambda m, x: m.fc(x.permute(0, 2, 3, 1)), fc=nn.Linear(4, 6)),
         SR),
    case("convnext_block", lambda: Fn(
        lambda m, x: x + (m.fc2(F.gelu(m.fc1(m.norm(m.dw(x).permute(0, 2, 3, 1))))) * m.gamma).permute(0, 3, 1, 2),
        dw=nn.Conv2d(4, 4, 7, padding=3, groups=4), norm=nn.LayerNorm(4, eps=1e-6), fc1=nn.Linear(4, 16),
        fc2=nn.Linear(16, 4), gamma=torch.ones(4)), (2, 4, 9, 9), runtime_transposes=0),
    case("flatten_linear_folded", lambda: Fn(lambda m, x: m.fc(m.a(x).flatten(1)), a=conv(),
                                             fc=nn.Linear(4 * 5 * 7, 10)), SR, runtime_transposes=0),
    case("flatten_module_linear_folded", lambda: nn.Sequential(conv(), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5),
                                                                nn.Linear(4 * 5 * 7, 10)), SR, runtime_transposes=0),
    case("view_linear_folded", lambda: Fn(lambda m, x: m.fc(x.view(x.shape[0], -1)), fc=nn.Linear(4 * 5 * 7, 3)),
         SR, runtime_transposes=0),
    case("flatten_returned", lambda: Fn(lambda m, x: m.a(x).flatten(1), a=conv()), SR, runtime_transposes=1),
    case("flatten_2", lambda: Fn(lambda m, x: m.a(x).flatten(2), a=conv()), SR, runtime_transposes=0),
    case("flatten_2_then_transpose_linear",
         lambda: Fn(lambda m, x: m.fc(x.flatten(2).transpose(1, 2)), fc=nn.Linear(4, 5)), SR),  # ViT patch tokens
    case("view_split_channels", lambda: Fn(lambda m, x: x.view(2, 2, 2, 5, 7)), SR),
    case("view_split_merge_channels", lambda: Fn(lambda m, x: m.a(x.view(2, 2, 2, 5, 7).view(2, 4, 5, 7)), a=conv()),
         SR),
    case("reshape_merge_c_h", lambda: Fn(lambda m, x: x.reshape(2, 4 * 5, 7)), SR),
    case("reshape_split_w", lambda: Fn(lambda m, x: x.reshape(2, 4, 5, 7, 1)), SR),
    case("view_split_channels_sum", lambda: Fn(lambda m, x: x.view(2, 2, 2, 5, 7).sum(1)), SR),
    case("unsqueeze_2", lambda: Fn(lambda m, x: x.unsqueeze(2)), SR),
    case("unsqueeze_last", lambda: Fn(lambda m, x: x.unsqueeze(-1) * 2), SR),
    case("squeeze_pooled", lambda: Fn(lambda m, x: x.mean((2, 3), keepdim=True).squeeze(-1).squeeze(-1)), SR),
    case("squeeze_dims", lambda: Fn(lambda m, x: m.pool(x).squeeze((2, 3)), pool=nn.AdaptiveAvgPool2d(1)), SR),
    case("unsqueeze_squeeze_roundtrip_conv", lambda: Fn(lambda m, x: m.a(x.unsqueeze(1).squeeze(1)), a=conv()), SR),
    # a channel shuffle moves data across the channel axis: one transpose, and only one
    case("channel_shuffle", lambda: Fn(lambda m, x: m.a(channel_shuffle(m.b(x), 2)), a=conv(), b=conv()), SR,
         runtime_transposes=1),
    case("channel_shuffle_returned", lambda: Fn(lambda m, x: channel_shuffle(x, 2)), (2, 6, 5, 7),
         runtime_transposes=1),
    case("channel_shuffle_3_groups", lambda: Fn(lambda m, x: channel_shuffle(x, 3) * 1.0), (2, 6, 5, 7)),
    case("pixel_unshuffle_by_view", lambda: Fn(lambda m, x: x.view(2, 4, 2, 2, 3, 2).permute(0, 1, 3, 5, 2, 4)
                                            .reshape(2, 16, 2, 3)), (2, 4, 4, 6)),
    case("contiguous_identity", lambda: Fn(lambda m, x: m.a(x).contiguous(), a=conv()), SR),
    case("dropout_identity_eval", lambda: nn.Sequential(conv(), nn.Dropout(0.3), nn.Identity(), nn.Dropout2d(0.2)), SR),
    case("functional_dropout_eval", lambda: Fn(lambda m, x: F.dropout(m.a(x), 0.5, training=m.training), a=conv()),
         SR),
]


@pytest.mark.parametrize("build, shape, options", VIEWS)
def test_views(build, shape, options):
    run_case(build, shape, options)


# ---- reductions and softmax ----------------------------------------------------------------------------------

REDUCTIONS = [
    case("mean_hw", lambda: Fn(lambda m, x: x.mean((2, 3))), SR),
    case("mean_c_keepdim", lambda: Fn(lambda m, x: x.mean(1, keepdim=True)), SR),
    case("mean_c_keepdim_then_conv", lambda: Fn(lambda m, x: m.a(x.mean(1, keepdim=True)), a=conv(1, 2)), SR),
    case("sum_last", lambda: Fn(lambda m, x: x.sum(-1)), SR),
    case("sum_h", lambda: Fn(lambda m, x: x.sum(2)), SR),
    case("amax_hw_keepdim", lambda: Fn(lambda m, x: x.amax(dim=(2, 3), keepdim=True)), SR),
    case("amin_c", lambda: Fn(lambda m, x: x.amin(1)), SR),
    case("amax_c_w", lambda: Fn(lambda m, x: x.amax((1, 3))), SR),
    case("mean_all_but_batch", lambda: Fn(lambda m, x: x.mean((1, 2, 3))), SR),
    case("mean_3d_last", lambda: Fn(lambda m, x: x.mean(-1)), S3),
    case("mean_5d_spatial", lambda: Fn(lambda m, x: x.mean((2, 3, 4))), S5),
    case("mean_of_permuted", lambda: Fn(lambda m, x: x.permute(0, 2, 3, 1).mean((1, 2))), SR),
    case("sum_2d", lambda: Fn(lambda m, x: m.fc(x.flatten(1)).sum(1, keepdim=True), fc=nn.Linear(140, 6)), SR),
]

SOFTMAX = [
    case("softmax_4d_dim1", lambda: Fn(lambda m, x: x.softmax(1)), SR),
    case("softmax_4d_dim_minus1", lambda: Fn(lambda m, x: x.softmax(-1)), SR),
    case("log_softmax_4d_dim1", lambda: Fn(lambda m, x: F.log_softmax(x, 1)), SR),
    case("log_softmax_4d_dim_minus1", lambda: Fn(lambda m, x: F.log_softmax(x, dim=-1)), SR),
    case("softmax_2d_dim1", lambda: Fn(lambda m, x: F.softmax(x, dim=1)), (3, 10)),
    case("softmax_2d_dim_minus1", lambda: Fn(lambda m, x: x.softmax(-1)), (3, 10)),
    case("log_softmax_2d_dim1", lambda: Fn(lambda m, x: x.log_softmax(1)), (3, 10)),
    case("log_softmax_2d_dim_minus1", lambda: Fn(lambda m, x: F.log_softmax(x, -1)), (3, 10)),
    case("softmax_module_after_linear", lambda: nn.Sequential(nn.Flatten(), nn.Linear(140, 10), nn.Softmax(dim=1)),
         SR),
    case("log_softmax_module_channels", lambda: nn.Sequential(conv(), nn.LogSoftmax(dim=1)), SR),
    case("softmax_of_permuted", lambda: Fn(lambda m, x: x.permute(0, 2, 3, 1).softmax(-1)), SR),
]


@pytest.mark.parametrize("build, shape, options", REDUCTIONS)
def test_reductions(build, shape, options):
    run_case(build, shape, options)


@pytest.mark.parametrize("build, shape, options", SOFTMAX)
def test_softmax(build, shape, options):
    run_case(build, shape, options)


# ---- inputs and outputs --------------------------------------------------------------------------------------

STRUCTURE = [
    case("returns_tuple", lambda: Fn(lambda m, x: (m.a(x), x.mean((2, 3)), x[:, 0]), a=conv()), SR),
    case("returns_list", lambda: Fn(lambda m, x: [x.mean((2, 3)), m.a(x), x * 2], a=conv()), SR),
    case("returns_dict", lambda: Fn(lambda m, x: {"logits": x.mean((2, 3)), "features": m.a(x), "a": x}, a=conv()),
         SR),
    case("returns_nested", lambda: Fn(lambda m, x: (m.a(x), [x.mean((2, 3)), {"z": x * 2, "b": x + 1}]), a=conv()),
         SR),
    case("returns_input_and_feature", lambda: Fn(lambda m, x: (x, m.a(x)), a=conv()), SR),
    case("returns_same_tensor_twice", lambda: Fn(lambda m, x: (lambda y: (y, y))(m.a(x)), a=conv()), SR),
    case("returns_one_tuple", lambda: Fn(lambda m, x: (m.a(x),), a=conv()), SR,
         marks=xfail(ONE_OUTPUT, AssertionError)),
    case("returns_one_list", lambda: Fn(lambda m, x: [m.a(x)], a=conv()), SR,
         marks=xfail(ONE_OUTPUT, AssertionError)),
    case("two_inputs", lambda: Fn(lambda m, x, y: m.a(x) + m.b(y), a=conv(3, 4), b=conv(3, 4)),
         [(1, 3, 8, 8), (1, 3, 8, 8)]),
    case("two_inputs_cat", lambda: Fn(lambda m, x, y: m.a(torch.cat([x, y], 1)), a=conv(6, 4)),
         [(1, 3, 8, 8), (1, 3, 8, 8)]),
    case("two_inputs_different_ranks", lambda: Fn(lambda m, x, y: m.a(x).mean((2, 3)) * m.fc(y),
                                                  a=conv(3, 4), fc=nn.Linear(5, 4)), [(2, 3, 8, 8), (2, 5)]),
    case("two_inputs_two_outputs", lambda: Fn(lambda m, x, y: (x * y, x - y)), [(1, 3, 8, 8), (1, 3, 8, 8)]),
]


@pytest.mark.parametrize("build, shape, options", STRUCTURE)
def test_structure(build, shape, options):
    run_case(build, shape, options)


# ---- the op-set layers inside a model ------------------------------------------------------------------------


def layer_model(*layers):
    return nn.Sequential(*layers)


LAYERS = [
    # convolutions
    case("conv1d", lambda: layer_model(nn.Conv1d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv1d(5, 4, 5, stride=2)),
         (2, 3, 17)),
    case("conv1d_dilated_same", lambda: layer_model(nn.Conv1d(3, 4, 3, padding="same", dilation=2)), (2, 3, 16)),
    case("conv2d_stride2_odd", lambda: layer_model(nn.Conv2d(3, 6, 3, stride=2, padding=1)), (2, 3, 9, 11)),
    case("conv2d_stride2_even_kernel_odd", lambda: layer_model(nn.Conv2d(3, 4, 4, stride=2, padding=1)),
         (2, 3, 9, 7)),
    case("conv2d_reflect", lambda: layer_model(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")), (2, 3, 7, 9)),
    case("conv2d_replicate", lambda: layer_model(nn.Conv2d(3, 4, 3, padding=2, padding_mode="replicate")),
         (2, 3, 7, 9)),
    case("conv2d_circular", lambda: layer_model(nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")),
         (2, 3, 7, 9)),
    case("conv2d_groups", lambda: layer_model(nn.Conv2d(4, 6, 3, padding=1, groups=2)), (2, 4, 7, 7)),
    case("conv2d_depthwise", lambda: layer_model(nn.Conv2d(4, 8, 3, padding=1, groups=4)), (2, 4, 7, 7)),
    case("conv2d_dilation", lambda: layer_model(nn.Conv2d(3, 4, 3, padding=2, dilation=2)), (2, 3, 9, 10)),
    case("conv2d_stride2_dilation2", lambda: layer_model(nn.Conv2d(3, 4, 3, stride=2, padding=2, dilation=2)),
         (2, 3, 11, 9)),
    case("conv2d_same_even_kernel", lambda: layer_model(nn.Conv2d(3, 4, 4, padding="same")), (2, 3, 7, 8)),
    case("conv2d_no_bias_asym", lambda: layer_model(nn.Conv2d(3, 4, (1, 5), padding=(0, 2), bias=False)),
         (2, 3, 6, 9)),
    case("conv3d", lambda: layer_model(nn.Conv3d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv3d(3, 4, 3, stride=2)),
         (2, 2, 5, 6, 7)),
    case("conv_transpose2d_stride2_odd", lambda: layer_model(nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1)),
         (2, 4, 5, 7)),
    case("conv_transpose2d_output_padding",
         lambda: layer_model(nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)), (2, 4, 5, 7)),
    case("conv_transpose2d_k4s2p1", lambda: layer_model(nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)),
         (2, 4, 5, 6)),
    case("conv_transpose2d_groups", lambda: layer_model(nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)),
         (2, 4, 5, 5)),
    case("conv_transpose2d_dilation", lambda: layer_model(nn.ConvTranspose2d(4, 3, 3, dilation=2, padding=1)),
         (2, 4, 5, 6)),
    # pooling
    case("max_pool_3_2_1_ceil", lambda: layer_model(nn.MaxPool2d(3, 2, 1, ceil_mode=True)), (2, 4, 8, 9)),
    case("max_pool_ceil_no_pad", lambda: layer_model(nn.MaxPool2d(3, 2, ceil_mode=True)), (2, 4, 8, 10)),
    case("avg_pool_exclude_pad", lambda: layer_model(nn.AvgPool2d(3, 2, 1, count_include_pad=False)), (2, 4, 7, 8)),
    case("avg_pool_include_pad", lambda: layer_model(nn.AvgPool2d(3, 2, 1)), (2, 4, 7, 8)),
    case("avg_pool_ceil", lambda: layer_model(nn.AvgPool2d(2, ceil_mode=True)), (2, 4, 7, 9)),
    case("adaptive_avg_pool_2_3", lambda: layer_model(nn.AdaptiveAvgPool2d((2, 3))), (2, 4, 7, 8)),
    case("adaptive_avg_pool_1_flatten_linear", lambda: layer_model(conv(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                                                   nn.Linear(4, 3)), SR, runtime_transposes=0),
    case("adaptive_max_pool", lambda: layer_model(nn.AdaptiveMaxPool2d((3, 2))), (2, 4, 7, 8)),
    case("max_pool1d", lambda: layer_model(nn.MaxPool1d(3, 2, 1)), (2, 3, 11)),
    case("avg_pool3d", lambda: layer_model(nn.AvgPool3d(2)), (2, 2, 4, 6, 5)),
    # normalization
    case("batch_norm2d", lambda: layer_model(conv(3, 4), nn.BatchNorm2d(4), nn.ReLU()), (2, 3, 7, 8)),
    case("batch_norm1d_after_linear", lambda: layer_model(nn.Flatten(), nn.Linear(3 * 7 * 8, 6), nn.BatchNorm1d(6)),
         (2, 3, 7, 8)),
    case("batch_norm1d_on_ncl", lambda: layer_model(nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4)), (2, 3, 10)),
    case("batch_norm3d", lambda: layer_model(nn.BatchNorm3d(2)), (2, 2, 3, 4, 5)),
    case("group_norm", lambda: layer_model(conv(4, 6), nn.GroupNorm(3, 6)), (2, 4, 7, 8)),
    case("group_norm_one_group", lambda: layer_model(nn.GroupNorm(1, 4)), (2, 4, 7, 8)),
    case("instance_norm2d", lambda: layer_model(conv(3, 4), nn.InstanceNorm2d(4)), (2, 3, 7, 8)),
    case("instance_norm2d_affine", lambda: layer_model(nn.InstanceNorm2d(4, affine=True)), (2, 4, 7, 8)),
    case("layer_norm_chw", lambda: layer_model(nn.LayerNorm([4, 5, 7])), SR),
    case("layer_norm_last_axis_nchw", lambda: layer_model(nn.LayerNorm(7)), SR),
    case("layer_norm_channels_permuted",
         lambda: Fn(lambda m, x: m.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), norm=nn.LayerNorm(4)), SR,
         runtime_transposes=0),
    case("layer_norm_2d", lambda: layer_model(nn.Flatten(), nn.Linear(140, 8), nn.LayerNorm(8)), SR),
    case("layer_norm_no_affine", lambda: layer_model(nn.LayerNorm(7, elementwise_affine=False)), SR),
    # resizing
    case("interpolate_nearest_2x", lambda: Fn(lambda m, x: F.interpolate(x, scale_factor=2, mode="nearest")), SR),
    case("interpolate_nearest_size", lambda: Fn(lambda m, x: F.interpolate(x, size=(7, 10), mode="nearest")), SR),
    case("interpolate_nearest_1_5", lambda: Fn(lambda m, x: F.interpolate(x, scale_factor=1.5, mode="nearest")), SR),
    case("interpolate_bilinear", lambda: Fn(lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear")), SR),
    case("interpolate_bilinear_align_corners",
         lambda: Fn(lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)), SR),
    case("interpolate_bilinear_size_align_corners",
         lambda: Fn(lambda m, x: F.interpolate(x, size=(9, 4), mode="bilinear", align_corners=True)), SR),
    case("interpolate_bilinear_1_5", lambda: Fn(lambda m, x: F.interpolate(x, scale_factor=1.5, mode="bilinear")),
         SR),
    case("interpolate_bilinear_1_5_align_corners",
         lambda: Fn(lambda m, x: F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=True)), SR),
    case("upsample_module", lambda: layer_model(conv(), nn.Upsample(scale_factor=2, mode="nearest"), conv()), SR),
    case("pixel_shuffle", lambda: layer_model(nn.Conv2d(4, 8, 3, padding=1), nn.PixelShuffle(2)), SR),
    case("pixel_unshuffle", lambda: layer_model(nn.PixelUnshuffle(2)), (2, 3, 6, 8)),
    # padding
    case("zero_pad2d", lambda: layer_model(nn.ZeroPad2d((1, 2, 0, 3))), SR),
    case("f_pad_reflect", lambda: Fn(lambda m, x: F.pad(x, (2, 1, 1, 2), mode="reflect")), SR),
    case("f_pad_replicate", lambda: Fn(lambda m, x: F.pad(x, (2, 1, 1, 2), mode="replicate")), SR),
    case("f_pad_circular", lambda: Fn(lambda m, x: F.pad(x, (1, 1, 2, 1), mode="circular")), SR),
    case("f_pad_constant_value", lambda: Fn(lambda m, x: F.pad(x, (1, 1, 2, 0), value=0.5)), SR),
    case("reflection_pad_then_conv", lambda: layer_model(nn.ReflectionPad2d(1), nn.Conv2d(4, 4, 3)), SR),
    case("f_pad_reflect_3d_input", lambda: Fn(lambda m, x: F.pad(x, (2, 3), mode="reflect")), S3),
    # activations
    case("relu6", lambda: layer_model(conv(), nn.ReLU6()), SR),
    case("hardswish", lambda: layer_model(conv(), nn.Hardswish()), SR),
    case("hardsigmoid", lambda: layer_model(conv(), nn.Hardsigmoid()), SR),
    case("silu", lambda: layer_model(conv(), nn.SiLU()), SR),
    case("gelu", lambda: layer_model(conv(), nn.GELU()), SR),
    case("gelu_tanh", lambda: layer_model(conv(), nn.GELU(approximate="tanh")), SR),
    case("leaky_relu", lambda: layer_model(conv(), nn.LeakyReLU(0.1)), SR),
    case("prelu_shared", lambda: layer_model(conv(), nn.PReLU()), SR),
    case("prelu_per_channel", lambda: layer_model(conv(), nn.PReLU(4)), SR),
    case("elu", lambda: layer_model(conv(), nn.ELU(0.7)), SR),
    case("sigmoid_tanh", lambda: layer_model(conv(), nn.Sigmoid(), conv(), nn.Tanh()), SR),
    case("mish_softplus", lambda: layer_model(conv(), nn.Mish(), conv(), nn.Softplus()), SR),
    case("hardtanh", lambda: layer_model(conv(), nn.Hardtanh()), SR),
    case("activation_on_permuted", lambda: Fn(lambda m, x: F.hardswish(x.permute(0, 2, 3, 1))), SR),
    case("activation_on_2d", lambda: layer_model(nn.Flatten(), nn.Linear(140, 6), nn.SiLU()), SR),
    case("prelu_on_2d", lambda: layer_model(nn.Flatten(), nn.Linear(140, 6), nn.PReLU(6)), SR),
    case("linear_3d_input", lambda: layer_model(nn.Linear(9, 5), nn.ReLU(), nn.Linear(5, 2)), S3),
    case("linear_no_bias", lambda: Fn(lambda m, x: m.fc(x.flatten(1)), fc=nn.Linear(140, 6, bias=False)), SR),
]


@pytest.mark.parametrize("build, shape, options", LAYERS)
def test_layers(build, shape, options):
    run_case(build, shape, options)


# ---- a small network through it all --------------------------------------------------------------------------


class Net(nn.Module):
    """conv-bn-relu, a residual with layer scale, SE, channel shuffle, a concat, pooling and a flatten head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 8, 1)
        self.scale = nn.Parameter(torch.ones(8, 1, 1))
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 4, 1), nn.SiLU(), nn.Conv2d(4, 8, 1),
                                nn.Hardsigmoid())
        self.branch = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.head = nn.Linear(8 * 4 * 5, 5)  # (11, 15) -> stem (6, 8) -> pool (4, 5)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.pw(F.hardswish(self.dw(x))) * self.scale
        x = x * self.se(x)
        a, b = x.chunk(2, 1)
        x = channel_shuffle(torch.cat([a, self.branch(b)], 1), 2)
        x = self.pool(x)
        return self.head(torch.flatten(x, 1)).log_softmax(-1)


def test_small_network():
    torch.manual_seed(0)
    conversion = check(randomize(Net()), (2, 3, 11, 15))
    assert conversion.runtime_transposes == 1, conversion.explain()  # the channel shuffle's; the flatten is folded


# ---- the harness can fail ------------------------------------------------------------------------------------


def test_harness_detects_a_wrong_weight_and_a_wrong_layout():
    """The independent check is not vacuous: one kernel entry off, or an output left in the wrong axis order, fails."""
    torch.manual_seed(0)
    model = randomize(Fn(lambda m, x: m.a(x), a=conv())).eval()
    conversion = convbridge.convert(model, SR)
    x = torch.randn(*SR, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = model(x)
    keras_model = conversion.keras_model
    assert_same_structure(keras_model(channels_last(x.numpy())), want)
    with pytest.raises(AssertionError, match="shape"):  # NCHW output compared as NHWC
        assert_same_structure(np.asarray(keras_model(channels_last(x.numpy()))).transpose(0, 3, 1, 2), want)
    layer = next(layer for layer in keras_model.layers if layer.weights)
    kernel, *rest = layer.get_weights()
    kernel = kernel.copy()
    kernel.flat[0] += 0.05
    layer.set_weights([kernel, *rest])
    with pytest.raises(AssertionError, match="max relative difference"):
        assert_same_structure(keras_model(channels_last(x.numpy())), want)
