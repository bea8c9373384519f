"""Whole Keras 3 models -> PyTorch (issue 13): convbridge.convert(keras_model) and convbridge.to_torch(keras_model)
on keras.applications (weights=None, randomized; tests/python/keras_zoo) and on small hand-built Functional and
Sequential models covering every layer kind and layout-sensitive op (keras_zoo/small.py), compared end to end with
real Keras, independently of convbridge's own per-node verification.

Conventions
- Keras is the reference and runs in float32 on the same float32 inputs. Keras inputs are (N, *spatial, C); the
  PyTorch module gets them channels_first (N, C, *spatial), rank-2 inputs as they are, one positional argument per
  entry of model.inputs; its outputs (rank >= 3 channels_first) keep the Keras output structure (tensor, list,
  dict). Measure: max |torch - keras| / max |keras| <= 1e-4 per output.
- The Keras reference is the eager model(x, training=False), except where TF's eager oneDNN kernel is known wrong:
  a convolution with one input channel per group (depthwise included) and a stride > 1 on its last spatial axis
  (layer-semantics.md; measured here ~1e29 garbage at batch 2, test_fact_tf_eager_...). For models holding such a
  layer the reference is the same model under tf.function(jit_compile=True) (XLA). XLA is not the reference
  everywhere: its bilinear UpSampling2D by 3 disagrees with eager TF and with PyTorch (test_fact_xla_bilinear_...).
- Before comparing, each test checks that the Keras output depends on the input (two random inputs give outputs
  differing by >= 1e-2 relative): otherwise a wrong conversion could pass. keras_zoo rescales kernels for that.
- convert() feeds standard contiguous tensors; to_torch() feeds x_nhwc.permute(0, 3, 1, 2) views, as a user with
  NHWC data would (PyTorch 2.13's CPU conv is wrong for some of those: test_fact_pytorch_conv_...).
- model.py runs in a fresh interpreter in which keras, tensorflow, numpy, convbridge and safetensors cannot be
  imported (a sys.meta_path finder raising ModuleNotFoundError); it must give the live module's outputs.

Profiles: CONVBRIDGE_KERAS_ZOO_PROFILE=ci (default: the keras.applications with include_top=False and None sizes,
at 64/65 (InceptionV3 75/96)) or full (also the published models, include_top=True at 224/225, InceptionV3
299/300: the full-size cases are skipped unless the profile is full).
"""

from __future__ import annotations

import ast
import gc
import json
import keyword
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

import convbridge  # noqa: E402
from keras_zoo import small as small_models  # noqa: E402
from keras import layers as L  # noqa: E402
from model_support import channels_last, relative_difference  # noqa: E402
from keras_zoo import (CI_APPLICATIONS, FULL_APPLICATIONS, PROFILE, SMALL, KerasCase, randomize,  # noqa: E402
                       walk_layers)

TOLERANCE = 1e-4
SENSITIVITY = 1e-2  # the least relative change of every Keras output between two random inputs
INPUT_SEED = 1
OTHER_INPUT_SEED = 2
PYTHON = sys.executable
BLOCKED_IN_FRESH_INTERPRETER = ("keras", "tensorflow", "numpy", "convbridge", "safetensors")

full_only = pytest.mark.skipif(PROFILE != "full", reason="full-size keras.applications: "
                                                         "CONVBRIDGE_KERAS_ZOO_PROFILE=full")


# ---- layouts, structures ---------------------------------------------------------------------------------------


def channels_first(array: np.ndarray) -> np.ndarray:
    """(N, *spatial, C) -> (N, C, *spatial); ranks below 3 unchanged (the inverse of model_support.channels_last)."""
    array = np.asarray(array)
    if array.ndim < 3:
        return array
    return np.ascontiguousarray(np.moveaxis(array, -1, 1))


def torch_inputs(arrays, permuted: bool) -> list:
    """The Keras-layout inputs as the PyTorch module takes them: rank >= 3 channels_first. permuted: views of the
    NHWC buffers (x_nhwc.permute(0, 3, 1, 2), non-standard strides); otherwise standard contiguous tensors."""
    tensors = []
    for array in arrays:
        if array.ndim < 3:
            tensors.append(torch.from_numpy(np.array(array)))
        elif permuted:
            tensors.append(torch.from_numpy(np.array(array)).permute(0, array.ndim - 1, *range(1, array.ndim - 1)))
        else:
            tensors.append(torch.from_numpy(channels_first(array)))
    return tensors


def to_numpy_structure(outputs):
    """Keras (or tf.function) outputs as the same structure of numpy arrays."""
    if isinstance(outputs, dict):
        return {key: np.asarray(value) for key, value in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(value) for value in outputs]
    return np.asarray(outputs)


def labelled(structure) -> list:
    """[(label, leaf)] of a tensor, list or dict of outputs."""
    if isinstance(structure, dict):
        return [(f"output[{key!r}]", value) for key, value in structure.items()]
    if isinstance(structure, (list, tuple)):
        return [(f"output[{i}]", value) for i, value in enumerate(structure)]
    return [("output", structure)]


def model_argument(arrays):
    return arrays if len(arrays) > 1 else arrays[0]


# ---- the Keras reference -------------------------------------------------------------------------------------

_STRIDED_KINDS = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
                  "SeparableConv2D")


def eager_kernel_at_risk(model) -> list[str]:
    """Names of the layers TF's eager oneDNN kernels may compute wrongly (layer-semantics.md): one input channel
    per group (depthwise and separable convs always; a Conv's kernel is (*k, in / groups, out)) and a stride > 1
    on the last spatial axis."""
    risky = []
    for layer in walk_layers(model):
        kind = type(layer).__name__
        if kind not in _STRIDED_KINDS or int(layer.strides[-1]) == 1:
            continue
        if kind.startswith(("Depthwise", "Separable")) or int(layer.kernel.shape[-2]) == 1:
            risky.append(layer.name)
    return risky


def xla_function(model):
    return tf.function(lambda *xs: model(model_argument(list(xs)), training=False), jit_compile=True)


def keras_forward(model, arrays, xla: bool, function=None):
    """Keras's outputs, eager or under XLA (function: a cached xla_function(model), compiled once per shape)."""
    if not xla:
        return to_numpy_structure(model(model_argument(arrays), training=False))
    function = function if function is not None else xla_function(model)
    return to_numpy_structure(function(*arrays))


class Prepared:
    """One KerasCase: its model (built once), the conversions (made on first use) and the Keras reference outputs
    per evaluation (computed once)."""

    def __init__(self, case: KerasCase):
        self.case = case
        self.model = case.model()
        self.risky_layers = eager_kernel_at_risk(self.model)
        self.xla = bool(self.risky_layers)
        self._xla_function = xla_function(self.model) if self.xla else None
        self._conversion = None
        self._user_module = None
        self._references = {}
        self._sensitivity_checked = set()

    def conversion(self):
        if self._conversion is None:
            self._conversion = convbridge.convert(self.model, example_shape=self.case.example_shape)
        return self._conversion

    def user_module(self, verify=True):
        """convbridge.to_torch(model) as a user calls it (verify=False only where the caller says so)."""
        if self._user_module is None:
            kwargs = {} if self.case.example_shape is None else {"example_shape": self.case.example_shape}
            if not verify:
                kwargs["verify"] = False
            self._user_module = convbridge.to_torch(self.model, **kwargs)
        return self._user_module

    def inputs(self, evaluation: int, seed: int = INPUT_SEED):
        return self.case.random_inputs(evaluation, seed=seed)

    def reference(self, evaluation: int):
        """Keras's outputs on inputs(evaluation), after checking they depend on the input."""
        if evaluation not in self._references:
            self._references[evaluation] = keras_forward(self.model, self.inputs(evaluation), self.xla,
                                                         self._xla_function)
        if evaluation not in self._sensitivity_checked:
            other = keras_forward(self.model, self.inputs(evaluation, OTHER_INPUT_SEED), self.xla, self._xla_function)
            for (label, a), (_, b) in zip(labelled(self._references[evaluation]), labelled(other)):
                assert np.all(np.isfinite(a)), f"{self.case.name}: Keras {label} is not finite"
                change = relative_difference(b, a)
                assert change >= SENSITIVITY, (
                    f"{self.case.name}: Keras {label} changes by only {change:.2g} (relative) between two random "
                    f"inputs: a comparison with it would prove little; fix the case's weights or inputs")
            self._sensitivity_checked.add(evaluation)
        return self._references[evaluation]

    def describe(self, evaluation: int) -> str:
        shapes = ", ".join(str(s) for s in self.case.evaluations[evaluation])
        reference = f"XLA (eager TF is unreliable for {', '.join(self.risky_layers)})" if self.xla else "eager Keras"
        return f"{self.case.name} at input {shapes} (Keras layout), reference {reference}"


def run_torch(module, arrays, permuted: bool):
    with torch.no_grad():
        return module(*torch_inputs(arrays, permuted))


def assert_matches_keras(got, want, context: str, tolerance: float = TOLERANCE):
    """got: the PyTorch module's outputs (torch tensors in the Keras structure); want: Keras's (numpy)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{context}: Keras returns a dict, the module a {type(got).__name__}"
        assert set(got) == set(want), f"{context}: output keys {sorted(got)} != Keras's {sorted(want)}"
        pairs = [(f"output[{key!r}]", got[key], want[key]) for key in want]
    elif isinstance(want, list):
        assert isinstance(got, list), f"{context}: Keras returns a list of {len(want)}, the module a " \
                                      f"{type(got).__name__}"
        assert len(got) == len(want), f"{context}: {len(got)} outputs, Keras has {len(want)}"
        pairs = [(f"output[{i}]", g, w) for i, (g, w) in enumerate(zip(got, want))]
    else:
        assert isinstance(got, torch.Tensor), f"{context}: Keras returns one tensor, the module a {type(got).__name__}"
        pairs = [("output", got, want)]
    for label, g, w in pairs:
        assert isinstance(g, torch.Tensor), f"{context}: {label} is a {type(g).__name__}, not a torch.Tensor"
        assert g.dtype == torch.float32, f"{context}: {label} is {g.dtype}, expected torch.float32"
        expected = channels_first(w)
        assert tuple(g.shape) == expected.shape, (
            f"{context}: {label} has shape {tuple(g.shape)}; Keras's {w.shape} channels_first is {expected.shape}")
        actual = g.detach().numpy()
        assert np.all(np.isfinite(actual)), f"{context}: {label} is not finite"
        difference = relative_difference(actual, expected)
        assert difference <= tolerance, f"{context}: {label} max relative difference {difference:.3g} > {tolerance}"


# ---- model.py in a fresh interpreter ----------------------------------------------------------------------------

FRESH_RUN = textwrap.dedent("""
    import importlib.abc, importlib.util, json, sys
    BLOCKED = set(sys.argv[1].split(","))

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: model.py may import only torch and "
                                          "the standard library)", name=name)
            return None

    sys.meta_path.insert(0, Blocked())
    import torch
    # The parent's thread count: PyTorch's CPU convs sum in another order with another count, so the outputs are
    # compared with the live module's at the same count (a test module sets 1 thread for the whole session).
    torch.set_num_threads(int(sys.argv[2]))

    def flat(outputs):
        if isinstance(outputs, dict):
            return {"kind": "dict", "items": {k: v for k, v in outputs.items()}}
        if isinstance(outputs, (list, tuple)):
            return {"kind": type(outputs).__name__, "items": list(outputs)}
        return {"kind": "tensor", "items": outputs}

    results = {}
    for directory in sys.argv[3:]:
        spec = importlib.util.spec_from_file_location("converted_" + str(len(results)), directory + "/model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.load_model()
        assert isinstance(model, torch.nn.Module), type(model)
        inputs = torch.load(directory + "/inputs.pt")  # Keras layout; moved to channels_first by permute
        args = [x.permute(0, x.dim() - 1, *range(1, x.dim() - 1)) if x.dim() >= 3 else x for x in inputs]
        with torch.no_grad():
            outputs = model(*args)
        torch.save(flat(outputs), directory + "/outputs.pt")
        results[directory] = {"training": model.training}
    leaked = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
    print(json.dumps({"results": results, "leaked": leaked}))
""")


def save_for_fresh_run(prepared: Prepared, directory: Path):
    """save() the conversion into directory, with the inputs (Keras layout) and the live module's outputs on the
    same permuted inputs; returns the live outputs and the Keras reference."""
    conversion = prepared.conversion()
    returned = conversion.save(str(directory))
    assert Path(returned) == directory / "model.py", f"save() returned {returned!r}"
    assert sorted(p.name for p in directory.iterdir()) == ["model.py", "model.safetensors"], \
        sorted(p.name for p in directory.iterdir())
    assert (directory / "model.py").read_text() == conversion.torch_source(), "torch_source() is not model.py"
    arrays = prepared.inputs(0)
    torch.save([torch.from_numpy(np.array(a)) for a in arrays], directory / "inputs.pt")
    return run_torch(conversion.torch_model, arrays, permuted=True), prepared.reference(0)


def run_fresh(directories: list[Path], timeout: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    arguments = [",".join(BLOCKED_IN_FRESH_INTERPRETER), str(torch.get_num_threads()), *map(str, directories)]
    proc = subprocess.run([PYTHON, "-c", FRESH_RUN, *arguments],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(directories[0].parent) if directories else None)
    assert proc.returncode == 0, f"model.py failed in a fresh interpreter:\n{proc.stderr[-6000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["leaked"] == [], f"blocked modules were imported: {report['leaked']}"
    return report["results"]


def check_fresh_outputs(directory: Path, result: dict, live, keras_reference, context: str):
    assert result["training"] is False, f"{context}: load_model() returned a module in training mode"
    saved = torch.load(directory / "outputs.pt")
    kind, got = saved["kind"], saved["items"]
    live_kind = {dict: "dict", list: "list", tuple: "tuple"}.get(type(live), "tensor")
    assert kind == live_kind, f"{context}: model.py returns a {kind}, the live module a {live_kind}"
    if kind == "dict":
        assert set(got) == set(live), f"{context}: model.py's output keys {sorted(got)} != live {sorted(live)}"
        pairs = [(f"output[{key!r}]", got[key], live[key]) for key in live]
    else:
        pairs = [(label, g, w) for (label, g), (_, w) in zip(labelled(got), labelled(live))]
        assert len(labelled(got)) == len(labelled(live)), f"{context}: model.py returns another number of outputs"
    # Same code, same weights, same inputs: the live module's numbers, to float32 round-off at most.
    for label, g, w in pairs:
        assert tuple(g.shape) == tuple(w.shape), f"{context}: {label} shape {tuple(g.shape)} != live {tuple(w.shape)}"
        difference = relative_difference(g.numpy(), w.numpy())
        assert difference <= 1e-6, f"{context}: model.py's {label} differs from the live module's by {difference:.3g}"
    assert_matches_keras(got, keras_reference, f"{context} (model.py)")


def read_safetensors(path: Path) -> dict:
    """A safetensors file read with the standard library and torch: 8-byte little-endian header size, JSON header
    {name: {dtype, shape, data_offsets}}, then the data, every byte of it covered by exactly one tensor."""
    data = path.read_bytes()
    assert len(data) >= 8, "not a safetensors file: shorter than its header size"
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size].decode("utf-8"))
    body = data[8 + size:]
    dtypes = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}
    tensors, spans = {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = dtypes[info["dtype"]]
        flat = torch.frombuffer(bytearray(body[start:end]), dtype=dtype) if end > start else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"])
        spans.append((start, end))
    position = 0
    for start, end in sorted(spans):
        assert start == position, f"safetensors data has a hole or an overlap at byte {start} (expected {position})"
        position = end
    assert position == len(body), f"safetensors data has {len(body) - position} bytes no tensor covers"
    return tensors


# ---- torch_source() --------------------------------------------------------------------------------------------

_MODULE_ATTRIBUTES = set(dir(torch.nn.Module))


def weighted_layers(model):
    """(top-level, nested) lists of the layers that hold weights (nested models' layers in the second)."""
    top = [layer for layer in model.layers if layer.weights and not isinstance(layer, keras.Model)]
    nested = [layer for layer in walk_layers(model) if layer.weights and not isinstance(layer, keras.Model)
              and layer not in top]
    return top, nested


def plain_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and name not in _MODULE_ATTRIBUTES


def name_parts(name: str) -> list[str]:
    return [part.lower() for part in re.findall(r"[A-Za-z0-9]+", name)]


def check_torch_source(source: str, model, context: str):
    tree = ast.parse(source)
    # imports: torch and the standard library only
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.partition(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{context}: model.py has a relative import"
            roots = [node.module.partition(".")[0]]
        else:
            continue
        for root in roots:
            assert root == "torch" or root in sys.stdlib_module_names, f"{context}: model.py imports {root}"
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "load_model" in functions, f"{context}: model.py defines no top-level load_model()"
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    modules = [c for c in classes if any(ast.unparse(base) in ("nn.Module", "torch.nn.Module", "Module")
                                         for base in c.bases)]
    assert modules, f"{context}: model.py defines no nn.Module subclass"
    main = [c for c in modules if {"__init__", "forward"} <= {f.name for f in c.body if isinstance(f, ast.FunctionDef)}]
    assert main, f"{context}: no nn.Module class in model.py defines both __init__ and forward"
    attributes = set()
    for cls in modules:
        for function in cls.body:
            if isinstance(function, ast.FunctionDef) and function.name == "__init__":
                for node in ast.walk(function):
                    targets = node.targets if isinstance(node, ast.Assign) else \
                        [node.target] if isinstance(node, ast.AnnAssign) else []
                    for target in targets:
                        if isinstance(target, ast.Attribute) and ast.unparse(target.value) == "self":
                            attributes.add(target.attr)
                    # self.register_buffer("name", ...), register_parameter, add_module
                    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                            and node.func.attr in ("register_buffer", "register_parameter", "add_module")
                            and node.args and isinstance(node.args[0], ast.Constant)
                            and isinstance(node.args[0].value, str)):
                        attributes.add(node.args[0].value)
    identifiers = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", source))
    top, nested = weighted_layers(model)
    for layer in top:
        if plain_name(layer.name):
            assert layer.name in attributes, (
                f"{context}: no `self.{layer.name} = ...` in an __init__ of model.py for Keras layer {layer.name!r} "
                f"({type(layer).__name__}); attributes: {sorted(attributes)[:40]}")
        else:
            parts = name_parts(layer.name)
            assert any(all(part in attribute.lower() for part in parts) for attribute in attributes), (
                f"{context}: no attribute of model.py is named after Keras layer {layer.name!r} (sanitized)")
    for layer in nested:
        if plain_name(layer.name):
            assert any(layer.name in identifier for identifier in identifiers), (
                f"{context}: nested Keras layer {layer.name!r} is named nowhere in model.py")


# ---- the cases -------------------------------------------------------------------------------------------------

_small: dict[str, Prepared] = {}


def small(name: str) -> Prepared:
    if name not in _small:
        _small[name] = Prepared(SMALL[name])
    return _small[name]


APPLICATION_PARAMS = [pytest.param(name, id=name) for name in CI_APPLICATIONS] + \
                     [pytest.param(name, id=name, marks=full_only) for name in FULL_APPLICATIONS]
_ALL_APPLICATIONS = {**CI_APPLICATIONS, **FULL_APPLICATIONS}


@pytest.fixture(scope="module", params=APPLICATION_PARAMS)
def application(request):
    """One keras.applications case at a time (pytest groups the tests by it), freed afterwards."""
    prepared = Prepared(_ALL_APPLICATIONS[request.param])
    yield prepared
    del prepared
    gc.collect()


# ---- end to end: small models ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SMALL))
def test_small_model_convert_matches_keras(name):
    prepared = small(name)
    conversion = prepared.conversion()
    module = conversion.torch_model
    assert isinstance(module, torch.nn.Module)
    assert not module.training, "the converted module must be in eval mode"
    for evaluation in range(len(prepared.case.evaluations)):
        want = prepared.reference(evaluation)
        got = run_torch(module, prepared.inputs(evaluation), permuted=False)
        assert_matches_keras(got, want, prepared.describe(evaluation))


@pytest.mark.parametrize("name", list(SMALL))
def test_small_model_to_torch_matches_keras_on_permuted_nhwc_inputs(name):
    prepared = small(name)
    module = prepared.user_module()
    assert isinstance(module, torch.nn.Module) and not module.training
    for evaluation in range(len(prepared.case.evaluations)):
        want = prepared.reference(evaluation)
        got = run_torch(module, prepared.inputs(evaluation), permuted=True)
        assert_matches_keras(got, want, prepared.describe(evaluation) + ", to_torch, x_nhwc.permute inputs")


def check_report(conversion, context: str):
    report = conversion.report()
    assert isinstance(report, list) and report, f"{context}: report() is empty"
    for entry in report:
        assert {"node", "tensor", "max_relative_difference", "tolerance", "ok"} <= set(entry), entry
        assert entry["ok"] is True, f"{context}: report entry not ok: {entry}"
        assert entry["max_relative_difference"] <= entry["tolerance"] <= TOLERANCE, f"{context}: {entry}"


@pytest.mark.parametrize("name", list(SMALL))
def test_small_model_report_is_all_ok(name):
    check_report(small(name).conversion(), name)


@pytest.mark.parametrize("name", list(SMALL))
def test_small_model_torch_source_is_readable(name):
    prepared = small(name)
    conversion = prepared.conversion()
    check_torch_source(conversion.torch_source(), prepared.model, name)
    # the live module is built by the same code: its submodules, parameters or buffers carry the same names
    module = conversion.torch_model
    paths = [*dict(module.named_modules()), *dict(module.named_parameters()), *dict(module.named_buffers())]
    components = {part for path in paths for part in path.split(".")}
    for layer in weighted_layers(prepared.model)[0]:
        if plain_name(layer.name):
            assert layer.name in components, f"{name}: nothing in the live module is named {layer.name!r}"


@pytest.mark.parametrize("name", list(SMALL))
def test_small_model_explain_names_every_keras_layer_with_weights(name):
    prepared = small(name)
    text = prepared.conversion().explain()
    assert isinstance(text, str) and text.strip()
    top, nested = weighted_layers(prepared.model)
    for layer in top + nested:
        assert layer.name in text, f"{name}: explain() does not mention Keras layer {layer.name!r}"


@pytest.mark.parametrize("name", list(SMALL))
def test_small_model_runtime_transposes(name):
    """Layout-sensitive ops map onto NCHW with the weights folded (Flatten -> Dense, Dense on rank > 2, PReLU,
    LayerNormalization over H, W, C, Concatenate axes, Softmax axes): no runtime transpose unless the model itself
    moves data across the channel axis (Permute, Reshape)."""
    prepared = small(name)
    transposes = prepared.conversion().runtime_transposes
    assert isinstance(transposes, int) and transposes >= 0
    if not prepared.case.moves_channels:
        assert transposes == 0, f"{name}: {transposes} runtime transposes\n{prepared.conversion().explain()}"


def test_every_small_model_py_runs_in_a_fresh_interpreter_with_only_torch(tmp_path):
    """save() of every small model; one fresh interpreter (keras, tensorflow, numpy, convbridge blocked) loads
    each model.py with load_model() and runs it on x_nhwc.permute inputs: the live module's outputs, and Keras's."""
    expected, directories = {}, []
    for name in SMALL:
        directory = tmp_path / name
        expected[name] = save_for_fresh_run(small(name), directory)
        directories.append(directory)
    results = run_fresh(directories, timeout=900)
    for name, directory in zip(SMALL, directories):
        live, reference = expected[name]
        check_fresh_outputs(directory, results[str(directory)], live, reference, name)


@pytest.mark.parametrize("name", ["conv2d-odd", "norms-even", "nested-dynamic", "two_inputs_two_outputs",
                                  "activations-layers"])
def test_saved_weights_are_the_live_modules_state_dict(name, tmp_path):
    prepared = small(name)
    prepared.conversion().save(str(tmp_path))
    saved = read_safetensors(tmp_path / "model.safetensors")
    state = prepared.conversion().torch_model.state_dict()
    assert sorted(saved) == sorted(state)
    for key, value in state.items():
        assert saved[key].dtype == value.dtype and torch.equal(saved[key], value), key


def test_a_failed_save_leaves_neither_file_behind(tmp_path, monkeypatch):
    """model.safetensors fails after model.py was written: neither file, nor a temporary one, is left."""
    import convbridge._torch_model as torch_model_module

    def disk_full(f, tensors):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    conversion = small("conv2d-odd").conversion()
    monkeypatch.setattr(torch_model_module, "write_safetensors", disk_full)
    for directory in (tmp_path / "fresh", tmp_path):
        with pytest.raises(OSError, match="No space left"):
            conversion.save(str(directory))
        left = sorted(p.name for p in directory.rglob("*")) if directory.exists() else []
        assert left in ([], ["fresh"]), f"left behind: {left}"


# ---- convbridge convert MODEL.keras: the same conversion from the file, no framework in the process ------------

CONVBRIDGE_BIN = Path(os.environ.get("CONVBRIDGE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "convbridge")))


def convert_keras_file(model, tmp_path):
    """model.save() to a .keras file, then the CLI (a C++ process: no keras, no torch) converts the file."""
    keras_path = tmp_path / "model.keras"
    model.save(keras_path)
    out = tmp_path / "from_file"
    result = subprocess.run([str(CONVBRIDGE_BIN), "convert", str(keras_path), "-o", str(out)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "model.safetensors" in result.stdout
    return out


def assert_same_as_save(prepared, out, tmp_path):
    """The file conversion writes exactly what convbridge.convert(model).save() writes: the same model.py and the
    same state_dict, bit for bit."""
    saved = tmp_path / "from_save"
    prepared.conversion().save(str(saved))
    assert (out / "model.py").read_text() == (saved / "model.py").read_text()
    got, want = read_safetensors(out / "model.safetensors"), read_safetensors(saved / "model.safetensors")
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype and torch.equal(got[key], value), key


@pytest.mark.parametrize("name", list(SMALL))
def test_small_model_convert_from_keras_file_is_what_save_writes(name, tmp_path):
    prepared = small(name)
    assert_same_as_save(prepared, convert_keras_file(prepared.model, tmp_path), tmp_path)


def test_application_convert_from_keras_file_is_what_save_writes(application, tmp_path):
    assert_same_as_save(application, convert_keras_file(application.model, tmp_path), tmp_path)


def test_convert_from_keras_file_refuses_a_lambda_layer_by_name(tmp_path):
    x = keras.Input((4, 4, 3))
    y = keras.layers.Lambda(lambda t: t * 2, name="doubler")(keras.layers.Conv2D(2, 1, name="c")(x))
    path = tmp_path / "lambda.keras"
    keras.Model(x, y).save(path)
    out = tmp_path / "out"
    result = subprocess.run([str(CONVBRIDGE_BIN), "convert", str(path), "-o", str(out)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "doubler" in result.stderr and "Lambda" in result.stderr, result.stderr
    assert not (out / "model.py").exists() and not (out / "model.safetensors").exists()


# ---- structure: inputs and outputs -----------------------------------------------------------------------------


def test_two_inputs_are_positional_in_model_inputs_order_and_outputs_a_list():
    prepared = small("two_inputs_two_outputs")
    assert [t.name for t in prepared.model.inputs] == ["image", "meta"]
    module = prepared.user_module()
    image, meta = torch_inputs(prepared.inputs(0), permuted=False)
    assert tuple(image.shape) == (2, 3, 9, 8) and tuple(meta.shape) == (2, 5)
    with torch.no_grad():
        out = module(image, meta)
    assert isinstance(out, list) and [tuple(t.shape) for t in out] == [(2, 2, 9, 8), (2, 3)]
    assert_matches_keras(out, prepared.reference(0), "two_inputs_two_outputs")


def test_dict_output_is_a_dict_with_the_keras_keys():
    prepared = small("dict_output-dynamic")
    with torch.no_grad():
        out = prepared.user_module()(*torch_inputs(prepared.inputs(1), permuted=False))
    assert isinstance(out, dict) and set(out) == {"score", "mask"}
    assert tuple(out["score"].shape) == (1, 3) and tuple(out["mask"].shape) == (1, 1, 8, 7)


# ---- the PyTorch and TF kernel bugs ----------------------------------------------------------------------------


def one_channel_truth(prepared: Prepared, x: np.ndarray) -> np.ndarray:
    """The conv of one_channel_strided in float64 by PyTorch on standard strides, in Keras layout."""
    conv = prepared.model.get_layer("conv")
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in conv.get_weights())
    weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
    x64 = torch.from_numpy(channels_first(x).astype(np.float64))
    y = torch.nn.functional.conv2d(x64, weight, torch.from_numpy(bias), stride=tuple(conv.strides))
    return channels_last(y.numpy())


def wrong(got, want) -> bool:
    return not np.all(np.isfinite(got)) or relative_difference(got, want) > 1e-2


@pytest.mark.parametrize("name", ["one_channel_strided-w5", "one_channel_strided-w6"])
def test_fact_tf_eager_conv_is_wrong_for_one_input_channel_stride_on_width_at_batch_2(name):
    """Why XLA is the reference for such layers: eager Keras is wrong, XLA equals a float64 computation."""
    prepared = small(name)
    assert prepared.xla and prepared.risky_layers == ["conv"]
    x = prepared.inputs(0)[0]
    truth = one_channel_truth(prepared, x)
    assert relative_difference(keras_forward(prepared.model, [x], xla=True), truth) <= 1e-6
    assert wrong(keras_forward(prepared.model, [x], xla=False), truth), \
        "TF's eager oneDNN conv bug seems fixed: eager Keras could be the reference again"


@pytest.mark.parametrize("name", ["one_channel_strided-w5", "one_channel_strided-w6"])
def test_fact_pytorch_conv_is_wrong_on_permuted_one_channel_input(name):
    """Why the immunity test below means something: a plain F.conv2d with the Keras weights is wrong on
    x_nhwc.permute(0, 3, 1, 2), and .contiguous() does not help (with one channel those strides count as
    contiguous, so it returns the same tensor); a copy with standard strides is right."""
    prepared = small(name)
    x = prepared.inputs(0)[0]
    truth = channels_first(one_channel_truth(prepared, x))
    conv = prepared.model.get_layer("conv")
    kernel, bias = conv.get_weights()
    weight = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    permuted = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2)
    assert permuted.is_contiguous() and permuted.contiguous().stride() == permuted.stride()

    def conv2d(t):
        with torch.no_grad():
            return torch.nn.functional.conv2d(t, weight, torch.from_numpy(bias), stride=tuple(conv.strides)).numpy()

    assert wrong(conv2d(permuted), truth), "PyTorch's CPU conv bug seems fixed for this input"
    assert wrong(conv2d(permuted.contiguous()), truth)
    assert relative_difference(conv2d(permuted.clone(memory_format=torch.contiguous_format)), truth) <= 1e-5


@pytest.mark.parametrize("name", ["one_channel_strided-w5", "one_channel_strided-w6"])
def test_one_channel_strided_conv_module_is_immune_to_pytorch_conv_bug(name):
    """convert() and to_torch() modules fed x_nhwc.permute(0, 3, 1, 2) (and standard tensors) equal Keras under
    XLA."""
    prepared = small(name)
    want = prepared.reference(0)
    for label, module in (("convert", prepared.conversion().torch_model), ("to_torch", prepared.user_module())):
        for permuted in (True, False):
            got = run_torch(module, prepared.inputs(0), permuted=permuted)
            assert_matches_keras(got, want, f"{name} {label} permuted={permuted}")


def test_fact_xla_bilinear_upsampling_by_3_differs_from_eager():
    """Why eager Keras, not XLA, is the default reference: UpSampling2D((2, 3), 'bilinear') under XLA differs from
    eager TF, and eager TF equals PyTorch's bilinear (align_corners=False)."""
    inputs = keras.Input((5, 4, 2))
    model = keras.Model(inputs, L.UpSampling2D((2, 3), interpolation="bilinear")(inputs))
    x = np.random.default_rng(0).standard_normal((1, 5, 4, 2)).astype(np.float32)
    eager, xla = keras_forward(model, [x], xla=False), keras_forward(model, [x], xla=True)
    torch_bilinear = torch.nn.functional.interpolate(torch.from_numpy(channels_first(x)), scale_factor=(2, 3),
                                                     mode="bilinear", align_corners=False).numpy()
    assert relative_difference(channels_first(eager), torch_bilinear) <= 1e-6
    assert relative_difference(xla, eager) > 1e-2, "XLA's bilinear resize now agrees with eager TF"


# ---- Keras facts the converter meets ---------------------------------------------------------------------------


def test_fact_mobilenet_v2_correct_pad_depends_on_whether_the_size_is_known():
    """keras.applications' correct_pad pads (0, 1) for an unknown size ("assumes even") and (1, 1) for a known odd
    one: the two MobileNetV2 CI cases are different computations. (Its stem, Conv1, is a stride-2 'same' conv:
    TF's size-dependent split, per input in the None-sized model.)"""
    dynamic = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(None, None, 3))
    fixed = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(65, 65, 3))
    assert dynamic.get_layer("Conv1").padding == fixed.get_layer("Conv1").padding == "same"
    assert dynamic.get_layer("block_1_pad").padding == ((0, 1), (0, 1))
    assert fixed.get_layer("block_1_pad").padding == ((1, 1), (1, 1))  # its input is 33x33


def normalization_model():
    inputs = keras.Input((4, 4, 3))
    layer = L.Normalization(axis=-1, name="norm_set")
    model = keras.Model(inputs, L.Conv2D(2, 1, name="conv")(layer(inputs)))
    return model, layer


def test_fact_normalization_computes_with_old_statistics_until_finalize_state():
    model, layer = normalization_model()
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 3)).astype(np.float32)
    before = np.asarray(model(x))
    layer.set_weights([np.array([1.0, 2.0, 3.0]), np.array([4.0, 4.0, 4.0]), np.array(0)])
    assert np.array_equal(np.asarray(model(x)), before)  # the new weights are not used...
    assert np.array_equal(layer.get_weights()[0], [1.0, 2.0, 3.0])  # ...though get_weights() shows them
    layer.finalize_state()
    assert not np.allclose(np.asarray(model(x)), before)


def test_normalization_with_weights_set_but_not_finalized_is_matched_or_refused():
    """Keras computes with the old statistics while get_weights() shows the new ones: the converted module must
    compute what Keras computes, or convert() must refuse (its verification sees the mismatch) naming the layer."""
    model, layer = normalization_model()
    layer.set_weights([np.array([1.0, 2.0, 3.0]), np.array([4.0, 4.0, 4.0]), np.array(0)])
    try:
        module = convbridge.to_torch(model)
    except convbridge.ConversionError as error:
        assert "norm_set" in str(error), str(error)
        return
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 3)).astype(np.float32)
    assert_matches_keras(run_torch(module, [x], permuted=False), keras_forward(model, [x], xla=False),
                         "Normalization set without finalize_state")


# ---- example_shape -----------------------------------------------------------------------------------------------


def large_receptive_field_model():
    """A None-sized model that cannot run at 64x64 or 65x65 (a dilated 3x3 conv spanning 71 pixels)."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 3), name="image")
    x = L.Conv2D(4, 3, dilation_rate=35, name="wide_conv")(inputs)
    x = L.Conv2D(3, 3, strides=2, padding="same", name="conv_s2_same")(x)
    model = keras.Model(inputs, x, name="wide_net")
    return randomize(model, seed=3)


def test_example_shape_where_the_default_size_cannot_run():
    model = large_receptive_field_model()
    with pytest.raises(convbridge.ConversionError, match="example_shape"):
        convbridge.convert(model)
    conversion = convbridge.convert(model, example_shape=(1, 80, 77, 3))
    check_report(conversion, "wide_net")
    rng = np.random.default_rng(5)
    for shape in ((2, 80, 77, 3), (1, 83, 90, 3)):  # the example size, and another (odd/even mixed) one
        x = rng.standard_normal(shape).astype(np.float32)
        assert_matches_keras(run_torch(conversion.torch_model, [x], permuted=False),
                             keras_forward(model, [x], xla=False), f"wide_net at {shape}")


def test_example_shape_is_in_keras_layout():
    """example_shape=(N, H, W, C) with H != W: the converter verifies at that size and the module stays exact at
    others."""
    prepared = small("conv2d-dynamic")
    module = convbridge.to_torch(prepared.model, example_shape=(1, 21, 14, 3))
    rng = np.random.default_rng(6)
    for shape in ((1, 21, 14, 3), (2, 14, 21, 3), (1, 9, 16, 3)):
        x = rng.standard_normal(shape).astype(np.float32)
        assert_matches_keras(run_torch(module, [x], permuted=True), keras_forward(prepared.model, [x], xla=False),
                             f"conv2d-dynamic converted at (1, 21, 14, 3), run at {shape}")


# ---- errors ------------------------------------------------------------------------------------------------------


def lambda_model():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="conv")(inputs)
    x = L.Lambda(lambda t: t * 2.0, name="double_it")(x)
    return keras.Model(inputs, L.GlobalAveragePooling2D()(x))


class TinySubclassedNet(keras.Model):
    """A subclassed model: its computation is Python code in call(), with no functional graph."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = L.Conv2D(4, 3)
        self.pool = L.GlobalAveragePooling2D()

    def call(self, x):
        return self.pool(self.conv(x)) * 2.0


def subclassed_model():
    model = TinySubclassedNet(name="tiny_sub")
    model(np.zeros((1, 8, 8, 3), np.float32))
    return model


def subclassed_inside_functional():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(3, 1, name="conv")(inputs)
    return keras.Model(inputs, TinySubclassedNet(name="tiny_sub")(x))


class TimesTwo(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


def custom_layer_model():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="conv")(inputs)
    return keras.Model(inputs, TimesTwo(name="times_two")(x))


def lstm_model():
    inputs = keras.Input((10, 4))
    x = L.Conv1D(6, 3, name="conv")(inputs)
    return keras.Model(inputs, L.LSTM(8, name="rnn")(x))


@pytest.mark.parametrize("build, words", [
    (lambda_model, ["double_it", "Lambda"]),
    (subclassed_model, ["TinySubclassedNet"]),
    (subclassed_inside_functional, ["TinySubclassedNet"]),
    (custom_layer_model, ["times_two", "TimesTwo"]),
    (lstm_model, ["rnn", "LSTM"]),
], ids=["lambda", "subclassed-model", "subclassed-inside-functional", "custom-layer", "lstm"])
@pytest.mark.parametrize("entry", ["convert", "to_torch"])
def test_unconvertible_model_raises_conversion_error_naming_the_layer(build, words, entry):
    model = build()
    with pytest.raises(convbridge.ConversionError) as caught:
        getattr(convbridge, entry)(model)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    for word in words:
        assert word in message, f"{word!r} not in the error message: {message}"


# ---- round trip: PyTorch zoo -> Keras -> PyTorch ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_round_trip_pytorch_zoo_model_through_keras(name):
    """convbridge.convert(torch_model, input_shape).keras_model (which holds convbridge's own Keras layers where
    PyTorch needs them), back with convbridge.to_torch: the original PyTorch model's numbers."""
    from zoo import ZOO, build_eval

    original = build_eval(name, "ci")
    shape = ZOO[name].ci_inputs[0]
    keras_model = convbridge.convert(original, shape).keras_model
    back = convbridge.to_torch(keras_model)
    assert isinstance(back, torch.nn.Module) and not back.training
    x = torch.randn(2, *shape[1:], generator=torch.Generator().manual_seed(21))
    with torch.no_grad():
        want, got = original(x), back(x)
    assert tuple(got.shape) == tuple(want.shape)
    difference = relative_difference(got.numpy(), want.numpy())
    assert difference <= TOLERANCE, f"{name}: round trip differs by {difference:.3g}"


def test_round_trip_with_none_sizes():
    """PyTorch ResNet18 -> Keras with None spatial sizes -> PyTorch (verified at the default 64): exact at an odd
    size too."""
    from zoo import ZOO, build_eval

    original = build_eval("resnet18", "ci")
    even, odd = ZOO["resnet18"].ci_inputs
    keras_model = convbridge.convert(original, (1, 3, None, None), example_shape=even).keras_model
    back = convbridge.to_torch(keras_model)
    for shape in (even, odd):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(22))
        with torch.no_grad():
            difference = relative_difference(back(x).numpy(), original(x).numpy())
        assert difference <= TOLERANCE, f"resnet18 round trip at {shape}: {difference:.3g}"


# ---- keras.applications ----------------------------------------------------------------------------------------


def test_application_convert_matches_keras(application):
    conversion = application.conversion()
    module = conversion.torch_model
    assert isinstance(module, torch.nn.Module) and not module.training
    for evaluation in range(len(application.case.evaluations)):
        want = application.reference(evaluation)
        got = run_torch(module, application.inputs(evaluation), permuted=False)
        assert_matches_keras(got, want, application.describe(evaluation))


def test_application_to_torch_matches_keras_on_permuted_nhwc_inputs(application):
    # In CI verify=False: convert() runs the same verification on the same model; this checks the to_torch path
    # and its inputs at the cost of one capture instead of another verification. The full profile calls
    # to_torch(model) exactly as a user would.
    module = application.user_module(verify=PROFILE == "full")
    assert isinstance(module, torch.nn.Module) and not module.training
    for evaluation in range(len(application.case.evaluations)):
        got = run_torch(module, application.inputs(evaluation), permuted=True)
        assert_matches_keras(got, application.reference(evaluation),
                             application.describe(evaluation) + ", to_torch, x_nhwc.permute inputs")


def test_application_report_is_all_ok(application):
    check_report(application.conversion(), application.case.name)


def test_application_torch_source_is_readable(application):
    check_torch_source(application.conversion().torch_source(), application.model, application.case.name)


def test_application_runs_no_runtime_transpose(application):
    """None of these moves data across the channel axis: ConvNeXt's LayerNormalization over the channels and its
    Dense layers on rank-4 tensors, EfficientNet's squeeze-excite Reshape((1, 1, C)), VGG16's Flatten -> Dense all
    have NCHW forms without a transpose."""
    transposes = application.conversion().runtime_transposes
    assert transposes == 0, f"{application.case.name}: {transposes} runtime transposes"


def test_application_model_py_runs_in_a_fresh_interpreter_with_only_torch(application, tmp_path):
    directory = tmp_path / application.case.name
    live, reference = save_for_fresh_run(application, directory)
    results = run_fresh([directory], timeout=900)
    check_fresh_outputs(directory, results[str(directory)], live, reference, application.case.name)


def test_keras_zoo_profile_sizes():
    """The CI profile has every model of the issue at two sizes, one odd; the full one at the published sizes."""
    names = {"resnet50", "mobilenet_v2", "efficientnet_b0", "densenet121", "vgg16", "inception_v3", "convnext_tiny"}
    assert {case.split("-")[0] for case in CI_APPLICATIONS} == names
    assert {case.split("-")[0] for case in FULL_APPLICATIONS} == names
    for name in names:
        dynamic = CI_APPLICATIONS[f"{name}-dynamic"]
        sizes = [shapes[0][1] for shapes in dynamic.evaluations]
        assert len(sizes) == 2 and {s % 2 for s in sizes} == {0, 1}, (name, sizes)
        full = [case for key, case in FULL_APPLICATIONS.items() if key.startswith(name + "-")]
        published = 299 if name == "inception_v3" else 224
        assert sorted(c.evaluations[0][0][1] for c in full) == [published, published + 1]


@pytest.mark.parametrize("name", sorted(small_models.REFUSED))
def test_layers_without_a_pytorch_translation_are_refused_by_name(name):
    """Known gaps of the op set (LayerNormalization over several axes, PReLU with a slope per element): refused,
    naming the layer and why, not converted into something else."""
    build, layer, phrase = small_models.REFUSED[name]
    with pytest.raises(convbridge.ConversionError) as raised:
        convbridge.convert(build())
    assert f"'{layer}'" in str(raised.value) and phrase in str(raised.value)
