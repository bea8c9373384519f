"""Whole PyTorch models -> Keras 3, proven on the zoo (tests/python/zoo: 17 architectures written here from their
papers). Each model, in eval mode with random BatchNorm statistics, is converted with convbridge.convert at two
input sizes (the second odd) and compared end to end against real PyTorch, independently of convbridge's own
per-node verification: max relative difference <= 1e-4 in float32. Every model that does not itself move data
across the channel axis converts with zero runtime transposes; each model's model.py runs in a fresh interpreter
where convbridge cannot be imported.

Profiles: CONVBRIDGE_ZOO_PROFILE=ci (the default: reduced width and resolution, what CI runs) or full (published
width, 224x224 and 199x199: a developer's run of an hour or more).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import convbridge  # noqa: E402
from model_support import channels_last, relative_difference  # noqa: E402
from zoo import ZOO, build_eval  # noqa: E402

PROFILE = os.environ.get("CONVBRIDGE_ZOO_PROFILE", "ci")
if PROFILE not in ("ci", "full"):
    raise ValueError(f"CONVBRIDGE_ZOO_PROFILE={PROFILE!r}: use 'ci' or 'full'")
TOLERANCE = 1e-4

_models = {}
_conversions = {}


def _inputs(entry):
    return entry.ci_inputs if PROFILE == "ci" else entry.full_inputs


def _model(name):
    if name not in _models:
        _models[name] = build_eval(name, PROFILE)
    return _models[name]


def _conversion(name, shape):
    key = (name, tuple(shape))
    if key not in _conversions:
        _conversions[key] = convbridge.convert(_model(name), shape)
    return _conversions[key]


CASES = [(name, index) for name in ZOO for index in range(2)]


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{'odd' if i else 'even'}" for n, i in CASES])
def test_zoo_model_matches_pytorch_end_to_end(name, index):
    entry = ZOO[name]
    shape = _inputs(entry)[index]
    model = _model(name)
    conversion = _conversion(name, shape)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1234 + index))
    with torch.no_grad():
        expected = model(x).double().numpy()
    actual = np.asarray(conversion.keras_model(channels_last(x.numpy())))
    difference = relative_difference(actual, channels_last(expected))
    assert difference <= TOLERANCE, f"{name} at {shape}: max relative difference {difference:.3g}"
    # convbridge's own per-node report agrees: every node within tolerance.
    report = conversion.report()
    assert report and all(row["ok"] for row in report)


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_runs_no_transpose_unless_it_moves_channels(name):
    entry = ZOO[name]
    conversion = _conversion(name, _inputs(entry)[0])
    if entry.moves_channels:
        # ShuffleNetV2's channel shuffle moves data across the channel axis: one transpose per shuffle, no more.
        shuffles = sum(1 for node in conversion.nodes() if node["source_op"] == "aten.transpose.int")
        assert 0 < conversion.runtime_transposes <= shuffles
    else:
        assert conversion.runtime_transposes == 0, conversion.explain()


def test_every_zoo_model_py_runs_in_a_fresh_interpreter_without_convbridge(tmp_path):
    """model.py + weights.npz of each zoo model, loaded by load_model() in one fresh interpreter where
    `import convbridge` fails, reproduce PyTorch's output."""
    expected = {}
    for name, entry in ZOO.items():
        shape = _inputs(entry)[0]
        directory = tmp_path / name
        _conversion(name, shape).save(str(directory))
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            expected[name] = channels_last(_model(name)(x).double().numpy())
        np.save(directory / "input.npy", channels_last(x.numpy()))
    script = textwrap.dedent(f"""
        import importlib.util, json, sys
        sys.modules["convbridge"] = None  # model.py must not need convbridge
        import numpy as np
        results = {{}}
        for name in {list(ZOO)!r}:
            directory = {str(tmp_path)!r} + "/" + name
            spec = importlib.util.spec_from_file_location("model_" + name, directory + "/model.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            model = module.load_model()
            np.save(directory + "/output.npy", np.asarray(model(np.load(directory + "/input.npy"))))
            results[name] = "ok"
        print(json.dumps(results))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 0, run.stderr[-4000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {name: "ok" for name in ZOO}
    for name in ZOO:
        actual = np.load(tmp_path / name / "output.npy")
        difference = relative_difference(actual, expected[name])
        assert difference <= TOLERANCE, f"{name}: model.py output differs by {difference:.3g}"


def test_to_keras_on_every_zoo_model_as_a_new_user_calls_it():
    """convbridge.to_keras(model, input_shape=(1, C, 224, 224)) on every 2-D zoo model (the 1-D and 3-D nets at
    their own published input), at the CI width: the full profile converts them at published width above."""
    for name, entry in ZOO.items():
        shape = entry.full_inputs[0]
        if len(shape) == 4:
            shape = (1, shape[1], 224, 224)
        keras_model = convbridge.to_keras(_model(name), input_shape=shape)
        assert isinstance(keras_model, keras.Model)
        assert tuple(keras_model.inputs[0].shape) == (None,) + tuple(shape[2:]) + (shape[1],)


# Models whose forward is not the same computation at every size, and why (the error must say so).
NOT_SIZE_GENERIC = {
    "unet": "not the same computation at every size",  # pads the up-sampled map only when a size is odd
    "seg_head": "output_size depends on the input size",  # F.interpolate(size=x.shape[-2:])
}


# The CI profile checks None sizes on a spread of the zoo (a reshape-heavy net, permutes, 1-D, 3-D, ceil_mode,
# cat, and both refusals); the full profile on every model.
DYNAMIC_CI = ("resnet18", "shufflenet_v2", "convnext_tiny", "googlenet", "audio_cnn_1d", "video_cnn_3d", "unet",
              "seg_head")


@pytest.mark.parametrize("name", list(ZOO) if PROFILE == "full" else list(DYNAMIC_CI))
def test_zoo_model_with_none_sizes_is_exact_at_another_size(name):
    """input_shape with None spatial sizes: one Keras model, exact at the example size and at the zoo's other
    (odd) size, or a ConversionError naming why the model cannot be size-generic."""
    entry = ZOO[name]
    example, other = _inputs(entry)
    dynamic = tuple(example[:2]) + (None,) * (len(example) - 2)
    model = _model(name)
    if name in NOT_SIZE_GENERIC:
        with pytest.raises(convbridge.ConversionError, match=NOT_SIZE_GENERIC[name]):
            convbridge.convert(model, dynamic, example_shape=example)
        return
    conversion = convbridge.convert(model, dynamic, example_shape=example)
    assert tuple(conversion.keras_model.inputs[0].shape) == (None,) * (len(example) - 1) + (example[1],)
    x = torch.randn(*other, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        expected = channels_last(model(x).double().numpy())
    actual = np.asarray(conversion.keras_model(channels_last(x.numpy())))
    difference = relative_difference(actual, expected)
    assert difference <= TOLERANCE, f"{name} at {other} (converted with None sizes): {difference:.3g}"
