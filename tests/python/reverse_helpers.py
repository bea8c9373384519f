"""Shared helpers for the reverse direction (Keras 3 layer -> PyTorch) tests.

The reference is always the REAL Keras layer, run in float32 on the TensorFlow backend, built from the same layer text
that convbridge translates. convbridge's PyTorch module (from convbridge.to_torch, or from the code printed by
`convbridge translate ... --emit torch` / TorchPlan.torch_code()) runs in float64 (module.double(), float64 input
holding the same float32 values, float64 copies of the float32 Keras weights), so the only difference between the two
is TensorFlow's float32 arithmetic.

Tolerance (see `keras_tolerance`): atol = 4e-5 * sum_i sqrt(K_i) over the layer's accumulation stages, K_i the
number of products summed into one output of stage i:
  - ConvND:           K = (in_channels / groups) * prod(kernel_size)
  - DepthwiseConvND:  K = prod(kernel_size)             (one input channel per output)
  - SeparableConvND:  K1 = prod(kernel_size) (depthwise), K2 = in_channels * depth_multiplier (pointwise)
  - ConvNDTranspose:  K <= in_channels * prod(kernel_size) (each output receives at most prod(k) taps per input
                      channel)
The weights of every stage are drawn from U(-1/sqrt(K_i), 1/sqrt(K_i)) (PyTorch's default-init scale), the input is
standard normal and the bias U(-1, 1), so every stage's outputs are O(1) and float32 rounding of a K-term sum is
~1e-7 * sqrt(K). For the separable layer the depthwise stage's rounding error passes through a pointwise sum of K2
terms with |w| <= 1/sqrt(K2), i.e. it is carried over at its own size, hence the sum over the stages. The bound is
a wide margin over accumulation-order effects (oneDNN), yet a wrong window, pad side, weight layout, crop or bias is
orders of magnitude larger (O(0.1..1)). Do not widen it to make a test pass.

Seeds come from the layer text (weights) and from the text plus the input shape (inputs), so failures reproduce.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import subprocess
import zlib

import numpy as np
import pytest
import torch

from conftest import CONVBRIDGE_BIN, describe_process, emitted_dir, exec_source, stable_seed
import keras  # conftest set KERAS_BACKEND=tensorflow before this import
import tensorflow as tf

KERAS_CLASS_NAMES = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
                     "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
KERAS_NAMESPACE = {
    "keras": keras,
    "layers": keras.layers,
    "tf": tf,
    **{name: getattr(keras.layers, name) for name in KERAS_CLASS_NAMES},
}

ATOL_PER_SQRT_TERM = 4e-5


def class_name_of(text: str) -> str:
    match = re.match(r"\s*(?:tf\.)?(?:keras\.)?(?:layers\.)?(\w+)\s*\(", text)
    assert match and match.group(1) in KERAS_CLASS_NAMES, f"not a Keras conv layer text: {text!r}"
    return match.group(1)


def rank_of_class(name: str) -> int:
    return int(re.search(r"(\d)D", name).group(1))


def unknown_shape(rank: int, channels: int) -> tuple:
    """The channels_last input shape with every size unknown: (None, *[None]*rank, C)."""
    return (None,) * (rank + 1) + (channels,)


def shape_text(shape) -> str:
    """--input-shape argument: ints and None."""
    return ",".join("None" if v is None else str(int(v)) for v in shape)


# ------------------------------------------------------------------------------------------------------------------
# The real Keras layer
# ------------------------------------------------------------------------------------------------------------------


def weight_fan(class_name: str, weight_name: str, shape) -> int:
    """Products summed into one output by this weight's stage (see the module docstring)."""
    shape = tuple(int(v) for v in shape)
    if "Transpose" in class_name:  # (*k, out, in)
        return math.prod(shape[:-2]) * shape[-1]
    if class_name.startswith("Depthwise") or weight_name == "depthwise_kernel":  # (*k, in, M)
        return math.prod(shape[:-2])
    return math.prod(shape[:-1])  # conv (*k, in/G, out) and pointwise (1.., in*M, filters)


def construct_keras_layer(text: str):
    """The Keras layer object for the text (unbuilt). Raises whatever Keras raises at construction."""
    return eval(text, dict(KERAS_NAMESPACE))  # noqa: S307 - test-owned layer text


def keras_layer(text: str, channels: int, seed: int | None = None):
    """The real Keras layer for the text, built for channels_last input with `channels` channels and unknown sizes,
    weights set deterministically: kernels U(-1/sqrt(K), 1/sqrt(K)) (K the stage's accumulation length), bias
    U(-1, 1). Raises what Keras raises at construction or build."""
    layer = construct_keras_layer(text)
    name = class_name_of(text)
    layer.build(unknown_shape(rank_of_class(name), channels))
    rng = np.random.default_rng(stable_seed(text, channels) if seed is None else seed)
    values = []
    for variable in layer.weights:
        weight_name = variable.path.rsplit("/", 1)[-1]
        shape = tuple(variable.shape)
        if weight_name == "bias":
            values.append(rng.uniform(-1.0, 1.0, shape).astype(np.float32))
        else:
            bound = 1.0 / math.sqrt(weight_fan(name, weight_name, shape))
            values.append(rng.uniform(-bound, bound, shape).astype(np.float32))
    layer.set_weights(values)
    return layer


def keras_weights(layer) -> dict:
    """{weight name: float32 numpy array} in layer.weights order."""
    return {variable.path.rsplit("/", 1)[-1]: np.asarray(variable) for variable in layer.weights}


def keras_tolerance(layer) -> float:
    """atol = 4e-5 * sum over stages of sqrt(K_stage): see the module docstring."""
    name = type(layer).__name__
    for cls in type(layer).__mro__:
        if cls.__name__ in KERAS_CLASS_NAMES:
            name = cls.__name__
            break
    fans = [weight_fan(name, wname, w.shape) for wname, w in keras_weights(layer).items() if wname != "bias"]
    return ATOL_PER_SQRT_TERM * sum(math.sqrt(k) for k in fans)


def keras_input(shape, text: str) -> np.ndarray:
    """float32 standard-normal channels_last input, seeded by the layer text and the shape."""
    return np.random.default_rng(stable_seed(text, tuple(shape))).standard_normal(tuple(shape)).astype(np.float32)


def error_summary(error) -> str:
    """One line naming the exception and its most telling message part (TF wraps kernel errors in several lines).
    `error`: an exception, or the "Type: message" text of one."""
    if isinstance(error, str):
        name, _, text = error.partition(": ")
        error = type(name, (Exception,), {})(text)
    text = str(error)
    match = re.search(r"(could not create a primitive descriptor[^.,]*|Size of out_backprop[^\[]*"
                      r"|Computed output size[^.]*|Output size is too small[^.]*"
                      r"|Current CPU implementations do not yet support[^.\[]*)", text)
    detail = match.group(1) if match else (text.strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {detail.strip()[:200]}"


def keras_forward(layer, x: np.ndarray):
    """(output as float32 numpy, None) or (None, the exception Keras raised).

    Keras rejects a size when its shape rule (layer.compute_output_shape, which an unbuilt layer's first call and
    every symbolic call apply) raises, when the call raises, or when the call returns an empty output. The shape rule
    must be asked first: a layer built for unknown sizes skips it when called eagerly, and TF then runs a 'valid'
    conv on an input smaller than the kernel, returning a tensor of the input's size holding uninitialized memory
    with oneDNN (an empty one without it; see test_reverse.py::test_fact_keras_built_layer_skips_its_shape_rule)."""
    try:
        declared = tuple(layer.compute_output_shape(tuple(x.shape)))
    except Exception as error:  # noqa: BLE001
        return None, error
    try:
        y = np.asarray(layer(x))
    except Exception as error:  # noqa: BLE001 - Keras raises ValueError, TF raises OpError subclasses
        return None, error
    if y.size == 0:
        return None, ValueError(f"Keras returned an empty output of shape {y.shape}")
    assert y.dtype == np.float32
    assert y.shape == declared, (f"Keras' output shape {y.shape} differs from its compute_output_shape {declared} "
                                 f"for {layer.get_config()} at {x.shape}")
    return y, None


# ------------------------------------------------------------------------------------------------------------------
# convbridge's PyTorch side
# ------------------------------------------------------------------------------------------------------------------


def cli_command(text: str, input_shape, emit: str = "torch") -> list[str]:
    return [str(CONVBRIDGE_BIN), "translate", text, "--input-shape", shape_text(input_shape), "--emit", emit]


def run_reverse_cli(text: str, input_shape, emit: str) -> str:
    """stdout of the CLI; fails the test unless it exits 0 with output."""
    cmd = cli_command(text, input_shape, emit)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"convbridge failed for Keras layer {text!r} input shape {shape_text(input_shape)}\n"
                    + describe_process(cmd, proc))
    return proc.stdout


@functools.lru_cache(maxsize=None)
def cli_torch_code(text: str, input_shape: tuple):
    """(module namespace, path) of the code `convbridge translate TEXT --input-shape S --emit torch` prints."""
    source = run_reverse_cli(text, input_shape, "torch")
    tag = f"{zlib.crc32(f'{text}|{input_shape}'.encode()):08x}"
    path = emitted_dir() / f"reverse_torch_{tag}.py"
    path.write_text(source)
    module = exec_source(source, path, f"reverse_torch_{tag}")
    assert callable(getattr(module, "make_module", None)), f"emitted torch code defines no make_module(): {path}"
    return module, path


def cli_json(text: str, input_shape) -> dict:
    import json

    return json.loads(run_reverse_cli(text, tuple(input_shape), "json"))


def plan_code_module(plan, label: str):
    """(module namespace, path) of TorchPlan.torch_code()."""
    source = plan.torch_code()
    tag = f"{zlib.crc32(f'{plan.source_text}|{plan.input_shape}|{label}'.encode()):08x}"
    path = emitted_dir() / f"reverse_plan_{label}_{tag}.py"
    path.write_text(source)
    return exec_source(source, path, f"reverse_plan_{tag}"), path


def make_module_from_code(code_module, plan_weight_names, layer):
    """make_module(<float64 Keras weights in plan order>, bias=<float64 bias or None>), as a user would call it."""
    weights = keras_weights(layer)
    arrays = [weights[name].astype(np.float64) for name in plan_weight_names]
    bias = weights.get("bias")
    return code_module.make_module(*arrays, bias=None if bias is None else bias.astype(np.float64))


def torch_forward64(module: torch.nn.Module, x_last: np.ndarray) -> np.ndarray:
    """The module in float64 on the channels_last float32 input (moved to channels_first); output back in
    channels_last, as float64."""
    module64 = copy.deepcopy(module).double().eval()
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x_last.astype(np.float64), -1, 1)))
    # One intra-op thread: these tensors are tiny, and with TF's OpenMP threads still spinning after each Keras call
    # a multi-threaded PyTorch conv takes ~10-20 ms instead of ~0.3 ms. Results do not depend on the thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            y = module64(x)
    finally:
        torch.set_num_threads(threads)
    return np.moveaxis(y.numpy(), 1, -1)


def describe(text: str, input_shape, path: str, cli_shape=None, code_path=None, extra: str = "") -> str:
    lines = [f"\n  layer text:   {text}", f"\n  input shape:  {tuple(input_shape)} (Keras N,...,C)",
             f"\n  path:         {path}",
             f"\n  seeds:        weights rng {stable_seed(text, int(input_shape[-1]))}, input rng "
             f"{stable_seed(text, tuple(input_shape))} (numpy default_rng)"]
    if cli_shape is not None:
        lines.append(f"\n  command:      {subprocess.list2cmdline(cli_command(text, cli_shape))}")
    if code_path is not None:
        lines.append(f"\n  emitted code: {code_path}")
    return "".join(lines) + extra


def assert_matches_keras(got: np.ndarray, expected: np.ndarray, atol: float, context: str,
                         reference: str = "Keras") -> None:
    """got: float64 PyTorch output (channels_last); expected: float32 output of `reference` (Keras, or TF)."""
    assert got.shape == expected.shape, f"shape mismatch: PyTorch {got.shape}, {reference} {expected.shape}{context}"
    if got.size == 0:
        return
    diff = np.abs(got - expected.astype(np.float64))
    worst = float(diff.max()) if np.all(np.isfinite(got)) else float("inf")
    if worst > atol:
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        raise AssertionError(
            f"values differ: max |diff| {worst:.3e} > atol {atol:.3e} at index {index} (PyTorch {got[index]!r}, "
            f"{reference} {expected[index]!r}); {int((diff > atol).sum())} of {diff.size} outputs off{context}")


def keras_output_shape(layer, shape) -> tuple:
    return tuple(int(v) for v in layer.compute_output_shape(tuple(shape)))



# ------------------------------------------------------------------------------------------------------------------
# Arbiter: the same real Keras layer in a process with TF's oneDNN kernels off
# ------------------------------------------------------------------------------------------------------------------
#
# TF 2.21's default CPU build runs convolutions through oneDNN, which has known bugs (test_traps.py::
# test_fact_tf_onednn_single_channel_width1_stride_bug: one input channel, stride > 1 along W and one output column
# gives garbage; some transposed shapes abort). When convbridge's module disagrees with Keras, or Keras fails where
# convbridge plans, the differential suite asks the same Keras layer, same weights and input, in a worker process with
# TF_ENABLE_ONEDNN_OPTS=0 (started on first use, one per session). Only if that run agrees with convbridge AND
# disagrees with the oneDNN run is the case counted as a TF oneDNN bug instead of a failure.

_WORKER_SOURCE = r"""
import os, pickle, sys
proto_out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)  # anything TF or Keras prints goes to stderr, not into the protocol
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np, keras, tensorflow as tf
NAMES = %(names)r
ns = {"keras": keras, "layers": keras.layers, "tf": tf, **{n: getattr(keras.layers, n) for n in NAMES}}
proto_in = sys.stdin.buffer
while True:
    header = proto_in.read(8)
    if len(header) < 8:
        break
    text, build_shape, weights, x = pickle.loads(proto_in.read(int.from_bytes(header, "little")))
    try:
        layer = eval(text, dict(ns))
        layer.build(build_shape)
        layer.set_weights(weights)
        layer.compute_output_shape(tuple(x.shape))
        y = np.asarray(layer(x))
        result = ("ok", y) if y.size else ("error", "ValueError: empty output %%s" %% (y.shape,))
    except Exception as e:
        result = ("error", "%%s: %%s" %% (type(e).__name__, str(e).strip()[:3000]))
    data = pickle.dumps(result)
    proto_out.write(len(data).to_bytes(8, "little") + data)
    proto_out.flush()
"""

_worker = None


def _keras_worker():
    global _worker
    if _worker is None or _worker.poll() is not None:
        import atexit
        import os
        import sys

        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
        _worker = subprocess.Popen([sys.executable, "-c", _WORKER_SOURCE % {"names": KERAS_CLASS_NAMES}],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        worker = _worker

        def _stop():
            if worker.poll() is None:
                worker.stdin.close()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()

        atexit.register(_stop)
    return _worker


def keras_forward_without_onednn(text: str, layer, x: np.ndarray):
    """(output, None) or (None, error text): the same Keras layer (text, build shape, weights) on the same input, run
    by TF with oneDNN off (see above)."""
    import pickle

    name = class_name_of(text)
    channels = int(x.shape[-1])
    request = pickle.dumps((text, unknown_shape(rank_of_class(name), channels),
                            [np.asarray(v) for v in layer.weights], x))
    worker = _keras_worker()
    worker.stdin.write(len(request).to_bytes(8, "little") + request)
    worker.stdin.flush()
    header = worker.stdout.read(8)
    if len(header) < 8:
        raise RuntimeError("the oneDNN-free Keras worker died")
    status, value = pickle.loads(worker.stdout.read(int.from_bytes(header, "little")))
    return (value, None) if status == "ok" else (None, value)
