"""The reverse direction (Keras 3 layer -> PyTorch) against the REAL Keras layer, case by case.

For every case of the table below the real Keras layer is built from the layer text (TF backend, float32, weights set
from a seed derived from the text) and is the reference. convbridge must reproduce it with:
  - the code `convbridge translate TEXT --input-shape None,...,C --emit torch` prints (make_module(...)), at 2-3 sizes;
  - convbridge.to_torch(layer) and convbridge.to_torch(layer, input_shape=(None, ..., C)), at the same sizes;
  - for every size on its own: the code printed with --input-shape N,...,C (the cheapest plan for that size) and
    convbridge.to_torch(layer, input_shape=shape);
and the plan's output shape (JSON output_shape, TorchPlan.output_shape) must be Keras' output shape.
The PyTorch side runs in float64; tolerance atol = 4e-5 * sum over stages sqrt(K_stage) (see reverse_helpers).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

import convbridge
from conftest import run_cli
from reverse_helpers import (
    assert_matches_keras,
    class_name_of,
    cli_json,
    cli_torch_code,
    construct_keras_layer,
    describe,
    error_summary,
    keras_forward,
    keras_input,
    keras_layer,
    keras_output_shape,
    keras_tolerance,
    make_module_from_code,
    rank_of_class,
    torch_forward64,
    unknown_shape,
)


def case(case_id, text, channels, sizes, batch=2):
    """sizes: the spatial sizes (tuples) the case runs at: all with the size-independent plan, each with its own."""
    return pytest.param(text, channels, [tuple(s) for s in sizes], batch, id=case_id)


CASES = [
    # ---- Conv2D: 'valid' / 'same', odd and even kernels, strides 1/2/3, odd and even sizes
    case("conv2d-valid-k3-s1", "keras.layers.Conv2D(6, 3)", 3, [(7, 8), (3, 3), (10, 9)]),
    case("conv2d-valid-k4-s2", "keras.layers.Conv2D(5, 4, strides=2)", 3, [(9, 10), (4, 4), (11, 8)]),
    case("conv2d-valid-k3-s3", "keras.layers.Conv2D(4, 3, strides=3, padding='valid')", 2, [(10, 11), (9, 12)]),
    case("conv2d-valid-k2-s3", "keras.layers.Conv2D(4, 2, strides=3)", 3, [(7, 8), (2, 5)]),
    case("conv2d-same-k3-s1", "keras.layers.Conv2D(6, 3, padding='same')", 3, [(7, 8), (1, 2)]),
    case("conv2d-same-k4-s1", "keras.layers.Conv2D(6, 4, padding='same')", 3, [(7, 8), (2, 1)]),
    case("conv2d-same-k3-s2", "keras.layers.Conv2D(6, 3, strides=2, padding='same')", 3, [(8, 9), (9, 10), (1, 1)]),
    case("conv2d-same-k4-s2", "keras.layers.Conv2D(6, 4, strides=2, padding='same')", 3, [(8, 9), (7, 10), (2, 3)]),
    case("conv2d-same-k5-s3", "keras.layers.Conv2D(4, 5, strides=3, padding='same')", 2, [(10, 11), (9, 12), (2, 2)]),
    case("conv2d-same-k2-s3", "keras.layers.Conv2D(4, 2, strides=3, padding='same')", 2, [(7, 8), (9, 10)]),
    case("conv2d-same-k1-s2", "keras.layers.Conv2D(4, 1, strides=2, padding='same')", 3, [(7, 8), (4, 5)]),
    case("conv2d-same-mixed", "keras.layers.Conv2D(4, (3, 4), strides=(2, 1), padding='same')", 3, [(7, 8), (8, 7)]),
    case("conv2d-valid-mixed-stride", "keras.layers.Conv2D(4, (2, 5), strides=(3, 2))", 2, [(8, 9), (9, 12)]),
    # dilation (Keras forbids strides > 1 with it on Conv2D)
    case("conv2d-same-d2", "keras.layers.Conv2D(4, 3, padding='same', dilation_rate=2)", 3, [(7, 8), (3, 2)]),
    case("conv2d-valid-d-tuple", "keras.layers.Conv2D(4, (3, 2), dilation_rate=(2, 3))", 3, [(7, 8), (5, 4)]),
    case("conv2d-same-even-d3", "keras.layers.Conv2D(4, 2, padding='same', dilation_rate=3)", 2, [(6, 7), (3, 2)]),
    # groups
    case("conv2d-groups-valid", "keras.layers.Conv2D(6, 3, groups=2)", 4, [(6, 7), (3, 5)]),
    case("conv2d-groups-same-s2", "keras.layers.Conv2D(6, 3, strides=2, padding='same', groups=3)", 6,
         [(7, 8), (6, 5)]),
    # use_bias off, 1x1
    case("conv2d-no-bias-same-s2", "keras.layers.Conv2D(6, 3, strides=2, padding='same', use_bias=False)", 3,
         [(8, 9), (5, 5)]),
    case("conv2d-1x1", "keras.layers.Conv2D(5, 1)", 4, [(3, 4), (1, 1)]),
    # spellings the CLI accepts
    case("spelling-layers", "layers.Conv2D(filters=4, kernel_size=3, strides=2, padding='same')", 3, [(6, 7), (9, 8)]),
    case("spelling-tf-keras", "tf.keras.layers.Conv2D(4, kernel_size=(3, 3), strides=(2, 2), padding='same')", 3,
         [(6, 7), (9, 8)]),
    case("spelling-bare", "Conv2D(4, 3, 2, 'same', activation=None, use_bias=True)", 3, [(6, 7), (9, 8)]),
    case("spelling-linear", "keras.layers.Conv2D(4, 3, padding='same', activation='linear', name='c1')", 3,
         [(5, 6), (2, 1)]),
    # ---- Conv1D
    case("conv1d-valid-k5-s2", "keras.layers.Conv1D(4, 5, strides=2)", 3, [(11,), (12,), (5,)]),
    case("conv1d-same-k4-s3", "keras.layers.Conv1D(4, 4, strides=3, padding='same')", 3, [(10,), (11,), (12,)]),
    case("conv1d-same-k3-s2", "keras.layers.Conv1D(4, 3, strides=2, padding='same')", 2, [(9,), (10,)]),
    case("conv1d-causal-k3", "keras.layers.Conv1D(4, 3, padding='causal')", 3, [(8,), (1,), (5,)]),
    case("conv1d-causal-k4-s2", "keras.layers.Conv1D(4, 4, strides=2, padding='causal')", 3, [(9,), (10,), (2,)]),
    case("conv1d-causal-d3", "keras.layers.Conv1D(4, 3, padding='causal', dilation_rate=3)", 2, [(10,), (2,)]),
    case("conv1d-groups", "keras.layers.Conv1D(4, 3, padding='same', groups=2)", 4, [(7,), (8,)]),
    case("conv1d-no-bias-d2", "keras.layers.Conv1D(3, 4, dilation_rate=2, use_bias=False)", 2, [(9,), (7,)]),
    # ---- Conv3D
    case("conv3d-same-k3-s2", "keras.layers.Conv3D(4, 3, strides=2, padding='same')", 2, [(4, 5, 6), (5, 5, 5)]),
    case("conv3d-valid-k2-mixed-s", "keras.layers.Conv3D(3, 2, strides=(1, 2, 3))", 2, [(5, 6, 7), (2, 3, 4)]),
    case("conv3d-same-d2", "keras.layers.Conv3D(3, (2, 3, 1), padding='same', dilation_rate=2)", 2,
         [(4, 5, 3), (3, 2, 1)]),
    case("conv3d-groups-no-bias", "keras.layers.Conv3D(4, 2, groups=2, use_bias=False)", 4, [(3, 4, 3), (2, 5, 2)]),
    # ---- DepthwiseConv2D / DepthwiseConv1D (depth_multiplier; Keras 3.15 accepts strides with dilation here)
    case("dw2d-same-s2-m2", "keras.layers.DepthwiseConv2D(3, strides=2, padding='same', depth_multiplier=2)", 3,
         [(8, 9), (7, 7)]),
    case("dw2d-valid-k4-m1", "keras.layers.DepthwiseConv2D(4)", 3, [(6, 7), (4, 4)]),
    case("dw2d-same-k4-s3", "keras.layers.DepthwiseConv2D((4, 2), strides=3, padding='same', depth_multiplier=3)", 2,
         [(10, 11), (9, 9)]),
    case("dw2d-same-s2-d2", "keras.layers.DepthwiseConv2D(3, strides=2, dilation_rate=2, padding='same')", 3,
         [(9, 10), (4, 5)]),
    case("dw2d-valid-s2-d2-no-bias",
         "keras.layers.DepthwiseConv2D(3, strides=2, dilation_rate=2, depth_multiplier=2, use_bias=False)", 2,
         [(9, 10), (5, 6)]),
    case("dw1d-same-k4-s2-m3", "keras.layers.DepthwiseConv1D(4, strides=2, padding='same', depth_multiplier=3)", 2,
         [(9,), (10,)]),
    case("dw1d-valid-d2", "keras.layers.DepthwiseConv1D(3, dilation_rate=2)", 3, [(7,), (5,)]),
    # ---- SeparableConv2D / SeparableConv1D (depthwise without bias, pointwise with the bias)
    case("sep2d-same-s2-m2", "keras.layers.SeparableConv2D(5, 3, strides=2, padding='same', depth_multiplier=2)", 3,
         [(8, 9), (7, 6)]),
    case("sep2d-valid-k4-no-bias", "keras.layers.SeparableConv2D(4, 4, use_bias=False)", 3, [(6, 7), (4, 4)]),
    case("sep2d-same-d2", "keras.layers.SeparableConv2D(4, 3, padding='same', dilation_rate=2)", 2, [(6, 7), (3, 2)]),
    case("sep2d-same-s2-d2", "keras.layers.SeparableConv2D(4, 3, strides=2, dilation_rate=2, padding='same')", 2,
         [(9, 10), (4, 3)]),
    case("sep1d-same-s3", "keras.layers.SeparableConv1D(4, 4, strides=3, padding='same', depth_multiplier=2)", 3,
         [(10,), (11,), (12,)]),
    case("sep1d-valid-d2", "keras.layers.SeparableConv1D(3, 3, dilation_rate=2)", 2, [(9,), (5,)]),
    # ---- Conv1DTranspose
    case("t1d-valid-k3-s2", "keras.layers.Conv1DTranspose(4, 3, strides=2)", 3, [(5,), (6,), (1,)]),
    case("t1d-valid-k2-s3-op-none", "keras.layers.Conv1DTranspose(4, 2, strides=3)", 3, [(4,), (5,)]),
    case("t1d-valid-k3-s3-op2", "keras.layers.Conv1DTranspose(4, 3, strides=3, output_padding=2)", 2, [(4,), (3,)]),
    case("t1d-same-k4-s2", "keras.layers.Conv1DTranspose(4, 4, strides=2, padding='same')", 3, [(5,), (6,)]),
    case("t1d-same-k3-s2-op1", "keras.layers.Conv1DTranspose(4, 3, strides=2, padding='same', output_padding=1)", 3,
         [(5,), (6,)]),
    case("t1d-same-k5-s3-op2", "keras.layers.Conv1DTranspose(3, 5, strides=3, padding='same', output_padding=2)", 2,
         [(4,), (5,)]),
    case("t1d-same-d2", "keras.layers.Conv1DTranspose(4, 3, dilation_rate=2, padding='same')", 2, [(5,), (2,)]),
    # ---- Conv2DTranspose
    case("t2d-same-k3-s2", "keras.layers.Conv2DTranspose(4, 3, strides=2, padding='same')", 3, [(5, 6), (1, 2)]),
    case("t2d-same-k4-s2", "keras.layers.Conv2DTranspose(4, 4, strides=2, padding='same')", 3, [(5, 6), (4, 4)]),
    case("t2d-same-k4-s1", "keras.layers.Conv2DTranspose(4, 4, padding='same')", 3, [(5, 6), (1, 1)]),
    case("t2d-same-k5-s2", "keras.layers.Conv2DTranspose(4, 5, strides=2, padding='same')", 3, [(5, 6), (3, 3)]),
    case("t2d-same-k2-s3", "keras.layers.Conv2DTranspose(4, 2, strides=3, padding='same')", 2, [(4, 5), (1, 2)]),
    case("t2d-valid-k3-s2-op1", "keras.layers.Conv2DTranspose(4, 3, strides=2, output_padding=1)", 3, [(5, 6), (1, 2)]),
    case("t2d-valid-k3-s2-op0", "keras.layers.Conv2DTranspose(4, 3, strides=2, output_padding=0)", 3, [(4, 5), (3, 2)]),
    case("t2d-same-k3-s2-op0", "keras.layers.Conv2DTranspose(4, 3, strides=2, padding='same', output_padding=0)", 3,
         [(5, 6), (2, 2)]),
    case("t2d-same-mixed-op",
         "keras.layers.Conv2DTranspose(4, (3, 4), strides=(2, 3), padding='same', output_padding=(1, 2))", 2,
         [(4, 5), (3, 3)]),
    case("t2d-valid-d2", "keras.layers.Conv2DTranspose(4, 3, dilation_rate=2)", 3, [(4, 5), (1, 1)]),
    case("t2d-same-d-tuple", "keras.layers.Conv2DTranspose(3, (3, 2), dilation_rate=(2, 3), padding='same')", 2,
         [(4, 5), (2, 1)]),
    case("t2d-same-s2-no-bias", "keras.layers.Conv2DTranspose(4, 3, strides=2, padding='same', use_bias=False)", 3,
         [(5, 4), (2, 3)]),
    # ---- Conv3DTranspose
    case("t3d-same-k3-s2", "keras.layers.Conv3DTranspose(3, 3, strides=2, padding='same')", 2, [(3, 4, 2), (2, 2, 3)]),
    case("t3d-valid-k2-s2-op1", "keras.layers.Conv3DTranspose(3, 2, strides=2, output_padding=1)", 2,
         [(3, 2, 4), (1, 2, 1)]),
]


def _rank_channels(text, channels):
    return rank_of_class(class_name_of(text)), channels


@pytest.mark.parametrize("text, channels, sizes, batch", CASES)
def test_reverse_unknown_sizes(text, channels, sizes, batch):
    """--input-shape None,...,C: one module for every size; checked against Keras at 2-3 sizes."""
    rank, channels = _rank_channels(text, channels)
    layer = keras_layer(text, channels)
    atol = keras_tolerance(layer)
    unknown = unknown_shape(rank, channels)

    plan = convbridge.translate(text, input_shape=unknown)
    assert plan.exact_for_every_input_size, f"{text}: a plan for unknown sizes must be exact for every size"
    verification = plan.verify()
    assert verification["passed"], f"{text}: reference engine: {verification['summary']}"
    described = cli_json(text, unknown)
    assert described["exact_for"] == "every_input_size" and described["output_shape"] is None, described
    assert plan.weight_names == [n for n in (v.path.rsplit("/", 1)[-1] for v in layer.weights) if n != "bias"]

    code, code_path = cli_torch_code(text, unknown)
    modules = [
        ("cli --emit torch, sizes None", make_module_from_code(code, plan.weight_names, layer), code_path),
        ("convbridge.to_torch(layer)", convbridge.to_torch(layer), None),
        ("convbridge.to_torch(layer, input_shape=Nones)", convbridge.to_torch(layer, input_shape=unknown), None),
    ]
    for spatial in sizes:
        shape = (batch, *spatial, channels)
        x = keras_input(shape, text)
        expected, error = keras_forward(layer, x)
        assert error is None, f"table error: Keras rejects {text} at {shape}: {error}"
        assert plan.output_shape(list(shape)) == list(expected.shape), (text, shape)
        for label, module, path in modules:
            context = describe(text, shape, label, cli_shape=unknown if path else None, code_path=path)
            assert_matches_keras(torch_forward64(module, x), expected, atol, context)


@pytest.mark.parametrize("text, channels, sizes, batch", CASES)
def test_reverse_known_size(text, channels, sizes, batch):
    """--input-shape N,...,C with every size known: the cheapest plan for that size (fixed pads, no run-time
    padding), checked at that size."""
    rank, channels = _rank_channels(text, channels)
    layer = keras_layer(text, channels)
    atol = keras_tolerance(layer)
    for spatial in sizes:
        shape = (batch, *spatial, channels)
        x = keras_input(shape, text)
        expected, error = keras_forward(layer, x)
        assert error is None, f"table error: Keras rejects {text} at {shape}: {error}"
        assert keras_output_shape(layer, shape) == expected.shape

        described = cli_json(text, shape)
        assert described["input_shape"] == list(shape), described["input_shape"]
        assert described["output_shape"] == list(expected.shape), (
            f"JSON output_shape {described['output_shape']} != Keras {list(expected.shape)}"
            + describe(text, shape, "--emit json"))
        runtime_pads = [s for s in described["steps"] if s.get("mode") == "tf_same_at_runtime"]
        assert not runtime_pads, f"{text} at {shape}: a known size needs no run-time padding: {runtime_pads}"

        plan = convbridge.translate(text, input_shape=shape)
        assert plan.output_shape(list(shape)) == list(expected.shape)
        verification = plan.verify()
        assert verification["passed"], f"{text} at {shape}: reference engine: {verification['summary']}"

        code, code_path = cli_torch_code(text, shape)
        for label, module, path in (
            ("cli --emit torch, known size", make_module_from_code(code, plan.weight_names, layer), code_path),
            ("convbridge.to_torch(layer, input_shape=shape)", convbridge.to_torch(layer, input_shape=shape), None),
        ):
            context = describe(text, shape, label, cli_shape=shape if path else None, code_path=path)
            assert_matches_keras(torch_forward64(module, x), expected, atol, context)


# ------------------------------------------------------------------------------------------------------------------
# Named cases outside the table
# ------------------------------------------------------------------------------------------------------------------


def test_reverse_to_torch_unbuilt_layer_takes_channels_from_input_shape():
    text = "keras.layers.Conv2D(4, 3, strides=2, padding='same')"
    unbuilt = construct_keras_layer(text)
    with pytest.raises(ValueError, match="input"):
        convbridge.to_torch(unbuilt)
    with pytest.raises(ValueError, match="input_shape"):
        convbridge.translate(text)  # text records no channel count
    layer = keras_layer(text, 3)
    module = convbridge.to_torch(layer, input_shape=(None, None, None, 3))
    x = keras_input((1, 7, 6, 3), text)
    expected, _ = keras_forward(layer, x)
    assert_matches_keras(torch_forward64(module, x), expected, keras_tolerance(layer),
                         describe(text, x.shape, "to_torch(built layer, input_shape=Nones)"))


def test_reverse_emitted_make_module_checks_its_weights():
    text = "keras.layers.SeparableConv2D(4, 3, depth_multiplier=2, padding='same')"
    code, path = cli_torch_code(text, (None, None, None, 3))
    layer = keras_layer(text, 3)
    weights = {v.path.rsplit("/", 1)[-1]: np.asarray(v) for v in layer.weights}
    with pytest.raises(ValueError, match="bias"):
        code.make_module(weights["depthwise_kernel"], weights["pointwise_kernel"])  # use_bias=True needs the bias
    with pytest.raises(ValueError, match="shape"):
        code.make_module(weights["pointwise_kernel"], weights["depthwise_kernel"], bias=weights["bias"])
    module = code.make_module(weights["depthwise_kernel"], weights["pointwise_kernel"], bias=weights["bias"])
    assert isinstance(module, torch.nn.Module), path


def test_reverse_partially_known_too_small_is_rejected():
    """A known spatial size smaller than the kernel is rejected by Keras even when other sizes are unknown
    (Keras' symbolic shape inference raises "Computed output size would be zero or negative"); convbridge must not
    plan for it either."""
    text = "keras.layers.Conv2D(4, 3)"
    with pytest.raises(ValueError, match="zero or negative"):
        keras_layer(text, 3).compute_output_shape((2, None, 2, 3))
    with pytest.raises(ValueError, match="zero or negative"):
        construct_keras_layer(text)(keras.Input(shape=(None, 2, 3)))
    problems = []
    try:
        plan = convbridge.translate(text, input_shape=(2, None, 2, 3))
        problems.append(f"convbridge.translate planned it (output at H=5: {plan.output_shape([2, 5, 2, 3])})")
    except ValueError:
        pass
    proc = run_cli("translate", text, "--input-shape", "2,None,2,3", "--emit", "json")
    if proc.returncode != 2:
        problems.append(f"the CLI exited {proc.returncode} (stdout {len(proc.stdout)} characters)")
    assert not problems, f"{text} with --input-shape 2,None,2,3 (W = 2 < kernel 3): " + "; ".join(problems)


def test_reverse_same_transposed_even_extent_explicit_output_padding_zero_is_rejected():
    """Keras 'same' transposed with an explicit output_padding gives out = (in-1)*s + eff%2 + op; with an even
    effective kernel and op=0 that is (in-1)*s, and ceil(out/s) = in-1 != in, so TensorFlow's SAME
    conv2d_backprop_input rejects it at every input size (with oneDNN an AbortedError, without an
    InvalidArgumentError; at in=1 oneDNN returns an empty tensor). convbridge must reject the known sizes."""
    accepted = []
    for text, channels, sizes in (
        ("keras.layers.Conv1DTranspose(4, 2, strides=2, padding='same', output_padding=0)", 3,
         [(1,), (2,), (3,), (6,)]),
        ("keras.layers.Conv2DTranspose(4, 4, padding='same', output_padding=0)", 2, [(5, 6)]),
        ("keras.layers.Conv2DTranspose(4, (3, 4), strides=2, padding='same', output_padding=(1, 0))", 2, [(4, 5)]),
    ):
        layer = keras_layer(text, channels)
        for spatial in sizes:
            shape = (1, *spatial, channels)
            _, error = keras_forward(layer, keras_input(shape, text))
            assert error is not None, f"Keras ran {text} at {shape}"
            try:
                plan = convbridge.translate(text, input_shape=shape)
            except ValueError:
                continue
            accepted.append(f"\n  {text} --input-shape {','.join(map(str, shape))}: convbridge plans output "
                            f"{plan.output_shape(list(shape))}; Keras raises {error_summary(error)}")
    assert not accepted, "convbridge translates sizes the real Keras layer rejects:" + "".join(accepted)


_NO_ONEDNN_SAME_TRANSPOSED_PROBE = r"""
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np, keras
layer = keras.layers.Conv1DTranspose(4, 2, strides=2, padding="same", output_padding=0)
try:
    print("shape", tuple(layer(np.ones((1, 3, 3), np.float32)).shape))
except Exception as e:
    print("error", type(e).__name__, "Size of out_backprop doesn't match computed" in str(e))
"""


def test_fact_same_transposed_even_extent_op0_rejected_without_onednn_too():
    """The rejection above is TensorFlow's shape rule, not a oneDNN quirk: with TF_ENABLE_ONEDNN_OPTS=0 the same
    layer raises InvalidArgumentError "Size of out_backprop doesn't match computed"."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", _NO_ONEDNN_SAME_TRANSPOSED_PROBE], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "error InvalidArgumentError True", proc.stdout


def test_fact_keras_built_layer_skips_its_shape_rule():
    """Keras' shape rule rejects a 'valid' conv on an input smaller than the (dilated) kernel: compute_output_shape
    raises, and so does an unbuilt layer's first call. A layer already built for unknown sizes (as in any model with
    None sizes) skips the rule when called eagerly, and TF returns a tensor instead of an error: with oneDNN of the
    input's size holding uninitialized memory, without it an empty one (trap 10). The reference for these tests is the
    rule (reverse_helpers.keras_forward); convbridge follows it for a known size."""
    text = "keras.layers.Conv1D(1, 4, dilation_rate=2, use_bias=False)"  # extent 7
    shape = (1, 5, 1)
    x = keras_input(shape, text)
    with pytest.raises(ValueError, match="zero or negative"):
        construct_keras_layer(text)(x)
    layer = keras_layer(text, 1)
    with pytest.raises(ValueError, match="zero or negative"):
        layer.compute_output_shape(shape)
    y = np.asarray(layer(x))  # no error
    assert y.shape[1] in (0, shape[1]), f"the built layer returned {y.shape}: revisit this test"
    _, error = keras_forward(layer, x)
    assert isinstance(error, ValueError)
    with pytest.raises(ValueError, match="kernel"):
        convbridge.translate(text, input_shape=shape)
