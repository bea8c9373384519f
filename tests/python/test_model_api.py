"""Whole-model conversion as a user meets it: convbridge.convert / to_keras, their errors, save() and the model.py it
writes (run in a fresh interpreter without convbridge), explain(), report(), and the Keras model as a Keras user
treats it (.keras save and reload, a training step).

Numbers are compared with the real PyTorch model on inputs of our own (never with convbridge's own report):
max |keras - torch| / max |torch| <= 1e-4, outputs moved to channels_last.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import convbridge  # noqa: E402
from model_support import channels_last, randomize, relative_difference  # noqa: E402

RELATIVE_TOLERANCE = 1e-4
THIS_FILE = Path(__file__).name
PYTHON = sys.executable


def line_of(function, text: str) -> int:
    """The line number (in this file) of the line of `function`'s source containing `text`."""
    lines, first = inspect.getsourcelines(function)
    matches = [first + i for i, line in enumerate(lines) if text in line]
    assert len(matches) == 1, f"{text!r} occurs {len(matches)} times in {function.__qualname__}"
    return matches[0]


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, padding_mode="reflect", bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return F.relu6(self.bn(self.conv(x)))


class Small(nn.Module):
    """Nested modules, a layer scale parameter (ElementwiseWeight), reflect padding (TorchReflectPad), a ceil-mode
    max pool (-inf padding) and a Flatten folded into the Linear: the custom Keras layers model.py must carry."""

    def __init__(self, classes=5, size=(9, 11)):
        super().__init__()
        self.stem = Stem()
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Hardswish(), nn.Conv2d(8, 8, 1))
        self.layer_scale = nn.Parameter(torch.ones(8, 1, 1))
        self.pool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        h, w = (size[0] + 1) // 2, (size[1] + 1) // 2  # the stem's stride 2
        h, w = -(-(h - 1) // 2) + 1, -(-(w - 1) // 2) + 1  # MaxPool2d(3, 2, 1, ceil_mode=True)
        self.head = nn.Linear(8 * h * w, classes)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.block(x) * self.layer_scale
        x = self.pool(x)
        return self.head(torch.flatten(x, 1))


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return randomize(Small()).eval()


@pytest.fixture(scope="module")
def small_conversion(small):
    return convbridge.convert(small, (2, 3, 9, 11))


def torch_input(shape, seed=11):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- errors --------------------------------------------------------------------------------------------------


class CumsumBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        return x.cumsum(1)


class SortBlock(nn.Module):
    def forward(self, x):
        return torch.sort(x, dim=1).values


class FftBlock(nn.Module):
    def forward(self, x):
        return torch.fft.fft2(x).real


class Wrapper(nn.Module):
    """The unsupported op sits two modules deep: body.1."""

    def __init__(self, inner):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), inner)

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize("block, op, marker", [
    (CumsumBlock, "aten.cumsum", "x.cumsum(1)"),
    (SortBlock, "aten.sort", "torch.sort(x, dim=1)"),
    (FftBlock, "aten.fft_fft2", "torch.fft.fft2(x)"),
], ids=["cumsum", "sort", "fft2"])
def test_unsupported_op_names_op_module_and_line(block, op, marker):
    model = Wrapper(block()).eval()
    with pytest.raises(convbridge.ConversionError) as caught:
        convbridge.convert(model, (1, 3, 8, 8))
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert op in message
    assert f"body.1 ({block.__name__})" in message
    assert f"{THIS_FILE}:{line_of(block.forward, marker)}" in message
    assert marker in message  # the source line's code itself


def test_training_mode_says_call_eval():
    model = Wrapper(CumsumBlock())  # nn.Module starts in training mode
    with pytest.raises(convbridge.ConversionError, match=r"training mode.*model\.eval\(\)"):
        convbridge.convert(model, (1, 3, 8, 8))
    assert model.training  # convert must not switch the user's model to eval behind their back


def test_training_mode_of_a_submodule_alone_is_caught():
    model = Small().eval()
    model.stem.bn.train()  # the root says eval, one BatchNorm does not
    with pytest.raises(convbridge.ConversionError) as caught:
        convbridge.convert(model, (1, 3, 9, 11))
    message = str(caught.value)
    assert "model.eval()" in message and "stem.bn" in message and "BatchNorm2d" in message


@pytest.mark.parametrize("shape,message", [
    ((None, 3, 8, 8), "batch and channel sizes must be positive ints"),
    ((1, None, 8, 8), "batch and channel sizes must be positive ints"),
], ids=["batch", "channels"])
def test_input_shape_with_none_batch_or_channels_is_a_clear_error(shape, message):
    with pytest.raises(convbridge.ConversionError, match=message):
        convbridge.convert(Wrapper(CumsumBlock()).eval(), shape)


def test_none_spatial_size_where_an_op_needs_it_names_the_op():
    """CumsumBlock is not convertible at any size; with None sizes the error still names the op first."""
    with pytest.raises(convbridge.ConversionError, match="cumsum"):
        convbridge.convert(Wrapper(CumsumBlock()).eval(), (1, 3, None, 8))


@pytest.mark.parametrize("shape", [(1, 3, 0, 8), (1, 3, 8.0, 8), "1,3,8,8", None],
                         ids=["zero", "float", "text", "none"])
def test_malformed_input_shape(shape):
    with pytest.raises(convbridge.ConversionError, match="input_shape"):
        convbridge.convert(Wrapper(CumsumBlock()).eval(), shape)


class NoRunningStats(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4, track_running_stats=False)

    def forward(self, x):
        return self.norm(self.conv(x))


def test_batchnorm_without_running_stats():
    with pytest.raises(convbridge.ConversionError) as caught:
        convbridge.convert(NoRunningStats().eval(), (1, 3, 8, 8))
    message = str(caught.value)
    assert "aten.batch_norm" in message and "track_running_stats=False" in message
    assert "norm (BatchNorm2d)" in message
    assert f"{THIS_FILE}:{line_of(NoRunningStats.forward, 'self.norm(')}" in message


class RefusedConfigurations(nn.Module):
    def __init__(self, which):
        super().__init__()
        self.which = which
        self.act = nn.Softplus(beta=2.0) if which == "softplus" else nn.Hardtanh(-0.5, 0.75)

    def forward(self, x):
        if self.which == "alpha":
            return torch.add(x, x * 2, alpha=2)
        return self.act(x)


@pytest.mark.parametrize("which, words", [
    ("softplus", ["aten.softplus", "act (Softplus)", "beta=2.0"]),
    ("hardtanh", ["aten.hardtanh", "act (Hardtanh)", "min_val=-0.5"]),
    ("alpha", ["aten.add", "alpha=2", "torch.add(x, x * 2, alpha=2)"]),
])
def test_configurations_convbridge_refuses_name_the_module(which, words):
    with pytest.raises(convbridge.ConversionError) as caught:
        convbridge.convert(RefusedConfigurations(which).eval(), (1, 3, 4, 4))
    for word in words:
        assert word in str(caught.value)


def test_to_keras_of_a_model_needs_input_shape_value_error():
    with pytest.raises(ValueError, match=r"needs input_shape.*\(N, C, \*spatial\)"):
        convbridge.to_keras(Wrapper(CumsumBlock()).eval())


def test_to_keras_of_a_model_needs_input_shape_conversion_error():
    with pytest.raises(convbridge.ConversionError, match="needs input_shape"):
        convbridge.to_keras(Wrapper(CumsumBlock()).eval())


# ---- save(): model.py and weights.npz, without convbridge -----------------------------------------------------

FRESH_RUN = textwrap.dedent("""
    import sys
    sys.modules["convbridge"] = None  # `import convbridge` now raises ImportError
    try:
        import convbridge  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("convbridge is importable")
    import importlib.util, os
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import numpy as np
    directory, x_path, y_path = sys.argv[1:4]
    spec = importlib.util.spec_from_file_location("converted_model", os.path.join(directory, "model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load_model()
    np.save(y_path, np.asarray(model(np.load(x_path))))
    assert not [n for n, m in sys.modules.items() if n.startswith("convbridge") and m is not None], "convbridge"
    assert "torch" not in sys.modules, "model.py imported torch"
""")


def run_fresh(script: str, *args, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no convbridge on the path either
    env.update(TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    return subprocess.run([PYTHON, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=env, cwd=cwd)


def test_save_writes_model_py_and_weights_that_run_without_convbridge(small, small_conversion, tmp_path):
    directory = tmp_path / "small_keras"  # does not exist yet: save creates it
    returned = small_conversion.save(str(directory))
    assert Path(returned) == directory / "model.py"
    assert sorted(p.name for p in directory.iterdir()) == ["model.py", "weights.npz"]
    source = (directory / "model.py").read_text()
    assert "import convbridge" not in source and "from convbridge" not in source
    assert "def load_model(" in source and "def build_model(" in source
    x = torch_input((2, 3, 9, 11))
    np.save(tmp_path / "x.npy", channels_last(x.numpy()))
    proc = run_fresh(FRESH_RUN, directory, tmp_path / "x.npy", tmp_path / "y.npy", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with torch.no_grad():
        want = small(x).numpy()
    assert relative_difference(np.load(tmp_path / "y.npy"), want) <= RELATIVE_TOLERANCE


def test_saved_weights_are_the_keras_models_weights(small_conversion, tmp_path):
    small_conversion.save(str(tmp_path))
    with np.load(tmp_path / "weights.npz") as arrays:
        saved = dict(arrays)
    expected = {f"{layer.name}/{i}": w for layer in small_conversion.keras_model.layers
                for i, w in enumerate(layer.get_weights())}
    assert sorted(saved) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(saved[name], expected[name], err_msg=name)


def test_save_under_a_file_raises_and_leaves_nothing(small_conversion, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for target in (blocker / "out", blocker):
        with pytest.raises(OSError):
            small_conversion.save(str(target))
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
        assert blocker.read_text() == "not a directory"


def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_failed_save_keeps_the_previous_save(small_conversion, tmp_path, monkeypatch):
    small_conversion.save(str(tmp_path))
    old = {name: (tmp_path / name).read_bytes() for name in ("model.py", "weights.npz")}
    monkeypatch.setattr(np, "savez", disk_full)  # the weights' write fails after model.py's was written
    with pytest.raises(OSError, match="No space left"):
        small_conversion.save(str(tmp_path))
    assert {name: (tmp_path / name).read_bytes() for name in old} == old


def test_a_failed_save_leaves_no_partial_files(small_conversion, tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", disk_full)
    for directory in (tmp_path / "fresh", tmp_path):
        with pytest.raises(OSError, match="No space left"):
            small_conversion.save(str(directory))
        left = sorted(p.name for p in directory.rglob("*")) if directory.exists() else []
        assert left in ([], ["fresh"]), f"left behind: {left}"


# ---- explain() and report() ----------------------------------------------------------------------------------


def test_explain_mentions_every_nodes_module_path(small, small_conversion):
    text = small_conversion.explain()
    leaves = [name for name, module in small.named_modules() if name and not list(module.children())]
    assert leaves == ["stem.conv", "stem.bn", "block.0", "block.1", "block.2", "pool", "head"]
    for name in leaves:
        assert f"{name} (" in text, f"explain() does not mention module {name}"
    nodes = small_conversion.nodes()
    assert len(nodes) >= len(leaves)
    for node in nodes:
        assert node["node"] in text
        assert node["origin"] in text
    # the functional calls in forward() name the module whose forward made them and its source line
    assert f"{THIS_FILE}:{line_of(Small.forward, 'self.layer_scale')}" in text
    assert f"{THIS_FILE}:{line_of(Stem.forward, 'F.relu6')}" in text


class FlattenLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 5, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


def test_explain_says_the_flatten_is_folded():
    conversion = convbridge.convert(randomize(FlattenLinear()).eval(), (1, 3, 8, 7))
    text = conversion.explain()
    assert conversion.runtime_transposes == 0
    assert "0 runtime transposes" in text
    flatten = next(block for block in text.split("\n\n") if block.startswith("flatten"))
    assert "folded" in flatten
    linear = next(block for block in text.split("\n\n") if block.startswith("linear"))
    assert "fc (Linear)" in linear and "Flatten before it is folded" in linear


def test_report_on_demand_after_verify_false(small):
    conversion = convbridge.convert(small, (2, 3, 9, 11), verify=False)
    report = conversion.report()
    assert report and report is conversion.report()  # computed once, then kept
    nodes = {node["node"] for node in conversion.nodes()}
    assert {entry["node"] for entry in report} <= nodes
    assert {"conv2d", "linear", "max_pool2d"} <= {entry["node"] for entry in report}
    for entry in report:
        assert entry["ok"] and entry["max_relative_difference"] <= entry["tolerance"] == RELATIVE_TOLERANCE, entry


# ---- to_keras, .keras files, training ------------------------------------------------------------------------


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(16, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def test_to_keras_returns_a_keras_model():
    import keras

    torch.manual_seed(1)
    model = randomize(Classifier()).eval()
    keras_model = convbridge.to_keras(model, input_shape=(1, 3, 32, 32))
    assert isinstance(keras_model, keras.Model)
    assert tuple(keras_model.inputs[0].shape) == (None, 32, 32, 3)
    x = torch_input((1, 3, 32, 32))
    with torch.no_grad():
        want = model(x).numpy()
    assert relative_difference(keras_model(channels_last(x.numpy())), want) <= RELATIVE_TOLERANCE


RELOAD = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import numpy as np
    import convbridge  # registers convbridge's Keras layers
    import keras
    path, x_path, y_path = sys.argv[1:4]
    model = keras.models.load_model(path)
    np.save(y_path, np.asarray(model(np.load(x_path))))
""")


def test_keras_file_saves_and_reloads_in_a_new_process(small, small_conversion, tmp_path):
    keras_model = small_conversion.keras_model
    custom = {type(layer).__name__ for layer in keras_model.layers} & {"ElementwiseWeight", "TorchReflectPad",
                                                                         "NegInfPadding"}
    assert custom, "the model uses none of convbridge's custom layers: this test would prove little"
    path = tmp_path / "small.keras"
    keras_model.save(path)
    x = channels_last(torch_input((2, 3, 9, 11)).numpy())
    np.save(tmp_path / "x.npy", x)
    env_path = os.environ.get("PYTHONPATH", "")
    proc = subprocess.run([PYTHON, "-c", RELOAD, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": env_path, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    reloaded = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(reloaded, np.asarray(keras_model(x)))
    with torch.no_grad():
        want = small(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    assert relative_difference(reloaded, want) <= RELATIVE_TOLERANCE


def test_one_fit_step_trains_every_layer(small):
    import keras

    conversion = convbridge.convert(small, (2, 3, 9, 11), verify=False)  # its own model: fit changes the weights
    model = conversion.keras_model
    before = {w.path: np.array(w.numpy()) for w in model.trainable_weights}
    assert before
    owners = {w.path.split("/")[0] for w in model.trainable_weights}
    for layer in model.layers:
        if layer.trainable_weights:
            assert layer.name in owners
    assert any(type(layer).__name__ == "ElementwiseWeight" and layer.trainable_weights for layer in model.layers), \
        "the layer scale parameter is not trainable"
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 9, 11, 3)).astype(np.float32)
    y = rng.standard_normal((4, 5)).astype(np.float32)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [path for path, value in before.items()
               if not np.array_equal(value, next(w for w in model.trainable_weights if w.path == path).numpy())]
    assert sorted(changed) == sorted(before), f"weights fit did not change: {sorted(set(before) - set(changed))}"


def test_verification_names_the_first_node_that_diverges():
    """convert()'s own per-node verification can fail: one Keras weight corrupted after the conversion makes
    report() raise, naming that layer's node and not a later one that inherits the error."""
    model = Classifier().eval()
    conversion = convbridge.convert(model, (2, 3, 16, 16), verify=False)
    layer = conversion.keras_model.get_layer("features.3")
    kernel, bias = layer.get_weights()
    kernel[0, 0, 0, 0] += 1.0
    layer.set_weights([kernel, bias])
    with pytest.raises(convbridge.ConversionError, match=r"first node that diverges is \S+ \[aten\.conv2d\.default\] "
                                                         r"features\.3 "):
        conversion.report()
