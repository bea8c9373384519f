"""Randomized differential suite: generated PyTorch conv configurations against real PyTorch and real Keras/TF.

For every generated case the real PyTorch layer is the reference (float64) and these must reproduce it:
  - convbridge.to_keras(module)                          (input_shape unknown and known)
  - the Keras source of plan.keras_code()                (input_shape unknown and known)
  - the tf.nn source of plan.tf_code()                   (input_shape unknown and known)
  - the C++ reference engine: PyTorch semantics and the plan run with TF semantics (three-way agreement)
Configurations PyTorch rejects, at construction or for the generated input size, must raise ValueError.

Profiles (HYPOTHESIS_PROFILE): "ci" (default) runs a fixed, derandomized set of examples of which at least
CONVBRIDGE_CASES (2000 unless set) are valid and compared; "dev" runs 20000 random examples. The seed of a failing example is printed by Hypothesis.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbridge
from conftest import exec_source, emitted_dir, random_input, stable_seed, to_channels_first, to_channels_last
from conftest import tolerance_for, torch_reference

# Cases compared against PyTorch per CI run (configurations PyTorch rejects come on top of these).
CI_CASES = int(os.environ.get("CONVBRIDGE_CASES", "2000"))
settings.register_profile(
    "ci", max_examples=CI_CASES * 3 // 2, derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=list(HealthCheck))
settings.register_profile("dev", max_examples=20000, deadline=None, print_blob=True,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ENGINE_ATOL = 1e-9  # float64 engine vs float64 PyTorch: only summation order differs
STATS = {"cases": 0, "torch_rejected": 0, "compared": 0}


def pytest_terminal_summary_line() -> str:
    return (f"differential: {STATS['cases']} generated cases, {STATS['compared']} compared against PyTorch, "
            f"{STATS['torch_rejected']} rejected by PyTorch and by convbridge")


def _tuple_text(values):
    return f"({values[0]},)" if len(values) == 1 else "(" + ", ".join(str(v) for v in values) + ")"


@st.composite
def size_argument(draw, rank, low, high):
    """An int or a tuple of `rank` ints, as users write kernel_size/stride/dilation/padding."""
    if draw(st.booleans()):
        value = draw(st.integers(low, high))
        return [value] * rank, str(value)
    values = draw(st.lists(st.integers(low, high), min_size=rank, max_size=rank))
    return values, _tuple_text(values)


@st.composite
def conv_case(draw):
    rank = draw(st.sampled_from([1, 1, 2, 2, 2, 3]))
    grouping = draw(st.sampled_from(["single", "depthwise", "grouped"]))
    if grouping == "single":
        groups, in_channels, out_channels = 1, draw(st.integers(1, 5)), draw(st.integers(1, 6))
    elif grouping == "depthwise":
        in_channels = draw(st.integers(1, 5))
        groups, out_channels = in_channels, in_channels * draw(st.integers(1, 3))
    else:
        groups = draw(st.integers(2, 3))
        in_channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel, kernel_text = draw(size_argument(rank, 1, 4 if rank < 3 else 3))
    stride, stride_text = draw(size_argument(rank, 1, 3))
    dilation, dilation_text = draw(size_argument(rank, 1, 3))
    # 'same' mostly where PyTorch allows it (stride 1); now and then with a stride, which must be rejected.
    forms = ["int", "tuple", "valid", "default"] + (["same"] * 3 if max(stride) == 1 else [])
    padding_form = draw(st.sampled_from(forms)) if draw(st.integers(0, 29)) else "same"
    if padding_form == "int":
        padding_text = str(draw(st.integers(0, 3)))
    elif padding_form == "tuple":
        padding_text = _tuple_text(draw(st.lists(st.integers(0, 3), min_size=rank, max_size=rank)))
    elif padding_form in ("same", "valid"):
        padding_text = repr(padding_form)
    else:
        padding_text = None
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    bias = draw(st.booleans())
    arguments = [str(in_channels), str(out_channels), f"kernel_size={kernel_text}", f"stride={stride_text}"]
    if padding_text is not None:
        arguments.append(f"padding={padding_text}")
    arguments += [f"dilation={dilation_text}", f"groups={groups}", f"bias={bias}", f"padding_mode={mode!r}"]
    text = f"nn.Conv{rank}d({', '.join(arguments)})"
    # Input sizes from just below the dilated kernel extent to a few strides above it: odd, even, minimal and
    # (rarely, for a rejection check) too small.
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    spatial = [draw(st.integers(max(1, e - 2), e + 3 * s + 2)) for e, s in zip(extent, stride)]
    batch = draw(st.integers(1, 3))
    return text, (batch, in_channels, *spatial)


def _torch_module(text):
    torch.manual_seed(stable_seed(text))
    module = eval(text, {"nn": torch.nn})  # noqa: S307 - generated layer text
    if module.bias is not None:
        with torch.no_grad():
            module.bias.uniform_(-1.0, 1.0)
    return module


def _assert_close(got, expected, atol, what, text, shape, code=None):
    where = f"\n  layer: {text}\n  input shape: {shape}\n  path: {what}" + (f"\n  code: {code}" if code else "")
    assert got.shape == expected.shape, f"shape {got.shape} != PyTorch {expected.shape}{where}"
    if got.size:
        worst = float(np.max(np.abs(got.astype(np.float64) - expected)))
        assert worst <= atol, f"max |diff| {worst:.3e} > {atol:.3e}{where}"


def _exec_emitted(source, kind, text):
    path = emitted_dir() / f"differential_{kind}_{stable_seed(text):08x}.py"
    path.write_text(source)
    return exec_source(source, path, f"differential_{kind}"), path


@given(conv_case())
def test_generated_configurations_match_pytorch(case):
    text, shape = case
    STATS["cases"] += 1
    try:
        module = _torch_module(text)
        with torch.no_grad():
            module(torch.zeros(shape))
        torch_error = None
    except (ValueError, RuntimeError) as error:
        torch_error = error
    if torch_error is not None:
        STATS["torch_rejected"] += 1
        with pytest.raises(ValueError):
            convbridge.translate(text, input_shape=shape)
        return

    STATS["compared"] += 1
    x = random_input(shape, stable_seed(text, shape))
    expected = torch_reference(module, x)
    atol = tolerance_for(module)
    weight = module.weight.detach().numpy()
    bias = None if module.bias is None else module.bias.detach().numpy()
    x_last = np.ascontiguousarray(to_channels_last(x))

    for input_shape in (None, shape):
        plan = convbridge.translate(module, input_shape=input_shape)
        label = "unknown size" if input_shape is None else "known size"
        assert plan.output_shape(list(shape)) == list(expected.shape), text

        layer = convbridge.to_keras(module, input_shape=input_shape)
        _assert_close(to_channels_first(np.asarray(layer(x_last))), expected, atol, f"to_keras, {label}", text, shape)

        keras_module, keras_path = _exec_emitted(plan.keras_code(), "keras", text)
        got = to_channels_first(np.asarray(keras_module.make_layer(weight, bias)(x_last)))
        _assert_close(got, expected, atol, f"keras_code, {label}", text, shape, keras_path)

        tf_module, tf_path = _exec_emitted(plan.tf_code(), "tf", text)
        got = to_channels_first(np.asarray(tf_module.conv(x_last, weight, bias)))
        _assert_close(got, expected, atol, f"tf_code, {label}", text, shape, tf_path)

        # Three-way: the C++ engine's PyTorch semantics, and the plan executed with TF semantics, in float64.
        x64, w64 = x.astype(np.float64), weight.astype(np.float64)
        b64 = None if bias is None else bias.astype(np.float64)
        _assert_close(plan.reference_forward(x64, w64, b64), expected, ENGINE_ATOL, f"engine torch, {label}", text,
                      shape)
        kernel64 = plan.convert_kernel(w64)
        got = to_channels_first(plan.reference_run_plan(np.ascontiguousarray(to_channels_last(x64)), kernel64, b64))
        _assert_close(got, expected, ENGINE_ATOL, f"engine plan, {label}", text, shape)


def test_enough_cases_ran():
    """The CI profile must have exercised at least CONVBRIDGE_CASES configurations (runs after the suite above)."""
    if STATS["cases"] == 0:
        pytest.skip("run together with test_generated_configurations_match_pytorch")
    print(pytest_terminal_summary_line())
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        assert STATS["compared"] >= CI_CASES, pytest_terminal_summary_line()
    assert STATS["torch_rejected"] > 0, "no rejected configuration was generated: " + pytest_terminal_summary_line()
