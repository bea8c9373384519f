"""Randomized differential suite for the reverse direction: generated Keras 3 conv layers against the REAL Keras layer.

Modeled on test_differential.py. Generated: Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D and
Conv1D/2D/3DTranspose layer texts (spelled keras.layers.X / layers.X / tf.keras.layers.X / X, positional or keyword),
with 'valid' / 'same' / 'causal' padding, strides, dilation_rate, groups, depth_multiplier, output_padding and
use_bias; mostly within Keras' rules, sometimes not (strides > 1 with dilation_rate > 1 on Conv/ConvTranspose, 'causal'
off Conv1D, filters or channels not divisible by groups, output_padding >= strides); input sizes around the kernel
extent, including sizes smaller than it.

For every case the real Keras layer (TF backend, float32) is the reference, and these must reproduce it (PyTorch side
in float64, tolerance from reverse_helpers.keras_tolerance: 4e-5 * sum over stages sqrt(K_stage)):
  - convbridge.to_torch(layer, input_shape)           for the known shape and for an unknown form of it
  - make_module() of TorchPlan.torch_code()           for the known shape and for the unknown form
  - TorchPlan.output_shape / the JSON output_shape    equal Keras' output shape
  - TorchPlan.verify()['passed']                      (the C++ reference engine)
The unknown form is (None, ..., C), or the batch known, or some spatial sizes known and others None.
Configurations Keras rejects at construction or build must make convbridge.translate(text, input_shape) raise
ValueError (for the known and the unknown shape); sizes the real layer rejects at call (an error, or an empty output)
must make convbridge.translate(text, known shape) raise ValueError. activation= is drawn from every name convbridge
translates (ACTIVATIONS, strings and function objects); the few Keras activations it does not translate yet and
data_format='channels_first' are accepted by Keras but refused by convbridge (ValueError).

TF's oneDNN CPU kernels (on by default) have known bugs (test_traps.py::test_fact_tf_onednn_single_channel_width1_
stride_bug). When convbridge disagrees with Keras, or plans a size Keras fails on, the same layer, weights and input
are run by Keras in a worker process with TF_ENABLE_ONEDNN_OPTS=0 (reverse_helpers.keras_forward_without_onednn):
the case passes only if that run agrees with convbridge and the oneDNN run disagrees with it (counted and listed in
the summary line as a TF oneDNN bug); otherwise it fails.

Profiles (HYPOTHESIS_PROFILE): "ci" (default) runs a fixed, derandomized set of examples of which at least
CONVBRIDGE_REVERSE_CASES (1000 unless set) are compared against Keras; "dev" runs 20000 random examples. The settings
are attached to the test itself, so collecting this file with the other differential suites changes no profile.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbridge
from differential_support import size_argument, tuple_text
from reverse_helpers import (
    assert_matches_keras,
    construct_keras_layer,
    error_summary,
    keras_forward,
    keras_forward_without_onednn,
    keras_input,
    keras_layer,
    keras_tolerance,
    make_module_from_code,
    plan_code_module,
    torch_forward64,
)

CI_CASES = int(os.environ.get("CONVBRIDGE_REVERSE_CASES", "1000"))
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
PROFILES = {
    "ci": settings(max_examples=CI_CASES * 3 // 2, derandomize=True, deadline=None, print_blob=True,
                   suppress_health_check=list(HealthCheck)),
    "dev": settings(max_examples=20000, deadline=None, print_blob=True, suppress_health_check=list(HealthCheck)),
}

STATS = {"cases": 0, "compared": 0, "keras_rejected_config": 0, "keras_rejected_size": 0, "refused": 0,
         "unknown_all_none": 0, "unknown_partial": 0, "tf_onednn_bug": 0, "tf_onednn_bug_cases": []}


def summary_line() -> str:
    return (f"differential (reverse): {STATS['cases']} generated cases, {STATS['compared']} compared against Keras "
            f"({STATS['unknown_all_none']} with all sizes None, {STATS['unknown_partial']} with some spatial sizes "
            f"known), {STATS['keras_rejected_config']} configurations and {STATS['keras_rejected_size']} input sizes "
            f"rejected by Keras and by convbridge, {STATS['refused']} refused by convbridge (activation, "
            f"data_format); {STATS['tf_onednn_bug']} comparisons where TF's oneDNN kernels were wrong and Keras with "
            f"oneDNN off was the reference" + "".join(f"\n    {c}" for c in STATS["tf_onednn_bug_cases"][:20]))


def _note_onednn_bug(line):
    if line not in STATS["tf_onednn_bug_cases"]:
        STATS["tf_onednn_bug_cases"].append(line)


def rare(draw, one_in: int) -> bool:
    """True about once in `one_in` draws (the rare value sits in the middle of the range: Hypothesis favours the
    bounds)."""
    return draw(st.integers(0, one_in - 1)) == one_in // 2


FAMILIES = ["conv", "conv", "conv", "depthwise", "separable", "transpose", "transpose"]
PREFIXES = ["keras.layers.", "keras.layers.", "layers.", "tf.keras.layers.", ""]
# activation= as Keras code writes it: every name convbridge translates, an alias, the function objects.
ACTIVATIONS = ["None", "'linear'", "'relu'", "'relu6'", "'leaky_relu'", "'elu'", "'selu'", "'celu'", "'sigmoid'",
               "'tanh'", "'softplus'", "'softsign'", "'silu'", "'swish'", "'gelu'", "'hard_sigmoid'", "'hard_silu'",
               "'hard_swish'", "'hard_tanh'", "'mish'", "'log_sigmoid'", "'tanh_shrink'", "'hard_shrink'",
               "'soft_shrink'", "'softmax'", "'log_softmax'", "keras.activations.relu", "keras.activations.gelu",
               "tf.nn.relu6", "tf.nn.leaky_relu"]
UNTRANSLATED_ACTIVATIONS = ["'exponential'", "'sparsemax'", "'squareplus'"]


@st.composite
def keras_case(draw):
    family = draw(st.sampled_from(FAMILIES))
    rank = draw(st.sampled_from([1, 1, 2, 2, 2, 3] if family in ("conv", "transpose") else [1, 2, 2]))
    name = {"conv": f"Conv{rank}D", "depthwise": f"DepthwiseConv{rank}D", "separable": f"SeparableConv{rank}D",
            "transpose": f"Conv{rank}DTranspose"}[family]
    channels = draw(st.integers(1, 5))
    arguments = []

    groups = 1
    if family == "conv" and draw(st.integers(0, 4)) == 0:
        groups = draw(st.integers(2, 3))
        channels = groups * draw(st.integers(1, 2))
        filters = groups * draw(st.integers(1, 2))
        if rare(draw, 8):  # Keras: filters must be divisible by groups (construction)
            filters += 1
        elif rare(draw, 8):  # Keras: input channels must be divisible by groups (build)
            channels += 1
    else:
        filters = draw(st.integers(1, 6))
    keyword_only = False
    if family != "depthwise":
        keyword_only = draw(st.booleans())
        arguments.append(f"filters={filters}" if keyword_only else str(filters))

    kernel, kernel_text = draw(size_argument(rank, 1, 4 if rank < 3 else 3))
    if rare(draw, 40):  # a positional argument after a keyword: a SyntaxError, for Keras and convbridge alike
        arguments.append(kernel_text if keyword_only else f"kernel_size={kernel_text}")
        arguments.append("1")
    else:
        arguments.append(f"kernel_size={kernel_text}" if (keyword_only or draw(st.booleans())) else kernel_text)

    strides, strides_text = draw(size_argument(rank, 1, 3))
    dilation, dilation_text = draw(size_argument(rank, 1, 3))
    # Keras forbids strides > 1 with dilation_rate > 1 on Conv/ConvTranspose (DepthwiseConv/SeparableConv accept it
    # from 3.15): keep to the rule, except now and then.
    if family in ("conv", "transpose") and max(strides) > 1 and max(dilation) > 1 and not rare(draw, 10):
        if draw(st.booleans()):
            dilation, dilation_text = [1] * rank, "1"
        else:
            strides, strides_text = [1] * rank, "1"
    if max(strides) > 1 or draw(st.booleans()):
        arguments.append(f"strides={strides_text}")

    padding_choices = ["valid", "same", "same"] + (["causal", "causal"] if name == "Conv1D" else [])
    padding = draw(st.sampled_from(padding_choices))
    if rare(draw, 25):
        padding = "causal"  # Keras: only Conv1D has it
    spelled = padding.upper() if rare(draw, 15) else padding
    if padding != "valid" or draw(st.booleans()):
        arguments.append(f"padding={spelled!r}")

    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    if max(dilation) > 1 or draw(st.booleans()):
        arguments.append(f"dilation_rate={dilation_text}")
    if groups != 1 or (family == "conv" and draw(st.integers(0, 5)) == 0):
        arguments.append(f"groups={groups}")
    if family in ("depthwise", "separable"):
        multiplier = draw(st.integers(1, 3))
        if multiplier != 1 or draw(st.booleans()):
            arguments.append(f"depth_multiplier={multiplier}")
    if family == "transpose" and draw(st.integers(0, 2)) == 0:
        output_padding = [draw(st.integers(0, s - 1)) for s in strides]
        if rare(draw, 8):  # Keras: output_padding must be smaller than strides
            axis = draw(st.integers(0, rank - 1))
            output_padding[axis] = strides[axis] + draw(st.integers(0, 1))
        if len(set(output_padding)) == 1 and draw(st.booleans()):
            arguments.append(f"output_padding={output_padding[0]}")
        else:
            arguments.append(f"output_padding={tuple_text(output_padding)}")
    if draw(st.integers(0, 2)) == 0:
        arguments.append(f"activation={draw(st.sampled_from(ACTIVATIONS))}")
    refused = False
    if rare(draw, 40):
        arguments.append(f"activation={draw(st.sampled_from(UNTRANSLATED_ACTIVATIONS))}")
        refused = True
    elif rare(draw, 40):
        arguments.append("data_format='channels_first'")
        refused = True
    use_bias = draw(st.booleans())
    if not use_bias or draw(st.booleans()):
        arguments.append(f"use_bias={use_bias}")
    text = f"{draw(st.sampled_from(PREFIXES))}{name}({', '.join(arguments)})"

    # Input sizes: around the kernel extent for forward convs (from just below it, rarely too small for 'valid'),
    # small for transposed convs.
    if family == "transpose":
        spatial = [draw(st.integers(1, 6 if rank < 3 else 4)) for _ in range(rank)]
    else:
        spatial = [draw(st.integers(max(1, e - 2), e + 3 * s + 2)) for e, s in zip(extent, strides)]
        if rank == 3:
            spatial = [min(v, 9) for v in spatial]
    batch = draw(st.integers(1, 3))
    shape = (batch, *spatial, channels)

    form = draw(st.sampled_from(["all_none", "all_none", "batch_known", "partial"] if rank > 1 else
                                ["all_none", "all_none", "batch_known"]))
    if form == "all_none":
        unknown = (None,) * (rank + 1) + (channels,)
    elif form == "batch_known":
        unknown = (batch,) + (None,) * rank + (channels,)
    else:
        known_axis = draw(st.integers(0, rank - 1))
        unknown = (None, *[v if i == known_axis else None for i, v in enumerate(spatial)], channels)
    return text, shape, unknown, refused


def _context(text, shape, label, input_shape, code_path=None, extra=""):
    where = (f"\n  layer text:   {text}\n  input shape:  {shape} (Keras N,...,C)\n  path:         {label}"
             f"\n  plan for:     input_shape={input_shape}")
    if code_path is not None:
        where += f"\n  emitted code: {code_path}"
    return where + extra


def _expect_value_error(text, input_shape, why):
    try:
        plan = convbridge.translate(text, input_shape=input_shape)
    except ValueError:
        return
    raise AssertionError(f"convbridge.translate accepted what it must reject ({why}); plan output for "
                         f"{input_shape}: {plan.output_shape([1 if v is None else v for v in input_shape])}"
                         + _context(text, input_shape, "convbridge.translate", input_shape))


@PROFILES[PROFILE]
@given(keras_case())
def test_generated_keras_layers_match_keras(case):
    text, shape, unknown, refused = case
    STATS["cases"] += 1
    channels = shape[-1]
    if refused:  # Keras accepts these activations and channels_first; convbridge translates neither yet
        try:
            construct_keras_layer(text)
        except Exception:  # noqa: BLE001 - rejected by Keras anyway (checked below)
            refused = False
    if refused:
        STATS["refused"] += 1
        _expect_value_error(text, shape, "untranslated activations / channels_first are refused")
        _expect_value_error(text, unknown, "untranslated activations / channels_first are refused")
        return
    try:
        layer = keras_layer(text, channels)
    except Exception as error:  # noqa: BLE001 - Keras rejects the configuration (construction or build)
        STATS["keras_rejected_config"] += 1
        why = f"Keras rejects the configuration: {error_summary(error)}"
        _expect_value_error(text, shape, why)
        _expect_value_error(text, unknown, why)
        return

    x = keras_input(shape, text)
    expected, error = keras_forward(layer, x)
    arbiter = None  # (output, error text) of the same Keras layer with oneDNN off, asked only when needed
    if error is not None:
        try:
            convbridge.translate(text, input_shape=shape)
        except ValueError:
            STATS["keras_rejected_size"] += 1
            return
        # convbridge plans a size the real layer rejects: unless TF without oneDNN runs it, convbridge is wrong.
        arbiter = keras_forward_without_onednn(text, layer, x)
        if arbiter[0] is None:
            _expect_value_error(text, shape, f"the real Keras layer rejects this input size: {error_summary(error)} "
                                             f"(and with oneDNN off: {error_summary(arbiter[1])})")
        STATS["tf_onednn_bug"] += 1
        _note_onednn_bug(f"{text} at {shape}: oneDNN {error_summary(error)}")
        expected = arbiter[0]

    STATS["compared"] += 1
    STATS["unknown_partial" if any(v is not None for v in unknown[1:-1]) else "unknown_all_none"] += 1
    atol = keras_tolerance(layer)

    def check(got, context):
        nonlocal arbiter
        try:
            assert_matches_keras(got, expected, atol, context)
        except AssertionError as mismatch:
            # Keras with oneDNN on is the reference unless it is the one that is off (a TF oneDNN bug).
            if arbiter is None:
                arbiter = keras_forward_without_onednn(text, layer, x)
            reference, reason = arbiter
            if reference is None or reference.shape != expected.shape:
                off = error_summary(reason) if reference is None else f"output shape {reference.shape}"
                raise AssertionError(f"{mismatch}\n  Keras with oneDNN off: {off}") from None
            onednn_off = np.abs(reference.astype(np.float64) - expected)
            if not np.all(np.isfinite(expected)) or float(onednn_off.max()) > atol:
                assert_matches_keras(got, reference, atol, context + "\n  reference: Keras with oneDNN off (the "
                                     "oneDNN run disagrees with it: a TF oneDNN bug)")
                STATS["tf_onednn_bug"] += 1
                _note_onednn_bug(f"{text} at {shape}: oneDNN output off")
                return
            raise

    for input_shape in (shape, unknown):
        label = "known size" if input_shape is shape else "unknown sizes"
        try:
            plan = convbridge.translate(text, input_shape=input_shape)
        except ValueError as error:
            raise AssertionError(f"convbridge rejects a layer Keras runs: {error}"
                                 + _context(text, shape, "convbridge.translate", input_shape)) from error
        got_shape = plan.output_shape(list(shape))
        assert got_shape == list(expected.shape), (
            f"TorchPlan.output_shape {got_shape} != Keras {list(expected.shape)}"
            + _context(text, shape, f"output_shape, {label}", input_shape))
        if input_shape is shape:
            described = json.loads(plan.to_json())
            assert described["output_shape"] == list(expected.shape), (
                f"JSON output_shape {described['output_shape']} != Keras {list(expected.shape)}"
                + _context(text, shape, "to_json", input_shape))
        else:
            assert plan.exact_for_every_input_size, _context(text, shape, "exact_for", input_shape)
        verification = plan.verify()
        assert verification["passed"], (f"reference engine: {verification['summary']}"
                                         + _context(text, shape, f"verify, {label}", input_shape))

        module = convbridge.to_torch(layer, input_shape=input_shape)
        check(torch_forward64(module, x), _context(text, shape, f"convbridge.to_torch, {label}", input_shape))

        code, code_path = plan_code_module(plan, "known" if input_shape is shape else "unknown")
        module = make_module_from_code(code, plan.weight_names, layer)
        check(torch_forward64(module, x),
              _context(text, shape, f"torch_code make_module, {label}", input_shape, code_path))


def test_enough_cases_ran():
    """The CI profile must have compared at least CONVBRIDGE_REVERSE_CASES layers (runs after the suite above)."""
    if STATS["cases"] == 0:
        pytest.skip("run together with test_generated_keras_layers_match_keras")
    print(summary_line())
    if PROFILE == "ci":
        assert STATS["compared"] >= CI_CASES, summary_line()
    assert STATS["keras_rejected_config"] > 0 and STATS["keras_rejected_size"] > 0, summary_line()
    assert STATS["unknown_all_none"] > 0 and STATS["unknown_partial"] > 0, summary_line()
