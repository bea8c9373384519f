"""What the randomized differential profiles share: size-argument strategies, closeness checks with the
context a failure needs, and the check of every translation path of one PyTorch module against PyTorch."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import convbridge
from conftest import exec_source, emitted_dir, random_input, stable_seed, to_channels_first, to_channels_last
from conftest import tolerance_for, torch_reference

ENGINE_ATOL = 1e-9  # float64 engine vs float64 PyTorch: only summation order differs


def tuple_text(values):
    return f"({values[0]},)" if len(values) == 1 else "(" + ", ".join(str(v) for v in values) + ")"


@st.composite
def size_argument(draw, rank, low, high):
    """An int or a tuple of `rank` ints, as users write size arguments: (values, text)."""
    if draw(st.booleans()):
        value = draw(st.integers(low, high))
        return [value] * rank, str(value)
    values = draw(st.lists(st.integers(low, high), min_size=rank, max_size=rank))
    return values, tuple_text(values)


def channels_and_groups(draw, groupings):
    """(groups, in_channels, out_channels) for a PyTorch conv: one group, depthwise (groups == in_channels, out a
    multiple of it) or grouped, the kind drawn from `groupings` (repeat a kind to weight it). A plain function
    taking `draw`, so the draws stay those of the caller's strategy (the derandomized CI sequence)."""
    grouping = draw(st.sampled_from(groupings))
    if grouping == "single":
        return 1, draw(st.integers(1, 5)), draw(st.integers(1, 6))
    if grouping == "depthwise":
        in_channels = draw(st.integers(1, 5))
        return in_channels, in_channels, in_channels * draw(st.integers(1, 3))
    groups = draw(st.integers(2, 3))
    return groups, groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))


def assert_close(got, expected, atol, what, text, shape, code=None):
    where = f"\n  layer: {text}\n  input shape: {shape}\n  path: {what}" + (f"\n  code: {code}" if code else "")
    assert got.shape == expected.shape, f"shape {got.shape} != reference {expected.shape}{where}"
    if got.size:
        worst = float(np.max(np.abs(got.astype(np.float64) - expected)))
        assert worst <= atol, f"max |diff| {worst:.3e} > {atol:.3e}{where}"


def exec_emitted(source, kind, text):
    """Writes generated source to a file named in failure messages and runs it as a fresh module."""
    path = emitted_dir() / f"differential_{kind}_{stable_seed(text):08x}.py"
    path.write_text(source)
    return exec_source(source, path, f"differential_{kind}"), path


def check_every_path_against_torch(module, text, shape):
    """to_keras, keras_code and tf_code (input size unknown and known) against real PyTorch in float64, and the C++
    engine both ways (PyTorch semantics, and the plan run with TF semantics) against it too."""
    x = random_input(shape, stable_seed(text, shape))
    expected = torch_reference(module, x)
    atol = tolerance_for(module)
    weight = module.weight.detach().numpy()
    bias = None if module.bias is None else module.bias.detach().numpy()
    x_last = np.ascontiguousarray(to_channels_last(x))

    for input_shape in (None, shape):
        plan = convbridge.translate(module, input_shape=input_shape)
        label = "unknown size" if input_shape is None else "known size"
        assert plan.output_shape(list(shape)) == list(expected.shape), f"{text} at {shape} ({label})"

        layer = convbridge.to_keras(module, input_shape=input_shape)
        assert_close(to_channels_first(np.asarray(layer(x_last))), expected, atol, f"to_keras, {label}", text, shape)

        keras_module, keras_path = exec_emitted(plan.keras_code(), "keras", text)
        got = to_channels_first(np.asarray(keras_module.make_layer(weight, bias)(x_last)))
        assert_close(got, expected, atol, f"keras_code, {label}", text, shape, keras_path)

        tf_module, tf_path = exec_emitted(plan.tf_code(), "tf", text)
        got = to_channels_first(np.asarray(tf_module.conv(x_last, weight, bias)))
        assert_close(got, expected, atol, f"tf_code, {label}", text, shape, tf_path)

        x64, w64 = x.astype(np.float64), weight.astype(np.float64)
        b64 = None if bias is None else bias.astype(np.float64)
        assert_close(plan.reference_forward(x64, w64, b64), expected, ENGINE_ATOL, f"engine torch, {label}", text,
                     shape)
        kernel64 = plan.convert_kernel(w64)
        got = to_channels_first(plan.reference_run_plan(np.ascontiguousarray(to_channels_last(x64)), kernel64, b64))
        assert_close(got, expected, ENGINE_ATOL, f"engine plan, {label}", text, shape)
