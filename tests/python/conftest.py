"""Shared helpers of convbridge's differential test suite.

Every check here runs the real `convbridge` binary, executes the Python it emits with the real TensorFlow/Keras
and compares the result with the real PyTorch layer built from the same layer text.

Conventions
- Input shapes are written in PyTorch layout (N, C, *spatial); the emitted code gets the same data moved to
  channels_last (N, *spatial, C) and its output is moved back before comparing.
- PyTorch is the reference and runs in float64 (module.double()) on the float32 values given to TensorFlow, so the
  only difference between the two is TensorFlow's float32 arithmetic.
- Tolerance (see `tolerance_for`): atol = 4e-5 * sqrt(K), K = (in_channels / groups) * prod(kernel_size), the number
  of products accumulated into one output (an upper bound for ConvTransposeNd too: see accumulation_length).
  Weights use PyTorch's default init (|w| <= 1/sqrt(K); for ConvTransposeNd PyTorch takes the fan-in from the
  weight's dim 1, (out/groups) * prod(k), so outputs are larger by about sqrt(in/out), a few at most in these
  tests, still far inside the margin below), inputs are standard normal and the bias is drawn from U(-1, 1), so
  outputs are O(1) and float32 rounding of a K-term sum is ~1e-7 * sqrt(K): the bound leaves a wide margin for
  accumulation order, yet any wrong window, pad value, weight layout or missing bias is orders of magnitude larger.
  Do not widen it to make a test pass.
- Everything is seeded from the layer text and input shape (see `stable_seed`), so a failure reproduces exactly.

The binary is $CONVBRIDGE_BIN, default <repo>/build/convbridge.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import types
import zlib
from dataclasses import dataclass
from pathlib import Path

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # before TensorFlow is imported anywhere
os.environ["KERAS_BACKEND"] = "tensorflow"  # the emitted Keras code targets Keras 3 on the TF backend
# Hypothesis keeps caches in ./.hypothesis by default; keep them out of the repository.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "convbridge-hypothesis"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import tensorflow as tf  # noqa: E402,F401  (one import for the whole session)
import keras  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[2]
CONVBRIDGE_BIN = Path(os.environ.get("CONVBRIDGE_BIN", str(REPO / "build" / "convbridge")))

# Where emitted sources are written (set by the session fixture below; a fallback for direct imports).
_EMITTED_DIR: Path | None = None

TORCH_NAMESPACE = {
    "nn": torch.nn,
    "torch": torch,
    **{name: getattr(torch.nn, name)
       for name in ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")},
}


# --------------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------------


def shape_arg(shape) -> str:
    return ",".join(str(int(v)) for v in shape)


def cli_command(text: str, emit: str | None = None, input_shape=None, extra=()) -> list[str]:
    cmd = [str(CONVBRIDGE_BIN), "translate", text]
    if input_shape is not None:
        cmd += ["--input-shape", shape_arg(input_shape)]
    if emit is not None:
        cmd += ["--emit", emit]
    cmd += list(extra)
    return cmd


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs convbridge with the given arguments; never raises on a non-zero exit status."""
    if not CONVBRIDGE_BIN.exists():
        pytest.fail(f"convbridge binary not found at {CONVBRIDGE_BIN} (set CONVBRIDGE_BIN)")
    return subprocess.run([str(CONVBRIDGE_BIN), *args], capture_output=True, text=True, timeout=timeout)


def describe_process(cmd, proc: subprocess.CompletedProcess) -> str:
    return (
        f"command: {subprocess.list2cmdline(cmd)}\nexit status: {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


@functools.lru_cache(maxsize=None)
def translate(text: str, emit: str, input_shape: tuple | None = None) -> str:
    """stdout of `convbridge translate TEXT [--input-shape S] --emit EMIT`; fails the test unless it exits 0."""
    cmd = cli_command(text, emit, input_shape)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.fail(f"convbridge failed for layer {text!r} input_shape={input_shape}\n" + describe_process(cmd, proc))
    if not proc.stdout.strip():
        pytest.fail(f"convbridge printed nothing for layer {text!r}\n" + describe_process(cmd, proc))
    return proc.stdout


def translate_json(text: str, input_shape: tuple | None = None) -> dict:
    return json.loads(translate(text, "json", input_shape))


# --------------------------------------------------------------------------------------------------------------
# Loading emitted code
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emitted:
    text: str
    emit: str
    input_shape: tuple | None
    source: str
    path: Path
    module: types.ModuleType


_module_counter = itertools.count()


def emitted_dir() -> Path:
    global _EMITTED_DIR
    if _EMITTED_DIR is None:
        _EMITTED_DIR = Path(tempfile.mkdtemp(prefix="convbridge-emitted-"))
    return _EMITTED_DIR


def exec_source(source: str, path: Path, label: str) -> types.ModuleType:
    """Executes `source` as a fresh module with a unique name (registered in sys.modules, so classes defined in
    it, e.g. custom keras.layers.Layer subclasses, have a real importable __module__)."""
    name = f"convbridge_emitted_{next(_module_counter)}_{label}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    code = compile(source, str(path), "exec")
    exec(code, module.__dict__)
    return module


@functools.lru_cache(maxsize=None)
def load_emitted(text: str, emit: str, input_shape: tuple | None = None) -> Emitted:
    """Runs the CLI, writes the emitted source to a file (named in failure messages) and executes it."""
    assert emit in ("keras", "tf")
    source = translate(text, emit, input_shape)
    tag = f"{zlib.crc32(f'{text}|{emit}|{input_shape}'.encode()):08x}"
    path = emitted_dir() / f"{emit}_{tag}.py"
    path.write_text(source)
    module = exec_source(source, path, f"{emit}_{tag}")
    entry = "make_layer" if emit == "keras" else "conv"
    assert callable(getattr(module, entry, None)), f"emitted {emit} code defines no {entry}(): {path}"
    return Emitted(text, emit, input_shape, source, path, module)


# --------------------------------------------------------------------------------------------------------------
# PyTorch side
# --------------------------------------------------------------------------------------------------------------


def is_transposed(module: torch.nn.Module) -> bool:
    """True for nn.ConvTranspose1d/2d/3d (torch's _ConvNd.transposed)."""
    return bool(getattr(module, "transposed", False))


def stable_seed(*parts) -> int:
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


def torch_layer(text: str, seed: int | None = None) -> torch.nn.Module:
    """The real PyTorch layer for the text, float32, weights from PyTorch's default init under a fixed seed and a
    bias drawn from U(-1, 1) (large enough that a missing or misplaced bias cannot hide in the tolerance)."""
    seed = stable_seed(text) if seed is None else seed
    torch.manual_seed(seed)
    module = eval(text, dict(TORCH_NAMESPACE))  # noqa: S307 - test-owned layer text
    if module.bias is not None:
        with torch.no_grad():
            module.bias.uniform_(-1.0, 1.0)
    return module.eval()


def torch_forward_error(module: torch.nn.Module, shape) -> Exception | None:
    """The error the real PyTorch layer raises on a forward pass at this input shape, or None if it runs.

    ConvTransposeNd: PyTorch's rule is "Output size is too small" for an output size <= 0 on any axis (ATen's shape
    check, which the native kernels and batch 1 always apply). Its oneDNN path (torch.backends.mkldnn, on by default
    on x86) skips that check for some shapes (batch > 1, or groups > 1) and returns an empty tensor for size 0, or
    fails with "could not construct a memory descriptor" for a negative size. A 0-sized transposed output is
    therefore counted as a rejection here, with the message of the native check. Forward ConvNd never produces a
    0-sized output without raising, so nothing changes for them.
    """
    try:
        with torch.no_grad():
            y = module(torch.zeros(tuple(shape)))
    except (RuntimeError, ValueError, TypeError) as error:
        return error
    if is_transposed(module) and 0 in tuple(y.shape[2:]):
        return RuntimeError(f"Calculated output size per channel: {tuple(y.shape[2:])}. Output size is too small "
                            "(PyTorch's native check; its oneDNN path returned an empty tensor)")
    return None


def torch_accepts(module: torch.nn.Module, shape) -> bool:
    """Whether the real PyTorch layer runs a forward pass on an input of this shape (see torch_forward_error).
    Only a RuntimeError (a shape PyTorch refuses) means False; other errors are configuration errors and propagate."""
    error = torch_forward_error(module, shape)
    if error is not None and not isinstance(error, RuntimeError):
        raise error
    return error is None


@functools.lru_cache(maxsize=None)
def torch_minimal_input_shape(text: str, batch: int = 1) -> tuple:
    """The smallest input PyTorch accepts, axis by axis, found by asking the real PyTorch layer (the other axes are
    held at a size that is always valid)."""
    module = torch_layer(text)
    rank = len(module.kernel_size)
    pads = module._reversed_padding_repeated_twice  # (last axis before, after, ..., first axis before, after)
    max_pad = max(pads) if pads else 0
    # For a ConvTransposeNd these sizes are safe as well: (in-1)*s - 2p + eff + op >= eff + 2p - 2p + eff > 0.
    safe = [(k - 1) * d + 1 + 2 * max_pad + 1 for k, d in zip(module.kernel_size, module.dilation)]
    minimal = []
    for axis in range(rank):
        for size in range(1, safe[axis] + 1):
            spatial = safe[:axis] + [size] + safe[axis + 1 :]
            if torch_accepts(module, (batch, module.in_channels, *spatial)):
                minimal.append(size)
                break
        else:  # pragma: no cover - safe sizes are always accepted
            raise AssertionError(f"PyTorch rejects every size up to {safe[axis]} on axis {axis} for {text}")
    return (batch, module.in_channels, *minimal)


def accumulation_length(module: torch.nn.Module) -> int:
    """The most products summed into one output: (in_channels / groups) * prod(kernel_size).

    - ConvNd: weight (out, in/G, *k); every output reads in/G channels times prod(k) taps.
    - ConvTransposeNd: weight (in, out/G, *k); an output of group g receives from the in/G input channels of g at
      most prod(k) taps each (fewer when stride > 1), so the same bound holds. The zero taps TF-side plans add
      (dilation spread into the kernel, appended zero taps) multiply into exact zeros and add no rounding.
      in_channels is the real input channel count for both kinds (module.in_channels; not weight.shape[1]).
    """
    in_per_group = module.in_channels // module.groups
    if is_transposed(module):
        assert module.weight.shape[0] == module.in_channels, "ConvTranspose weight is (in, out/G, *k)"
    else:
        assert module.weight.shape[1] == in_per_group, "Conv weight is (out, in/G, *k)"
    return in_per_group * math.prod(module.kernel_size)


def tolerance_for(module: torch.nn.Module) -> float:
    """atol = 4e-5 * sqrt(K) with K = (in_channels/groups) * prod(kernel_size) (the accumulation length, for
    forward and transposed convolutions alike): see the module docstring and accumulation_length."""
    return 1e-5 * math.sqrt(accumulation_length(module)) * 4


def random_input(shape, seed: int) -> np.ndarray:
    """float32 standard-normal input in PyTorch layout."""
    return np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)


def torch_reference(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """PyTorch's output in float64 for the float32 input x (PyTorch layout)."""
    module64 = copy.deepcopy(module).double()  # the float32 module stays untouched
    with torch.no_grad():
        return module64(torch.from_numpy(x.astype(np.float64))).numpy()


def weights_of(module: torch.nn.Module):
    weight = module.weight.detach().numpy().astype(np.float32)
    bias = None if module.bias is None else module.bias.detach().numpy().astype(np.float32)
    return weight, bias


def to_channels_last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1)


def to_channels_first(y: np.ndarray) -> np.ndarray:
    return np.moveaxis(y, -1, 1)


# --------------------------------------------------------------------------------------------------------------
# Running emitted code and comparing
# --------------------------------------------------------------------------------------------------------------


def run_emitted(emitted: Emitted, module: torch.nn.Module, x: np.ndarray, layer=None) -> np.ndarray:
    """Runs the emitted code in float32 on x (PyTorch layout); returns its output moved back to PyTorch layout."""
    weight, bias = weights_of(module)
    x_cl = np.ascontiguousarray(to_channels_last(x))
    if emitted.emit == "keras":
        if layer is None:
            layer = emitted.module.make_layer(weight, bias)
        y = layer(x_cl)
    else:
        y = emitted.module.conv(x_cl, weight, bias)
    y = np.asarray(y)
    assert y.dtype == np.float32, f"emitted {emitted.emit} code returned {y.dtype}, expected float32 ({emitted.path})"
    return to_channels_first(y)


def failure_context(emitted: Emitted, input_shape, extra: str = "") -> str:
    cli = subprocess.list2cmdline(cli_command(emitted.text, emitted.emit, emitted.input_shape))
    seeds = f"torch.manual_seed({stable_seed(emitted.text)}), input seed {stable_seed(emitted.text, tuple(input_shape))}"
    return (
        f"\n  layer text:   {emitted.text}\n  input shape:  {tuple(input_shape)} (PyTorch N,C,...)"
        f"\n  seeds:        {seeds}"
        f"\n  emitter:      {emitted.emit}\n  emitted code: {emitted.path}\n  command:      {cli}{extra}"
    )


def assert_same_output(emitted: Emitted, input_shape, got: np.ndarray, expected: np.ndarray, atol: float):
    context = failure_context(emitted, input_shape)
    assert got.shape == expected.shape, (
        f"shape mismatch: emitted code gives {got.shape} (as N,C,...), PyTorch gives {expected.shape}{context}"
    )
    if got.size == 0:
        return
    diff = np.abs(got.astype(np.float64) - expected)
    worst = float(diff.max())
    if not np.all(np.isfinite(got)) or worst > atol:
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        raise AssertionError(
            f"values differ: max |diff| {worst:.3e} > atol {atol:.3e} at index {index} "
            f"(got {got[index]!r}, PyTorch {expected[index]!r}); "
            f"{int((diff > atol).sum())} of {diff.size} outputs off{context}"
        )


def check_emitted_against_torch(text: str, emit: str, input_shapes, cli_input_shape=None) -> None:
    """The core differential check: the code convbridge emits for `text` (with --input-shape cli_input_shape when
    given) reproduces the real PyTorch layer at every shape in input_shapes. A Keras layer is built once and
    reused for all shapes, as a user would."""
    emitted = load_emitted(text, emit, None if cli_input_shape is None else tuple(cli_input_shape))
    module = torch_layer(text)
    atol = tolerance_for(module)
    layer = None
    if emit == "keras":
        weight, bias = weights_of(module)
        layer = emitted.module.make_layer(weight, bias)
    for shape in input_shapes:
        x = random_input(shape, stable_seed(text, tuple(shape)))
        expected = torch_reference(module, x)
        try:
            got = run_emitted(emitted, module, x, layer)
        except Exception as error:  # report which layer/shape/code broke
            raise AssertionError(
                f"emitted code raised {type(error).__name__}: {error}{failure_context(emitted, shape)}"
            ) from error
        assert_same_output(emitted, shape, got, expected, atol)


# --------------------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _emitted_sources_dir(tmp_path_factory):
    global _EMITTED_DIR
    _EMITTED_DIR = tmp_path_factory.mktemp("emitted")
    yield _EMITTED_DIR


@pytest.fixture(scope="session")
def cli():
    """run_cli(*args) -> CompletedProcess (no exit-status check)."""
    return run_cli
