"""Differential tests for nn.ConvTranspose1d/2d/3d: convbridge's code reproduces the real PyTorch layer.

Every case of the named table runs
- both emitters (`--emit keras`, `--emit tf`) without --input-shape (the code must be exact for every size), checked
  at the case's sizes (odd and even) plus the smallest input PyTorch accepts;
- both emitters with --input-shape for each of those shapes, checked at that shape;
- convbridge.to_keras(module) without and with input_shape, against the same float64 PyTorch reference.
Separately, for every case and shape: `--emit json --input-shape S` and Plan.output_shape(S) give PyTorch's output
shape; and convert_weights is PyTorch's IOHW -> HWOI permutation bit for bit (with zero taps between the kernel taps
when dilation > 1, and zero taps appended where output_padding >= stride).

Notation as in conv-semantics.md: eff = (k-1)*d + 1, L = (in-1)*s + eff, out = L - 2p + op.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import convbridge
from conftest import (
    check_emitted_against_torch,
    random_input,
    stable_seed,
    to_channels_first,
    to_channels_last,
    tolerance_for,
    torch_layer,
    torch_minimal_input_shape,
    torch_reference,
    translate_json,
)


def case(case_id: str, text: str, *spatial_sizes, batch: int = 2):
    """A named case: the layer text and spatial sizes (tuples, or ints for 1-D) tested besides the minimum."""
    sizes = [s if isinstance(s, tuple) else (s,) for s in spatial_sizes]
    return pytest.param(text, sizes, batch, id=case_id)


CASES = [
    # ------------------------------------------------------------------------------------------ ConvTranspose1d
    case("1d-s1-p0-k3", "nn.ConvTranspose1d(3, 5, 3)", 7, 8),
    case("1d-s1-p1-k3", "nn.ConvTranspose1d(3, 5, 3, padding=1)", 7, 8),
    case("1d-s1-p2-even-k4", "nn.ConvTranspose1d(3, 4, 4, padding=2)", 6, 9),
    case("1d-s1-p3-k3-minimal-5", "nn.ConvTranspose1d(2, 3, 3, padding=3)", 6, 7),
    case("1d-s2-p0-k3", "nn.ConvTranspose1d(3, 5, 3, stride=2)", 7, 8),
    case("1d-s2-p1-k3", "nn.ConvTranspose1d(3, 5, 3, stride=2, padding=1)", 7, 8),
    case("1d-upsample-k3-s2-p1-op1", "nn.ConvTranspose1d(3, 5, 3, stride=2, padding=1, output_padding=1)", 7, 8),
    case("1d-upsample-k4-s2-p1", "nn.ConvTranspose1d(3, 4, 4, stride=2, padding=1)", 7, 8),
    case("1d-upsample-k2-s2", "nn.ConvTranspose1d(3, 4, 2, stride=2)", 7, 8),
    case("1d-s3-p0-op2-op-gt-p", "nn.ConvTranspose1d(3, 4, 3, stride=3, output_padding=2)", 5, 6),
    case("1d-s3-p3-op2-k5", "nn.ConvTranspose1d(3, 4, 5, stride=3, padding=3, output_padding=2)", 6, 7),
    case("1d-s3-p1-op2-even-k2", "nn.ConvTranspose1d(3, 4, 2, stride=3, padding=1, output_padding=2)", 4, 5),
    case("1d-k1-s3-op2-stride-gt-kernel", "nn.ConvTranspose1d(3, 4, 1, stride=3, output_padding=2)", 4, 5),
    # the brief's example: output_padding 2 >= stride 1, allowed because dilation 3 > 2
    case("1d-dilation3-op2-ge-stride1", "nn.ConvTranspose1d(2, 2, 3, stride=1, dilation=3, output_padding=2)", 5, 6),
    case("1d-dilation2-p2", "nn.ConvTranspose1d(3, 4, 3, dilation=2, padding=2)", 5, 6),
    case("1d-s2-dilation2-p1-op1", "nn.ConvTranspose1d(3, 4, 3, stride=2, dilation=2, padding=1, output_padding=1)",
         6, 7),
    case("1d-s2-dilation3-p1-op2-ge-stride",
         "nn.ConvTranspose1d(3, 4, 3, stride=2, dilation=3, padding=1, output_padding=2)", 6, 7),
    case("1d-groups2-s2-p1-op1", "nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)",
         7, 8),
    case("1d-groups3-dilation2-op1", "nn.ConvTranspose1d(6, 3, 2, dilation=2, output_padding=1, groups=3)", 5, 6),
    case("1d-depthwise-s2-p1", "nn.ConvTranspose1d(4, 4, 3, stride=2, padding=1, groups=4)", 7, 8),
    case("1d-depthwise-m2-dilation2", "nn.ConvTranspose1d(4, 8, 3, dilation=2, groups=4)", 5, 6),
    case("1d-no-bias-op-gt-p", "nn.ConvTranspose1d(3, 4, 3, stride=3, padding=1, output_padding=2, bias=False)",
         5, 6),
    case("1d-batch3", "nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1, output_padding=1)", 9, 10, batch=3),
    case("1d-keywords-torch-prefix",
         "torch.nn.ConvTranspose1d(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1, "
         "output_padding=1, groups=1, bias=True, dilation=1)", 7, 8),
    # positional order of ConvTranspose: (in, out, k, stride, padding, output_padding, groups, bias, dilation)
    case("1d-all-positional-dilation2", "nn.ConvTranspose1d(4, 6, 3, 2, 1, 1, 2, True, 2)", 6, 7),
    # ------------------------------------------------------------------------------------------ ConvTranspose2d
    case("2d-s1-p0-k3", "nn.ConvTranspose2d(3, 4, 3)", (5, 6), (6, 5)),
    case("2d-s1-p0-even-k2", "nn.ConvTranspose2d(3, 4, 2)", (5, 6), (6, 7)),
    case("2d-s1-p1-k3", "nn.ConvTranspose2d(3, 4, 3, padding=1)", (5, 6), (4, 3)),
    case("2d-s2-p0-k3", "nn.ConvTranspose2d(3, 4, 3, stride=2)", (5, 6), (6, 5)),
    case("2d-upsample-k4-s2-p1", "nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1)", (7, 8), (8, 8)),
    case("2d-upsample-k3-s2-p1-op1", "nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)",
         (7, 8), (8, 7), (1, 1)),
    case("2d-upsample-k2-s2", "nn.ConvTranspose2d(3, 4, 2, stride=2)", (7, 8), (8, 8)),
    case("2d-s2-p3-k5", "nn.ConvTranspose2d(3, 4, 5, stride=2, padding=3)", (5, 6), (2, 3)),
    case("2d-s3-p2-op2", "nn.ConvTranspose2d(3, 4, 3, stride=3, padding=2, output_padding=2)", (4, 5), (5, 4)),
    case("2d-s3-p0-op2-op-gt-p", "nn.ConvTranspose2d(3, 4, 3, stride=3, output_padding=(2, 1))", (4, 5), (3, 2)),
    case("2d-rect-kernel-stride-pad-op",
         "nn.ConvTranspose2d(3, 4, (3, 5), stride=(2, 3), padding=(1, 2), output_padding=(1, 2))", (5, 6), (6, 5)),
    case("2d-pad-tuple-mixed", "nn.ConvTranspose2d(3, 4, (4, 3), stride=(1, 2), padding=(0, 3))", (5, 6), (6, 5)),
    case("2d-dilation2-p1", "nn.ConvTranspose2d(3, 4, 3, dilation=2, padding=1)", (5, 6), (2, 1)),
    case("2d-s2-dilation2-p1-op1", "nn.ConvTranspose2d(3, 4, 3, stride=2, dilation=2, padding=1, output_padding=1)",
         (5, 6), (6, 5)),
    case("2d-op-ge-stride-via-dilation",
         "nn.ConvTranspose2d(3, 4, 3, stride=(1, 2), dilation=3, output_padding=(2, 2))", (4, 5), (5, 4)),
    case("2d-groups2-s2-p1-op1", "nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)",
         (5, 6)),
    case("2d-groups3-dilation-rect", "nn.ConvTranspose2d(6, 9, (2, 3), stride=(2, 1), dilation=(1, 2), padding=1, "
         "groups=3)", (5, 6), (4, 3)),
    case("2d-depthwise-s2-p1-op1", "nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=4)",
         (5, 6)),
    case("2d-depthwise-m2-k4-s2-p1", "nn.ConvTranspose2d(3, 6, 4, stride=2, padding=1, groups=3)", (5, 6), (6, 5)),
    case("2d-no-bias-k4-s2-p1", "nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1, bias=False)", (5, 6), (6, 7)),
    case("2d-no-bias-op-gt-p", "nn.ConvTranspose2d(3, 4, 2, stride=3, output_padding=2, bias=False)", (4, 5), (5, 4)),
    case("2d-single-channel", "nn.ConvTranspose2d(1, 1, 3, stride=2)", (4, 5), (5, 6)),
    case("2d-batch3", "nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)", (6, 7), (7, 6), batch=3),
    case("2d-batch1", "nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1)", (6, 7), (7, 8), batch=1),
    # ------------------------------------------------------------------------------------------ ConvTranspose3d
    case("3d-s1-p0-k3", "nn.ConvTranspose3d(2, 3, 3)", (3, 4, 5), (4, 3, 2)),
    case("3d-upsample-k4-s2-p1", "nn.ConvTranspose3d(2, 3, 4, stride=2, padding=1)", (3, 4, 5), (4, 5, 2)),
    case("3d-upsample-k3-s2-p1-op1", "nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1, output_padding=1)",
         (3, 4, 5), (2, 2, 2)),
    case("3d-upsample-k2-s2", "nn.ConvTranspose3d(2, 3, 2, stride=2)", (3, 4, 5), (2, 3, 4)),
    case("3d-rect-mixed-op", "nn.ConvTranspose3d(2, 3, (1, 3, 2), stride=(3, 1, 2), padding=(0, 1, 0), "
         "output_padding=(2, 0, 1))", (3, 4, 5), (2, 3, 4)),
    case("3d-dilation-op-ge-stride",
         "nn.ConvTranspose3d(2, 2, 2, stride=1, dilation=(2, 1, 3), output_padding=(1, 0, 2))", (3, 4, 5), (2, 3, 4)),
    case("3d-s2-dilation2-p3", "nn.ConvTranspose3d(2, 3, 3, stride=2, dilation=2, padding=3)", (3, 4, 5), (2, 3, 2)),
    case("3d-groups2-s2-p1-op1", "nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)",
         (3, 4, 5), (2, 3, 2)),
    case("3d-depthwise-s2", "nn.ConvTranspose3d(3, 3, 3, stride=2, groups=3)", (3, 4, 3), (2, 3, 4)),
    case("3d-no-bias", "nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1, output_padding=1, bias=False)",
         (3, 4, 5), (2, 3, 4)),
    case("3d-batch3", "nn.ConvTranspose3d(2, 3, 2, stride=2)", (2, 3, 4), (3, 2, 3), batch=3),
]


def case_shapes(text, sizes, batch):
    module = torch_layer(text)
    shapes = [(batch, module.in_channels, *s) for s in sizes]
    minimal = torch_minimal_input_shape(text, batch)
    return shapes + ([minimal] if minimal not in shapes else [])


def test_case_table_is_valid_pytorch():
    """Every case is a ConvTranspose PyTorch accepts at its sizes, and the table covers what it says it covers."""
    seen = set()
    for param in CASES:
        text, sizes, batch = param.values
        module = torch_layer(text)
        assert isinstance(module, torch.nn.modules.conv._ConvTransposeNd), text
        for shape in case_shapes(text, sizes, batch):
            with torch.no_grad():
                module(torch.zeros(shape))
        rank = len(module.kernel_size)
        s, p, op, d, k = module.stride, module.padding, module.output_padding, module.dilation, module.kernel_size
        seen |= {("rank", rank), ("batch", batch), ("bias", module.bias is not None)}
        seen |= {("stride", v) for v in s} | {("padding", v) for v in p} | {("dilation>1", v > 1) for v in d}
        seen |= {("op>0", v > 0) for v in op} | {("k-even", v % 2 == 0) for v in k}
        seen |= {("op>p", a > b) for a, b in zip(op, p)} | {("op>=s", a >= b) for a, b in zip(op, s)}
        seen |= {("d>1,s>1", a > 1 and b > 1) for a, b in zip(d, s)}
        seen |= {("groups", "1" if module.groups == 1 else
                  "depthwise" if module.groups == module.in_channels else "grouped")}
    expected = ({("rank", r) for r in (1, 2, 3)} | {("stride", v) for v in (1, 2, 3)}
                | {("padding", v) for v in range(4)} | {("batch", b) for b in (1, 2, 3)}
                | {(key, v) for key in ("bias", "dilation>1", "op>0", "k-even", "op>p", "op>=s", "d>1,s>1")
                   for v in (True, False)}
                | {("groups", g) for g in ("1", "depthwise", "grouped")})
    assert expected <= seen, f"not covered: {sorted(expected - seen)}"


@pytest.mark.parametrize("text, sizes, batch", CASES)
def test_transposed_emitted_code_matches_pytorch(text, sizes, batch):
    shapes = case_shapes(text, sizes, batch)
    for emit in ("keras", "tf"):
        check_emitted_against_torch(text, emit, shapes)
        for shape in shapes:
            check_emitted_against_torch(text, emit, [shape], cli_input_shape=shape)


@pytest.mark.parametrize("text, sizes, batch", CASES)
def test_transposed_to_keras_matches_pytorch(text, sizes, batch):
    module = torch_layer(text)
    atol = tolerance_for(module)
    shapes = case_shapes(text, sizes, batch)
    general = convbridge.to_keras(module)  # built once, used at every size
    for shape in shapes:
        x = random_input(shape, stable_seed(text, tuple(shape)))
        expected = torch_reference(module, x)
        x_last = np.ascontiguousarray(to_channels_last(x))
        specific = convbridge.to_keras(module, input_shape=shape)
        for label, layer in (("to_keras(module)", general), (f"to_keras(module, input_shape={shape})", specific)):
            got = to_channels_first(np.asarray(layer(x_last)))
            where = f"\n  layer text: {text}\n  input shape: {shape}\n  path: {label}"
            assert got.dtype == np.float32, where
            assert got.shape == expected.shape, f"shape {got.shape} != PyTorch {expected.shape}{where}"
            worst = float(np.max(np.abs(got.astype(np.float64) - expected)))
            assert np.all(np.isfinite(got)) and worst <= atol, f"max |diff| {worst:.3e} > atol {atol:.3e}{where}"


@pytest.mark.parametrize("text, sizes, batch", CASES)
def test_transposed_output_shape_equals_pytorch(text, sizes, batch):
    module = torch_layer(text)
    general = convbridge.translate(text)
    assert translate_json(text)["output_shape"] is None
    for shape in case_shapes(text, sizes, batch):
        with torch.no_grad():
            expected = list(module(torch.zeros(shape)).shape)
        plan = translate_json(text, tuple(shape))
        assert plan["input_shape"] == list(shape), text
        assert plan["output_shape"] == expected, f"{text} at {shape}: JSON {plan['output_shape']} != torch {expected}"
        assert general.output_shape(list(shape)) == expected, f"{text} at {shape}: Plan.output_shape"
        assert convbridge.translate(module, input_shape=shape).output_shape(list(shape)) == expected
        (step,) = [s for s in plan["steps"] if s["op"] == "conv_transpose"]
        assert step["groups"] == module.groups and step["filters"] == module.out_channels


# ------------------------------------------------------------------------------------------------------------------
# convert_weights: IOHW -> HWOI, bit for bit
# ------------------------------------------------------------------------------------------------------------------

WEIGHT_CASES = [
    pytest.param("nn.ConvTranspose1d(3, 5, 3, stride=2, padding=1, output_padding=1)", id="1d"),
    pytest.param("nn.ConvTranspose2d(3, 4, (3, 2), stride=2)", id="2d-rect"),
    pytest.param("nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, bias=False)", id="2d-groups2-no-bias"),
    pytest.param("nn.ConvTranspose2d(4, 8, 3, groups=4)", id="2d-depthwise-m2"),
    pytest.param("nn.ConvTranspose3d(2, 3, (1, 3, 2), stride=(3, 1, 2))", id="3d-rect"),
    pytest.param("nn.ConvTranspose1d(2, 2, 3, stride=1, dilation=3, output_padding=2)", id="1d-dilation3-op2"),
    pytest.param("nn.ConvTranspose1d(3, 4, 3, stride=2, dilation=2, padding=1)", id="1d-dilation2-s2"),
    pytest.param("nn.ConvTranspose2d(3, 4, (3, 2), dilation=(2, 3))", id="2d-dilation-rect"),
    pytest.param("nn.ConvTranspose2d(4, 6, 3, stride=(1, 2), dilation=(3, 1), output_padding=(2, 1), groups=2)",
                 id="2d-dilation-groups-op"),
    pytest.param("nn.ConvTranspose3d(2, 2, 2, stride=1, dilation=(2, 1, 3), output_padding=(1, 0, 2))",
                 id="3d-dilation-op"),
]


def _bits(array):
    array = np.ascontiguousarray(array)
    return array.view(np.uint32 if array.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("text", WEIGHT_CASES)
def test_transposed_convert_weights_bit_exact(text, dtype):
    module = torch_layer(text).to(dtype)
    rank = len(module.kernel_size)
    with torch.no_grad():  # values a recomputation would change: -0.0, NaN payload, denormal, infinities
        tiny = 1e-45 if dtype == torch.float32 else 5e-324
        module.weight.view(-1)[:4] = torch.tensor([-0.0, float("nan"), tiny, float("-inf")], dtype=dtype)
    converted = convbridge.convert_weights(module)
    kernel = converted["kernel"]
    # IOHW -> HWOI: torch's weight.permute(2, ..., 1, 0)
    expected = module.weight.detach().permute(*range(2, 2 + rank), 1, 0).contiguous().numpy()
    assert kernel.dtype == expected.dtype, text
    if module.bias is None:
        assert converted["bias"] is None
    else:
        assert np.array_equal(_bits(converted["bias"]), _bits(module.bias.detach().numpy())), text
    plan_kernel = json.loads(convbridge.translate(module).to_json())["weights"]["kernel"]
    assert list(kernel.shape) == plan_kernel["to_shape"], text

    if all(d == 1 for d in module.dilation):
        assert kernel.shape == expected.shape, text
        assert np.array_equal(_bits(kernel), _bits(expected)), f"{text}: kernel differs from weight.permute"
        return
    # dilation > 1: the taps sit every d positions from 0 (zeros between them, and zero taps appended where
    # output_padding >= stride); every other position is exactly 0.
    extents = [(k - 1) * d + 1 for k, d in zip(module.kernel_size, module.dilation)]
    assert all(n >= e for n, e in zip(kernel.shape[:rank], extents)), (text, kernel.shape, extents)
    assert kernel.shape[rank:] == expected.shape[rank:], text
    taps = tuple(slice(0, e, d) for e, d in zip(extents, module.dilation))
    assert np.array_equal(_bits(kernel[taps]), _bits(expected)), f"{text}: the taps differ from weight.permute"
    rest = np.ones(kernel.shape, bool)
    rest[taps] = False
    assert np.all(kernel[rest] == 0), f"{text}: positions between/after the taps must be exactly 0"
    assert rest.sum() == kernel.size - expected.size
