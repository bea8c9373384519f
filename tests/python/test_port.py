"""`convbridge port` (issue 14): a PyTorch checkpoint into a hand-written Keras model.

The Keras models are the hand-written twins of port_twins.py (layer names unlike PyTorch's, ZeroPadding2D +
valid convs, the ResNet's block3a written shortcut first, VGG's Flatten -> Dense on an NHWC map), whose
correctness test_port_twins.py proves independently of convbridge. Here:
- the four correct twins get their PyTorch twins' weights (torch.save files, plain state_dicts) through the CLI
  (`convbridge port CKPT --into MODEL.keras -o OUT.weights.h5`) and through convbridge.port, and a fresh twin that
  loads OUT matches PyTorch end to end within 1e-4 (relative to the output's largest magnitude); port's matching
  is the one of test_port_twins' explicit layer tables;
- a nested training checkpoint (DDP 'module.' names, optimizer state with weight-shaped Adam moments, an
  argparse.Namespace), a .safetensors and an .npz file;
- the mis-written twins (padding='same' at stride 2, Keras' default BatchNorm epsilon, a missing bias) are refused
  with exit status 1 and an error naming each mis-written layer and the check, nothing written unless --force;
  convbridge.port raises PortError;
- another architecture's checkpoint cannot be ported; hostile or unreadable files exit 2;
- --json lists every Keras layer with weights exactly once.

PyTorch runs in float64 (a copy of the module) on the same float32 inputs, batch 1 (TF's eager oneDNN depthwise
kernels at stride 2 can be wrong at batch > 1: docs/semantics.md). Models and files are built once per module.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import convbridge  # noqa: E402
import port_twins  # noqa: E402
from model_support import relative_difference  # noqa: E402
from test_port_twins import TABLES  # noqa: E402  (the explicit Keras layer -> PyTorch module tables)

REPO = Path(__file__).resolve().parents[2]
CONVBRIDGE_BIN = Path(os.environ.get("CONVBRIDGE_BIN", str(REPO / "build" / "convbridge")))
TOLERANCE = 1e-4
SIZE = 64
SEED = 0
CHECK_WORD = {"same_at_stride2": "padding", "default_eps": "epsilon", "missing_bias": "bias"}


def run(*arguments) -> subprocess.CompletedProcess:
    if not CONVBRIDGE_BIN.exists():
        pytest.fail(f"convbridge binary not found at {CONVBRIDGE_BIN} (set CONVBRIDGE_BIN)")
    return subprocess.run([str(CONVBRIDGE_BIN), *map(str, arguments)], capture_output=True, text=True, timeout=120)


def describe(result: subprocess.CompletedProcess) -> str:
    return (f"command: {subprocess.list2cmdline(result.args)}\nexit status: {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")


def port(*args, **kwargs):
    return convbridge.port(*args, **kwargs)  # looked up per call: a missing port fails each test, not collection


def port_error():
    return convbridge.PortError


def weighted_layers(model) -> list[str]:
    return [layer.name for layer in model.layers if layer.weights]


def random_image(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)


def torch_output(module, x: np.ndarray) -> np.ndarray:
    module64 = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        return module64(torch.from_numpy(x.astype(np.float64))).numpy()


def keras_output(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False))


def tokens(line: str) -> list[str]:
    return re.findall(r"[\w.]+", line)


class Case:
    """One architecture: the PyTorch twin, its state_dict and torch.save file, the Keras twin's .keras file, the
    PyTorch reference output."""

    def __init__(self, name: str, directory: Path):
        self.name = name
        self.torch = port_twins.build_torch(name, SEED)
        self.state = self.torch.state_dict()
        self.checkpoint = directory / f"{name}.pt"
        torch.save(self.state, self.checkpoint)
        self.keras_path = directory / f"{name}.keras"
        port_twins.build_keras(name, SIZE).model.save(self.keras_path)
        self.x = random_image()
        self.want = torch_output(self.torch, self.x)
        self.table = TABLES[name]()

    def fresh_twin(self, **mistakes):
        return port_twins.build_keras(self.name, SIZE, **mistakes)

    def assert_matches_pytorch(self, model, how: str) -> None:
        got = keras_output(model, self.x)
        assert got.shape == self.want.shape, f"{self.name} via {how}: Keras {got.shape}, PyTorch {self.want.shape}"
        difference = relative_difference(got, self.want)
        assert difference <= TOLERANCE, f"{self.name} via {how}: differs from PyTorch by {difference:.3g}"


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("port")


@pytest.fixture(scope="module")
def cases(directory):
    built = {}

    def get(name: str) -> Case:
        if name not in built:
            built[name] = Case(name, directory)
        return built[name]

    return get


# ---- the correct twins ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", port_twins.NAMES)
def test_cli_port_fills_the_twin_exactly(name, cases, tmp_path):
    case = cases(name)
    out = tmp_path / "out.weights.h5"
    result = run("port", case.checkpoint, "--into", case.keras_path, "-o", out)
    assert result.returncode == 0, describe(result)
    assert out.is_file(), describe(result)
    lines = result.stdout.splitlines()
    for keras_name, module in case.table:  # one report line names the Keras layer and the module it got
        hits = [line for line in lines if keras_name in tokens(line) and module in tokens(line)]
        assert hits, f"no report line names {keras_name!r} and {module!r}\n" + describe(result)
    twin = case.fresh_twin().model
    twin.load_weights(out)
    case.assert_matches_pytorch(twin, "the CLI")


@pytest.mark.parametrize("name", port_twins.NAMES)
def test_cli_json_lists_every_keras_layer_once_with_its_module(name, cases, tmp_path):
    case = cases(name)
    result = run("port", case.checkpoint, "--into", case.keras_path, "-o", tmp_path / "out.weights.h5", "--json")
    assert result.returncode == 0, describe(result)
    report = json.loads(result.stdout)
    layers = [entry["keras_layer"] for entry in report["layers"]]
    keras_model = case.fresh_twin().model
    assert sorted(layers) == sorted(weighted_layers(keras_model)), describe(result)
    assert len(layers) == len(set(layers))
    assert {(e["keras_layer"], e["torch_module"]) for e in report["layers"]} == set(case.table)
    assert report["errors"] == 0 and report["missing"] == []
    assert all(name.endswith("num_batches_tracked") for name in report["unused"]), report["unused"]
    filled = set()
    for entry in report["layers"]:
        layer = keras_model.get_layer(entry["keras_layer"])
        assert len(entry["weights"]) == len(layer.weights), entry
        assert sorted(tuple(w["keras_shape"]) for w in entry["weights"]) == sorted(
            tuple(int(d) for d in v.shape) for v in layer.weights), entry
        for weight in entry["weights"]:
            assert weight["torch"] in case.state, weight
            assert tuple(weight["torch_shape"]) == tuple(case.state[weight["torch"]].shape), weight
            filled.add(weight["torch"])
        assert not [f for f in entry["lint"] if f["severity"] == "error"], entry
    assert filled == {k for k in case.state if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize("name", port_twins.NAMES)
def test_python_port_of_a_state_dict(name, cases):
    case = cases(name)
    twin = case.fresh_twin().model
    result = port(case.state, twin)
    assert result.max_difference is None  # no torch_module given
    assert set(result.matches) == set(case.table)
    assert len(result.matches) == len(weighted_layers(twin))
    assert result.missing == []
    assert all(n.endswith("num_batches_tracked") for n in result.unused), result.unused
    assert not [f for f in result.lint if f.severity == "error"]
    report = result.report()
    assert isinstance(report, str)
    for keras_name in weighted_layers(twin):
        assert keras_name in tokens(report), keras_name
    case.assert_matches_pytorch(twin, "convbridge.port(state_dict)")


@pytest.mark.parametrize("name", port_twins.NAMES)
def test_python_port_with_the_torch_module_compares_both(name, cases):
    case = cases(name)
    twin = case.fresh_twin().model
    kwargs = {"example_input": random_image(seed=3)} if name == "resnet18" else {}
    result = port(case.checkpoint, twin, torch_module=case.torch, **kwargs)
    assert result.max_difference is not None and result.max_difference <= TOLERANCE, result.max_difference
    case.assert_matches_pytorch(twin, "convbridge.port(path, torch_module=...)")


# ---- checkpoint formats -----------------------------------------------------------------------------------------


def test_nested_training_checkpoint_with_ddp_names_optimizer_state_and_namespace(cases, tmp_path):
    case = cases("resnet18")
    trained = copy.deepcopy(case.torch).train()
    optimizer = torch.optim.Adam(trained.parameters(), lr=1e-3)  # exp_avg / exp_avg_sq: shaped like the weights
    trained(torch.randn(2, 3, SIZE, SIZE)).square().mean().backward()
    optimizer.step()
    checkpoint = {
        "model": {f"module.{k}": v for k, v in case.state.items()},  # DistributedDataParallel's names
        "optimizer": optimizer.state_dict(),
        "epoch": 3,
        "args": argparse.Namespace(arch="resnet18", lr=1e-3, batch_size=256),
    }
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(checkpoint, path)
    out = tmp_path / "out.weights.h5"
    result = run("port", path, "--into", case.keras_path, "-o", out)
    assert result.returncode == 0, describe(result)
    twin = case.fresh_twin().model
    twin.load_weights(out)
    case.assert_matches_pytorch(twin, "the CLI on a nested DDP checkpoint")
    twin = case.fresh_twin().model
    port(path, twin)
    case.assert_matches_pytorch(twin, "convbridge.port on a nested DDP checkpoint path")


def test_safetensors_checkpoint(cases, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    case = cases("mobilenet_v2")
    path = tmp_path / "weights.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in case.state.items()}, str(path))
    out = tmp_path / "out.weights.h5"
    result = run("port", path, "--into", case.keras_path, "-o", out)
    assert result.returncode == 0, describe(result)
    twin = case.fresh_twin().model
    twin.load_weights(out)
    case.assert_matches_pytorch(twin, "the CLI on a .safetensors file")


def test_npz_checkpoint_and_a_numpy_dict(cases, tmp_path):
    case = cases("vgg11")
    arrays = {k: v.numpy() for k, v in case.state.items()}
    path = tmp_path / "weights.npz"
    np.savez(path, **arrays)
    out = tmp_path / "out.weights.h5"
    result = run("port", path, "--into", case.keras_path, "-o", out)
    assert result.returncode == 0, describe(result)
    twin = case.fresh_twin().model
    twin.load_weights(out)
    case.assert_matches_pytorch(twin, "the CLI on an .npz file")
    twin = case.fresh_twin().model
    port({"model": arrays, "epoch": 3}, twin)
    case.assert_matches_pytorch(twin, "convbridge.port on a nested dict of numpy arrays")


# ---- mis-written twins ------------------------------------------------------------------------------------------

MISTAKES = [
    ("resnet18", {"same_at_stride2": True}),
    ("mobilenet_v2", {"same_at_stride2": True}),
    ("resnet18", {"default_eps": True}),
    ("vgg11_bn", {"default_eps": True}),
    ("vgg11", {"missing_bias": True}),
    ("vgg11", {"missing_bias": "classifier"}),
]
MISTAKE_IDS = [f"{n}-{next(iter(m))}={next(iter(m.values()))}" for n, m in MISTAKES]


@pytest.fixture(scope="module")
def mis_written(cases, directory):
    built = {}

    def get(name: str, mistake: dict):
        key = (name, tuple(mistake.items()))
        if key not in built:
            twin = cases(name).fresh_twin(**mistake)
            path = directory / f"{name}-{'-'.join(f'{k}={v}' for k, v in mistake.items())}.keras"
            twin.model.save(path)
            (kind, touched), = twin.touched.items()
            built[key] = (path, kind, touched)
        return built[key]

    return get


def error_lines(result: subprocess.CompletedProcess, layer: str, word: str) -> list[str]:
    return [line for line in (result.stdout + "\n" + result.stderr).splitlines()
            if f"'{layer}'" in line and word in line.lower()]


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=MISTAKE_IDS)
def test_cli_refuses_a_mis_written_twin_naming_the_layer(name, mistake, cases, mis_written, tmp_path):
    case = cases(name)
    path, kind, touched = mis_written(name, mistake)
    out = tmp_path / "out.weights.h5"
    result = run("port", case.checkpoint, "--into", path, "-o", out)
    assert result.returncode == 1, describe(result)
    assert not out.exists(), "a refused port wrote its output\n" + describe(result)
    for layer in touched:
        assert error_lines(result, layer, CHECK_WORD[kind]), (
            f"no error names '{layer}' with {CHECK_WORD[kind]!r}\n" + describe(result))
    if kind == "same_at_stride2" and name == "resnet18":
        # the 1x1/2 projection shortcuts are written padding='same' too, but a 1x1 kernel pads nothing: not an error
        for layer in ("block3a_proj_conv", "block4a_proj_conv", "block5a_proj_conv"):
            assert not error_lines(result, layer, "padding"), describe(result)
    forced = run("port", case.checkpoint, "--into", path, "-o", out, "--force")
    assert forced.returncode == 0, describe(forced)
    assert out.is_file(), describe(forced)
    for layer in touched:
        assert error_lines(forced, layer, CHECK_WORD[kind]), describe(forced)
    keras.models.load_model(path).load_weights(out)  # the forced file loads into the mis-written model


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=MISTAKE_IDS)
def test_python_port_raises_port_error_naming_the_layer(name, mistake, cases):
    case = cases(name)
    twin = case.fresh_twin(**mistake)
    (kind, touched), = twin.touched.items()
    with pytest.raises(port_error()) as raised:
        port(case.state, twin.model)
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert any(layer in message for layer in touched), message
    assert CHECK_WORD[kind] in message.lower(), message
    result = port(case.state, twin.model, force=True)
    errors = {f.layer for f in result.lint if f.severity == "error"}
    assert errors == set(touched), f"lint errors on {sorted(errors)}, mis-written: {sorted(touched)}"
    for finding in result.lint:
        assert finding.severity in ("error", "warning", "note") and isinstance(finding.check, str) and finding.check
        if finding.severity == "error":
            assert CHECK_WORD[kind] in finding.message.lower(), finding.message


# ---- what cannot be ported --------------------------------------------------------------------------------------


def test_another_architectures_checkpoint_is_refused(cases, tmp_path):
    vgg, resnet = cases("vgg11"), cases("resnet18")
    out = tmp_path / "out.weights.h5"
    result = run("port", vgg.checkpoint, "--into", resnet.keras_path, "-o", out)
    assert result.returncode in (1, 2), describe(result)
    assert not out.exists(), describe(result)
    text = (result.stdout + result.stderr).lower()
    assert "missing" in text or "unused" in text or "no source" in text, describe(result)
    with pytest.raises(port_error()):
        port(vgg.state, resnet.fresh_twin().model)


@pytest.mark.parametrize("what", ["checkpoint", "model"])
def test_unreadable_files_exit_2(what, cases, tmp_path):
    case = cases("vgg11")
    junk = tmp_path / ("junk.pt" if what == "checkpoint" else "junk.keras")
    junk.write_bytes(b"PK\x03\x04 this is not a zip archive" + bytes(range(256)))
    checkpoint, model = (junk, case.keras_path) if what == "checkpoint" else (case.checkpoint, junk)
    out = tmp_path / "out.weights.h5"
    result = run("port", checkpoint, "--into", model, "-o", out)
    assert result.returncode == 2, describe(result)
    assert result.stderr.strip(), describe(result)
    assert not out.exists()
