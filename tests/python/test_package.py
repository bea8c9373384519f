"""The Python package: API contract, errors, weights bit for bit, packaging, and the generated README table."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
import torch

import convbridge
from conftest import CONVBRIDGE_BIN, REPO, random_input, to_channels_first, to_channels_last, torch_reference

ERROR_PREFIX = "convbridge: error: "


def test_import_needs_neither_torch_nor_tensorflow():
    code = "import sys, convbridge; print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("text", [
    "nn.Conv2d(3, 16, 3, stride=2, padding='same')",
    "nn.Conv2d(3, 16, 3, padding='full')",
    "nn.Conv2d(3, 16, 3, groups=2)",
    "nn.Conv2d(3, 16, 3, strides=2)",
    "nn.Conv2d(3, 16, 3",
])
def test_invalid_layers_raise_value_error_with_the_cli_message(text):
    cli = subprocess.run([str(CONVBRIDGE_BIN), "translate", text], capture_output=True, text=True)
    assert cli.returncode == 2 and cli.stderr.startswith(ERROR_PREFIX)
    with pytest.raises(ValueError) as error:
        convbridge.translate(text)
    assert str(error.value) == cli.stderr[len(ERROR_PREFIX):].rstrip("\n")


def test_invalid_input_shapes_raise_value_error():
    conv = torch.nn.Conv2d(3, 16, 5)
    with pytest.raises(ValueError, match="Kernel size can't be greater than actual input size"):
        convbridge.translate(conv, input_shape=(1, 3, 4, 4))
    with pytest.raises(ValueError, match="has 4 channels; the layer expects in_channels=3"):
        convbridge.to_keras(conv, input_shape=(1, 4, 8, 8))
    with pytest.raises(ValueError, match="must be a sequence of ints"):
        convbridge.translate(conv, input_shape=(1, 3, 8.5, 8))
    with pytest.raises(ValueError, match="Kernel size can't be greater"):
        convbridge.translate(conv).output_shape([1, 3, 2, 2])


def test_modules_pytorch_would_reject_raise_value_error():
    conv = torch.nn.Conv2d(4, 8, 3)
    conv.stride = (0, 1)  # edited after construction: PyTorch fails at forward, convbridge up front
    with pytest.raises(ValueError, match="stride=\\(0, 1\\) must be positive"):
        convbridge.translate(conv)
    with pytest.raises(ValueError, match="expects a torch.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d"):
        convbridge.translate(torch.nn.Linear(3, 4))
    transposed = torch.nn.ConvTranspose2d(3, 4, 3, stride=2)
    transposed.output_padding = (2, 0)  # edited after construction: PyTorch fails at forward
    with pytest.raises(ValueError, match="output_padding=\\(2, 0\\) must be smaller than either stride"):
        convbridge.translate(transposed)
    # float16 weights are widened exactly (test_keep_results.py), integer ones refused with what to do.
    quantized = torch.nn.Conv2d(3, 4, 3)
    quantized.weight = torch.nn.Parameter(quantized.weight.detach().to(torch.int32), requires_grad=False)
    with pytest.raises(ValueError, match="torch.int32: convbridge converts floating point weights"):
        convbridge.convert_weights(quantized)


def _bits(array):
    array = np.ascontiguousarray(array)
    return array.view(np.uint32 if array.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_convert_weights_is_bit_exact(dtype):
    conv = torch.nn.Conv2d(4, 6, (3, 2), groups=2).to(dtype)
    with torch.no_grad():  # values a recomputation would change: -0.0, NaN payload, denormal, infinities
        conv.weight.view(-1)[:4] = torch.tensor([-0.0, float("nan"), 1e-45 if dtype == torch.float32 else 5e-324,
                                                 float("-inf")], dtype=dtype)
    converted = convbridge.convert_weights(conv)
    expected = conv.weight.detach().permute(2, 3, 1, 0).contiguous().numpy()  # OIHW -> HWIO
    assert converted["kernel"].shape == (3, 2, 2, 6)
    assert np.array_equal(_bits(converted["kernel"]), _bits(expected))
    assert np.array_equal(_bits(converted["bias"]), _bits(conv.bias.detach().numpy()))


def test_convert_weights_depthwise_layout():
    conv = torch.nn.Conv2d(4, 12, 3, groups=4, bias=False)
    converted = convbridge.convert_weights(conv)
    expected = conv.weight.detach().reshape(4, 3, 3, 3).permute(2, 3, 0, 1).contiguous().numpy()  # (kh, kw, C, M)
    assert np.array_equal(_bits(converted["kernel"]), _bits(expected))
    assert converted["bias"] is None


def test_to_keras_with_known_input_shape_is_the_cheapest_plan():
    conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
    layer = convbridge.to_keras(conv, input_shape=(2, 3, 225, 225))
    # TF 'same' pads (1, 1) at 225: one Conv2D, after the guard that refuses other sizes.
    assert [type(inner).__name__ for inner in layer.layers] == ["ExpectInputSize", "Conv2D"]
    assert layer.layers[1].padding == "same"
    x = random_input((2, 3, 225, 225), 0)
    got = to_channels_first(np.asarray(layer(np.ascontiguousarray(to_channels_last(x)))))
    np.testing.assert_allclose(got, torch_reference(conv, x), atol=1e-4)
    assert type(convbridge.to_keras(conv, input_shape=(2, 3, 224, 224))).__name__ == "Sequential"


def test_plan_api():
    plan = convbridge.translate(torch.nn.Conv1d(2, 4, 3, padding=1, padding_mode="circular"))
    assert plan.exact_for_every_input_size and plan.input_shape is None
    assert plan.output_shape([5, 2, 7]) == [5, 4, 7]
    assert "def make_layer(weight, bias=None):" in plan.keras_code()
    assert "def conv(x, weight, bias=None):" in plan.tf_code()
    assert '"mode": "circular"' in plan.to_json()
    assert "circular" in plan.explain()
    report = plan.verify()
    assert report["passed"] and len(report["cases"]) >= 3


def test_custom_layers_survive_save_and_load(tmp_path):
    import keras

    conv = torch.nn.Conv2d(2, 3, 3, padding=(2, 1), padding_mode="replicate")
    model = keras.Sequential([keras.Input((6, 5, 2)), convbridge.to_keras(conv)])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(1).standard_normal((1, 6, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_python_dash_m_runs_the_same_cli():
    args = ["translate", "nn.Conv2d(3, 16, 3, stride=2, padding=1)", "--input-shape", "1,3,224,224", "--emit", "json"]
    binary = subprocess.run([str(CONVBRIDGE_BIN), *args], capture_output=True, text=True)
    module = subprocess.run([sys.executable, "-m", "convbridge", *args], capture_output=True, text=True)
    assert (module.returncode, module.stdout, module.stderr) == (binary.returncode, binary.stdout, binary.stderr)
    bad = subprocess.run([sys.executable, "-m", "convbridge", "translate", "nn.Conv2d(3, 16, 0)"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.startswith(ERROR_PREFIX + "kernel_size=0")


def test_readme_mapping_table_is_current():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "mapping_table.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_wheel_installs_in_a_fresh_venv_without_frameworks(tmp_path):
    wheel = os.environ.get("CONVBRIDGE_WHEEL")
    if not wheel:
        pytest.skip("CONVBRIDGE_WHEEL is not set (scripts/test.sh builds the wheel and sets it)")
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", wheel], check=True)
    probe = ("import importlib.util, sys, convbridge\n"
             "assert importlib.util.find_spec('torch') is None and importlib.util.find_spec('tensorflow') is None\n"
             "print(convbridge.translate('nn.Conv2d(3, 16, 3, stride=2, padding=1)').verify()['passed'])\n")
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
    cli = subprocess.run([str(python), "-m", "convbridge", "translate", "nn.Conv1d(1, 1, 3)", "--emit", "keras"],
                         capture_output=True, text=True)
    assert cli.returncode == 0 and "def make_layer" in cli.stdout
    stub = Path(subprocess.run([str(python), "-c", "import convbridge._impl as m; print(m.__file__)"],
                               capture_output=True, text=True, check=True).stdout.strip()).with_name("_impl.pyi")
    assert stub.exists(), "type stubs are missing from the wheel"


def test_readme_example_is_the_real_output():
    """The README's first example is what the CLI prints, line for line (no elided '...')."""
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("<!-- example:begin -->"):readme.index("<!-- example:end -->")]
    lines = block.split("```console\n", 1)[1].rsplit("```", 1)[0].splitlines()
    command, expected = lines[0], lines[1:]
    assert command.startswith("$ build/convbridge ")
    arguments = shlex.split(command[len("$ build/convbridge "):])
    result = subprocess.run([str(CONVBRIDGE_BIN), *arguments], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # The float64 difference is the last bits of the BLAS kernel the machine's OpenBLAS picks (its dgemm sums in a
    # kernel-specific order): the text around it must match, and the number stay at round-off.
    difference = re.compile(r"max \|diff\| ([0-9.e+-]+)")
    for number in difference.findall(result.stdout):
        assert float(number) <= 1e-12, result.stdout
    normalized = [difference.sub("max |diff| <round-off>", line) for line in result.stdout.splitlines()]
    assert normalized == [difference.sub("max |diff| <round-off>", line) for line in expected], \
        "README.md's example is out of date: paste the command's output"
