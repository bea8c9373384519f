"""The traps of /work/shared/reference/conv-semantics.md that apply to forward convolutions.

Each test first shows the trap with the REAL frameworks (so the fact itself is checked, not assumed), then checks
that convbridge's emitted code is exact where the naive translation is not. Traps 3-6 concern transposed
convolutions (nn.ConvTranspose1d/2d/3d), which convbridge translates: their tests are in the section at the end,
together with TF's CPU limits for transposed convs (no dilation > 1 without oneDNN, no groups). Trap 7 concerns
SeparableConv2D, which convbridge never emits.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf
import keras
import torch
import torch.nn.functional as F

import convbridge

from conftest import (
    check_emitted_against_torch,
    load_emitted,
    random_input,
    run_cli,
    to_channels_first,
    to_channels_last,
    tolerance_for,
    torch_layer,
    torch_reference,
    translate_json,
    weights_of,
)


def keras_conv_from_torch(module: torch.nn.Module, padding: str, **kwargs) -> keras.layers.Layer:
    """A plain Keras ConvND with the PyTorch layer's weights (the 'naive' translation)."""
    rank = len(module.kernel_size)
    weight, bias = weights_of(module)
    kernel = np.transpose(weight, (*range(2, 2 + rank), 1, 0))
    cls = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    layer = cls(module.out_channels, module.kernel_size, strides=module.stride, padding=padding,
                dilation_rate=module.dilation, groups=module.groups, use_bias=bias is not None, **kwargs)
    layer.build((None, *([None] * rank), module.in_channels))
    layer.set_weights([kernel] if bias is None else [kernel, bias])
    return layer


def keras_output(layer, x: np.ndarray) -> np.ndarray:
    return to_channels_first(np.asarray(layer(np.ascontiguousarray(to_channels_last(x)))))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).max())


def conv_step(plan: dict) -> dict:
    (step,) = [s for s in plan["steps"] if s["op"] == "conv"]
    return step


def emitted_outputs_match(text: str, shape) -> None:
    for emit in ("keras", "tf"):
        check_emitted_against_torch(text, emit, [shape])
        check_emitted_against_torch(text, emit, [shape], cli_input_shape=shape)


# ------------------------------------------------------------------------------------------------------------------
# TensorFlow facts that depend on the oneDNN switch, checked in a clean subprocess with the reference's setting.
# ------------------------------------------------------------------------------------------------------------------

_NO_ONEDNN_PROBE = r"""
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
out = {}
x = np.ones((1, 2, 2, 3), np.float32); w = np.ones((3, 3, 3, 4), np.float32)
out["valid_small_shape"] = list(tf.nn.conv2d(x, w, 1, "VALID").shape)
try:
    tf.nn.conv2d(np.ones((1, 3, 8, 8), np.float32), w, 1, "VALID", data_format="NCHW")
    out["nchw"] = "ok"
except Exception as e:
    out["nchw"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def tf_without_onednn():
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", _NO_ONEDNN_PROBE], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------------------
# Trap 1: TF 'same' at stride > 1 is not PyTorch's padding=k//2
# ------------------------------------------------------------------------------------------------------------------


def test_trap1_tf_same_stride2_pads_0_1_where_torch_pads_1_1():
    text = "nn.Conv2d(3, 4, 3, stride=2, padding=1)"
    module = torch_layer(text)
    atol = tolerance_for(module)

    # At 224: same shape (112), different numbers; Keras 'same' is PyTorch with pads (0, 1).
    x224 = random_input((1, 3, 224, 224), 1)
    expected = torch_reference(module, x224)
    naive = keras_output(keras_conv_from_torch(module, "same"), x224)
    assert naive.shape == expected.shape == (1, 4, 112, 112)
    assert max_diff(naive, expected) > 100 * atol, "TF 'same' at 224 unexpectedly equals PyTorch padding=1"
    unpadded = torch.nn.Conv2d(3, 4, 3, stride=2, padding=0).double()
    unpadded.load_state_dict({k: v.double() for k, v in module.state_dict().items()})
    with torch.no_grad():
        tf_like = unpadded(F.pad(torch.from_numpy(x224.astype(np.float64)), (0, 1, 0, 1))).numpy()
    assert max_diff(naive, tf_like) <= atol, "TF 'same' at 224 should equal PyTorch with pads (0, 1)"

    # At 225 TF 'same' pads (1, 1): it is PyTorch's padding=1.
    x225 = random_input((1, 3, 225, 225), 2)
    naive225 = keras_output(keras_conv_from_torch(module, "same"), x225)
    assert max_diff(naive225, torch_reference(module, x225)) <= atol

    # convbridge: exact at both sizes without --input-shape, and with it.
    for shape in ((1, 3, 224, 224), (1, 3, 225, 225), (2, 3, 224, 225)):
        emitted_outputs_match(text, shape)

    # The plan picks the cheapest exact padding per size: 'same' at 225, explicit at 224 and for unknown sizes.
    plan225 = translate_json(text, (1, 3, 225, 225))
    assert conv_step(plan225)["padding"] == "same"
    assert [s["op"] for s in plan225["steps"]] == ["conv"]
    assert plan225["exact_for"] == "input_shape"
    plan224 = translate_json(text, (1, 3, 224, 224))
    assert conv_step(plan224)["padding"] == "explicit"
    assert conv_step(plan224)["explicit_pads"] == [[1, 1], [1, 1]]
    assert plan224["exact_for"] == "every_input_size"
    general = translate_json(text)
    assert conv_step(general)["padding"] == "explicit" and general["exact_for"] == "every_input_size"


def test_trap1_even_kernel_stride2_shapes_differ():
    """in = 8, k = 4, s = 2: TF 'same' gives 4 outputs, PyTorch padding=k//2 gives 5."""
    text = "nn.Conv2d(3, 4, 4, stride=2, padding=2)"
    module = torch_layer(text)
    x = random_input((1, 3, 8, 8), 3)
    expected = torch_reference(module, x)
    assert expected.shape == (1, 4, 5, 5)
    assert keras_output(keras_conv_from_torch(module, "same"), x).shape == (1, 4, 4, 4)
    emitted_outputs_match(text, (1, 3, 8, 8))
    assert translate_json(text, (1, 3, 8, 8))["output_shape"] == [1, 4, 5, 5]


# ------------------------------------------------------------------------------------------------------------------
# Trap 2: even kernel at stride 1
# ------------------------------------------------------------------------------------------------------------------


def test_trap2_even_kernel_same():
    same_text = "nn.Conv2d(3, 4, 4, padding='same')"
    half_text = "nn.Conv2d(3, 4, 4, padding=2)"  # the k//2 habit
    module = torch_layer(same_text)
    atol = tolerance_for(module)
    x = random_input((2, 3, 7, 8), 4)
    expected = torch_reference(module, x)
    assert expected.shape == (2, 4, 7, 8)

    # PyTorch 'same' splits total = 3 as (1, 2): the extra unit goes right/bottom ...
    valid = torch.nn.Conv2d(3, 4, 4).double()
    valid.load_state_dict({k: v.double() for k, v in module.state_dict().items()})
    with torch.no_grad():
        explicit = valid(F.pad(torch.from_numpy(x.astype(np.float64)), (1, 2, 1, 2))).numpy()
    assert max_diff(explicit, expected) <= 1e-12
    # ... exactly like Keras 'same' at stride 1.
    assert max_diff(keras_output(keras_conv_from_torch(module, "same"), x), expected) <= atol

    # padding=k//2 is not 'same': in + 1 outputs.
    half = torch_layer(half_text)
    assert torch_reference(half, x).shape == (2, 4, 8, 9)

    # convbridge: 'same' maps to TF 'same' for every size; padding=2 keeps PyTorch's in+1 outputs.
    plan = translate_json(same_text)
    assert conv_step(plan)["padding"] == "same" and plan["exact_for"] == "every_input_size"
    for text in (same_text, half_text):
        emitted_outputs_match(text, (2, 3, 7, 8))
        check_emitted_against_torch(text, "keras", [(1, 3, 5, 6), (2, 3, 8, 7)])
    assert translate_json(half_text, (2, 3, 7, 8))["output_shape"] == [2, 4, 8, 9]


# ------------------------------------------------------------------------------------------------------------------
# Trap 8: depthwise with stride > 1 and dilation > 1
# ------------------------------------------------------------------------------------------------------------------


def test_trap8_depthwise_stride_and_dilation():
    text = "nn.Conv2d(4, 8, 3, stride=2, dilation=2, groups=4)"
    module = torch_layer(text)
    atol = tolerance_for(module)
    weight, _ = weights_of(module)
    kernel = np.transpose(weight.reshape(4, 2, 3, 3), (2, 3, 0, 1))  # (kh, kw, C, M)
    wrong = 0
    for size in (9, 10, 11):
        x = random_input((1, 4, size, size), size)
        expected = torch_reference(module, x)
        # Raw tf.nn.depthwise_conv2d accepts strides > 1 with dilations > 1 (with a warning) and is wrong.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = tf.nn.depthwise_conv2d(to_channels_last(x), kernel, (1, 2, 2, 1), "VALID", dilations=(2, 2))
        got = to_channels_first(y.numpy())
        expected_without_bias = expected - module.bias.detach().numpy().astype(np.float64)[None, :, None, None]
        if got.shape != expected.shape or max_diff(got, expected_without_bias) > 100 * atol:
            wrong += 1
        # Keras 3.15's DepthwiseConv2D accepts it and, in this version, is right.
        layer = keras.layers.DepthwiseConv2D(3, strides=2, dilation_rate=2, depth_multiplier=2, use_bias=True)
        layer.build((None, None, None, 4))
        layer.set_weights([kernel, module.bias.detach().numpy()])
        assert max_diff(keras_output(layer, x), expected) <= atol, f"Keras {keras.__version__} DepthwiseConv2D s=2 d=2"
    assert wrong == 3, "tf.nn.depthwise_conv2d with strides > 1 and dilations > 1 was expected to be wrong"

    # convbridge never asks TF for both at once: stride-1 dilated depthwise conv, then keep every 2nd output.
    plan = translate_json(text)
    assert [s["op"] for s in plan["steps"]] == ["conv", "subsample"]
    assert conv_step(plan)["kind"] == "depthwise" and conv_step(plan)["strides"] == [1, 1]
    for emit in ("keras", "tf"):
        check_emitted_against_torch(text, emit, [(2, 4, 9, 9), (2, 4, 10, 11), (1, 4, 5, 5)])
    for text1d3d in ("nn.Conv1d(4, 8, 3, stride=2, dilation=2, groups=4, padding=1)",
                     "nn.Conv3d(2, 4, 3, stride=2, dilation=2, groups=2)"):
        shape = (2, 4, 11) if "1d" in text1d3d else (1, 2, 6, 7, 8)
        emitted_outputs_match(text1d3d, shape)


# ------------------------------------------------------------------------------------------------------------------
# Trap 9: replicate is not SYMMETRIC
# ------------------------------------------------------------------------------------------------------------------


def test_trap9_replicate_is_not_symmetric():
    row = np.array([1, 2, 3, 4], np.float32)
    symmetric = tf.pad(row, [[2, 2]], mode="SYMMETRIC").numpy()
    replicate = F.pad(torch.from_numpy(row)[None, None], (2, 2), mode="replicate")[0, 0].numpy()
    np.testing.assert_array_equal(symmetric, [2, 1, 1, 2, 3, 4, 4, 3])
    np.testing.assert_array_equal(replicate, [1, 1, 1, 2, 3, 4, 4, 4])
    # REFLECT, by contrast, is PyTorch's reflect.
    np.testing.assert_array_equal(
        tf.pad(row, [[2, 2]], mode="REFLECT").numpy(),
        F.pad(torch.from_numpy(row)[None, None], (2, 2), mode="reflect")[0, 0].numpy(),
    )

    text = "nn.Conv2d(3, 4, 3, padding=2, padding_mode='replicate')"
    module = torch_layer(text)
    atol = tolerance_for(module)
    x = random_input((2, 3, 7, 8), 9)
    expected = torch_reference(module, x)
    naive = keras_conv_from_torch(module, "valid")
    padded = tf.pad(to_channels_last(x), [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC")
    naive_out = to_channels_first(np.asarray(naive(padded)))
    assert naive_out.shape == expected.shape
    assert max_diff(naive_out, expected) > 100 * atol, "SYMMETRIC padding unexpectedly reproduced replicate"

    for emit in ("keras", "tf"):
        source = load_emitted(text, emit).source
        assert '"SYMMETRIC"' not in source and "'SYMMETRIC'" not in source and '"symmetric"' not in source
        check_emitted_against_torch(text, emit, [(2, 3, 7, 8), (1, 3, 1, 1), (1, 3, 4, 5)])
    plan = translate_json(text)
    assert plan["steps"][0]["op"] == "pad" and plan["steps"][0]["mode"] == "replicate"
    # Asymmetric 'same' split with replicate, in 1-D and 3-D too.
    for other, shape in (("nn.Conv1d(3, 4, 4, padding='same', padding_mode='replicate')", (2, 3, 5)),
                         ("nn.Conv3d(2, 3, 2, padding='same', padding_mode='replicate')", (1, 2, 3, 4, 5))):
        emitted_outputs_match(other, shape)


# ------------------------------------------------------------------------------------------------------------------
# Trap 10: TF VALID with input smaller than the kernel
# ------------------------------------------------------------------------------------------------------------------


def test_trap10_tf_valid_smaller_than_kernel(tf_without_onednn):
    x = random_input((1, 3, 2, 2), 10)
    w = np.ones((3, 3, 3, 4), np.float32)
    # Raw TF does not raise. With oneDNN off (the reference's setting) the output is 0-sized; with the default
    # oneDNN build on x86 it is not even a 4-channel tensor. Either way it is no convolution result.
    y = tf.nn.conv2d(to_channels_last(x), w, 1, "VALID")
    assert 0 in y.shape or y.shape[-1] != 4, f"TF gave {y.shape}"
    assert tf_without_onednn["valid_small_shape"] == [1, 0, 0, 4]
    # PyTorch and Keras raise.
    module = torch_layer("nn.Conv2d(3, 4, 3)")
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        module(torch.from_numpy(x))
    # A fresh Keras layer checks the output size when it builds. (A layer already built for (None, None, None, 3)
    # skips that check: with oneDNN on, a bias-free one then silently returns the same garbage as raw TF.)
    with pytest.raises(ValueError, match="output size would be zero or negative"):
        keras.layers.Conv2D(4, 3)(to_channels_last(x))
    # convbridge refuses the too-small input shape with exit status 2, naming the axis and sizes.
    for emit in ("keras", "tf", "json", "explain"):
        proc = run_cli("translate", "nn.Conv2d(3, 4, 3)", "--input-shape", "1,3,2,2", "--emit", emit)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.startswith("convbridge: error:") and "kernel" in proc.stderr and "2" in proc.stderr
    # and the smallest accepted input (3x3, or 1x1 with padding=1) translates exactly.
    emitted_outputs_match("nn.Conv2d(3, 4, 3)", (1, 3, 3, 3))
    emitted_outputs_match("nn.Conv2d(3, 4, 3, padding=1)", (1, 3, 1, 1))


# ------------------------------------------------------------------------------------------------------------------
# Trap 11: channels_last
# ------------------------------------------------------------------------------------------------------------------


def test_trap11_channels_last(tf_without_onednn):
    # NCHW Conv2D has no plain-TF CPU kernel (oneDNN off). NOTE: the default oneDNN build of TF 2.21 on x86 does run
    # NCHW conv2d on CPU, so the reference's "fails on CPU" holds only with TF_ENABLE_ONEDNN_OPTS=0.
    assert tf_without_onednn["nchw"].startswith("UnimplementedError"), tf_without_onednn["nchw"]
    assert "NHWC" in tf_without_onednn["nchw"]

    text = "nn.Conv2d(3, 4, 3, stride=2, padding=1)"
    for emit in ("keras", "tf"):
        source = load_emitted(text, emit).source
        assert "NCHW" not in source and "channels_first" not in source
    module = torch_layer(text)
    weight, bias = weights_of(module)
    layer = load_emitted(text, "keras").module.make_layer(weight, bias)
    sublayers = getattr(layer, "layers", [layer])
    formats = {getattr(l, "data_format", None) for l in sublayers} - {None}
    assert formats == {"channels_last"}, formats

    # The emitted code takes (N, H, W, C) and returns (N, H, W, C).
    x = random_input((2, 3, 9, 10), 11)
    expected = torch_reference(module, x)
    y = np.asarray(layer(np.ascontiguousarray(to_channels_last(x))))
    assert y.shape == (2, 5, 5, 4)
    assert max_diff(to_channels_first(y), expected) <= tolerance_for(module)

    # Flatten order: PyTorch flattens (C, H, W), a channels_last model (H, W, C); a Dense layer after it needs its
    # weights permuted. The plan's notes say so.
    torch_flat = expected.reshape(2, -1)
    tf_flat = y.reshape(2, -1).astype(np.float64)
    assert max_diff(tf_flat, torch_flat) > 1e-3
    assert max_diff(np.transpose(y, (0, 3, 1, 2)).reshape(2, -1), torch_flat) <= tolerance_for(module)
    notes = " ".join(translate_json(text)["notes"])
    assert "channels_last" in notes and "Flatten" in notes


# ------------------------------------------------------------------------------------------------------------------
# Keras refuses strides > 1 with dilation_rate > 1
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, shape",
    [
        pytest.param("nn.Conv1d(3, 4, 3, stride=2, dilation=2, padding=1)", (2, 3, 11), id="1d"),
        pytest.param("nn.Conv2d(3, 4, 3, stride=2, dilation=2, padding=1)", (2, 3, 11, 12), id="2d"),
        pytest.param("nn.Conv3d(4, 6, 3, stride=2, dilation=2, groups=2, padding=1)", (1, 4, 7, 8, 9), id="3d-groups"),
    ],
)
def test_keras_rejects_stride_with_dilation(text, shape):
    module = torch_layer(text)
    x = random_input(shape, 12)
    with pytest.raises(ValueError, match="strides > 1.*dilation_rate > 1"):
        keras_output(keras_conv_from_torch(module, "valid"), x)
    with pytest.raises(ValueError, match="strides > 1.*dilation_rate > 1"):
        tf.nn.convolution(to_channels_last(x), np.zeros((*module.kernel_size, module.in_channels // module.groups,
                                                          module.out_channels), np.float32),
                          strides=2, dilations=2, padding="VALID")
    # The raw op takes both (TF's Conv2D/Conv3D attributes) and is exact with more than one input channel per
    # group: the plan is one tf_conv step, not a stride-1 conv (s**rank times the outputs) sampled at x[::s].
    plan = translate_json(text)
    assert [s["op"] for s in plan["steps"]] == ["conv"]
    assert conv_step(plan)["implementation"] == "tf_conv"
    assert conv_step(plan)["strides"] == list(module.stride) and conv_step(plan)["dilation_rate"] == list(module.dilation)
    emitted_outputs_match(text, shape)
    assert max_diff(keras_output(convbridge.to_keras(module), x), torch_reference(module, x)) <= tolerance_for(module)


def test_single_channel_stride_with_dilation_keeps_the_split_plan():
    """With one input channel per group, the one-op form of a strided dilated conv reaches the oneDNN path that is
    wrong for a 1-wide output and a batch > 1 (as in test_fact_tf_onednn_single_channel_width1_stride_bug; 48 of
    13408 single-channel stride-and-dilation configurations swept here): the planner keeps the stride-1 conv +
    subsample there, and it is exact on exactly those shapes."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 3, 1)).astype(np.float32)  # N=2, H=W=3, C=1
    k = rng.standard_normal((1, 2, 1, 1)).astype(np.float32)  # stride (1, 2), dilation (2, 1): W_out = 1
    expected = F.conv2d(torch.from_numpy(np.moveaxis(x, -1, 1)).double(),
                        torch.from_numpy(np.transpose(k, (3, 2, 0, 1))).double(), stride=(1, 2),
                        dilation=(2, 1)).numpy()
    got = np.moveaxis(tf.nn.conv2d(x, k, (1, 1, 2, 1), "VALID", dilations=(1, 2, 1, 1)).numpy(), -1, 1)
    assert got.shape == expected.shape == (2, 1, 3, 1)
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0":
        assert not (max_diff(got, expected) <= 1e-2), "TF's oneDNN bug seems fixed for this shape: revisit the rule"
    text = "nn.Conv2d(1, 1, (1, 2), stride=(1, 2), dilation=(2, 1))"
    plan = translate_json(text)
    assert [s["op"] for s in plan["steps"]] == ["conv", "subsample"]
    assert conv_step(plan)["strides"] == [1, 1]
    for emit in ("keras", "tf"):
        check_emitted_against_torch(text, emit, [(2, 1, 3, 3), (3, 1, 5, 3), (2, 1, 3, 4)])
    module = torch_layer(text)
    for shape in ((2, 1, 3, 3), (3, 1, 5, 3)):
        x = random_input(shape, 5)
        assert max_diff(keras_output(convbridge.to_keras(module), x), torch_reference(module, x)) <= 1e-5


def test_fact_tf_cpu_has_no_gradient_for_grouped_or_padded_dilated_conv():
    """Why tf_conv takes its gradient from the portable form: TF's CPU kernels refuse these gradients."""
    x = tf.random.normal((1, 6, 6, 4))
    for kernel, call in ((tf.random.normal((3, 3, 2, 4)), lambda x, k: tf.nn.conv2d(x, k, 1, "SAME")),
                         (tf.random.normal((3, 3, 4, 4)),
                          lambda x, k: tf.nn.conv2d(x, k, 1, [[0, 0], [2, 2], [2, 2], [0, 0]], dilations=2))):
        for dtype in (tf.float64,) + ((tf.float32,) if kernel.shape[2] == 4 else ()):
            xd, kd = tf.cast(x, dtype), tf.cast(kernel, dtype)
            with pytest.raises((tf.errors.InvalidArgumentError, tf.errors.UnimplementedError)):
                with tf.GradientTape() as tape:
                    tape.watch(kd)
                    y = call(xd, kd)
                tape.gradient(y, kd)


# ------------------------------------------------------------------------------------------------------------------
# Bugs of the article example: PyTorch has no padding='full'
# ------------------------------------------------------------------------------------------------------------------


def test_article_example_full_padding_does_not_exist():
    text = "nn.Conv2d(3, 16, 3, padding='full')"
    with pytest.raises(ValueError, match="full"):
        torch_layer(text)
    for emit in ("explain", "keras", "tf", "json"):
        proc = run_cli("translate", text, "--emit", emit)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stdout == ""
        assert proc.stderr.startswith("convbridge: error:") and proc.stderr.count("convbridge: error:") == 1
        assert "'full'" in proc.stderr and "padding" in proc.stderr


def test_article_example_keras_spelling_is_not_pytorch():
    """`strides=2` (the Keras name) is a TypeError in PyTorch; convbridge exits 2 and suggests 'stride'."""
    text = "nn.Conv2d(3, 16, 3, strides=2, padding=1)"
    with pytest.raises(TypeError, match="strides"):
        torch_layer(text)
    proc = run_cli("translate", text)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "'strides'" in proc.stderr and "'stride'" in proc.stderr


# ------------------------------------------------------------------------------------------------------------------
# Not in the reference: a oneDNN bug of TF 2.21's default CPU build (found by test_random_layers).
# Conv2D/Conv3D with ONE input channel, stride > 1 along W and a single output column (W_out == 1) return garbage
# (zeros or values ~1e30); with TF_ENABLE_ONEDNN_OPTS=0 the same call is right. Explicit padding does not avoid it.
# ------------------------------------------------------------------------------------------------------------------

ONEDNN_ON = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"


@pytest.mark.skipif(not ONEDNN_ON, reason="the bug lives in TF's oneDNN kernels")
def test_fact_tf_onednn_single_channel_width1_stride_bug():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 3, 1)).astype(np.float32)  # N=2, H=2, W=3, C=1
    k = rng.standard_normal((1, 2, 1, 1)).astype(np.float32)
    expected = F.conv2d(torch.from_numpy(np.moveaxis(x, -1, 1)).double(),
                        torch.from_numpy(np.transpose(k, (3, 2, 0, 1))).double(), stride=(1, 2)).numpy()
    got = np.moveaxis(tf.nn.conv2d(x, k, (1, 1, 2, 1), "VALID").numpy(), -1, 1)
    assert got.shape == expected.shape == (2, 1, 2, 1)
    # NaN counts as wrong too (the broken kernel returns zeros, huge values or NaN).
    assert not (max_diff(got, expected) <= 1e-2), "TF's oneDNN Conv2D bug seems fixed: revisit this test"
    # Two input channels, or a wider output, are computed correctly.
    x2 = np.concatenate([x, x], axis=-1)
    k2 = np.concatenate([k, k], axis=2)
    assert max_diff(np.moveaxis(tf.nn.conv2d(x2, k2, (1, 1, 2, 1), "VALID").numpy(), -1, 1), 2 * expected) < 1e-5


@pytest.mark.parametrize(
    "text, shape, emit",
    [
        pytest.param("nn.Conv2d(1, 1, (1, 2), stride=(1, 2))", (2, 1, 2, 3), "keras", id="2d-valid-keras"),
        pytest.param("nn.Conv2d(1, 1, (1, 2), stride=(1, 2))", (2, 1, 2, 3), "tf", id="2d-valid-tf"),
        pytest.param("nn.Conv2d(1, 1, (1, 2), stride=(1, 2), padding=1, bias=False)", (2, 1, 1, 1), "keras",
                     id="2d-padded-keras"),
        pytest.param("nn.Conv2d(1, 4, 3, stride=(1, 3), padding=(1, 0))", (2, 1, 5, 4), "keras", id="2d-k3-keras"),
        pytest.param("nn.Conv2d(1, 4, 3, stride=(1, 3), padding=(1, 0))", (2, 1, 5, 4), "tf", id="2d-k3-tf"),
        pytest.param("nn.Conv3d(2, 4, (1, 3, 2), stride=(3, 1, 2), padding=1, groups=2)", (2, 2, 2, 5, 1), "tf",
                     id="3d-groups-split-tf"),
        pytest.param("nn.Conv3d(2, 4, (1, 3, 2), stride=(3, 1, 2), padding=1, groups=2)", (2, 2, 2, 5, 1), "keras",
                     id="3d-groups-keras"),
    ],
)
def test_exact_despite_tf_onednn_width1_bug(text, shape, emit):
    """convbridge promises exact code on the real TF; these layers hit the oneDNN bug above."""
    check_emitted_against_torch(text, emit, [shape])
    check_emitted_against_torch(text, emit, [shape], cli_input_shape=shape)


# ==================================================================================================================
# Transposed convolutions (traps 3-6, and TF's CPU limits). Notation: eff = (k-1)*d + 1, L = (in-1)*s + eff (the
# full transposed length), out = L - 2p + op; PyTorch's y[x] = z[x + p], and positions x + p >= L hold 0 + bias.
# ==================================================================================================================


def keras_transposed_from_torch(module: torch.nn.Module, padding: str, output_padding=None) -> keras.layers.Layer:
    """A plain Keras ConvNDTranspose with the PyTorch layer's weights (the 'naive' translation): the kernel is
    PyTorch's (in, out, *k) permuted to (*k, out, in), no spatial flip."""
    rank = len(module.kernel_size)
    weight, bias = weights_of(module)
    kernel = np.transpose(weight, (*range(2, 2 + rank), 1, 0))
    cls = {1: keras.layers.Conv1DTranspose, 2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}[rank]
    layer = cls(module.out_channels, module.kernel_size, strides=module.stride, padding=padding,
                output_padding=output_padding, dilation_rate=module.dilation, use_bias=bias is not None)
    layer.build((None, *([None] * rank), module.in_channels))
    layer.set_weights([kernel] if bias is None else [kernel, bias])
    return layer


def transposed_outputs_match(text: str, shapes) -> None:
    """convbridge is exact for the transposed layer at every shape: both emitters, with and without --input-shape,
    and convbridge.to_keras (with and without input_shape)."""
    for shape in shapes:
        emitted_outputs_match(text, shape)
    module = torch_layer(text)
    atol = tolerance_for(module)
    general = convbridge.to_keras(module)
    for shape in shapes:
        x = random_input(shape, 31)
        expected = torch_reference(module, x)
        for label, layer in (("to_keras", general), ("to_keras(input_shape)", convbridge.to_keras(module, shape))):
            got = keras_output(layer, x)
            assert got.shape == expected.shape, f"{label} {text} at {shape}: {got.shape} != {expected.shape}"
            assert max_diff(got, expected) <= atol, f"{label} {text} at {shape}: {max_diff(got, expected):.3e}"


def transposed_step(plan: dict) -> dict:
    (step,) = [s for s in plan["steps"] if s["op"] == "conv_transpose"]
    return step


# ------------------------------------------------------------------------------------------------------------------
# Trap 3: Keras 'same' transposed vs PyTorch with p > 0 and op > 0: same shape, shifted by one
# ------------------------------------------------------------------------------------------------------------------


def test_trap3_keras_same_transposed_shifted_by_one():
    text = "nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)"
    module = torch_layer(text)
    atol = tolerance_for(module)
    x = random_input((2, 3, 7, 8), 3)
    expected = torch_reference(module, x)
    assert expected.shape == (2, 4, 14, 16)  # (in-1)*2 - 2 + 3 + 1 = 2*in
    # L = 2*in + 1, out = 2*in: PyTorch crops z[1:], TF 'same' keeps z[floor((L - out) / 2):] = z[0:].
    for output_padding in (None, 1):  # Keras 'same': in*s for None, (in-1)*s + eff%2 + op = 2*in for op=1
        naive = keras_output(keras_transposed_from_torch(module, "same", output_padding), x)
        assert naive.shape == expected.shape, f"Keras 'same' (output_padding={output_padding}) shape {naive.shape}"
        assert max_diff(naive, expected) > 100 * atol, "Keras 'same' unexpectedly equals PyTorch p=1, op=1"
        # ... because it is the same result one pixel earlier along both axes:
        assert max_diff(naive[:, :, 1:, 1:], expected[:, :, :-1, :-1]) <= atol

    # convbridge never uses 'same' here (it is never exact for this layer) and is exact at every size.
    general = translate_json(text)
    assert transposed_step(general)["padding"] == "explicit" and general["exact_for"] == "every_input_size"
    for shape in ((2, 3, 7, 8), (1, 3, 8, 7)):
        assert transposed_step(translate_json(text, shape))["padding"] != "same"
    transposed_outputs_match(text, [(2, 3, 7, 8), (1, 3, 8, 7), (1, 3, 1, 1)])

    # Where Keras 'same' IS PyTorch (k=4, s=2, p=1: L - out = 2, TF starts at z[1] like p=1), both agree.
    same_text = "nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1)"
    same_module = torch_layer(same_text)
    x = random_input((2, 3, 5, 6), 4)
    assert max_diff(keras_output(keras_transposed_from_torch(same_module, "same"), x),
                    torch_reference(same_module, x)) <= tolerance_for(same_module)
    transposed_outputs_match(same_text, [(2, 3, 5, 6), (1, 3, 6, 5)])


# ------------------------------------------------------------------------------------------------------------------
# Trap 4: Keras 'valid' transposed with output_padding=None and s > eff gives in*s, not L
# ------------------------------------------------------------------------------------------------------------------


def test_trap4_keras_valid_output_padding_none():
    text = "nn.ConvTranspose2d(3, 4, 2, stride=3)"  # eff = 2 < s = 3
    module = torch_layer(text)
    atol = tolerance_for(module)
    x = random_input((2, 3, 5, 6), 5)
    expected = torch_reference(module, x)
    assert expected.shape == (2, 4, 14, 17)  # L = (in-1)*3 + 2
    naive = keras_output(keras_transposed_from_torch(module, "valid", None), x)
    assert naive.shape == (2, 4, 15, 18), f"Keras 'valid' with output_padding=None gave {naive.shape}"  # in * s
    # The first L outputs are PyTorch's; the extra row/column holds only the bias.
    assert max_diff(naive[:, :, :14, :17], expected) <= atol
    bias = module.bias.detach().numpy()
    assert max_diff(naive[:, :, 14, :], np.broadcast_to(bias[None, :, None], (2, 4, 18)).astype(np.float64)) == 0
    # With output_padding passed explicitly (0), Keras 'valid' is L = PyTorch.
    explicit = keras_output(keras_transposed_from_torch(module, "valid", (0, 0)), x)
    assert explicit.shape == expected.shape and max_diff(explicit, expected) <= atol

    # convbridge passes output_padding explicitly and is exact.
    source = load_emitted(text, "keras").source
    assert "output_padding=(0, 0)" in source, "the Keras code must pass output_padding explicitly"
    assert transposed_step(translate_json(text))["extra"] == [0, 0]
    transposed_outputs_match(text, [(2, 3, 5, 6), (1, 3, 1, 1), (1, 3, 2, 3)])
    transposed_outputs_match("nn.ConvTranspose1d(3, 4, 1, stride=3)", [(2, 3, 5), (1, 3, 1)])


# ------------------------------------------------------------------------------------------------------------------
# Trap 5: output_padding limits: PyTorch op < max(s, d); Keras op < s
# ------------------------------------------------------------------------------------------------------------------


def test_trap5_output_padding_limits():
    text = "nn.ConvTranspose1d(2, 2, 3, stride=1, dilation=3, output_padding=2)"
    module = torch_layer(text)
    # Real Keras rejects output_padding >= strides, even where dilation would allow it in PyTorch.
    with pytest.raises(ValueError, match="output_padding.*strictly less than.*strides"):
        keras.layers.Conv1DTranspose(2, 3, strides=1, dilation_rate=3, output_padding=2)
    with pytest.raises(ValueError, match="output_padding.*strictly less than.*strides"):
        keras.layers.Conv2DTranspose(4, 3, strides=2, output_padding=2)
    # PyTorch accepts op = 2 >= stride = 1 because dilation 3 > 2: out = (in-1) + 6 + 2 + 1 = in + 8.
    x = random_input((2, 2, 5), 6)
    assert torch_reference(module, x).shape == (2, 2, 13)
    # ... and rejects op >= max(stride, dilation).
    too_large = torch_layer("nn.ConvTranspose1d(2, 2, 3, stride=1, dilation=3, output_padding=3)")
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        too_large(torch.from_numpy(x))
    proc = run_cli("translate", "nn.ConvTranspose1d(2, 2, 3, stride=1, dilation=3, output_padding=3)")
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.startswith("convbridge: error:")
    assert "output_padding=3" in proc.stderr

    # convbridge is exact where Keras' own argument cannot express it (the extra outputs: zero taps, then bias).
    plan = translate_json(text)
    assert all(e < s for e, s in zip(transposed_step(plan)["extra"], transposed_step(plan)["strides"]))
    transposed_outputs_match(text, [(2, 2, 5), (1, 2, 6), (1, 2, 1)])
    transposed_outputs_match("nn.ConvTranspose2d(3, 4, 3, stride=(2, 1), dilation=(1, 3), output_padding=(1, 2))",
                             [(2, 3, 4, 5), (1, 3, 1, 1)])
    transposed_outputs_match("nn.ConvTranspose3d(2, 3, 2, stride=2, dilation=3, padding=1, output_padding=2)",
                             [(1, 2, 2, 3, 4)])


# ------------------------------------------------------------------------------------------------------------------
# Trap 6: PyTorch adds the bias to the padded region of a transposed conv too
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, shape, region",
    [
        # L = 3*in, out = L + 2: the last 2 outputs per axis lie past the full result (x + p >= L).
        pytest.param("nn.ConvTranspose2d(3, 4, 3, stride=3, output_padding=2)", (2, 3, 4, 5), 2, id="2d-p0-op2"),
        # p = 1, op = 2: out = L - 2 + 2, the last op - p = 1 output lies past the full result.
        pytest.param("nn.ConvTranspose1d(3, 4, 3, stride=3, padding=1, output_padding=2)", (2, 3, 5), 1,
                     id="1d-p1-op2"),
        # op >= stride through dilation: the last 2 outputs.
        pytest.param("nn.ConvTranspose1d(2, 2, 3, stride=1, dilation=3, output_padding=2)", (2, 2, 4), 2,
                     id="1d-dilation3-op2"),
        pytest.param("nn.ConvTranspose3d(2, 3, 2, stride=2, output_padding=1, groups=1)", (1, 2, 2, 3, 2), 1,
                     id="3d-op1"),
        pytest.param("nn.ConvTranspose2d(4, 6, 2, stride=3, output_padding=(2, 1), groups=2)", (2, 4, 3, 4), 1,
                     id="2d-groups2"),
    ],
)
def test_trap6_bias_in_padded_region(text, shape, region):
    module = torch_layer(text)
    rank = len(module.kernel_size)
    x = random_input(shape, 7)
    expected = torch_reference(module, x)
    bias = module.bias.detach().numpy()
    assert np.all(bias != 0)
    channel_bias = bias.reshape((1, -1) + (1,) * rank)
    past_end = [(slice(None), slice(None)) + (slice(None),) * axis + (slice(-region, None),) for axis in range(rank)]
    # PyTorch: those outputs are exactly the bias (0 + bias), in float64 and float32.
    for index in past_end:
        assert np.array_equal(expected[index], np.broadcast_to(channel_bias.astype(np.float64), expected[index].shape))
        with torch.no_grad():
            y32 = module(torch.from_numpy(x)).numpy()
        assert np.array_equal(y32[index], np.broadcast_to(channel_bias, y32[index].shape))
    # A translation that zero-pads the full result after adding the bias would put 0 there: not PyTorch.

    # convbridge: exact everywhere, and those outputs are exactly the float32 bias.
    transposed_outputs_match(text, [shape])
    module_atol = tolerance_for(module)
    weight, b32 = weights_of(module)
    x_last = np.ascontiguousarray(to_channels_last(x))
    outputs = {
        "keras": load_emitted(text, "keras").module.make_layer(weight, b32)(x_last),
        "tf": load_emitted(text, "tf").module.conv(x_last, weight, b32),
        "to_keras": convbridge.to_keras(module)(x_last),
    }
    for label, y in outputs.items():
        got = to_channels_first(np.asarray(y))
        assert got.shape == expected.shape and max_diff(got, expected) <= module_atol, label
        for index in past_end:
            assert np.array_equal(got[index], np.broadcast_to(channel_bias, got[index].shape)), (
                f"{label}: outputs past the full transposed result must be exactly the bias ({text}, {shape})")

    # Without a bias, those outputs are exactly 0 in both.
    no_bias = text[:-1] + ", bias=False)"
    module0 = torch_layer(no_bias)
    expected0 = torch_reference(module0, x)
    weight0, _ = weights_of(module0)
    got0 = to_channels_first(np.asarray(load_emitted(no_bias, "tf").module.conv(x_last, weight0)))
    for index in past_end:
        assert np.all(expected0[index] == 0) and np.all(got0[index] == 0)
    transposed_outputs_match(no_bias, [shape])


# ------------------------------------------------------------------------------------------------------------------
# TF's transposed conv on CPU: no dilation > 1 (without oneDNN), no groups
# ------------------------------------------------------------------------------------------------------------------

_TRANSPOSED_PROBE = r"""
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
out = {}
x = np.ones((1, 5, 5, 4), np.float32)
def probe(name, call):
    try:
        out[name] = "ok " + str(list(call().shape))
    except Exception as e:
        out[name] = type(e).__name__ + ": " + str(e)
probe("dilated_2d", lambda: tf.nn.conv2d_transpose(x, np.ones((3, 3, 6, 4), np.float32), (1, 9, 9, 6), 1, "VALID",
                                                   dilations=2))
probe("dilated_1d", lambda: tf.nn.conv1d_transpose(x[:, 0], np.ones((3, 6, 4), np.float32), (1, 9, 6), 1, "VALID",
                                                   dilations=2))
probe("dilated_3d", lambda: tf.nn.conv3d_transpose(x[:, None], np.ones((3, 3, 3, 6, 4), np.float32), (1, 5, 9, 9, 6),
                                                   1, "VALID", dilations=2))
# groups=2: each output channel would read in/G = 2 input channels; TF's kernel must have all 4.
probe("grouped_2d", lambda: tf.nn.conv2d_transpose(x, np.ones((3, 3, 3, 2), np.float32), (1, 7, 7, 6), 1, "VALID"))
print(json.dumps(out))
"""


def _transposed_probe(onednn: str) -> dict:
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", _TRANSPOSED_PROBE], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_tf_transposed_conv_rejects_dilation_and_has_no_groups_on_cpu():
    # TF's own CPU kernels (oneDNN off, the reference's setting): dilation > 1 is rejected for 1-D, 2-D and 3-D.
    plain = _transposed_probe("0")
    for name in ("dilated_1d", "dilated_2d", "dilated_3d"):
        assert plain[name].startswith("InvalidArgumentError"), (name, plain[name])
        assert "not yet support dilation rates larger than 1" in plain[name], (name, plain[name])
    # No grouped transposed conv: a kernel with in/G input channels is refused.
    assert plain["grouped_2d"].startswith("InvalidArgumentError"), plain["grouped_2d"]
    # NOTE (not in the reference): TF 2.21's default oneDNN build on x86 DOES run dilated transposed convs on CPU
    # (correctly, checked below), so "rejected on CPU" holds only with TF_ENABLE_ONEDNN_OPTS=0. Grouped kernels
    # fail there too (AbortedError from oneDNN).
    default = _transposed_probe("1")
    for name in ("dilated_1d", "dilated_2d", "dilated_3d"):
        assert default[name].startswith("ok"), (name, default[name])
    assert not default["grouped_2d"].startswith("ok"), default["grouped_2d"]

    # In this process: tf.nn.conv2d_transpose with dilations=2 either is rejected (oneDNN off) or equals PyTorch.
    text = "nn.ConvTranspose2d(3, 4, 3, stride=2, dilation=2)"
    module = torch_layer(text)
    weight, _ = weights_of(module)
    x = random_input((1, 3, 5, 6), 8)
    reference = torch_reference(module, x) - module.bias.detach().numpy().astype(np.float64)[None, :, None, None]
    kernel = np.transpose(weight, (2, 3, 1, 0))
    try:
        y = tf.nn.conv2d_transpose(to_channels_last(x), kernel, (1, 13, 15, 4), 2, "VALID", dilations=2)
    except tf.errors.InvalidArgumentError as error:
        assert not ONEDNN_ON and "dilation rates larger than 1" in str(error)
    else:
        assert ONEDNN_ON, "TF without oneDNN ran a dilated transposed conv on CPU: revisit this test"
        assert max_diff(to_channels_first(y.numpy()), reference) <= tolerance_for(module)
    # Grouped: raw TF fails on CPU, and Keras' ConvNDTranspose has no groups argument.
    with pytest.raises(tf.errors.OpError):
        tf.nn.conv2d_transpose(np.ones((1, 5, 5, 4), np.float32), np.ones((3, 3, 3, 2), np.float32), (1, 7, 7, 6),
                               1, "VALID")
    with pytest.raises(ValueError, match="groups"):
        keras.layers.Conv2DTranspose(6, 3, groups=2)

    # convbridge: the dilation is spread into the kernel with zeros (TF sees dilation 1), groups run one by one.
    dilated = translate_json(text)
    assert transposed_step(dilated)["kernel_size"] == [5, 5]
    for emit in ("keras", "tf"):
        code = "\n".join(line.split("#")[0] for line in load_emitted(text, emit).source.splitlines())
        assert not re.search(r"dilations?(_rate)?=\(?[2-9]", code), f"{emit} code asks TF for dilation > 1"
    transposed_outputs_match(text, [(1, 3, 5, 6), (2, 3, 4, 3)])
    grouped_text = "nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)"
    assert transposed_step(translate_json(grouped_text))["groups"] == 2
    transposed_outputs_match(grouped_text, [(2, 4, 5, 6), (1, 4, 1, 1)])
    for other, shape in (("nn.ConvTranspose1d(4, 6, 3, stride=2, dilation=2, groups=2, output_padding=1)", (2, 4, 5)),
                         ("nn.ConvTranspose3d(4, 4, 3, stride=2, dilation=2, padding=1, groups=4)", (1, 4, 3, 4, 2))):
        transposed_outputs_match(other, [shape])


# ------------------------------------------------------------------------------------------------------------------
# Not in the reference: PyTorch's own check of the transposed output size, and its oneDNN path that skips it
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN:UserWarning")
def test_fact_torch_transposed_output_size_zero():
    """PyTorch's rule is out >= 1 ("Output size is too small"); its oneDNN CPU path (the default) skips the check for
    batch > 1 and returns an empty tensor for out == 0. convbridge follows the rule at every batch size."""
    text = "nn.ConvTranspose2d(3, 4, 3, padding=2)"  # out = in - 1 - 4 + 3 = in - 2
    module = torch_layer(text)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        module(torch.zeros(1, 3, 2, 5))
    with torch.backends.mkldnn.flags(enabled=False), pytest.raises(RuntimeError, match="Output size is too small"):
        module(torch.zeros(2, 3, 2, 5))
    with torch.no_grad():
        y = module(torch.zeros(2, 3, 2, 5))
    assert tuple(y.shape) == (2, 4, 0, 3), "PyTorch's oneDNN path no longer returns an empty tensor: revisit"
    for batch in (1, 2):
        proc = run_cli("translate", text, "--input-shape", f"{batch},3,2,5", "--emit", "json")
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert proc.stderr.startswith("convbridge: error:") and "Output size is too small" in proc.stderr
    transposed_outputs_match(text, [(2, 3, 3, 5), (1, 3, 3, 3)])


# ==================================================================================================================
# The reverse direction (Keras 3 layer -> PyTorch): the traps seen from Keras. The REAL Keras layer (float32, TF
# backend) is the reference; PyTorch runs in float64; tolerance from reverse_helpers.keras_tolerance (4e-5 * sum over
# the layer's accumulation stages of sqrt(K_stage)).
# ==================================================================================================================

import reverse_helpers as rh  # noqa: E402 - the reverse section's helpers (shared with test_reverse.py)


def _keras_kernel_as_torch(layer, name="kernel"):
    """A Keras conv kernel (*k, in/G, out) -> PyTorch (out, in/G, *k), float64 tensor."""
    kernel = rh.keras_weights(layer)[name]
    rank = kernel.ndim - 2
    return torch.from_numpy(np.transpose(kernel, (rank + 1, rank, *range(rank))).astype(np.float64))


def _keras_bias(layer):
    bias = rh.keras_weights(layer).get("bias")
    return None if bias is None else torch.from_numpy(bias.astype(np.float64))


def _channels_first64(x_last: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x_last.astype(np.float64), -1, 1)))


def _channels_last(y: torch.Tensor) -> np.ndarray:
    return np.moveaxis(y.detach().numpy(), 1, -1)


def _reverse_modules(text, layer, shape_for_plan):
    """[(label, module)] convbridge offers for the Keras layer with --input-shape / input_shape=shape_for_plan:
    make_module() of the CLI's --emit torch code, and convbridge.to_torch."""
    plan = convbridge.translate(text, input_shape=shape_for_plan)
    code, path = rh.cli_torch_code(text, tuple(shape_for_plan))
    return [(f"cli --emit torch --input-shape {rh.shape_text(shape_for_plan)} ({path})",
             rh.make_module_from_code(code, plan.weight_names, layer)),
            (f"convbridge.to_torch(layer, input_shape={tuple(shape_for_plan)})",
             convbridge.to_torch(layer, input_shape=shape_for_plan))]


def _assert_reverse_exact(text, layer, plan_shape, shapes):
    """convbridge's modules for --input-shape plan_shape reproduce the real Keras layer at every shape."""
    atol = rh.keras_tolerance(layer)
    modules = _reverse_modules(text, layer, plan_shape)
    for shape in shapes:
        x = rh.keras_input(shape, text)
        expected, error = rh.keras_forward(layer, x)
        assert error is None, f"Keras rejects {text} at {shape}: {error}"
        for label, module in modules:
            rh.assert_matches_keras(rh.torch_forward64(module, x), expected, atol, rh.describe(text, shape, label))


def _plan_steps(text, shape):
    return [{k: v for k, v in step.items() if k not in ("why", "layout")} for step in rh.cli_json(text, shape)["steps"]]


def test_reverse_tf_same_stride2_depends_on_input_size():
    """Trap 1 from Keras: 'same' at stride 2 pads (0, 1) at 224 and (1, 1) at 225, so no fixed nn.Conv2d padding
    reproduces both sizes; convbridge computes the pads at run time for unknown sizes (TFSamePad) and uses plain
    nn.Conv2d(padding=1), behind a guard refusing other sizes, when the size is known to be 225."""
    text = "keras.layers.Conv2D(4, 3, strides=2, padding='same')"
    layer = rh.keras_layer(text, 3)
    atol = rh.keras_tolerance(layer)
    weight, bias = _keras_kernel_as_torch(layer), _keras_bias(layer)

    runs = {}
    for size, pads in ((224, (0, 1)), (225, (1, 1))):
        shape = (1, size, size, 3)
        x = rh.keras_input(shape, text)
        expected, error = rh.keras_forward(layer, x)
        assert error is None and expected.shape == (1, (size + 1) // 2, (size + 1) // 2, 4)
        # The real Keras layer is zero padding `pads` on each axis, then a 'valid' stride-2 conv.
        manual = F.conv2d(F.pad(_channels_first64(x), (*pads, *pads)), weight, bias, stride=2)
        assert max_diff(_channels_last(manual), expected) <= atol, f"Keras 'same' at {size} should pad {pads}"
        runs[size] = (shape, x, expected)

    # No single nn.Conv2d padding reproduces both sizes (and PyTorch refuses padding='same' with a stride).
    with pytest.raises(ValueError, match="strided"):
        torch.nn.Conv2d(3, 4, 3, stride=2, padding="same")
    reproduced = {}
    for padding in (0, 1, 2, (0, 1), (1, 0)):
        conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=padding).double()
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
        reproduced[padding] = []
        for size, (shape, x, expected) in runs.items():
            with torch.no_grad():
                got = _channels_last(conv(_channels_first64(x)))
            if got.shape == expected.shape and max_diff(got, expected) <= atol:
                reproduced[padding].append(size)
            elif padding == 1 and size == 224:  # same shape, every output shifted by one pixel
                assert got.shape == expected.shape and max_diff(got, expected) > 100 * atol
    assert reproduced == {0: [], 1: [225], 2: [], (0, 1): [], (1, 0): []}, reproduced

    # convbridge, sizes unknown: run-time TF padding, exact at both sizes.
    unknown = (None, None, None, 3)
    steps = _plan_steps(text, unknown)
    assert [s["op"] for s in steps] == ["pad", "conv"] and steps[0]["mode"] == "tf_same_at_runtime", steps
    _assert_reverse_exact(text, layer, unknown, [shape for shape, _, _ in runs.values()])
    general = convbridge.to_torch(layer)
    for shape, x, expected in runs.values():
        rh.assert_matches_keras(rh.torch_forward64(general, x), expected, atol,
                                rh.describe(text, shape, "convbridge.to_torch(layer)"))

    # Known 225: the cheapest exact plan is a plain nn.Conv2d with padding=1, exact for that size only.
    described = rh.cli_json(text, (1, 225, 225, 3))
    assert described["exact_for"] == "input_shape", described["exact_for"]
    assert _plan_steps(text, (1, 225, 225, 3)) == [{
        "op": "conv", "module": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": [3, 3],
        "stride": [2, 2], "padding": [1, 1], "dilation": [1, 1], "groups": 1, "bias": True, "weight": "kernel"}]
    # The module says so: its size guard comes first and refuses 224, where the conv alone would be off by a pixel.
    at225 = convbridge.to_torch(layer, input_shape=(1, 225, 225, 3))
    assert isinstance(at225, torch.nn.Sequential) and len(at225) == 2, at225
    assert type(at225[0]).__name__ == "ExpectInputSize" and at225[0].spatial_size == [225, 225], at225
    assert isinstance(at225[1], torch.nn.Conv2d) and tuple(at225[1].padding) == (1, 1), at225
    _assert_reverse_exact(text, layer, (1, 225, 225, 3), [(1, 225, 225, 3)])
    shape224, x224, expected224 = runs[224]
    with pytest.raises(ValueError, match=r"spatial size \[225, 225\], but the input has spatial size \[224, 224\]"):
        rh.torch_forward64(at225, x224)
    assert max_diff(rh.torch_forward64(at225[1], x224), expected224) > 100 * atol, "the 225 plan is not for 224"
    # Known 224: fixed pads (0, 1), no run-time padding.
    steps224 = _plan_steps(text, shape224)
    assert steps224[0] == {"op": "pad", "mode": "zeros", "pads": [[0, 1], [0, 1]]}, steps224
    _assert_reverse_exact(text, layer, shape224, [shape224])


def test_trap7_separable_has_no_depthwise_bias():
    """Keras' SeparableConv2D has depthwise_kernel, pointwise_kernel and one bias (after the pointwise step): the
    depthwise step has none. convbridge's depthwise nn.Conv2d has bias=False; a port with PyTorch's default
    (bias=True) would add a bias Keras does not have."""
    text = "keras.layers.SeparableConv2D(5, 3, depth_multiplier=2, padding='same')"
    layer = rh.keras_layer(text, 3)
    atol = rh.keras_tolerance(layer)
    weights = rh.keras_weights(layer)
    assert list(weights) == ["depthwise_kernel", "pointwise_kernel", "bias"], list(weights)
    assert weights["depthwise_kernel"].shape == (3, 3, 3, 2) and weights["pointwise_kernel"].shape == (1, 1, 6, 5)
    assert weights["bias"].shape == (5,)

    unknown = (None, None, None, 3)
    plan = convbridge.translate(text, input_shape=unknown)
    assert plan.weight_names == ["depthwise_kernel", "pointwise_kernel"]
    steps = _plan_steps(text, unknown)
    assert [(s["op"], s["weight"], s["bias"]) for s in steps] == [
        ("conv", "depthwise_kernel", False), ("conv", "pointwise_kernel", True)], steps
    assert steps[0]["groups"] == 3 and steps[0]["out_channels"] == 6 and steps[1]["kernel_size"] == [1, 1]

    for label, module in _reverse_modules(text, layer, unknown) + [("to_torch(layer)", convbridge.to_torch(layer))]:
        convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == 2, f"{label}: {module}"
        depthwise, pointwise = convs
        assert depthwise.groups == 3 and depthwise.bias is None, f"{label}: the depthwise conv has a bias: {module}"
        assert pointwise.bias is not None and pointwise.kernel_size == (1, 1), f"{label}: {module}"
    _assert_reverse_exact(text, layer, unknown, [(2, 7, 8, 3), (1, 5, 5, 3)])
    _assert_reverse_exact(text, layer, (2, 7, 8, 3), [(2, 7, 8, 3)])

    # The naive port: depthwise nn.Conv2d with PyTorch's default bias=True (randomly initialized) is not Keras ...
    shape = (2, 7, 8, 3)
    x = rh.keras_input(shape, text)
    expected, _ = rh.keras_forward(layer, x)
    dw_kernel = weights["depthwise_kernel"]  # (kh, kw, C, M): output channel c*M + m, like PyTorch's groups=C
    dw_weight = torch.from_numpy(np.transpose(dw_kernel.reshape(3, 3, 6), (2, 0, 1))[:, None].astype(np.float64))
    naive_dw = torch.nn.Conv2d(3, 6, 3, padding=1, groups=3).double()
    pointwise = torch.nn.Conv2d(6, 5, 1).double()
    with torch.no_grad():
        naive_dw.weight.copy_(dw_weight)
        pointwise.weight.copy_(_keras_kernel_as_torch(layer, "pointwise_kernel"))
        pointwise.bias.copy_(_keras_bias(layer))
        assert naive_dw.bias is not None
        naive = _channels_last(pointwise(naive_dw(_channels_first64(x))))
        assert max_diff(naive, expected) > 100 * atol, "a depthwise bias should change the output"
        naive_dw.bias.zero_()  # ... and the depthwise bias is the only difference
        fixed = _channels_last(pointwise(naive_dw(_channels_first64(x))))
    assert max_diff(fixed, expected) <= atol


def test_reverse_causal_padding():
    """Keras' padding='causal' (Conv1D only) pads d*(k-1) zeros on the left and none on the right, so output t sees
    inputs <= t. PyTorch has no 'causal'; convbridge emits a fixed left pad (nn.ConstantPad1d) + nn.Conv1d(padding=0),
    exact for every length, no run-time padding."""
    with pytest.raises(ValueError, match="causal"):
        torch.nn.Conv1d(3, 4, 3, padding="causal")
    for text, left, stride, dilation in (("keras.layers.Conv1D(4, 3, padding='causal', dilation_rate=2)", 4, 1, 2),
                                         ("keras.layers.Conv1D(4, 4, strides=2, padding='causal')", 3, 2, 1)):
        layer = rh.keras_layer(text, 3)
        atol = rh.keras_tolerance(layer)
        weight, bias = _keras_kernel_as_torch(layer), _keras_bias(layer)
        for size in (9, 10, 2):
            shape = (2, size, 3)
            x = rh.keras_input(shape, text)
            expected, error = rh.keras_forward(layer, x)
            assert error is None
            manual = F.conv1d(F.pad(_channels_first64(x), (left, 0)), weight, bias, stride=stride, dilation=dilation)
            assert max_diff(_channels_last(manual), expected) <= atol, f"{text} at {size}: not a left pad of {left}"
        # Causality, on the real layer (stride 1): changing inputs from t on leaves the outputs before t unchanged.
        if stride == 1:
            x = rh.keras_input((1, 10, 3), text)
            y = np.asarray(layer(x))
            x_changed = x.copy()
            x_changed[:, 6:] += 1.0
            y_changed = np.asarray(layer(x_changed))
            np.testing.assert_array_equal(y[:, :6], y_changed[:, :6])
            assert np.abs(y[:, 6:] - y_changed[:, 6:]).max() > 1e-2

        unknown = (None, None, 3)
        steps = _plan_steps(text, unknown)
        assert rh.cli_json(text, unknown)["exact_for"] == "every_input_size"
        assert steps[0] == {"op": "pad", "mode": "zeros", "pads": [[left, 0]]}, steps
        assert steps[1]["op"] == "conv" and steps[1]["padding"] == [0] and steps[1]["dilation"] == [dilation]
        _assert_reverse_exact(text, layer, unknown, [(2, 9, 3), (2, 10, 3), (1, 1, 3), (2, 2, 3)])
        _assert_reverse_exact(text, layer, (2, 10, 3), [(2, 10, 3)])


@pytest.mark.parametrize("text, stride, extent", [
    pytest.param("keras.layers.Conv2DTranspose(4, 5, strides=2, padding='same')", 2, 5, id="k5-s2"),
    pytest.param("keras.layers.Conv2DTranspose(4, 4, padding='same')", 1, 4, id="k4-s1"),
])
def test_reverse_transposed_same_odd_kernel_extent(text, stride, extent):
    """Keras 'same' transposed: out = in*s, and TF keeps z[floor(D/2) : floor(D/2) + out] of the full result z
    (length L = (in-1)*s + eff), D = L - out = eff - s. PyTorch keeps z[p : L - p + op] (op < max(s, d)). With D odd
    (here 3) no (padding, output_padding) pair gives both the start and the length; convbridge uses p = floor(D/2)
    and crops the last element (a crop_end step)."""
    layer = rh.keras_layer(text, 3)
    atol = rh.keras_tolerance(layer)
    kernel = rh.keras_weights(layer)["kernel"]  # (kh, kw, out, in) -> PyTorch (in, out, kh, kw)
    weight = torch.from_numpy(np.transpose(kernel, (3, 2, 0, 1)).astype(np.float64))
    bias = _keras_bias(layer)
    shapes = [(2, 5, 6, 3), (1, 1, 1, 3), (1, 4, 3, 3)]
    runs = []
    for shape in shapes:
        x = rh.keras_input(shape, text)
        expected, error = rh.keras_forward(layer, x)
        assert error is None and expected.shape[1:3] == (shape[1] * stride, shape[2] * stride)
        runs.append((shape, x, expected))
    assert (extent - stride) % 2 == 1

    # No PyTorch padding/output_padding pair reproduces the layer (at the first shape).
    shape, x, expected = runs[0]
    matching = []
    for padding in range(extent):
        for output_padding in range(max(stride, 1)):
            conv = torch.nn.ConvTranspose2d(3, 4, extent, stride=stride, padding=padding,
                                            output_padding=output_padding).double()
            with torch.no_grad():
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)
                got = _channels_last(conv(_channels_first64(x)))
            if got.shape == expected.shape and max_diff(got, expected) <= atol:
                matching.append((padding, output_padding))
    assert matching == [], f"PyTorch padding/output_padding reproducing {text}: {matching}"
    # ... but padding = floor(D/2) = 1 and dropping the last row and column does.
    conv = torch.nn.ConvTranspose2d(3, 4, extent, stride=stride, padding=1).double()
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        cropped = _channels_last(conv(_channels_first64(x)))[:, :-1, :-1]
    assert max_diff(cropped, expected) <= atol

    for plan_shape in ((None, None, None, 3), shape):
        steps = _plan_steps(text, plan_shape)
        assert [s["op"] for s in steps] == ["conv", "crop_end"], steps
        assert steps[0]["module"] == "ConvTranspose2d" and steps[0]["padding"] == [1, 1], steps
        assert steps[0]["output_padding"] == [0, 0] and steps[1]["crop"] == [1, 1], steps
    _assert_reverse_exact(text, layer, (None, None, None, 3), [s for s, _, _ in runs])
    for shape, _, _ in runs:
        _assert_reverse_exact(text, layer, shape, [shape])
    assert convbridge.translate(text, input_shape=(None, None, None, 3)).verify()["passed"]
