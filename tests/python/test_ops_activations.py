"""Differential tests of the activations family against the real PyTorch 2.13 and Keras 3.15 / TensorFlow 2.21.

Both directions, on generated configurations of every activation class and argument:
  - PyTorch module m (nn.ReLU ... nn.LogSoftmax, nn.PReLU with random slopes) -> convbridge.to_keras(m,
    input_shape) against m itself on the same float32 input (channels_first there, channels_last here);
  - Keras layer k (ReLU(max_value, negative_slope), LeakyReLU, ELU, PReLU(shared_axes) with random slopes,
    Softmax(axis), Activation(name)) -> convbridge.to_torch(k, input_shape) against k itself;
  - every EMITTED_EVERY-th case also runs the emitted code (keras_code's make_layer / torch_code's make_module);
  - configurations the framework rejects are rejected by convbridge (ValueError naming the argument);
  - one named test per fact of /work/shared/reference/layer-semantics.md "Activations", asserting the frameworks'
    own behaviour, and that convbridge is exact where the naive translation (same class, default arguments) is not.

Tolerance (`assert_close`): an activation is element-wise (softmax: over one axis of at most 7 entries), computed
in float32 by both frameworks with their own kernels (Eigen in TF, ATen/Sleef in PyTorch), e.g. exp, log1p, tanh,
erf, each within a few ulp, composed at most ~4 deep (mish = x * tanh(softplus(x))). We allow
16 * eps32 * (1 + |x| + |expected|) per element, eps32 = 2**-23: scaled by |x| as well as by the result because of
cancellations such as tanhshrink x - tanh(x) and softplus's x + log1p(exp(-x)), whose error is relative to x.
Every wrong translation this family can make is far above it at |x| ~ 1: a slope 0.01 vs 0.3 or 0.2 (>= 0.1 |x|),
ELU alpha (>= 0.1), hard_sigmoid 0.2x+0.5 vs relu6(x+3)/6 (0.033 at x=1), GELU tanh vs erf (>= 1e-4 near |x|=2),
softmax over the wrong axis (O(1/n)).

Cases: CONVBRIDGE_OPS_CASES (a multiplier, default 1): 440 PyTorch -> Keras and 360 Keras -> PyTorch generated
cases (800), each seeded by its index; a failure message carries the layer text and input shape. 65 of the
PyTorch cases are configurations convbridge refuses by name (CELU alpha != 1, Hardshrink/Softshrink lambd != 0.5,
LogSoftmax over a non-channel dim: see docs/layers/activations.md); 735 are translated and compared.
"""

from __future__ import annotations

import os
import random

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import convbridge  # noqa: E402

MULTIPLIER = max(1, int(os.environ.get("CONVBRIDGE_OPS_CASES", "1")))
CHUNKS = 8
TORCH_CASES_PER_CHUNK = 55 * MULTIPLIER  # 440 PyTorch -> Keras (65 of them refusals)
KERAS_CASES_PER_CHUNK = 45 * MULTIPLIER  # 360 Keras -> PyTorch
EMITTED_EVERY = 5
EPS32 = 2.0 ** -23


def to_last(a):
    a = np.asarray(a)
    return a if a.ndim <= 2 else np.moveaxis(a, 1, -1)


def to_first(a):
    a = np.asarray(a)
    return a if a.ndim <= 2 else np.moveaxis(a, -1, 1)


def assert_close(actual, expected, x, what):
    """Element-wise bound of the module docstring; x is the input in the layout of expected."""
    actual, expected, x = (np.asarray(v, dtype=np.float64) for v in (actual, expected, x))
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.array_equal(np.isfinite(actual), np.isfinite(expected)), f"{what}: non-finite entries differ"
    if not actual.size:
        return
    finite = np.isfinite(expected)
    scale = 1.0 + np.abs(x) + np.abs(expected)
    bound = 16.0 * EPS32 * scale
    excess = np.where(finite, np.abs(actual - expected) - bound, 0.0)
    worst = int(np.argmax(excess))
    assert excess.flat[worst] <= 0, (f"{what}: |diff| {abs(actual.flat[worst] - expected.flat[worst]):.3g} > "
                                     f"{bound.flat[worst]:.3g} at x={x.flat[worst]:.4g}")


def sample(shape, seed):
    """float32 values spread over the interesting regions: around 0, the kinks at +-0.5 / +-1 / 3 / 6 and beyond."""
    rng = np.random.default_rng(seed)
    scale = rng.choice([0.5, 2.0, 5.0])
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# ---- PyTorch -> Keras ----------------------------------------------------------------------------------------------

def number(rng, low, high):
    return round(rng.uniform(low, high), 3)


def torch_config(rng, rank):
    """Text of a valid PyTorch activation module for a (N, C, *spatial[rank]) input."""
    kind = rng.choice(["ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Hardswish",
                       "Hardsigmoid", "Hardtanh", "Sigmoid", "Tanh", "Softplus", "Softsign", "Tanhshrink",
                       "Hardshrink", "Softshrink", "LogSigmoid", "Softmax", "LogSoftmax", "PReLU", "PReLU"])
    inplace = rng.random() < 0.2
    if kind in ("ReLU", "ReLU6", "SELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid"):
        return f"nn.{kind}({'inplace=True' if inplace else ''})"
    if kind == "LeakyReLU":
        form = rng.random()
        if form < 0.25:
            return "nn.LeakyReLU()"
        slope = number(rng, 0.0, 0.5)
        return f"nn.LeakyReLU({slope!r})" if form < 0.6 else f"nn.LeakyReLU(negative_slope={slope!r})"
    if kind in ("ELU", "CELU"):
        if rng.random() < 0.25:
            return f"nn.{kind}()"
        alpha = number(rng, 0.1, 2.0)
        return f"nn.{kind}(alpha={alpha!r})" if rng.random() < 0.5 else f"nn.{kind}({alpha!r})"
    if kind == "GELU":
        return rng.choice(["nn.GELU()", "nn.GELU('none')", "nn.GELU(approximate='none')",
                           "nn.GELU(approximate='tanh')", "nn.GELU('tanh')"])
    if kind == "Hardtanh":
        return rng.choice(["nn.Hardtanh()", "nn.Hardtanh(-1.0, 1.0)", "nn.Hardtanh(0.0, 6.0)",
                           "nn.Hardtanh(min_val=0.0, max_val=6.0)"])
    if kind == "Softplus":
        return rng.choice(["nn.Softplus()", "nn.Softplus(beta=1.0)", "nn.Softplus(1, 20)", "nn.Softplus(threshold=30)"])
    if kind in ("Hardshrink", "Softshrink"):
        if rng.random() < 0.3:
            return f"nn.{kind}()"
        return f"nn.{kind}({number(rng, 0.0, 2.0)!r})" if rng.random() < 0.5 else \
            f"nn.{kind}(lambd={number(rng, 0.0, 2.0)!r})"
    if kind in ("Softmax", "LogSoftmax"):
        dim = rng.randint(-(rank + 2), rank + 1)
        return f"nn.{kind}(dim={dim})" if rng.random() < 0.7 else f"nn.{kind}({dim})"
    if kind == "PReLU":
        if rng.random() < 0.4:
            init = "" if rng.random() < 0.5 else f"init={number(rng, -0.5, 0.5)!r}"
            return f"nn.PReLU({init})"
        return "nn.PReLU(num_parameters=C)"  # C substituted by the case
    return f"nn.{kind}()"


def torch_case(index):
    rng = random.Random(1000 + index)
    rank = rng.choice([1, 2, 2, 3])
    channels = rng.randint(1, 5)
    spatial = tuple(rng.randint(1, {1: 7, 2: 5, 3: 3}[rank]) for _ in range(rank))
    shape = (rng.randint(1, 3), channels) + spatial
    text = torch_config(rng, rank).replace("num_parameters=C", f"num_parameters={channels}")
    module = eval(text, {"nn": nn})  # noqa: S307 - our own generated text
    if isinstance(module, nn.PReLU):
        with torch.no_grad():  # random slopes, some negative, some above 1
            module.weight.copy_(torch.from_numpy(
                np.random.default_rng(index + 77).uniform(-1.5, 1.5, module.weight.shape).astype(np.float32)))
    x = sample(shape, index)
    needs_rank = isinstance(module, (nn.Softmax, nn.LogSoftmax)) and module.dim < 0
    form = rng.random()
    if form < 0.5:
        input_shape = shape
    elif form < 0.85 or needs_rank or isinstance(module, nn.PReLU):
        input_shape = (None, channels) + (None,) * rank
    else:
        input_shape = None
    return text, module, x, input_shape


def refused_argument(module, rank):
    """The argument convbridge refuses for this module (Keras' celu, hard_shrink, soft_shrink and log_softmax take
    alpha=1, threshold=0.5 and axis=-1 only in convbridge's Keras plans), or None."""
    if isinstance(module, nn.CELU) and module.alpha != 1.0:
        return "alpha"
    if isinstance(module, (nn.Hardshrink, nn.Softshrink)) and module.lambd != 0.5:
        return "lambd"
    if isinstance(module, nn.LogSoftmax) and module.dim % (rank + 2) != 1:
        return "dim"
    return None


def check_torch_to_keras(index):
    text, module, x, input_shape = torch_case(index)
    what = f"case {index}: {text} input {x.shape} input_shape={input_shape}"
    with torch.no_grad():
        expected = module(torch.from_numpy(x.copy())).numpy()  # a copy: inplace=True modules overwrite it
    refused = refused_argument(module, x.ndim - 2)
    if refused is not None:  # PyTorch runs it (above); convbridge refuses it by name, never translates it wrongly
        with pytest.raises(ValueError, match=refused):
            convbridge.to_keras(module, input_shape=input_shape)
        return
    layer = convbridge.to_keras(module, input_shape=input_shape)
    x_last = to_last(x)
    assert_close(to_first(layer(x_last)), expected, x, what + " [to_keras]")
    if index % EMITTED_EVERY == 0:
        plan = convbridge.translate(module, input_shape)
        weights = {name: getattr(module, name).detach().numpy() for name in plan.source_weight_names}
        scope = {}
        exec(plan.keras_code(), scope)  # noqa: S102 - our own generated code
        assert_close(to_first(scope["make_layer"](**weights)(x_last)), expected, x, what + " [keras_code]")


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_torch_activation_to_keras(chunk):
    for index in range(chunk * TORCH_CASES_PER_CHUNK, (chunk + 1) * TORCH_CASES_PER_CHUNK):
        check_torch_to_keras(index)


# ---- Keras -> PyTorch ----------------------------------------------------------------------------------------------

KERAS_NAMES = ["relu", "relu6", "leaky_relu", "elu", "selu", "celu", "sigmoid", "tanh", "softplus", "softsign", "silu",
               "swish", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "mish", "log_sigmoid",
               "tanh_shrink", "hard_shrink", "soft_shrink", "softmax", "log_softmax"]


def keras_config(rng, rank):
    kind = rng.choice(["ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "Activation", "Activation", "Activation"])
    if kind == "ReLU":
        form = rng.random()
        if form < 0.3:
            return "keras.layers.ReLU()"
        if form < 0.6:
            return rng.choice(["keras.layers.ReLU(max_value=6)", "keras.layers.ReLU(6.0)",
                               "keras.layers.ReLU(max_value=6.0, negative_slope=0.0, threshold=0.0)"])
        return f"keras.layers.ReLU(negative_slope={number(rng, 0.01, 0.5)!r})"
    if kind == "LeakyReLU":
        if rng.random() < 0.3:
            return "keras.layers.LeakyReLU()"
        return f"keras.layers.LeakyReLU(negative_slope={number(rng, 0.0, 0.5)!r})"
    if kind == "ELU":
        return "keras.layers.ELU()" if rng.random() < 0.3 else f"keras.layers.ELU(alpha={number(rng, 0.1, 2.0)!r})"
    if kind == "PReLU":
        axes = list(range(1, rank + 1))  # per channel; sharing over every axis: test_prelu_shared_over_every_axis
        if rng.random() < 0.3:
            rng.shuffle(axes)
        return f"keras.layers.PReLU(shared_axes={axes!r})"
    if kind == "Softmax":
        return "keras.layers.Softmax()" if rng.random() < 0.3 else \
            f"keras.layers.Softmax(axis={rng.randint(-(rank + 1), rank + 1)})"
    name = rng.choice(KERAS_NAMES)
    form = rng.random()
    if form < 0.6:
        return f"keras.layers.Activation({name!r})"
    if form < 0.8:
        return f"keras.layers.Activation(activation={name!r})"
    return f"keras.layers.Activation(keras.activations.{name})"


def keras_case(index):
    rng = random.Random(5000 + index)
    rank = rng.choice([1, 2, 2, 3])
    channels = rng.randint(1, 5)
    spatial = tuple(rng.randint(1, {1: 7, 2: 5, 3: 3}[rank]) for _ in range(rank))
    shape = (rng.randint(1, 3),) + spatial + (channels,)
    text = keras_config(rng, rank)
    layer = eval(text, {"keras": keras})  # noqa: S307
    x = sample(shape, index)
    if isinstance(layer, keras.layers.PReLU):
        layer.build(shape)
        alpha = layer.get_weights()[0]
        layer.set_weights([np.random.default_rng(index + 77).uniform(-1.5, 1.5, alpha.shape).astype(np.float32)])
    known = rng.random() < 0.5
    input_shape = shape if known else (None,) * (rank + 1) + (channels,)
    return text, layer, x, input_shape


def check_keras_to_torch(index):
    text, layer, x, input_shape = keras_case(index)
    what = f"case {index}: {text} input {x.shape} input_shape={input_shape}"
    expected = np.asarray(layer(x))
    module = convbridge.to_torch(layer, input_shape=input_shape)
    x_first = np.ascontiguousarray(to_first(x))
    with torch.no_grad():
        got = module(torch.from_numpy(x_first.copy())).numpy()
    assert_close(to_last(got), expected, x, what + " [to_torch]")
    if index % EMITTED_EVERY == 0:
        plan = convbridge.translate(layer, input_shape)
        by_name = {v.path.rsplit("/", 1)[-1]: np.asarray(v) for v in layer.weights}
        scope = {}
        exec(plan.torch_code(), scope)  # noqa: S102
        with torch.no_grad():
            got = scope["make_module"](**{n: by_name[n] for n in plan.source_weight_names})(torch.from_numpy(x_first.copy())).numpy()
        assert_close(to_last(got), expected, x, what + " [torch_code]")


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_keras_activation_to_torch(chunk):
    for index in range(chunk * KERAS_CASES_PER_CHUNK, (chunk + 1) * KERAS_CASES_PER_CHUNK):
        check_keras_to_torch(index)


# ---- rejections ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, shape, fragment", [
    ("nn.Hardtanh(1.0, -1.0)", (1, 2, 3, 3), "max_val"),
    ("nn.Softshrink(-0.5)", (1, 2, 3, 3), "lambd"),
    ("nn.GELU(approximate='fast')", (1, 2, 3, 3), "approximate"),
    ("nn.Softmax(dim=4)", (1, 2, 3, 3), "dim"),
    ("nn.LogSoftmax(dim=-5)", (1, 2, 3, 3), "dim"),
    ("nn.PReLU(3)", (1, 4, 3, 3), "slopes|num_parameters"),
])
def test_torch_rejects_so_does_convbridge(text, shape, fragment):
    with pytest.raises((RuntimeError, ValueError, IndexError, AssertionError)):
        eval(text, {"nn": nn})(torch.zeros(shape))  # noqa: S307
    with pytest.raises(ValueError, match=fragment):
        convbridge.to_keras(text, input_shape=shape)


@pytest.mark.parametrize("text, shape, fragment", [
    ("keras.layers.ReLU(max_value=-1.0)", (1, 3, 3, 2), "max_value"),
    ("keras.layers.ReLU(negative_slope=-0.5)", (1, 3, 3, 2), "negative_slope"),
    ("keras.layers.LeakyReLU(negative_slope=-0.1)", (1, 3, 3, 2), "negative_slope"),
    ("keras.layers.Activation('relu7')", (1, 3, 3, 2), "activation"),
    ("keras.layers.Softmax(axis=5)", (1, 3, 3, 2), "axis"),
])
def test_keras_rejects_so_does_convbridge(text, shape, fragment):
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError, IndexError)):
        eval(text, {"keras": keras})(np.zeros(shape, np.float32))  # noqa: S307
    with pytest.raises(ValueError, match=fragment):
        convbridge.to_torch(text, input_shape=shape)


# ---- facts (layer-semantics.md, "Activations") ---------------------------------------------------------------------

X = np.linspace(-7.0, 7.0, 141, dtype=np.float32).reshape(1, 141, 1)  # (N, W, C) channels_last; 0.1 steps
XT = torch.from_numpy(np.ascontiguousarray(to_first(X)))  # (N, C, W)


def keras_of(module, shape=(1, 1, 141)):
    return np.asarray(convbridge.to_keras(module, input_shape=shape)(X))


def torch_of(layer, shape=(1, 141, 1)):
    with torch.no_grad():
        return to_last(convbridge.to_torch(layer, input_shape=shape)(XT.clone()).numpy())


def torch_out(module):
    with torch.no_grad():
        return to_last(module(XT.clone()).numpy())


def test_fact_leaky_relu_default_slopes():
    minus_one = np.array([[[-1.0]]], np.float32)
    assert nn.LeakyReLU()(torch.tensor([-1.0])).item() == pytest.approx(-0.01, abs=1e-7)
    assert float(keras.layers.LeakyReLU()(minus_one)[0, 0, 0]) == pytest.approx(-0.3, abs=1e-7)
    assert float(keras.layers.Activation("leaky_relu")(minus_one)[0, 0, 0]) == pytest.approx(-0.2, abs=1e-7)
    assert float(keras.activations.leaky_relu(minus_one)[0, 0, 0]) == pytest.approx(-0.2, abs=1e-7)
    # convbridge carries the slope; the naive same-class translation is off by 0.29 / 0.19 at x = -1
    expected = torch_out(nn.LeakyReLU())
    assert_close(keras_of(nn.LeakyReLU()), expected, X, "to_keras(nn.LeakyReLU())")
    assert np.abs(np.asarray(keras.layers.LeakyReLU()(X)) - expected).max() > 1.0  # 0.29 * 7
    for layer, slope in [(keras.layers.LeakyReLU(), 0.3), (keras.layers.Activation("leaky_relu"), 0.2)]:
        expected = np.asarray(layer(X))
        assert_close(torch_of(layer), expected, X, f"to_torch({layer})")
        assert_close(torch_out(nn.LeakyReLU(slope)), expected, X, "nn.LeakyReLU(slope)")
        assert np.abs(torch_out(nn.LeakyReLU()) - expected).max() > 1.0


def test_fact_gelu_approximations():
    exact = torch_out(nn.GELU())
    tanh = torch_out(nn.GELU(approximate="tanh"))
    assert_close(np.asarray(keras.activations.gelu(X)), exact, X, "keras gelu default = erf form")
    assert_close(np.asarray(keras.activations.gelu(X, approximate=True)), tanh, X, "keras gelu(approximate=True)")
    gap = np.abs(exact - tanh).max()
    assert 1e-4 < gap < 1e-3  # measured 4.73e-4 at x = -2.7: small, but ~65x the tolerance there (7.1e-6)
    assert_close(keras_of(nn.GELU(approximate="tanh")), tanh, X, "to_keras(GELU('tanh'))")
    assert np.abs(np.asarray(keras.layers.Activation("gelu")(X)) - tanh).max() > 1e-4  # the naive 'gelu' string
    assert_close(keras_of(nn.GELU()), exact, X, "to_keras(GELU())")
    assert_close(torch_of(keras.layers.Activation("gelu")), exact, X, "to_torch(Activation('gelu'))")


def test_fact_keras3_hard_sigmoid_is_relu6_form():
    relu6_form = np.clip(X.astype(np.float64) + 3.0, 0.0, 6.0) / 6.0
    keras2_form = np.clip(0.2 * X.astype(np.float64) + 0.5, 0.0, 1.0)
    for got in (keras.activations.hard_sigmoid(X), keras.ops.hard_sigmoid(X), torch_out(nn.Hardsigmoid())):
        assert_close(got, relu6_form, X, "hard_sigmoid = relu6(x + 3) / 6")
    assert np.abs(relu6_form - keras2_form).max() > 0.08  # measured 0.0833 at x = -2.5 (0 vs 1/12)
    assert_close(keras_of(nn.Hardsigmoid()), relu6_form, X, "to_keras(Hardsigmoid())")
    assert_close(torch_of(keras.layers.Activation("hard_sigmoid")), relu6_form, X, "to_torch(hard_sigmoid)")


def test_fact_hard_silu_is_hardswish():
    hardswish = torch_out(nn.Hardswish())
    np.testing.assert_allclose(hardswish, X * np.clip(X + 3.0, 0.0, 6.0) / 6.0, atol=1e-6)
    for name in ("hard_silu", "hard_swish"):
        assert_close(np.asarray(getattr(keras.activations, name)(X)), hardswish, X, f"keras {name}")
        assert_close(torch_of(keras.layers.Activation(name)), hardswish, X, f"to_torch(Activation({name!r}))")
    assert np.abs(torch_out(nn.SiLU()) - hardswish).max() > 0.1  # the naive 'silu' for 'hard_silu'
    assert_close(keras_of(nn.Hardswish()), hardswish, X, "to_keras(Hardswish())")


def test_fact_elu_alpha_and_selu_constants():
    minus = np.array([[[-2.0]]], np.float32)
    assert nn.ELU().alpha == 1.0 and float(keras.layers.ELU()(minus)[0, 0, 0]) == pytest.approx(np.expm1(-2.0), 1e-6)
    # SELU: scale 1.0507009873554805, alpha 1.6732632423543772 (torch/nn/modules/activation.py, keras selu)
    scale, alpha = 1.0507009873554805, 1.6732632423543772
    selu = np.where(X > 0, scale * X.astype(np.float64), scale * alpha * np.expm1(X.astype(np.float64)))
    assert_close(torch_out(nn.SELU()), selu, X, "torch SELU constants")
    assert_close(np.asarray(keras.activations.selu(X)), selu, X, "keras selu constants")
    assert_close(torch_of(keras.layers.Activation("selu")), selu, X, "to_torch(selu)")
    # ELU(alpha=0.5): carried over; the naive ELU() (alpha 1) is off by 0.5 * (1 - e^-7) ~ 0.5
    expected = torch_out(nn.ELU(alpha=0.5))
    assert_close(keras_of(nn.ELU(alpha=0.5)), expected, X, "to_keras(ELU(0.5))")
    assert np.abs(np.asarray(keras.layers.ELU()(X)) - expected).max() > 0.4
    layer = keras.layers.ELU(alpha=0.5)
    assert_close(torch_of(layer), np.asarray(layer(X)), X, "to_torch(ELU(alpha=0.5))")
    # CELU(alpha) = max(0, x) + min(0, alpha * expm1(x / alpha)): not ELU(alpha) for alpha != 1; convbridge maps
    # CELU(1) (= ELU(1)) and refuses other alphas by name
    celu = torch_out(nn.CELU(alpha=2.0))
    assert np.abs(torch_out(nn.ELU(alpha=2.0)) - celu).max() > 0.1
    assert_close(keras_of(nn.CELU()), torch_out(nn.ELU()), X, "to_keras(CELU())")
    with pytest.raises(ValueError, match="alpha"):
        convbridge.to_keras(nn.CELU(alpha=2.0), input_shape=(1, 1, 141))


def test_fact_softmax_dim_is_last_axis_in_channels_last():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5)).astype(np.float32)  # NHWC, C = 5
    xt = torch.from_numpy(np.ascontiguousarray(to_first(x)))  # NCHW
    expected = to_last(nn.Softmax(dim=1)(xt).numpy())
    assert_close(np.asarray(keras.layers.Softmax()(x)), expected, x, "keras Softmax() = torch dim=1")
    assert np.abs(np.asarray(keras.layers.Softmax(axis=1)(x)) - expected).max() > 0.1  # the naive axis=1 (H)
    assert_close(np.asarray(convbridge.to_keras(nn.Softmax(dim=1), input_shape=(2, 5, 3, 4))(x)), expected, x,
                 "to_keras(Softmax(dim=1))")
    # torch dim=-1 (W) is Keras axis -2 (W) in channels_last, not axis -1
    expected_w = to_last(nn.Softmax(dim=-1)(xt).numpy())
    assert_close(np.asarray(keras.layers.Softmax(axis=-2)(x)), expected_w, x, "keras axis=-2 = torch dim=-1")
    assert np.abs(np.asarray(keras.layers.Softmax(axis=-1)(x)) - expected_w).max() > 0.1
    assert_close(np.asarray(convbridge.to_keras(nn.Softmax(dim=-1), input_shape=(None, 5, None, None))(x)),
                 expected_w, x, "to_keras(Softmax(dim=-1))")
    with torch.no_grad():
        got = convbridge.to_torch(keras.layers.Softmax(axis=1), input_shape=(None, None, None, 5))(xt).numpy()
    assert_close(to_last(got), np.asarray(keras.layers.Softmax(axis=1)(x)), x, "to_torch(Softmax(axis=1))")


def test_fact_prelu_per_channel_vs_shared_axes():
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 3)).astype(np.float32)  # NHWC, C = 3
    xt = torch.from_numpy(np.ascontiguousarray(to_first(x)))
    slopes = np.array([0.1, -0.7, 1.3], np.float32)
    module = nn.PReLU(3)
    assert tuple(module.weight.shape) == (3,) and float(nn.PReLU().weight) == 0.25  # torch default init 0.25
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(slopes))
        expected = to_last(module(xt).numpy())
    per_element = keras.layers.PReLU()
    per_element.build(x.shape)
    assert per_element.get_weights()[0].shape == (3, 4, 3)  # shared_axes=None: one slope per element, zeros
    assert not per_element.get_weights()[0].any()
    per_channel = keras.layers.PReLU(shared_axes=[1, 2])
    per_channel.build(x.shape)
    assert per_channel.get_weights()[0].shape == (1, 1, 3)
    per_channel.set_weights([slopes.reshape(1, 1, 3)])
    assert_close(np.asarray(per_channel(x)), expected, x, "keras PReLU(shared_axes=[1, 2]) = nn.PReLU(C)")
    assert np.abs(np.asarray(per_element(x)) - expected).max() > 0.1  # the naive PReLU(): zero slopes
    assert_close(np.asarray(convbridge.to_keras(module, input_shape=(2, 3, 3, 4))(x)), expected, x, "to_keras(PReLU)")
    with torch.no_grad():
        got = convbridge.to_torch(per_channel, input_shape=(None, None, None, 3))(xt.clone()).numpy()
    assert_close(to_last(got), expected, x, "to_torch(PReLU(shared_axes=[1, 2]))")
    with pytest.raises(ValueError, match="shared_axes"):
        convbridge.to_torch(keras.layers.PReLU(shared_axes=[2]), input_shape=(None, 3, 4, 3))


@pytest.mark.xfail(strict=True, reason="convbridge bug: PReLU(shared_axes=every axis) is one slope (nn.PReLU()), "
                   "but the plan refuses it ('shares over all spatial axes only') and the built layer's (1, 1, 1) "
                   "alpha is read as 1 channel")
def test_prelu_shared_over_every_axis():
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 3)).astype(np.float32)
    layer = keras.layers.PReLU(shared_axes=[1, 2, 3])
    layer.build(x.shape)
    layer.set_weights([np.full((1, 1, 1), -0.4, np.float32)])
    with torch.no_grad():
        got = convbridge.to_torch(layer, input_shape=(None, None, None, 3))(
            torch.from_numpy(np.ascontiguousarray(to_first(x)))).numpy()
    assert_close(to_last(got), np.asarray(layer(x)), x, "to_torch(PReLU(shared_axes=[1, 2, 3]))")
