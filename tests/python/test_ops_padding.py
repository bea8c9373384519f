"""Differential tests for the padding family (padding, cropping, tf.pad, pixel shuffle) against real PyTorch and
Keras/TensorFlow, in both directions, plus one test per fact of layer-semantics.md for the family.

Padding and pixel shuffle move elements and never compute: every comparison is exact (tolerance 0) on float32
data, against the source framework's own float32 output. Cases are generated from fixed seeds (random.Random per
case index) so a failure message (layer text + input shape) reproduces; CONVBRIDGE_OPS_CASES multiplies the count.
"""
import os
import random

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import convbridge  # noqa: E402

MULTIPLIER = int(os.environ.get("CONVBRIDGE_OPS_CASES", "1"))
CHUNKS = 10
TORCH_CASES_PER_CHUNK = 45 * MULTIPLIER   # 450 PyTorch -> Keras cases
KERAS_CASES_PER_CHUNK = 40 * MULTIPLIER   # 400 Keras/TF -> PyTorch cases
SHUFFLE_CASES = 80 * MULTIPLIER           # 80 in each direction
CODE_EVERY = 7                            # every 7th case also runs the emitted code


def to_nhwc(t):
    return np.moveaxis(np.asarray(t), 1, -1)


def to_nchw(a):
    return np.moveaxis(np.asarray(a), -1, 1)


def random_torch_padding(rng):
    """A PyTorch padding module (or F.pad text) with pads valid for some input, and an input shape that fits."""
    rank = rng.choice([1, 2, 3])
    mode = rng.choice(["zeros", "constant", "reflect", "replicate", "circular"])
    sizes = [rng.choice([1, 2, 3, 4, 5, 7, 8]) if rank < 3 else rng.choice([1, 2, 3, 4]) for _ in range(rank)]
    if mode in ("reflect", "circular"):
        sizes = [max(s, 2) for s in sizes]
    pads = []
    for size in sizes:
        pair = []
        for _ in range(2):
            low = -(size // 3)
            high = {"reflect": size - 1, "circular": size // 2}.get(mode, 3)
            pair.append(rng.randint(low, max(low, high)))
        if size + pair[0] + pair[1] < 1:
            pair = [0, 0]
        if mode == "circular":  # wraps at most what cropping leaves
            kept = size + min(pair[0], 0) + min(pair[1], 0)
            pair = [min(p, kept) for p in pair]
        pads.append(tuple(pair))
    flat = tuple(v for pair in reversed(pads) for v in pair)  # PyTorch order: last axis first
    cls = {"zeros": "ZeroPad", "constant": "ConstantPad", "reflect": "ReflectionPad", "replicate": "ReplicationPad",
           "circular": "CircularPad"}[mode]
    uniform = len(set(flat)) == 1 and rng.random() < 0.5
    padding = flat[0] if uniform else flat
    value = round(rng.uniform(-3, 3), 2)
    if rng.random() < 0.2:
        torch_mode = "constant" if mode in ("zeros", "constant") else mode
        text = f"F.pad(x, {flat!r}, mode={torch_mode!r}" + (f", value={value!r})" if mode == "constant" else ")")
        module = None
    else:
        args = f"{padding!r}, {value!r}" if mode == "constant" else f"{padding!r}"
        text = f"nn.{cls}{rank}d({args})"
        module = eval(text, {"nn": nn})
    batch = rng.choice([1, 2, 3])
    channels = rng.choice([1, 2, 3, 5])
    return text, module, (batch, channels, *sizes)


def run_torch_source(text, module, x):
    if module is not None:
        return module(x)
    return eval(text, {"F": F, "x": x})


def check_torch_to_keras(index):
    rng = random.Random(1000 + index)
    text, module, shape = random_torch_padding(rng)
    x = torch.from_numpy(np.random.default_rng(index).standard_normal(shape).astype(np.float32))
    expected = to_nhwc(run_torch_source(text, module, x).numpy())
    known = rng.random() < 0.5
    input_shape = shape if known else (None, shape[1]) + (None,) * (len(shape) - 2)
    source = module if module is not None else text
    where = f"{text} input {shape} (input_shape={input_shape})"
    layer = convbridge.to_keras(source, input_shape=input_shape)
    got = np.asarray(layer(to_nhwc(x.numpy())))
    assert got.shape == expected.shape, where
    np.testing.assert_array_equal(got, expected, err_msg=where)
    if index % CODE_EVERY == 0:
        plan = convbridge.translate(source, input_shape)
        namespace = {}
        exec(plan.keras_code(), namespace)
        np.testing.assert_array_equal(np.asarray(namespace["make_layer"]()(to_nhwc(x.numpy()))), expected,
                                      err_msg="keras_code " + where)
        namespace = {}
        exec(plan.tf_code(), namespace)
        np.testing.assert_array_equal(np.asarray(namespace["layer"](to_nhwc(x.numpy()))), expected,
                                      err_msg="tf_code " + where)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_torch_padding_to_keras(chunk):
    for index in range(chunk * TORCH_CASES_PER_CHUNK, (chunk + 1) * TORCH_CASES_PER_CHUNK):
        check_torch_to_keras(index)


def random_keras_padding(rng):
    """A Keras ZeroPadding/Cropping layer or a tf.pad text, with a channels_last input shape that fits."""
    rank = rng.choice([1, 2, 3])
    kind = rng.choice(["zero", "crop", "tfpad"])
    sizes = [rng.choice([1, 2, 3, 4, 6, 7]) if rank < 3 else rng.choice([2, 3, 4]) for _ in range(rank)]
    channels = rng.choice([1, 2, 4])
    batch = rng.choice([1, 2])
    if kind == "crop":
        sizes = [s + 3 for s in sizes]
        pairs = [(rng.randint(0, 1), rng.randint(0, 2)) for _ in range(rank)]
    else:
        pairs = [(rng.randint(0, 3), rng.randint(0, 3)) for _ in range(rank)]
    shape = (batch, *sizes, channels)
    if kind == "tfpad":
        mode = rng.choice(["CONSTANT", "REFLECT", "SYMMETRIC", "constant", "reflect"])
        if mode.upper() == "REFLECT":
            pairs = [(min(b, s - 1), min(a, s - 1)) for (b, a), s in zip(pairs, sizes)]
        if mode.upper() == "SYMMETRIC":
            pairs = [(min(b, s), min(a, s)) for (b, a), s in zip(pairs, sizes)]
        paddings = [[0, 0]] + [list(p) for p in pairs] + [[0, 0]]
        value = rng.choice([0, 1.5, -2.0])
        text = f"tf.pad(x, {paddings!r}, mode={mode!r}" + (f", constant_values={value!r})" if value else ")")
        return text, None, shape
    cls = f"{'ZeroPadding' if kind == 'zero' else 'Cropping'}{rank}D"
    argument = tuple(pairs[0]) if rank == 1 else tuple(tuple(p) for p in pairs)
    if rank > 1 and all(b == a for b, a in pairs) and rng.random() < 0.5:
        argument = tuple(b for b, _ in pairs)
    layer = getattr(keras.layers, cls)(argument)
    return f"keras.layers.{cls}({argument!r})", layer, shape


def check_keras_to_torch(index):
    rng = random.Random(5000 + index)
    text, layer, shape = random_keras_padding(rng)
    x = np.random.default_rng(index).standard_normal(shape).astype(np.float32)
    expected = np.asarray(layer(x) if layer is not None else eval(text, {"tf": tf, "x": tf.constant(x)}))
    known = rng.random() < 0.5
    input_shape = shape if known else (None,) * (len(shape) - 1) + (shape[-1],)
    source = layer if layer is not None else text
    where = f"{text} input {shape} (input_shape={input_shape})"
    module = convbridge.to_torch(source, input_shape=input_shape)
    got = to_nhwc(module(torch.from_numpy(to_nchw(x).copy())).detach().numpy())
    assert got.shape == expected.shape, where
    np.testing.assert_array_equal(got, expected, err_msg=where)
    if index % CODE_EVERY == 0:
        namespace = {}
        exec(convbridge.translate(source, input_shape).torch_code(), namespace)
        got = namespace["make_module"]()(torch.from_numpy(to_nchw(x).copy())).detach().numpy()
        np.testing.assert_array_equal(to_nhwc(got), expected, err_msg="torch_code " + where)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_keras_padding_to_torch(chunk):
    for index in range(chunk * KERAS_CASES_PER_CHUNK, (chunk + 1) * KERAS_CASES_PER_CHUNK):
        check_keras_to_torch(index)


def test_pixel_shuffle_both_directions():
    for index in range(SHUFFLE_CASES):
        rng = random.Random(9000 + index)
        r = rng.choice([1, 2, 3]) if index % 2 else rng.choice([2, 3])
        c = rng.choice([1, 2, 3])
        h, w = rng.choice([1, 2, 3, 5]), rng.choice([1, 2, 4])
        n = rng.choice([1, 2])
        known = rng.random() < 0.5
        # PyTorch -> Keras
        module = nn.PixelShuffle(r) if index % 2 else nn.PixelUnshuffle(r)
        shape = (n, c * r * r, h, w) if index % 2 else (n, c, h * r, w * r)
        x = torch.from_numpy(np.random.default_rng(index).standard_normal(shape).astype(np.float32))
        input_shape = shape if known else (None, shape[1], None, None)
        layer = convbridge.to_keras(module, input_shape=input_shape)
        np.testing.assert_array_equal(np.asarray(layer(to_nhwc(x.numpy()))), to_nhwc(module(x).numpy()),
                                      err_msg=f"{module} input {shape}")
        # TensorFlow -> PyTorch
        if r == 1:
            continue
        function = "depth_to_space" if index % 2 else "space_to_depth"
        text = f"tf.nn.{function}(x, {r})"
        nhwc = np.random.default_rng(index + 1).standard_normal(to_nhwc(np.zeros(shape)).shape).astype(np.float32)
        expected = getattr(tf.nn, function)(nhwc, r).numpy()
        input_shape = nhwc.shape if known else (None, None, None, nhwc.shape[-1])
        got = convbridge.to_torch(text, input_shape=input_shape)(torch.from_numpy(to_nchw(nhwc).copy()))
        np.testing.assert_array_equal(to_nhwc(got.detach().numpy()), expected, err_msg=f"{text} input {nhwc.shape}")


@pytest.mark.parametrize("text, shape, fragment", [
    ("nn.ReflectionPad2d(3)", (1, 2, 3, 4), "padding"),
    ("nn.CircularPad1d(5)", (1, 2, 4), "padding"),
    ("nn.ZeroPad2d((-5, 0, 0, 0))", (1, 2, 3, 4), "padding"),
    ("nn.PixelShuffle(2)", (1, 6, 2, 2), "pixel shuffle"),
    ("nn.PixelUnshuffle(2)", (1, 4, 3, 2), "pixel unshuffle"),
])
def test_torch_rejects_so_does_convbridge(text, shape, fragment):
    module = eval(text, {"nn": nn})
    with pytest.raises(RuntimeError):
        module(torch.zeros(shape))
    with pytest.raises(ValueError, match=fragment):
        convbridge.to_keras(module, input_shape=shape)


@pytest.mark.parametrize("text, shape, fragment", [
    ("tf.pad(x, [[0, 0], [3, 0], [0, 0], [0, 0]], mode='REFLECT')", (1, 3, 4, 2), "REFLECT|reflect"),
    ("tf.pad(x, [[0, 0], [4, 0], [0, 0], [0, 0]], mode='SYMMETRIC')", (1, 3, 4, 2), "SYMMETRIC"),
    ("tf.nn.depth_to_space(x, 2)", (1, 2, 2, 6), "channel"),
    ("tf.nn.space_to_depth(x, 2)", (1, 3, 2, 6), "divisible"),
])
def test_tf_rejects_so_does_convbridge(text, shape, fragment):
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        eval(text, {"tf": tf, "x": tf.zeros(shape)})
    with pytest.raises(ValueError, match=fragment):
        convbridge.to_torch(text, input_shape=shape)


# ---- facts (layer-semantics.md, "Padding, reshaping, heads") ----

def test_fact_f_pad_runs_from_the_last_dim():
    x = torch.zeros(1, 1, 2, 3)
    assert F.pad(x, (1, 2)).shape == (1, 1, 2, 6)          # (left, right) pads W, the last dim
    assert F.pad(x, (1, 2, 3, 4)).shape == (1, 1, 9, 6)    # then (top, bottom) pads H
    k = convbridge.to_keras(nn.ZeroPad2d((1, 2, 3, 4)), input_shape=(1, 1, 2, 3))
    assert tuple(k(np.zeros((1, 2, 3, 1), np.float32)).shape) == (1, 9, 6, 1)


def test_fact_negative_pads_crop():
    x = torch.arange(5.0).reshape(1, 1, 5)
    assert F.pad(x, (-1, -2))[0, 0].tolist() == [1.0, 2.0]
    k = convbridge.to_keras(nn.ZeroPad1d((-1, -2)))
    assert np.asarray(k(np.arange(5.0, dtype=np.float32).reshape(1, 5, 1)))[0, :, 0].tolist() == [1.0, 2.0]


def test_fact_tf_reflect_is_torch_reflect():
    x = np.random.default_rng(0).standard_normal((1, 5, 6, 2)).astype(np.float32)
    tf_out = tf.pad(x, [[0, 0], [2, 1], [3, 0], [0, 0]], mode="REFLECT").numpy()
    torch_out = F.pad(torch.from_numpy(to_nchw(x).copy()), (3, 0, 2, 1), mode="reflect").numpy()
    np.testing.assert_array_equal(tf_out, to_nhwc(torch_out))


def test_fact_symmetric_is_not_replicate_except_pad_1():
    x = np.arange(1.0, 5.0, dtype=np.float32).reshape(1, 4, 1)
    t = torch.from_numpy(to_nchw(x).copy())
    sym1 = tf.pad(x, [[0, 0], [1, 1], [0, 0]], mode="SYMMETRIC").numpy()
    np.testing.assert_array_equal(sym1, to_nhwc(F.pad(t, (1, 1), mode="replicate").numpy()))
    sym2 = tf.pad(x, [[0, 0], [2, 2], [0, 0]], mode="SYMMETRIC").numpy()
    rep2 = to_nhwc(F.pad(t, (2, 2), mode="replicate").numpy())
    assert sym2[0, :, 0].tolist() == [2, 1, 1, 2, 3, 4, 4, 3] and rep2[0, :, 0].tolist() == [1, 1, 1, 2, 3, 4, 4, 4]
    # convbridge: replicate for pad 1, its own module beyond
    text = "tf.pad(x, [[0, 0], [2, 2], [0, 0]], mode='SYMMETRIC')"
    got = convbridge.to_torch(text, input_shape=(1, 4, 1))(t)
    np.testing.assert_array_equal(to_nhwc(got.numpy()), sym2)


def test_fact_pixel_shuffle_is_not_depth_to_space():
    x = np.random.default_rng(3).standard_normal((1, 3, 3, 16)).astype(np.float32)  # NHWC, C = 4 * 2 * 2
    shuffle = to_nhwc(nn.PixelShuffle(2)(torch.from_numpy(to_nchw(x).copy())).numpy())
    naive = tf.nn.depth_to_space(x, 2).numpy()
    assert np.abs(shuffle - naive).max() > 1.0  # measured naive error 3.84 on randn (256 entries here)
    k = convbridge.to_keras(nn.PixelShuffle(2), input_shape=(1, 16, 3, 3))
    np.testing.assert_array_equal(np.asarray(k(x)), shuffle)
