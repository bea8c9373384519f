"""Deploying convbridge's Keras -> PyTorch modules: torch.jit.script, torch.jit.trace and torch.export, against the
REAL Keras layer, and the size guard of plans exact for one input size only.

1. For Keras layers whose PyTorch plan for unknown sizes uses TFSamePad (TF 'same' padding computed per input) or
   CropEnd (a transposed output one shorter than any padding/output_padding pair gives), the module is built twice:
   convbridge.to_torch(layer, input_shape=(None, ..., C)) and make_module(...) from the code
   `convbridge translate TEXT --input-shape None,...,C --emit torch` prints. Each is then
     - scripted (torch.jit.script),
     - traced (torch.jit.trace) at a third size, with torch.jit.TracerWarning turned into an error: a trace that
       froze a size-dependent value would warn (and be wrong at another size),
     - exported (torch.export.export) with every spatial dimension a torch.export.Dim,
   and run at two input sizes (all axes odd, all axes even) that differ from the trace/export size. Each output must
   equal the real Keras layer's within reverse_helpers' tolerance (atol = 4e-5 * sum over stages sqrt(K); the PyTorch
   side in float64, see reverse_helpers; do not widen it) AND be bit-identical to the eager module's output (the
   deployed programs run the same aten ops on the same numbers).
   torch.export assumes a dynamic dimension is never 0 or 1 and checks the intermediate sizes it derives against
   that ("0/1 specialization"); a strided conv's output is 1 for inputs up to the stride, so each Dim gets
   min = stride + 1 (a property of nn.ConvNd itself, not of these modules).
2. TFSamePad's eager output after its convolution is bit-identical to padding with TF's formula
   need = max(0, (ceil(in/s) - 1) * s + extent - in) split need // 2 before, at many sizes, kernel < stride included
   (where TFSamePad crops the tail no window reads instead of clamping need with max).
3. A plan exact for one input size (Keras 'same' at stride 2 with known sizes; a tf.nn conv*_transpose call, whose
   output_shape fixes its input) starts with ExpectInputSize: the right size runs (and matches Keras), another
   raises ValueError naming both sizes, eagerly and scripted, from to_torch and from the emitted code.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convbridge
from convbridge.torch_modules import CropEnd, ExpectInputSize, TFSamePad
from reverse_helpers import (
    ATOL_PER_SQRT_TERM,
    assert_matches_keras,
    cli_json,
    cli_torch_code,
    describe,
    keras_forward,
    keras_input,
    keras_layer,
    keras_tolerance,
    make_module_from_code,
    plan_code_module,
    unknown_shape,
)
import tensorflow as tf


def case(case_id, text, channels, odd, even, uses):
    """odd / even: the two spatial sizes to compare at (every axis odd, every axis even). uses: the module of
    torch_modules.py the plan for unknown sizes must contain, so the case tests what it says."""
    return pytest.param(text, channels, tuple(odd), tuple(even), uses, id=case_id)


CASES = [
    case("conv2d-k3-s2", "keras.layers.Conv2D(16, 3, strides=2, padding='same')", 3, (9, 11), (10, 8), "TFSamePad"),
    case("conv1d-k3-s2", "keras.layers.Conv1D(6, 3, strides=2, padding='same')", 3, (11,), (12,), "TFSamePad"),
    case("conv3d-k3-s2", "keras.layers.Conv3D(4, 3, strides=2, padding='same')", 2, (5, 7, 9), (6, 8, 4),
         "TFSamePad"),
    case("conv2d-k5-s3", "keras.layers.Conv2D(4, 5, strides=3, padding='same')", 3, (11, 13), (10, 14), "TFSamePad"),
    case("conv2d-k1-s3", "keras.layers.Conv2D(4, 1, strides=3, padding='same')", 3, (11, 7), (10, 8), "TFSamePad"),
    case("conv2d-k2-s2", "keras.layers.Conv2D(4, 2, strides=2, padding='same')", 3, (9, 7), (10, 8), "TFSamePad"),
    case("conv2d-k2-s3", "keras.layers.Conv2D(4, 2, strides=3, padding='same')", 2, (11, 13), (10, 12), "TFSamePad"),
    case("conv2d-mixed", "keras.layers.Conv2D(4, (3, 4), strides=(2, 3), padding='same')", 3, (9, 11), (8, 10),
         "TFSamePad"),
    case("depthwise2d-s2", "keras.layers.DepthwiseConv2D(3, strides=2, padding='same', depth_multiplier=2)", 4,
         (9, 7), (8, 10), "TFSamePad"),
    case("separable2d-s2", "keras.layers.SeparableConv2D(8, 3, strides=2, padding='same')", 4, (9, 11), (10, 8),
         "TFSamePad"),
    case("separable1d-k4-s3", "keras.layers.SeparableConv1D(5, 4, strides=3, padding='same', depth_multiplier=2)", 3,
         (13,), (14,), "TFSamePad"),
    case("conv2dtranspose-k3-s2", "keras.layers.Conv2DTranspose(8, 3, strides=2, padding='same')", 16, (5, 7),
         (6, 4), "CropEnd"),
    case("conv1dtranspose-k5-s2", "keras.layers.Conv1DTranspose(4, 5, strides=2, padding='same')", 3, (7,), (6,),
         "CropEnd"),
    case("conv3dtranspose-k3-s2", "keras.layers.Conv3DTranspose(3, 3, strides=2, padding='same')", 2, (3, 5, 5),
         (4, 2, 4), "CropEnd"),
]

BATCH = 2
SOURCES = ["to_torch", "emitted"]
MODES = ["script", "trace", "export"]


def _strides(text: str, rank: int, channels: int) -> list:
    return cli_json(text, unknown_shape(rank, channels))["source"]["strides"]


@functools.lru_cache(maxsize=None)
def _layer(text: str, channels: int):
    return keras_layer(text, channels)


@functools.lru_cache(maxsize=None)
def _eager_module(text: str, rank: int, channels: int, source: str):
    """The float64 eval-mode module for unknown sizes, from convbridge.to_torch or from the emitted code."""
    layer = _layer(text, channels)
    unknown = unknown_shape(rank, channels)
    if source == "to_torch":
        module = convbridge.to_torch(layer, input_shape=unknown)
    else:
        code, _ = cli_torch_code(text, unknown)
        plan = convbridge.translate(layer, input_shape=unknown)
        module = make_module_from_code(code, plan.weight_names, layer)
    return copy.deepcopy(module).double().eval()


def _channels_first(x_last: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x_last.astype(np.float64), -1, 1)))


def _channels_last(y: torch.Tensor) -> np.ndarray:
    return np.moveaxis(y.detach().numpy(), 1, -1)


def _deployed(mode: str, module, example: torch.Tensor, strides, transposed: bool):
    if mode == "script":
        return torch.jit.script(module)
    if mode == "trace":
        with warnings.catch_warnings():
            # A frozen size shows as a TracerWarning ("Converting a tensor to a Python integer/boolean ... might cause
            # the trace to be incorrect"): fail on it rather than on a wrong number later.
            warnings.simplefilter("error", torch.jit.TracerWarning)
            return torch.jit.trace(module, example)
    dims = {2 + i: torch.export.Dim(f"spatial{i}", min=2 if transposed else s + 1) for i, s in enumerate(strides)}
    return torch.export.export(module, (example,), dynamic_shapes=(dims,)).module()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("text, channels, odd, even, uses", CASES)
def test_deployed_module_matches_keras_at_other_sizes(text, channels, odd, even, uses, source, mode):
    rank = len(odd)
    unknown = unknown_shape(rank, channels)
    steps = cli_json(text, unknown)["steps"]
    kinds = {"TFSamePad": [s for s in steps if s.get("mode") == "tf_same_at_runtime"],
             "CropEnd": [s for s in steps if s["op"] == "crop_end"]}
    assert kinds[uses], f"the plan of {text} for unknown sizes has no {uses} step: {steps}"
    layer = _layer(text, channels)
    eager = _eager_module(text, rank, channels, source)
    assert any(type(m).__name__ == uses for m in eager.modules()), eager
    strides = _strides(text, rank, channels)
    # Traced / exported at a size different from both sizes checked below (odd + 2 on every axis, still odd).
    example = _channels_first(keras_input((BATCH, *[v + 2 for v in odd], channels), text))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors; see reverse_helpers.torch_forward64
    try:
        deployed = _deployed(mode, eager, example, strides, "Transpose" in text)
        for size in (odd, even):
            x_last = keras_input((BATCH, *size, channels), text)
            expected, error = keras_forward(layer, x_last)
            assert error is None, f"Keras rejects {x_last.shape}: {error}"
            x = _channels_first(x_last)
            with torch.no_grad():
                got = deployed(x)
                reference = eager(x)
            context = describe(text, x_last.shape, f"{source}, {mode}", cli_shape=unknown)
            assert_matches_keras(_channels_last(got), expected, keras_tolerance(layer), context)
            assert torch.equal(got, reference), f"{mode} differs from the eager module{context}"
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------------------------------
# TFSamePad and CropEnd on their own
# ------------------------------------------------------------------------------------------------------------------


def tf_same_pads(shape, kernel_extent, strides):
    """F.pad's list for TF's 'same' padding (tensorflow/core/framework/kernel_shape_util.cc), last axis first."""
    pads = []
    for size, extent, stride in reversed(list(zip(shape[2:], kernel_extent, strides))):
        need = max(0, (-(-size // stride) - 1) * stride + extent - size)
        pads += [need // 2, need - need // 2]
    return pads


@pytest.mark.parametrize("kernel_extent, strides", [((3, 3), (2, 2)), ((1, 1), (3, 3)), ((2, 3), (3, 5)),
                                                    ((5,), (2,)), ((3,), (4,)), ((2, 1, 4), (2, 3, 3))])
def test_tf_same_pad_then_conv_is_bit_identical_to_tf_padding(kernel_extent, strides):
    """At every size 1..24 the conv after TFSamePad gives exactly the numbers of the conv after TF's own padding (for
    kernel < stride TFSamePad crops the trailing elements no window reads where TF pads nothing)."""
    rank = len(strides)
    conv = getattr(torch.nn, f"Conv{rank}d")(2, 3, kernel_extent, stride=strides).double()
    pad = TFSamePad(kernel_extent, strides)
    rng = np.random.default_rng(7)
    for size in range(1, 25):
        shape = (2, 2, *[size + i for i in range(rank)])
        x = torch.from_numpy(rng.standard_normal(shape))
        with torch.no_grad():
            want = conv(F.pad(x, tf_same_pads(shape, kernel_extent, strides)))
            got = conv(pad(x))
        assert got.shape == want.shape and torch.equal(got, want), (kernel_extent, strides, shape)


def test_modules_keep_their_constructor_and_repr():
    assert repr(TFSamePad((3, 3), (2, 2))) == "TFSamePad(kernel_extent=(3, 3), strides=(2, 2))"
    assert repr(CropEnd((1, 0))) == "CropEnd(crop=(1, 0))"
    assert repr(ExpectInputSize((224, 224))) == "ExpectInputSize(spatial_size=(224, 224))"
    x = torch.arange(2 * 3 * 5 * 4, dtype=torch.float64).reshape(2, 3, 5, 4)
    assert torch.equal(CropEnd((1, 0))(x), x[:, :, :4, :])
    assert torch.equal(CropEnd((2, 1))(x), x[:, :, :3, :3])


# ------------------------------------------------------------------------------------------------------------------
# The size guard
# ------------------------------------------------------------------------------------------------------------------

GUARDED_TEXT = "keras.layers.Conv2D(16, 3, strides=2, padding='same')"


def _guarded_modules(input_shape):
    """[(label, float64 module)] for a size-specific plan: convbridge.to_torch and the emitted code."""
    layer = _layer(GUARDED_TEXT, 3)
    plan = convbridge.translate(layer, input_shape=input_shape)
    assert not plan.exact_for_every_input_size
    assert json.loads(plan.to_json())["exact_for"] == "input_shape"
    code, _ = cli_torch_code(GUARDED_TEXT, tuple(input_shape))
    built = [("to_torch", convbridge.to_torch(layer, input_shape=input_shape)),
             ("emitted", make_module_from_code(code, plan.weight_names, layer))]
    return [(label, copy.deepcopy(m).double().eval()) for label, m in built]


def _refusal_message(expected, got) -> str:
    return (f"this module is exact only for inputs of spatial size {list(expected)}, but the input has spatial size "
            f"{list(got)}; translate with None sizes in the input shape for a module exact at every input size")


@pytest.mark.parametrize("size", [224, 225])
def test_size_specific_module_refuses_other_sizes(size):
    """224: TF pads (0, 1) (nn.ConstantPad2d + conv); 225: (1, 1) (a single nn.Conv2d). Both plans are for their
    size only: the module runs at it (equal to Keras) and raises ValueError at another, naming both sizes."""
    layer = _layer(GUARDED_TEXT, 3)
    for label, module in _guarded_modules((1, size, size, 3)):
        # The emitted code defines its own copy of the class: compare by name.
        assert isinstance(module, torch.nn.Sequential) and type(module[0]).__name__ == "ExpectInputSize", (label,
                                                                                                   module)
        x_last = keras_input((1, size, size, 3), GUARDED_TEXT)
        expected, error = keras_forward(layer, x_last)
        assert error is None
        with torch.no_grad():
            got = module(_channels_first(x_last))
        assert_matches_keras(_channels_last(got), expected, keras_tolerance(layer),
                             describe(GUARDED_TEXT, x_last.shape, label))
        other = size + 1
        wrong = torch.zeros(1, 3, other, size, dtype=torch.float64)
        with pytest.raises(ValueError) as raised:
            module(wrong)
        assert str(raised.value) == _refusal_message((size, size), (other, size)), label
        with pytest.raises(ValueError, match=r"expected a 4-D channels_first input"):
            module(torch.zeros(3, size, size, dtype=torch.float64))
        # Scripted, TorchScript raises torch.jit.Error ending with the Python exception and its message.
        scripted = torch.jit.script(module)
        with torch.no_grad():
            assert torch.equal(scripted(_channels_first(x_last)), got)
        with pytest.raises(torch.jit.Error) as raised:
            scripted(wrong)
        assert str(raised.value).rstrip().endswith("builtins.ValueError: " + _refusal_message((size, size),
                                                                                               (other, size))), label
        # Exported, the guard becomes a check of the input size (the program is for that size).
        exported = torch.export.export(module, (_channels_first(x_last),)).module()
        with torch.no_grad():
            assert torch.equal(exported(_channels_first(x_last)), got)
        with pytest.raises(Exception, match=rf"{size}"):
            exported(wrong)


def test_module_exact_at_every_size_has_no_guard():
    layer = _layer(GUARDED_TEXT, 3)
    module = convbridge.to_torch(layer, input_shape=(None, None, None, 3))
    assert not any(isinstance(m, ExpectInputSize) for m in module.modules()), module
    _, path = cli_torch_code(GUARDED_TEXT, (None, None, None, 3))
    assert "ExpectInputSize((" not in path.read_text(), path


TRANSPOSED_CALL = "tf.nn.conv2d_transpose(x, w, [2, 10, 10, 6], 2)"
TRANSPOSED_FILTERS = (3, 3, 6, 4)  # (*kernel, out_channels, in_channels)


def test_tf_nn_transposed_module_refuses_other_sizes():
    """output_shape [2, 10, 10, 6] at stride 2 'SAME' fixes the input to (2, 5, 5, 4): the emitted module runs at
    5x5 (equal to TF) and refuses 6x6, naming output_shape as the reason."""
    plan = convbridge.translate(TRANSPOSED_CALL, filters_shape=TRANSPOSED_FILTERS)
    assert not plan.exact_for_every_input_size
    # Written to a file and imported from it (plan_code_module): TorchScript compiles from the source file.
    code, _ = plan_code_module(plan, "deploy")
    rng = np.random.default_rng(3)
    bound = 1.0 / math.sqrt(9 * 4)
    w = rng.uniform(-bound, bound, TRANSPOSED_FILTERS).astype(np.float32)
    x = rng.standard_normal((2, 5, 5, 4)).astype(np.float32)
    expected = np.asarray(tf.nn.conv2d_transpose(tf.constant(x), tf.constant(w), [2, 10, 10, 6], 2))
    module = copy.deepcopy(code.make_module(w.astype(np.float64))).double().eval()
    assert type(module[0]).__name__ == "ExpectInputSize", module  # the emitted code's own copy of the class
    with torch.no_grad():
        got = module(_channels_first(x))
    assert_matches_keras(_channels_last(got), expected, ATOL_PER_SQRT_TERM * math.sqrt(9 * 4),
                         f"\n  call: {TRANSPOSED_CALL}", reference="TF")
    with pytest.raises(ValueError) as raised:
        module(torch.zeros(2, 4, 6, 6, dtype=torch.float64))
    assert str(raised.value) == ("this module is exact only for inputs of spatial size [5, 5], but the input has "
                                 "spatial size [6, 6]; the call's output_shape allows only this input size")
    with pytest.raises(torch.jit.Error, match=r"builtins\.ValueError: this module is exact only for inputs of "
                                              r"spatial size \[5, 5\]"):
        torch.jit.script(module)(torch.zeros(2, 4, 6, 6, dtype=torch.float64))
