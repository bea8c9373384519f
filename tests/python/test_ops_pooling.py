"""Differential tests of the pooling family against the real PyTorch 2.13 and Keras 3.15 / TensorFlow 2.21.

Both directions, on generated configurations of every argument form (positional and keyword, stride None, tuples,
padding, dilation, ceil_mode, count_include_pad, divisor_override, adaptive sizes with None, Keras 'valid'/'same',
Global*(keepdims), Adaptive*), input sizes known and unknown (odd, even, minimal), batch 1..3:
  - PyTorch module m -> convbridge.to_keras(m, input_shape) and the emitted keras_code / tf_code, against
    m.double() on the same float32 values;
  - Keras layer k -> convbridge.to_torch(k, input_shape) and the emitted torch_code, against k itself;
  - configurations the framework rejects are rejected by convbridge too (ValueError naming the argument);
  - one named test per fact of /work/shared/reference/layer-semantics.md "Pooling", asserting the frameworks'
    own behaviour, and that convbridge is exact where the naive translation is not.

Tolerance (`tolerance`): pooling adds at most W = prod(kernel) (or the largest adaptive window) float32 values, so
the float32 result differs from the float64 reference by at most about (W + 2) * eps32 * max|x| (each partial sum
rounds once, plus the final division and the rounding of the input itself), eps32 = 2**-23 ~ 1.2e-7. We allow
twice that bound. A wrong window, pad value or divisor is off by O(max|x| / W) or more, far above it; max pooling
is exact up to the rounding of the input (W = 1 would do; the common bound is kept for simplicity).

Cases: CONVBRIDGE_OPS_900 (a multiplier, default 1) scales the generated counts: 450 PyTorch -> Keras, 400 Keras
-> PyTorch and 60 rejection cases at 1 (910), every case seeded by its index, and its failure message carries the
layer text and input shape to reproduce it.
"""

from __future__ import annotations

import math
import os
import random

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import convbridge  # noqa: E402

MULTIPLIER = max(1, int(os.environ.get("CONVBRIDGE_OPS_900", "1")))
TORCH_CASES = 450 * MULTIPLIER
KERAS_CASES = 400 * MULTIPLIER
REJECT_CASES = 60 * MULTIPLIER
EMITTED_EVERY = 3  # the emitted code is executed for every third case (the live objects for all of them)
EPS32 = 2.0 ** -23


def tolerance(window, x):
    return 2.0 * (window + 2) * EPS32 * max(1.0, float(np.abs(x).max()))


def to_last(a):
    """(N, C, *spatial) -> (N, *spatial, C); (N, C) unchanged."""
    a = np.asarray(a)
    return a if a.ndim <= 2 else np.moveaxis(a, 1, -1)


def to_first(a):
    a = np.asarray(a)
    return a if a.ndim <= 2 else np.moveaxis(a, -1, 1)


def assert_close(actual, expected, tol, what):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    # PyTorch's max over a dilated window that reads only padding is -inf: it must be -inf here too.
    assert np.array_equal(np.isneginf(actual), np.isneginf(expected)), f"{what}: -inf entries differ"
    actual, expected = np.where(np.isneginf(actual), 0.0, actual), np.where(np.isneginf(expected), 0.0, expected)
    if actual.size:
        diff = float(np.abs(actual - expected).max())
        assert diff <= tol, f"{what}: max |diff| {diff:.3g} > {tol:.3g}"


def run_keras_code(plan, x_last):
    scope = {}
    exec(plan.keras_code(), scope)  # noqa: S102 - our own generated code
    return np.asarray(scope["make_layer"]()(x_last))


def run_tf_code(plan, x_last):
    scope = {}
    exec(plan.tf_code(), scope)  # noqa: S102
    return np.asarray(scope["layer"](x_last))


def run_torch_code(plan, x_first):
    scope = {}
    exec(plan.torch_code(), scope)  # noqa: S102
    with torch.no_grad():
        return scope["make_module"]()(torch.from_numpy(x_first)).numpy()


# ---- PyTorch -> Keras ----------------------------------------------------------------------------------------------


def ints(rng, rank, low, high, tuple_chance=0.5):
    """An int, or a tuple of `rank` ints (the forms PyTorch takes)."""
    if rng.random() < tuple_chance and rank > 1:
        return tuple(rng.randint(low, high) for _ in range(rank))
    return rng.randint(low, high)


def per_axis(value, rank):
    return tuple(value) if isinstance(value, tuple) else (value,) * rank


def torch_config(rng):
    """(layer text, rank, window elements) of a valid PyTorch pooling module."""
    rank = rng.choice([1, 2, 2, 2, 3])
    kind = rng.choice(["max", "max", "avg", "avg", "adaptive_avg", "adaptive_max"])
    if kind.startswith("adaptive"):
        cls = f"Adaptive{'Avg' if kind == 'adaptive_avg' else 'Max'}Pool{rank}d"
        form = rng.random()
        if form < 0.2:
            size = 1
        elif form < 0.5 and rank > 1:
            size = tuple(rng.choice([None, 1, 2, 3, 4, 5]) for _ in range(rank))
        else:
            size = rng.randint(1, 6)
        text = f"nn.{cls}({size!r})" if rng.random() < 0.5 else f"nn.{cls}(output_size={size!r})"
        return text, rank, None
    k_high = 3 if rank == 3 else 4
    kernel = ints(rng, rank, 1, k_high)
    ks = per_axis(kernel, rank)
    args = [f"kernel_size={kernel!r}"]
    if rng.random() < 0.7:
        args.append(f"stride={ints(rng, rank, 1, 3)!r}")
    elif rng.random() < 0.3:
        args.append("stride=None")
    if rng.random() < 0.6:
        pad = tuple(rng.randint(0, k // 2) for k in ks)
        args.append(f"padding={pad if rng.random() < 0.5 or rank == 1 else pad[0] if len(set(pad)) == 1 else pad!r}")
    if kind == "max":
        if rng.random() < 0.3:
            args.append(f"dilation={ints(rng, rank, 1, 2)!r}")
        if rng.random() < 0.2:
            args.append("return_indices=False")
    if rng.random() < 0.45:
        args.append("ceil_mode=True")
    if kind == "avg":
        if rng.random() < 0.5:
            args.append(f"count_include_pad={rng.random() < 0.5}")
        if rank > 1 and rng.random() < 0.2:
            args.append(f"divisor_override={rng.choice([1, 2, 3, 5, -2])}")
    rng.shuffle(args)
    cls = f"{'Max' if kind == 'max' else 'Avg'}Pool{rank}d"
    return f"nn.{cls}({', '.join(args)})", rank, math.prod(ks)


def torch_case(index):
    rng = random.Random(1000 + index)
    while True:
        text, rank, window = torch_config(rng)
        module = eval(text, {"nn": nn})  # noqa: S307 - our own generated text
        high = {1: 14, 2: 9, 3: 6}[rank]
        spatial = tuple(rng.randint(1, high) for _ in range(rank))
        shape = (rng.randint(1, 3), rng.randint(1, 4)) + spatial
        x = torch.from_numpy(np.random.default_rng(index).standard_normal(shape).astype(np.float32))
        try:
            with torch.no_grad():
                expected = module.double()(x.double()).numpy()
        except RuntimeError:
            continue  # too small for this window: draw again (the rejections are tested below)
        return text, module, x.numpy(), expected, window, rng.random() < 0.5


@pytest.mark.parametrize("index", range(TORCH_CASES))
def test_torch_to_keras(index):
    text, module, x, expected, window, known = torch_case(index)
    input_shape = x.shape if known else None
    what = f"{text} input {x.shape} input_shape={input_shape}"
    if window is None:
        window = math.prod(x.shape[2:])
    tol = tolerance(window, x)
    layer = convbridge.to_keras(module.float(), input_shape=input_shape)
    x_last = to_last(x)
    assert_close(to_first(layer(x_last)), expected, tol, what + " [to_keras]")
    if index % EMITTED_EVERY == 0:
        plan = convbridge.translate(module, input_shape)
        assert_close(to_first(run_keras_code(plan, x_last)), expected, tol, what + " [keras_code]")
        assert_close(to_first(run_tf_code(plan, x_last)), expected, tol, what + " [tf_code]")


# ---- Keras -> PyTorch ----------------------------------------------------------------------------------------------


def keras_config(rng):
    rank = rng.choice([1, 2, 2, 2, 3])
    kind = rng.choice(["MaxPooling", "AveragePooling", "MaxPool", "AvgPool", "GlobalAveragePooling",
                       "GlobalMaxPooling", "AdaptiveAveragePooling", "AdaptiveMaxPooling"])
    cls = f"{kind}{rank}D"
    if kind.startswith("Global"):
        args = [] if rng.random() < 0.4 else [f"keepdims={rng.random() < 0.5}"]
        return cls, rank, args, None, "valid"
    if kind.startswith("Adaptive"):
        size = ints(rng, rank, 1, 5)
        return cls, rank, [f"{size!r}" if rng.random() < 0.5 else f"output_size={size!r}"], None, "valid"
    pool = ints(rng, rank, 1, 3 if rank == 3 else 4)
    args = [f"pool_size={pool!r}" if rng.random() < 0.5 else f"{pool!r}"]
    if rng.random() < 0.7:
        args.append(f"strides={ints(rng, rank, 1, 3)!r}")
    padding = rng.choice(["valid", "same", "same", "SAME"])
    if padding != "valid" or rng.random() < 0.5:
        args.append(f"padding={padding!r}")
    if rng.random() < 0.2:
        args.append("data_format='channels_last'")
    return cls, rank, args, math.prod(per_axis(pool, rank)), padding.lower()


def keras_case(index):
    rng = random.Random(5000 + index)
    while True:
        cls, rank, args, window, padding = keras_config(rng)
        positional = [a for a in args if "=" not in a]
        keywords = [a for a in args if "=" in a]
        text = f"keras.layers.{cls}({', '.join(positional + keywords)})"
        layer = eval(text, {"keras": keras})  # noqa: S307
        high = {1: 14, 2: 9, 3: 6}[rank]
        spatial = tuple(rng.randint(1, high) for _ in range(rank))
        shape = (rng.randint(1, 3),) + spatial + (rng.randint(1, 4),)
        x = np.random.default_rng(index).standard_normal(shape).astype(np.float32)
        if cls.startswith("AdaptiveMax") and any(-(-n // o) + 1 > n for n, o in zip(spatial, per_axis(
                layer.output_size, rank))):
            continue  # Keras' own adaptive max pooling dies of SIGFPE here (test_fact_keras_adaptive_max_crash)
        if padding == "valid" and window is not None and any(
                n < k for n, k in zip(spatial, per_axis(layer.pool_size, rank))):
            continue  # a 'valid' window longer than the input: TF's pooling may die of SIGFPE instead of raising
        try:
            expected = np.asarray(layer(x))
        except Exception:  # noqa: BLE001 - a 'valid' window larger than the input: draw again
            continue
        if window is None:
            window = math.prod(spatial)
        return text, layer, x, expected, window, rng.random() < 0.5


@pytest.mark.parametrize("index", range(KERAS_CASES))
def test_keras_to_torch(index):
    text, layer, x, expected, window, known = keras_case(index)
    input_shape = x.shape if known else None
    what = f"{text} input {x.shape} input_shape={input_shape}"
    tol = tolerance(window, x)
    module = convbridge.to_torch(layer, input_shape=input_shape)
    x_first = np.ascontiguousarray(to_first(x))
    with torch.no_grad():
        actual = module.double()(torch.from_numpy(x_first).double()).numpy()
    assert_close(to_last(actual), expected, tol, what + " [to_torch]")
    if index % EMITTED_EVERY == 0:
        plan = convbridge.translate(layer, input_shape)
        assert_close(to_last(run_torch_code(plan, x_first)), expected, tol, what + " [torch_code]")


# ---- rejections ----------------------------------------------------------------------------------------------------


def rejected_torch_config(rng):
    """(text, argument the message must name, input shape or None): PyTorch refuses each at construction or at the
    first forward of that input."""
    rank = rng.choice([1, 2, 3])
    k = rng.randint(1, 3)
    cls = rng.choice(["MaxPool", "AvgPool"]) + f"{rank}d"
    choice = rng.randrange(7)
    if choice == 0:
        return f"nn.{cls}({k}, padding={k // 2 + 1})", "padding", None
    if choice == 1:
        return f"nn.{cls}({k}, stride=0)", "stride", None
    if choice == 2:
        return f"nn.{cls}({k}, padding=-1)", "padding", None
    if choice == 3:
        return f"nn.{cls}(0)", "kernel_size", None
    if choice == 4:
        return f"nn.MaxPool{rank}d({k}, dilation=0)", "dilation", None
    if choice == 5 and rank > 1:
        return f"nn.AvgPool{rank}d({k}, divisor_override=0)", "divisor_override", None
    big = k + 2 + rng.randint(0, 3)
    return f"nn.{cls}({big})", "size", (2, 3) + (big - 1,) * rank


@pytest.mark.parametrize("index", range(REJECT_CASES))
def test_rejected_like_pytorch(index):
    text, argument, shape = rejected_torch_config(random.Random(9000 + index))
    with pytest.raises(Exception):  # noqa: B017 - PyTorch raises RuntimeError or ValueError, as it likes
        module = eval(text, {"nn": nn})  # noqa: S307
        module(torch.zeros(shape or (1, 2) + (5,) * int(text.split("Pool")[1][0])))
    with pytest.raises(ValueError, match=argument):
        convbridge.translate(text, shape)


def test_keras_rejections_name_the_argument():
    for text, argument in [("keras.layers.MaxPooling2D(0)", "pool_size"),
                           ("keras.layers.MaxPooling2D(2, padding='full')", "padding"),
                           ("keras.layers.AdaptiveAveragePooling2D(0)", "output_size")]:
        with pytest.raises(Exception):  # noqa: B017 - Keras refuses it at construction or at the first call
            eval(text, {"keras": keras})(np.zeros((1, 4, 4, 2), np.float32))  # noqa: S307
        with pytest.raises(ValueError, match=argument):
            convbridge.translate(text)
    # Valid Keras, but not translated: said so, naming the argument.
    with pytest.raises(ValueError, match="data_format='channels_first' is not supported"):
        convbridge.translate("keras.layers.AveragePooling2D(2, data_format='channels_first')")


def test_return_indices_refused_clearly():
    nn.MaxPool2d(3, return_indices=True)(torch.zeros(1, 1, 4, 4))  # valid PyTorch: returns (values, indices)
    with pytest.raises(ValueError, match="return_indices=True"):
        convbridge.to_keras(nn.MaxPool2d(3, return_indices=True))


# ---- facts (layer-semantics.md "Pooling") ------------------------------------------------------------------------


def keras_of(text_or_module, x_first, input_shape=None):
    layer = convbridge.to_keras(text_or_module, input_shape=input_shape)
    return to_first(layer(to_last(x_first)))


def test_fact_ceil_mode_last_window_starts_inside_input():
    # pytorch#45357: MaxPool1d(2, 2, 1, ceil_mode=True) on 5: ceil((5 + 2 - 2) / 2) + 1 = 4 windows by the formula,
    # but the 4th would start at 6 = 5 + 1, in the right padding only: PyTorch drops it.
    x = torch.arange(5.0).reshape(1, 1, 5)
    m = nn.MaxPool1d(2, 2, 1, ceil_mode=True)
    assert tuple(m(x).shape) == (1, 1, 3)
    assert tuple(nn.MaxPool1d(2, 2, 0, ceil_mode=True)(x).shape) == (1, 1, 3)  # no padding: the 3rd is kept
    for input_shape in (None, (1, 1, 5)):
        assert_close(keras_of(m, x.numpy(), input_shape), m(x).numpy(), 1e-6, f"ceil rule {input_shape}")


def test_fact_torch_ceil_mode_is_not_tf_same():
    # Measured over kernels 1..3, strides 1..3, pads 0..k//2, sizes 3..10: same shape in some, differing in others.
    same_shape = same_values = total = 0
    for k in range(1, 4):
        for s in range(1, 4):
            for p in range(0, k // 2 + 1):
                for n in range(3, 11):
                    x = torch.from_numpy(np.random.default_rng(n).standard_normal((1, 1, n, n)).astype(np.float32))
                    m = nn.MaxPool2d(k, s, p, ceil_mode=True)
                    ref = m(x).numpy()
                    tf_same = to_first(tf.nn.max_pool2d(to_last(x.numpy()), k, s, "SAME").numpy())
                    total += 1
                    if ref.shape == tf_same.shape:
                        same_shape += 1
                        same_values += int(np.array_equal(ref, tf_same))
    print(f"ceil_mode vs TF SAME: {total} configurations, same shape {same_shape}, same values {same_values}")
    assert same_values < same_shape < total  # neither shapes nor values agree in general
    m = nn.MaxPool2d(3, 2, 0, ceil_mode=True)  # a case where they differ: 8 -> torch 4 outputs, TF SAME 4 but
    x = torch.randn(1, 2, 8, 8)  # TF pads (0, 1) before the windows torch starts at 0: values differ anyway
    assert_close(keras_of(m, x.numpy()), m(x).numpy(), 1e-6, "convbridge ceil_mode")


def test_fact_max_pool_pads_with_minus_infinity():
    x = -torch.rand(1, 2, 5, 5) - 0.5  # all negative
    m = nn.MaxPool2d(3, 2, 1)
    ref = m(x).numpy()
    naive = keras.layers.MaxPooling2D(3, 2)(keras.layers.ZeroPadding2D(1)(to_last(x.numpy())))
    assert np.abs(to_first(naive) - ref).max() > 0.4  # zero padding wins at the border
    assert (ref < 0).all()
    assert_close(keras_of(m, x.numpy()), ref, 1e-6, "convbridge -inf padding")


def test_fact_dilated_max_pool_is_tf_nn_pool_valid():
    x = torch.randn(2, 3, 11, 10)
    m = nn.MaxPool2d(3, 1, dilation=2)
    tf_pool = tf.nn.pool(to_last(x.numpy()), [3, 3], "MAX", strides=[1, 1], padding="VALID", dilations=[2, 2])
    assert np.array_equal(to_first(tf_pool.numpy()), m(x).numpy())
    m2 = nn.MaxPool2d(3, 2, 1, dilation=2)  # strided and padded: convbridge still exact
    assert_close(keras_of(m2, x.numpy()), m2(x).numpy(), 1e-6, "dilated strided")


def test_fact_count_include_pad_defaults_to_true():
    m = nn.AvgPool2d(3, 1, 1)
    assert m.count_include_pad is True
    x = torch.ones(1, 1, 4, 4)
    assert math.isclose(float(m(x)[0, 0, 0, 0]), 4 / 9, rel_tol=1e-6)  # the corner divides by 9, padding counted
    assert_close(keras_of(m, x.numpy()), m(x).numpy(), 1e-6, "count_include_pad default")


def test_fact_tf_same_avg_pool_excludes_padding():
    x = torch.randn(2, 3, 7, 6)
    keras_same = to_first(keras.layers.AveragePooling2D(3, 1, padding="same")(to_last(x.numpy())))
    exclude = nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x).numpy()
    include = nn.AvgPool2d(3, 1, 1)(x).numpy()
    assert_close(keras_same, exclude, 1e-6, "TF SAME avg vs count_include_pad=False")
    print(f"TF SAME avg vs PyTorch's default count_include_pad=True: max |diff| {np.abs(keras_same - include).max()}")
    assert np.abs(keras_same - include).max() > 0.05
    plan = convbridge.translate(keras.layers.AveragePooling2D(3, 1, padding="same"))
    assert "count_include_pad=False" in plan.torch_code()


def test_fact_zero_padding_valid_avg_is_count_include_pad_true():
    x = torch.randn(2, 3, 7, 6)
    padded = keras.layers.AveragePooling2D(3, 2)(keras.layers.ZeroPadding2D(1)(to_last(x.numpy())))
    assert_close(to_first(padded), nn.AvgPool2d(3, 2, 1)(x).numpy(), 1e-6, "ZeroPadding + valid")
    assert "ZeroPadding2D" in convbridge.translate("nn.AvgPool2d(3, 2, 1)").keras_code()


def test_fact_adaptive_windows_floor_ceil_overlap():
    x = torch.arange(5.0).reshape(1, 1, 5)  # 5 -> 3: [0, 2), [1, 4), [3, 5), by hand
    assert nn.AdaptiveAvgPool1d(3)(x).flatten().tolist() == [0.5, 2.0, 3.5]
    assert nn.AdaptiveMaxPool1d(3)(x).flatten().tolist() == [1.0, 3.0, 4.0]
    for module in (nn.AdaptiveAvgPool1d(3), nn.AdaptiveMaxPool1d(3)):
        assert_close(keras_of(module, x.numpy()), module(x).numpy(), 1e-6, repr(module))


def test_fact_adaptive_none_keeps_the_size():
    x = torch.randn(2, 3, 7, 9)
    m = nn.AdaptiveAvgPool2d((None, 4))
    assert tuple(m(x).shape) == (2, 3, 7, 4)
    assert_close(keras_of(m, x.numpy()), m(x).numpy(), 1e-6, "None entry")


@pytest.mark.parametrize("spatial,out", [((7,), (3,)), ((10, 13), (4, 5)), ((5, 5), (3, 2)), ((9,), (5,)),
                                         ((224, 224), (7, 7))])
def test_fact_keras_adaptive_equals_torch(spatial, out):
    rank = len(spatial)
    x = np.random.default_rng(rank).standard_normal((2,) + spatial + (3,)).astype(np.float32)
    keras_avg = getattr(keras.layers, f"AdaptiveAveragePooling{rank}D")(out)(x)
    keras_max = getattr(keras.layers, f"AdaptiveMaxPooling{rank}D")(out)(x)
    xt = torch.from_numpy(to_first(x).copy())
    torch_avg = getattr(nn, f"AdaptiveAvgPool{rank}d")(out)(xt).numpy()
    torch_max = getattr(nn, f"AdaptiveMaxPool{rank}d")(out)(xt).numpy()
    assert_close(to_first(keras_avg), torch_avg, tolerance(math.prod(spatial), x), f"avg {spatial}->{out}")
    assert np.array_equal(to_first(keras_max), torch_max)


def test_fact_keras_adaptive_max_crash():
    # Keras 3.15 AdaptiveMaxPooling max-pools windows of ceil(n/out) and ceil(n/out) + 1 'VALID'; when the larger one
    # exceeds the axis (out 1, or n 1) TF's MaxPool dies of SIGFPE. Run in a child process: it kills its process.
    import subprocess
    import sys

    code = ("import os; os.environ['KERAS_BACKEND'] = 'tensorflow'; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
            "import keras, numpy as np\n"
            "keras.layers.AdaptiveMaxPooling1D(1)(np.ones((1, 7, 4), np.float32))\n")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert child.returncode != 0, "Keras adaptive max pooling 7 -> 1 no longer crashes: the plan can use it again"
    # convbridge plans our layer for such sizes (and GlobalMaxPooling for output 1 everywhere).
    for module, shape in ((nn.AdaptiveMaxPool2d((2, 1)), (1, 4, 7, 5)), (nn.AdaptiveMaxPool1d(1), (2, 3, 7))):
        x = torch.randn(*shape)
        assert_close(keras_of(module, x.numpy(), shape), module(x).numpy(), 1e-6, repr(module))


def test_fact_output_one_is_global_average_pooling():
    x = np.random.default_rng(3).standard_normal((2, 5, 6, 3)).astype(np.float32)
    keras_global = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    torch_one = nn.AdaptiveAvgPool2d(1)(torch.from_numpy(to_first(x).copy())).numpy()
    assert_close(to_first(keras_global), torch_one, tolerance(30, x), "output 1")
    assert "GlobalAveragePooling2D(keepdims=True)" in convbridge.translate("nn.AdaptiveAvgPool2d(1)").keras_code()


@pytest.mark.parametrize("text", ["nn.MaxPool2d(3, 2, 1, ceil_mode=True)", "nn.AvgPool2d(3, 2, 1, ceil_mode=True)",
                                  "nn.MaxPool2d(3, 2, 1, dilation=2)", "nn.AvgPool2d(3, 2, 1, count_include_pad=False)",
                                  "nn.AvgPool2d(3, 2, 1, divisor_override=4)"])
@pytest.mark.parametrize("size", [7, 8])
def test_fact_nobuco_failures_are_exact(text, size):
    m = eval(text, {"nn": nn})  # noqa: S307
    x = torch.randn(2, 3, size, size + 1)
    for input_shape in (None, tuple(x.shape)):
        assert_close(keras_of(m, x.numpy(), input_shape), m(x).numpy(), tolerance(9, x.numpy()),
                     f"{text} {tuple(x.shape)} input_shape={input_shape}")


def test_unknown_sizes_in_tf_function():
    # Our layers read their sizes from tf.shape: one traced graph serves every size.
    layer = convbridge.to_keras(nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False))
    f = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    for n in (5, 6, 9):
        x = torch.randn(2, 3, n, n + 1)
        ref = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)(x).numpy()
        assert_close(to_first(f(to_last(x.numpy()))), ref, tolerance(9, x.numpy()), f"tf.function {n}")
    adaptive = convbridge.to_keras(nn.AdaptiveMaxPool2d((3, 2)))
    g = tf.function(adaptive, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    x = torch.randn(1, 3, 8, 7)
    assert_close(to_first(g(to_last(x.numpy()))), nn.AdaptiveMaxPool2d((3, 2))(x).numpy(), 1e-6, "adaptive graph")


def test_torch_module_scripts():
    module = convbridge.to_torch(keras.layers.AveragePooling2D(3, 2, padding="same"))
    scripted = torch.jit.script(module)
    x = torch.randn(1, 2, 7, 8)
    ref = to_first(keras.layers.AveragePooling2D(3, 2, padding="same")(to_last(x.numpy())))
    assert_close(scripted(x).numpy(), ref, tolerance(9, x.numpy()), "scripted TFSamePool")
