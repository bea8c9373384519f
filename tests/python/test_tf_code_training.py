"""The tf.nn code (`--emit tf`, Plan.tf_code()) as part of a TensorFlow model that trains its weights.

Users keep the emitted `conv(x, weight, bias=None)` and hold the PyTorch-layout weight and bias in tf.Variables, so
the code must (1) run inside tf.function, also traced once with unknown batch and spatial sizes, and (2) let
gradients reach the variables. For each layer below, against the real PyTorch layer:

- forward: conv under a tf.function whose input_signature has None batch and spatial sizes, called at two input
  sizes (one trace), equals PyTorch in float64 on the same float32 values, within conftest.tolerance_for;
- gradients: for loss = sum(y * g) with a fixed random g, tf.GradientTape's gradients w.r.t. the weight and bias
  variables and w.r.t. x (which runs back through the replicate/circular/reflect padding) equal PyTorch autograd's
  gradients of the same loss in float64, eagerly and inside tf.function. The weight variable holds the PyTorch
  layout, so its gradient is compared with PyTorch's weight.grad directly (no re-layout in the test).

Gradient tolerance (see gradient_tolerance): the same model as conftest.tolerance_for, stated scale-free. A gradient
entry is a sum of M float32 products (M = N * prod(output size) for a forward conv's weight and bias, N *
prod(input size) for a transposed conv's weight, (out/groups) * prod(kernel) times the pad reuse for x); float32
rounding of such a sum is ~1e-7 * sqrt(M) times its typical magnitude, so atol = 4e-5 * sqrt(M) * rms(reference
gradient), the same ~300x margin conftest keeps. A wrong or missing gradient path (a constant kernel, a pad that
does not route gradients back, a zero tap in the wrong place) is of the order of the gradient itself.

Also: numpy arrays, tf tensors and tf.Variables give the same output; wrong shapes raise the same ValueError
messages for all three (also while tracing); float64 inputs and weights run end to end.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import tensorflow as tf
import torch

from conftest import (
    is_transposed,
    load_emitted,
    random_input,
    stable_seed,
    to_channels_first,
    to_channels_last,
    tolerance_for,
    torch_layer,
    torch_reference,
    weights_of,
)


def case(case_id, text, *shapes):
    """A layer and two PyTorch-layout input shapes (N, C, *spatial) of different spatial (and batch) sizes."""
    return pytest.param(text, shapes, id=case_id)


CASES = [
    case("2d-plain", "nn.Conv2d(3, 5, 3)", (2, 3, 7, 8), (1, 3, 10, 6)),
    case("2d-stride2-pad1", "nn.Conv2d(3, 4, 3, stride=2, padding=1)", (2, 3, 9, 8), (3, 3, 6, 11)),
    case("2d-same-even-kernel", "nn.Conv2d(3, 4, 4, padding='same')", (2, 3, 7, 8), (1, 3, 5, 9)),
    case("2d-reflect", "nn.Conv2d(3, 4, (3, 2), padding=(2, 1), padding_mode='reflect')", (2, 3, 7, 8), (1, 3, 5, 4)),
    case("2d-replicate-stride2", "nn.Conv2d(2, 4, 3, stride=2, padding=(1, 2), padding_mode='replicate')",
         (2, 2, 7, 8), (1, 2, 6, 5)),
    case("1d-circular", "nn.Conv1d(3, 4, 3, padding=2, padding_mode='circular')", (2, 3, 7), (1, 3, 4)),
    case("3d-circular-nobias", "nn.Conv3d(2, 3, 3, padding=1, padding_mode='circular', bias=False)",
         (2, 2, 4, 5, 3), (1, 2, 3, 3, 6)),
    case("2d-groups2", "nn.Conv2d(4, 6, 3, groups=2, padding=1)", (2, 4, 6, 7), (1, 4, 5, 5)),
    case("2d-depthwise-m2", "nn.Conv2d(4, 8, 3, groups=4, padding=1)", (2, 4, 6, 7), (1, 4, 9, 5)),
    case("1d-depthwise", "nn.Conv1d(4, 4, 5, groups=4)", (2, 4, 9), (1, 4, 12)),
    case("2d-stride2-dilation2", "nn.Conv2d(3, 4, 3, stride=2, dilation=2, padding=1)", (2, 3, 9, 10), (1, 3, 7, 12)),
    case("2d-depthwise-stride2-dilation2", "nn.Conv2d(4, 4, 3, groups=4, stride=2, dilation=2)",
         (2, 4, 9, 10), (1, 4, 12, 7)),
    case("2d-same-dilation2", "nn.Conv2d(3, 4, 3, padding='same', dilation=2)", (2, 3, 7, 8), (1, 3, 5, 10)),
    # tf_conv: one raw op forward with strides, dilations and the grouped kernel; gradient from the portable form
    case("2d-groups2-stride2-dilation2", "nn.Conv2d(4, 6, 3, stride=2, dilation=2, padding=2, groups=2)",
         (2, 4, 9, 10), (1, 4, 12, 7)),
    case("1d-groups3-stride2-dilation3", "nn.Conv1d(6, 6, 3, stride=2, dilation=3, padding=1, groups=3)", (2, 6, 11),
         (1, 6, 14)),
    case("3d-stride2-dilation2", "nn.Conv3d(2, 3, 2, stride=2, dilation=2, padding=1)", (2, 2, 5, 6, 4),
         (1, 2, 4, 7, 6)),
    case("1d-depthwise-dilation2-pad2", "nn.Conv1d(4, 8, 3, dilation=2, groups=4, padding=2)", (2, 4, 9), (1, 4, 6)),
    case("3d-groups2-dilation", "nn.Conv3d(4, 6, 2, dilation=(1, 2, 2), groups=2, padding=(0, 1, 2))",
         (2, 4, 3, 4, 5), (1, 4, 2, 6, 3)),
    case("1d-stride2-pad2", "nn.Conv1d(4, 8, 5, stride=2, padding=2)", (2, 4, 9), (3, 4, 14)),
    case("3d-stride-pad", "nn.Conv3d(2, 4, (2, 3, 3), stride=(1, 2, 1), padding=(1, 0, 1))",
         (2, 2, 4, 5, 3), (1, 2, 3, 7, 4)),
    case("3d-groups2", "nn.Conv3d(4, 6, 3, groups=2)", (2, 4, 4, 5, 3), (1, 4, 3, 3, 6)),
    case("t2d-stride2-pad1-same", "nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)", (2, 4, 4, 5), (1, 4, 3, 6)),
    case("t2d-stride2-pad1-op1", "nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)",
         (2, 4, 4, 5), (1, 4, 6, 3)),
    case("t1d-stride3-pad1-op2", "nn.ConvTranspose1d(3, 4, 3, stride=3, padding=1, output_padding=2)",
         (2, 3, 5), (1, 3, 8)),
    case("t1d-dilation3-op2", "nn.ConvTranspose1d(2, 2, 3, dilation=3, output_padding=2)", (2, 2, 4), (1, 2, 7)),
    case("t2d-dilation-groups", "nn.ConvTranspose2d(4, 6, 3, stride=2, dilation=(2, 3), padding=(1, 2), groups=2)",
         (2, 4, 4, 3), (1, 4, 5, 6)),
    case("t3d-stride2-groups2-nobias", "nn.ConvTranspose3d(4, 4, 2, stride=2, padding=1, output_padding=1, groups=2, "
         "bias=False)", (2, 4, 3, 2, 3), (1, 4, 2, 4, 3)),
    case("t3d-dilation-op", "nn.ConvTranspose3d(2, 3, 2, dilation=(2, 1, 3), output_padding=(1, 0, 2))",
         (2, 2, 3, 2, 3), (1, 2, 2, 4, 2)),
]


# ------------------------------------------------------------------------------------------------------------------
# PyTorch reference (float64) and tolerances
# ------------------------------------------------------------------------------------------------------------------


def torch_gradients(module, x, g):
    """PyTorch autograd in float64 for loss = sum(module(x) * g): (y, {"weight", "bias", "x"} -> gradient), all in
    PyTorch layout; x and g are float32 arrays in PyTorch layout."""
    module64 = copy.deepcopy(module).double()
    x64 = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    y = module64(x64)
    (y * torch.from_numpy(g.astype(np.float64))).sum().backward()
    grads = {"weight": module64.weight.grad.numpy(), "x": x64.grad.numpy()}
    if module64.bias is not None:
        grads["bias"] = module64.bias.grad.numpy()
    return y.detach().numpy(), grads


def accumulated_terms(module, x_shape, y_shape):
    """Upper bound of the products summed into one entry of each gradient (see the module docstring)."""
    n = x_shape[0]
    in_size, out_size = math.prod(x_shape[2:]), math.prod(y_shape[2:])
    # An input value feeds every window that reads it directly, plus, through replicate/circular/reflect padding,
    # the windows reading its padded copies: at most 1 + 2 * padding windows per axis (PyTorch pads both sides alike).
    reuse = 1
    if module.padding_mode != "zeros" and not isinstance(module.padding, str):
        reuse = math.prod(1 + 2 * p for p in module.padding)
    out_per_group = module.out_channels // module.groups
    return {
        "weight": n * (in_size if is_transposed(module) else out_size),
        "bias": n * out_size,
        "x": out_per_group * math.prod(module.kernel_size) * reuse,
    }


def gradient_tolerance(reference, terms):
    """atol = 4e-5 * sqrt(M) * rms(reference): float32 rounding of an M-term sum, relative to its magnitude."""
    rms = float(np.sqrt(np.mean(np.square(reference)))) if reference.size else 0.0
    return 4e-5 * math.sqrt(terms) * rms


def max_diff(got, expected):
    return float(np.max(np.abs(np.asarray(got, np.float64) - expected))) if expected.size else 0.0


def assert_close(got, expected, atol, what):
    got = np.asarray(got)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != PyTorch's {expected.shape}"
    worst = max_diff(got, expected)
    assert worst <= atol, f"{what}: max |diff| {worst:.3e} > {atol:.3e}"


# ------------------------------------------------------------------------------------------------------------------
# The emitted code inside a TF training set-up
# ------------------------------------------------------------------------------------------------------------------


class Setup:
    """The emitted conv with the layer's weights in tf.Variables, and tf.functions traced with None sizes."""

    def __init__(self, text, dtype=tf.float32):
        self.text = text
        self.module = torch_layer(text)
        self.emitted = load_emitted(text, "tf")
        weight, bias = weights_of(self.module)
        np_dtype = dtype.as_numpy_dtype
        self.weight = tf.Variable(weight.astype(np_dtype), name="weight")
        self.bias = None if bias is None else tf.Variable(bias.astype(np_dtype), name="bias")
        rank = len(self.module.kernel_size)
        x_spec = tf.TensorSpec((None,) * (rank + 1) + (self.module.in_channels,), dtype)
        g_spec = tf.TensorSpec((None,) * (rank + 1) + (self.module.out_channels,), dtype)
        self.forward = tf.function(self.call, input_signature=[x_spec])
        self.train_gradients = tf.function(self.gradients, input_signature=[x_spec, g_spec])

    def variables(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])

    def call(self, x):
        return self.emitted.module.conv(x, self.weight, self.bias)

    def gradients(self, x, g):
        """y and the gradients of sum(y * g) w.r.t. weight, bias and x, as a training step computes them."""
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = self.call(x)
            loss = tf.reduce_sum(y * g)
        grads = tape.gradient(loss, self.variables() + [x])
        return y, grads

    def named(self, grads):
        names = ["weight"] + ([] if self.bias is None else ["bias"]) + ["x"]
        return dict(zip(names, grads))


def inputs_for(text, shape, module, dtype=np.float32):
    """x (PyTorch layout) and g (PyTorch output layout), float32 standard normal, seeded from the text and shape."""
    x = random_input(shape, stable_seed(text, tuple(shape)))
    with torch.no_grad():
        y_shape = tuple(module(torch.from_numpy(x)).shape)
    g = random_input(y_shape, stable_seed(text, tuple(shape), "g"))
    return x.astype(dtype), g.astype(dtype)


def channels_last(a):
    return tf.constant(np.ascontiguousarray(to_channels_last(a)))


def check_gradients(setup, shape, x, g, got_y, got_grads, where):
    module = setup.module
    expected_y, expected = torch_gradients(module, x, g)
    context = f"\n  layer: {setup.text}\n  input shape: {shape}\n  code: {setup.emitted.path}\n  path: {where}"
    assert_close(to_channels_first(np.asarray(got_y)), expected_y, tolerance_for(module), "output" + context)
    terms = accumulated_terms(module, x.shape, expected_y.shape)
    for name, want in expected.items():
        got = got_grads[name]
        assert got is not None, f"no gradient reaches {name}{context}"
        got = np.asarray(tf.convert_to_tensor(got))
        if name == "x":
            got = to_channels_first(got)
        assert_close(got, want, gradient_tolerance(want, terms[name]), f"d loss / d {name}" + context)
        # The tolerance is meaningful: far below the gradient's own size.
        assert gradient_tolerance(want, terms[name]) < 0.05 * float(np.max(np.abs(want))), (name, context)


@pytest.mark.parametrize("text,shapes", CASES)
def test_forward_under_tf_function_with_unknown_sizes(text, shapes):
    setup = Setup(text)
    for shape in shapes:
        x, _ = inputs_for(text, shape, setup.module)
        got = to_channels_first(setup.forward(channels_last(x)).numpy())
        expected = torch_reference(setup.module, x)
        context = f"\n  layer: {text}\n  input shape: {shape}\n  code: {setup.emitted.path}"
        assert got.dtype == np.float32
        assert_close(got, expected, tolerance_for(setup.module), "tf.function forward" + context)
    # One trace served both sizes: the code really ran with None batch and spatial sizes.
    assert setup.forward.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("text,shapes", CASES)
def test_gradients_reach_the_variables(text, shapes):
    setup = Setup(text)
    # Eagerly, as a custom training loop without tf.function runs it.
    x, g = inputs_for(text, shapes[0], setup.module)
    y, grads = setup.gradients(channels_last(x), channels_last(g))
    check_gradients(setup, shapes[0], x, g, y, setup.named(grads), "eager GradientTape")
    # Inside one tf.function traced with None sizes, at both sizes.
    for shape in shapes:
        x, g = inputs_for(text, shape, setup.module)
        y, grads = setup.train_gradients(channels_last(x), channels_last(g))
        check_gradients(setup, shape, x, g, y, setup.named(grads), "GradientTape in tf.function")
    assert setup.train_gradients.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("text,shapes", CASES[::3])
def test_an_optimizer_step_moves_the_weights_as_in_pytorch(text, shapes):
    """One Keras SGD step on the tf.Variables equals one SGD step with PyTorch's float64 gradients: the gradient
    tolerance scaled by the learning rate, plus 1e-6 for rounding w - lr * grad to float32 (|w| <= 1)."""
    setup = Setup(text)
    x, g = inputs_for(text, shapes[0], setup.module)
    optimizer = tf.keras.optimizers.SGD(learning_rate=0.1)

    @tf.function
    def step(x_last, g_last):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(setup.call(x_last) * g_last)
        optimizer.apply_gradients(zip(tape.gradient(loss, setup.variables()), setup.variables()))

    step(channels_last(x), channels_last(g))
    weight, bias = weights_of(setup.module)
    expected_y, expected = torch_gradients(setup.module, x, g)
    terms = accumulated_terms(setup.module, x.shape, expected_y.shape)
    want = weight.astype(np.float64) - 0.1 * expected["weight"]
    assert_close(setup.weight.numpy(), want, 0.1 * gradient_tolerance(expected["weight"], terms["weight"]) + 1e-6,
                 f"weight after one step ({text})")
    if bias is not None:
        want = bias.astype(np.float64) - 0.1 * expected["bias"]
        assert_close(setup.bias.numpy(), want, 0.1 * gradient_tolerance(expected["bias"], terms["bias"]) + 1e-6,
                     f"bias after one step ({text})")


@pytest.mark.parametrize("text,shapes", CASES)
def test_numpy_tensors_and_variables_give_the_same_output(text, shapes):
    module = torch_layer(text)
    conv = load_emitted(text, "tf").module.conv
    weight, bias = weights_of(module)
    x, _ = inputs_for(text, shapes[0], module)
    x_last = np.ascontiguousarray(to_channels_last(x))

    def as_(kind, a):
        if a is None:
            return None
        return {"numpy": a, "tensor": tf.constant(a), "variable": tf.Variable(a)}[kind]

    outputs = {kind: conv(x_last, as_(kind, weight), as_(kind, bias)).numpy()
               for kind in ("numpy", "tensor", "variable")}
    # The same ops on the same values: bit for bit.
    assert np.array_equal(outputs["numpy"], outputs["tensor"]), text
    assert np.array_equal(outputs["numpy"], outputs["variable"]), text
    assert_close(to_channels_first(outputs["numpy"]), torch_reference(module, x), tolerance_for(module), text)
    # numpy weights inside tf.function (constants folded into the graph) work as well.
    traced = tf.function(lambda x_: conv(x_, weight, bias))
    assert np.array_equal(traced(tf.constant(x_last)).numpy(), outputs["numpy"]), text


SHAPE_CHECK_CASES = [
    pytest.param("nn.Conv2d(4, 6, 3, groups=2)", id="2d-groups-bias"),
    pytest.param("nn.Conv1d(4, 8, 3, groups=4, bias=False)", id="1d-depthwise-nobias"),
    pytest.param("nn.ConvTranspose2d(4, 6, 3, stride=2, dilation=2, groups=2)", id="t2d-dilation-groups-bias"),
]


@pytest.mark.parametrize("text", SHAPE_CHECK_CASES)
def test_wrong_shapes_raise_the_same_errors_for_tensors_and_variables(text):
    module = torch_layer(text)
    conv = load_emitted(text, "tf").module.conv
    weight, bias = weights_of(module)
    rank = len(module.kernel_size)
    x = np.zeros((1, *([5] * rank), module.in_channels), np.float32)
    wrong_weight = np.zeros(weight.shape[:-1] + (weight.shape[-1] + 1,), np.float32)
    calls = [(wrong_weight, bias), (np.moveaxis(weight, 0, -1), bias)]
    if bias is None:
        calls.append((weight, np.zeros(module.out_channels, np.float32)))
    else:
        calls += [(weight, None), (weight, np.zeros(module.out_channels + 1, np.float32))]

    def error(w, b):
        with pytest.raises(ValueError) as raised:
            conv(x, w, b)
        return str(raised.value)

    for w, b in calls:
        expected = error(w, b)  # numpy arrays
        assert expected.startswith(("weight has shape (", "bias has shape (", "bias is None", "the PyTorch layer"))
        for wrap in (tf.constant, tf.Variable):
            assert error(wrap(w), None if b is None else wrap(b)) == expected, (text, wrap)
        # While tracing a tf.function, with the weights as variables.
        wv, bv = tf.Variable(w), None if b is None else tf.Variable(b)
        with pytest.raises(ValueError) as raised:
            tf.function(lambda x_: conv(x_, wv, bv))(tf.constant(x))
        # AutoGraph prefixes the traceback of the user code ("in user code: ..."); the message itself is the same.
        assert str(raised.value).rstrip().endswith(expected), text


@pytest.mark.parametrize("text,shapes", CASES)
def test_float64_end_to_end(text, shapes):
    """float64 x and float64 variables: float64 output and gradients, as close to PyTorch float64 as rounding."""
    setup = Setup(text, dtype=tf.float64)
    for shape in shapes:
        x, g = inputs_for(text, shape, setup.module, dtype=np.float64)
        y, grads = setup.train_gradients(channels_last(x), channels_last(g))
        assert y.dtype == tf.float64
        expected_y, expected = torch_gradients(setup.module, x, g)
        where = f"({text}, {shape}, float64)"
        # float64 sums of at most a few hundred terms: differences of a few ulps, 1e-9 leaves a wide margin.
        assert_close(to_channels_first(y.numpy()), expected_y, 1e-9, f"output {where}")
        for name, got in setup.named(grads).items():
            got = np.asarray(tf.convert_to_tensor(got))
            got = to_channels_first(got) if name == "x" else got
            assert got.dtype == np.float64
            assert_close(got, expected[name], 1e-9 * max(1.0, float(np.max(np.abs(expected[name])))),
                         f"d loss / d {name} {where}")


def test_float32_variables_with_a_float64_input():
    """The kernel is cast to x's dtype (as before): a float64 x with float32 variables gives float64 output, and
    the float32 variables still get their gradients."""
    text = "nn.ConvTranspose2d(4, 6, 3, stride=2, dilation=2, padding=1, groups=2)"
    setup = Setup(text)
    x, g = inputs_for(text, (2, 4, 4, 5), setup.module, dtype=np.float64)
    with tf.GradientTape() as tape:
        y = setup.call(channels_last(x))
        loss = tf.reduce_sum(y * channels_last(g))
    assert y.dtype == tf.float64
    grads = setup.named(tape.gradient(loss, setup.variables()) + [None])
    _, expected = torch_gradients(setup.module, x.astype(np.float32), g.astype(np.float32))
    assert_close(to_channels_first(y.numpy()), torch_reference(setup.module, x.astype(np.float32)),
                 tolerance_for(setup.module), text)
    terms = accumulated_terms(setup.module, x.shape, to_channels_first(y.numpy()).shape)
    for name in ("weight", "bias"):
        assert grads[name].dtype == tf.float32
        assert_close(grads[name].numpy(), expected[name], gradient_tolerance(expected[name], terms[name]), name)


# ------------------------------------------------------------------------------------------------------------------
# convbridge's TfConv layer (to_keras of grouped / dilated convs) trains like Keras' own layers
# ------------------------------------------------------------------------------------------------------------------

TF_CONV_CASES = [
    case("2d-groups4", "nn.Conv2d(8, 8, 3, padding=1, groups=4)", (2, 8, 6, 7)),
    case("2d-stride2-dilation2-pad2", "nn.Conv2d(3, 4, 3, stride=2, dilation=2, padding=2)", (2, 3, 9, 10)),
    case("3d-groups2", "nn.Conv3d(4, 6, 3, padding=1, groups=2)", (2, 4, 4, 5, 3)),
]


@pytest.mark.parametrize("text,shapes", TF_CONV_CASES)
def test_tf_conv_layer_gradients_equal_pytorch(text, shapes):
    """to_keras gives a TfConv layer here; tf.GradientTape over its trainable weights (eagerly and in tf.function)
    gives PyTorch's gradients, re-laid out: TF's CPU kernels have no gradient for the op its forward pass runs."""
    import convbridge

    module = torch_layer(text)
    layer = convbridge.to_keras(module)
    assert type(layer).__name__ == "TfConv", type(layer)
    (shape,) = shapes
    x, g = inputs_for(text, shape, module)
    expected_y, expected = torch_gradients(module, x, g)
    terms = accumulated_terms(module, x.shape, expected_y.shape)
    rank = len(module.kernel_size)

    def gradients(x_last, g_last):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x_last) * g_last)
        return tape.gradient(loss, [layer.kernel, layer.bias])

    for label, run in (("eager", gradients), ("tf.function", tf.function(gradients))):
        kernel_grad, bias_grad = run(tf.constant(channels_last(x)), tf.constant(channels_last(g)))
        # Keras kernel (*k, C_in/G, C_out) -> PyTorch (C_out, C_in/G, *k)
        weight_grad = np.transpose(np.asarray(kernel_grad), (rank + 1, rank, *range(rank)))
        assert_close(weight_grad, expected["weight"], gradient_tolerance(expected["weight"], terms["weight"]),
                     f"TfConv kernel gradient, {label} ({text})")
        assert_close(bias_grad, expected["bias"], gradient_tolerance(expected["bias"], terms["bias"]),
                     f"TfConv bias gradient, {label} ({text})")
