"""What users do with a translation after the first call, against the real Keras 3 and PyTorch: save it and load it
in a new process, use it at another input size, trust a size-specific plan to refuse other sizes, translate Keras
layers with activation=, and get a ValueError that says what to do for every wrong argument.

Each test here failed before the change that made it pass (issue "Layer translations users can keep"):
- saved models with convbridge's Keras layers did not load in a new process (the classes were registered only inside
  to_keras(), and never by the code --emit keras prints);
- multi-step plans were a keras.Sequential without an Input, so the first call fixed the spatial size;
- a plan exact for one size accepted others and was silently wrong there;
- a Keras layer's own input_shape= was ignored; activation= was refused;
- to_keras(keras_layer), meta and lazy modules, tensors as input_shape and text for to_torch gave raw errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import keras
import convbridge

from conftest import (CONVBRIDGE_BIN, cli_command, describe_process, random_input, to_channels_first, to_channels_last,
                      tolerance_for, torch_layer, torch_reference, translate)
from reverse_helpers import (assert_matches_keras, keras_input, keras_layer, keras_tolerance, make_module_from_code,
                             plan_code_module, torch_forward64)

FRESH_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}

# Plans with more than one Keras layer, and a custom layer among them where PyTorch's semantics need one.
MULTI_STEP = [
    "nn.Conv2d(3, 8, 3, stride=2, padding=1)",                                  # ZeroPadding2D, Conv2D
    "nn.Conv2d(3, 8, 3, padding=1, padding_mode='reflect')",                     # TorchReflectPad
    "nn.Conv2d(3, 8, 3, padding=2, padding_mode='replicate')",                   # TorchEdgePad
    "nn.Conv2d(3, 8, 3, padding=1, padding_mode='circular')",                    # TorchEdgePad
    "nn.Conv2d(3, 6, 3, stride=2, dilation=2, padding=2, groups=3)",             # Conv2D + AveragePooling2D subsample
    "nn.Conv2d(3, 6, 3, stride=2, dilation=2, padding=2)",                       # TfConv, pads folded in
    "nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)",  # TorchGroupedConvTranspose
    "nn.Conv1d(3, 4, 5, padding=2, padding_mode='reflect')",
    "nn.Conv3d(2, 4, 3, padding=1, padding_mode='replicate')",
]


def _check_keras(layer, module, shape):
    x = random_input(shape, 7)
    y = to_channels_first(np.asarray(layer(np.ascontiguousarray(to_channels_last(x)))))
    expected = torch_reference(module, x)
    assert y.shape == expected.shape, (y.shape, expected.shape)
    np.testing.assert_allclose(y, expected, atol=tolerance_for(module), rtol=0)


def _other_shape(module, shape):
    """The same rank and channels, other spatial sizes (odd where shape is even and the reverse)."""
    return (2, shape[1], *[size + 3 for size in shape[2:]])


def _shape_for(module):
    return (1, module.in_channels, *[9 + i for i in range(len(module.kernel_size))])


# ---- 2. exact for every input size, also after the first call --------------------------------------------------


@pytest.mark.parametrize("text", MULTI_STEP)
def test_to_keras_stays_exact_at_every_size_after_its_first_call(text):
    module = torch_layer(text)
    layer = convbridge.to_keras(module)
    first = _shape_for(module)
    _check_keras(layer, module, first)  # the call that used to fix the Sequential's spatial size
    second = _other_shape(module, first)
    _check_keras(layer, module, second)
    # And inside a functional model of yet another size.
    rank = len(module.kernel_size)
    third = (1, module.in_channels, *[12 + i for i in range(rank)])
    inputs = keras.Input(third[2:] + (module.in_channels,))
    model = keras.Model(inputs, layer(inputs))
    _check_keras(model, module, third)


@pytest.mark.parametrize("text", MULTI_STEP[:5])
def test_emitted_keras_stays_exact_at_every_size_after_its_first_call(text, tmp_path):
    module = torch_layer(text)
    namespace = {}
    exec(translate(text, "keras"), namespace)  # noqa: S102 - code convbridge emitted for a test-owned layer
    weight, bias = module.weight.detach().numpy(), module.bias.detach().numpy()
    layer = namespace["make_layer"](weight, bias)
    first = _shape_for(module)
    _check_keras(layer, module, first)
    _check_keras(layer, module, _other_shape(module, first))


# ---- 1. saved models load in a new process ---------------------------------------------------------------------


def _run_fresh(script: str, cwd) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=FRESH_ENV)
    assert proc.returncode == 0, describe_process([sys.executable, "-c", "..."], proc)
    return proc


@pytest.mark.parametrize("import_order", ["convbridge first", "keras first"])
def test_saved_model_with_convbridge_layers_loads_in_a_new_process(import_order, tmp_path):
    """m.save() of a model holding every custom layer; load_model in a new interpreter after `import convbridge`,
    whichever of keras and convbridge is imported first."""
    modules = [torch_layer(text) for text in MULTI_STEP[:6] if "Conv2d" in text or "ConvTranspose2d" in text]
    guarded = torch_layer("nn.Conv2d(3, 8, 3, stride=2, padding=1)")
    x = random_input((1, 3, 17, 17), 3)
    outputs = []
    for module in modules:
        if module.in_channels != 3:
            continue
        inputs = keras.Input((None, None, 3))
        model = keras.Model(inputs, convbridge.to_keras(module)(inputs))
        path = tmp_path / f"m{len(outputs)}.keras"
        model.save(path)
        outputs.append((path, np.asarray(model(to_channels_last(x)))))
    # A size-specific plan keeps its guard through save and load.
    inputs = keras.Input((None, None, 3))  # the guard inside, not this Input, must refuse other sizes
    model = keras.Model(inputs, convbridge.to_keras(guarded, input_shape=(1, 3, 17, 17))(inputs))
    model.save(tmp_path / "guarded.keras")
    np.save(tmp_path / "x.npy", to_channels_last(x))
    for i, (path, y) in enumerate(outputs):
        np.save(tmp_path / f"y{i}.npy", y)
    first, second = ("convbridge", "keras") if import_order == "convbridge first" else ("keras", "convbridge")
    _run_fresh(f"""
        import numpy as np
        import {first}
        import {second}
        x = np.load("x.npy")
        for i in range({len(outputs)}):
            model = keras.models.load_model(f"m{{i}}.keras")
            np.testing.assert_array_equal(np.asarray(model(x)), np.load(f"y{{i}}.npy"))
        guarded = keras.models.load_model("guarded.keras")
        try:
            guarded(np.zeros((1, 16, 16, 3), "float32"))
        except ValueError as error:
            assert "exact only there" in str(error), error
        else:
            raise AssertionError("the reloaded size-specific layer accepted another size")
    """, tmp_path)


def test_model_built_from_emitted_keras_code_saves_and_loads(tmp_path):
    """The classes the emitted code defines register themselves: running the code in the new process is enough."""
    text = "nn.Conv2d(3, 8, 3, padding=1, padding_mode='replicate')"
    code = translate(text, "keras")
    (tmp_path / "layer.py").write_text(code)
    module = torch_layer(text)
    np.save(tmp_path / "w.npy", module.weight.detach().numpy())
    np.save(tmp_path / "b.npy", module.bias.detach().numpy())
    np.save(tmp_path / "x.npy", random_input((1, 17, 15, 3), 2))
    _run_fresh("""
        import numpy as np, keras
        ns = {}
        exec(open("layer.py").read(), ns)
        layer = ns["make_layer"](np.load("w.npy"), np.load("b.npy"))
        inputs = keras.Input((None, None, 3))
        model = keras.Model(inputs, layer(inputs))
        model.save("m.keras")
        np.save("y.npy", np.asarray(model(np.load("x.npy"))))
    """, tmp_path)
    _run_fresh("""
        import numpy as np, keras
        exec(open("layer.py").read(), {})  # defines and registers TorchEdgePad
        model = keras.models.load_model("m.keras")
        np.testing.assert_array_equal(np.asarray(model(np.load("x.npy"))), np.load("y.npy"))
    """, tmp_path)


# ---- 4. size-specific plans refuse other sizes -------------------------------------------------------------------


def test_size_specific_keras_layer_refuses_other_sizes():
    module = torch_layer("nn.Conv2d(3, 16, 3, stride=2, padding=1)")
    layer = convbridge.to_keras(module, input_shape=(1, 3, 225, 225))
    plan = convbridge.translate(module, input_shape=(1, 3, 225, 225))
    assert not plan.exact_for_every_input_size
    _check_keras(layer, module, (2, 3, 225, 225))
    with pytest.raises(ValueError, match=r"translated for inputs of spatial size \(225, 225\).*exact only there"):
        layer(np.zeros((1, 224, 224, 3), np.float32))  # used to be silently wrong (max |diff| 4.19)


def test_size_specific_emitted_keras_refuses_other_sizes():
    text = "nn.Conv2d(3, 16, 3, stride=2, padding=1)"
    module = torch_layer(text)
    namespace = {}
    exec(translate(text, "keras", (1, 3, 225, 225)), namespace)  # noqa: S102
    layer = namespace["make_layer"](module.weight.detach().numpy(), module.bias.detach().numpy())
    _check_keras(layer, module, (1, 3, 225, 225))
    with pytest.raises(ValueError, match="exact only there"):
        layer(np.zeros((1, 224, 224, 3), np.float32))


def test_keras_text_input_shape_argument_is_used_and_checked():
    text = "keras.layers.Conv2D(8, 3, strides=2, padding='same', input_shape=(16, 16, 3))"
    plan = convbridge.translate(text)  # the channels come from the text's own input_shape
    assert not plan.exact_for_every_input_size  # 16 x 16 known: the fixed padding for that size
    assert plan.input_shape[1:] == [16, 16, 3]
    with pytest.raises(ValueError, match=r"contradicts the layer's own input_shape=\(16, 16, 3\)"):
        convbridge.translate(text, input_shape=(1, 32, 32, 3))
    proc = subprocess.run(cli_command(text, "json"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["input_shape"] == [None, 16, 16, 3]


def test_pytorch_layout_input_shape_for_a_keras_layer_warns():
    with pytest.warns(UserWarning, match=r"give \(1, 224, 224, 3\) instead"):
        convbridge.translate("keras.layers.Conv2D(8, 3)", input_shape=(1, 3, 224, 224))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convbridge.translate("keras.layers.Conv2D(8, 3)", input_shape=(1, 224, 224, 3))
    proc = subprocess.run(cli_command("keras.layers.Conv2D(8, 3)", "json", (1, 3, 224, 224)), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "convbridge: warning: " in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["warnings"], proc.stdout


# ---- 5. Keras activations ----------------------------------------------------------------------------------------

ACTIVATIONS = ["'relu'", "'relu6'", "'leaky_relu'", "'elu'", "'selu'", "'celu'", "'sigmoid'", "'tanh'",
               "'softplus'", "'softsign'", "'silu'", "'swish'", "'gelu'", "'hard_sigmoid'", "'hard_silu'",
               "'hard_swish'", "'hard_tanh'", "'mish'", "'log_sigmoid'", "'tanh_shrink'", "'hard_shrink'",
               "'soft_shrink'", "'softmax'", "'log_softmax'", "keras.activations.gelu", "tf.nn.relu"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layer_text", ["keras.layers.Conv2D(6, 3, strides=2, padding='same', activation={})",
                                        "keras.layers.DepthwiseConv2D(3, activation={})",
                                        "keras.layers.Conv1DTranspose(4, 3, strides=2, activation={})"])
def test_keras_activation_is_translated_with_the_layer(layer_text, activation):
    text = layer_text.format(activation)
    channels = 3
    rank = 1 if "1D" in text else 2
    layer = keras_layer(text, channels)
    shape = (2, *[7 + i for i in range(rank)], channels)
    x = keras_input(shape, text) * 3  # spread the inputs over the activations' interesting range
    expected = np.asarray(layer(x))
    atol = keras_tolerance(layer) * 3
    unknown = (None,) * (rank + 1) + (channels,)
    assert_matches_keras(torch_forward64(convbridge.to_torch(layer, input_shape=unknown), x), expected, atol,
                         f"\n  {text} via to_torch")
    plan = convbridge.translate(text, input_shape=unknown)
    assert plan.verify()["passed"]
    code, path = plan_code_module(plan, "activation")
    module = make_module_from_code(code, plan.weight_names, layer)
    assert_matches_keras(torch_forward64(module, x), expected, atol, f"\n  {text} via torch_code() {path}")


def test_keras_activation_defaults_differ_from_pytorchs():
    """Keras' leaky_relu has slope 0.2 where nn.LeakyReLU's default is 0.01; softmax runs over the channels."""
    layer = keras_layer("keras.layers.Conv2D(4, 1, activation='leaky_relu')", 2)
    module = convbridge.to_torch(layer, input_shape=(None, None, None, 2))
    activation = module[-1]
    assert isinstance(activation, torch.nn.LeakyReLU) and activation.negative_slope == pytest.approx(0.2)
    softmax = convbridge.to_torch(keras_layer("keras.layers.Conv2D(4, 1, activation='softmax')", 2),
                                  input_shape=(None, None, None, 2))[-1]
    assert isinstance(softmax, torch.nn.Softmax) and softmax.dim == 1


def test_untranslated_keras_activation_is_refused_clearly():
    with pytest.raises(ValueError, match="activation='exponential' is not supported yet"):
        convbridge.translate("keras.layers.Conv2D(4, 3, activation='exponential')", input_shape=(None, 8, 8, 3))
    with pytest.raises(ValueError, match="activation='Relu' is not a Keras activation"):
        convbridge.translate("keras.layers.Conv2D(4, 3, activation='Relu')", input_shape=(None, 8, 8, 3))


# ---- 7. Python API errors ----------------------------------------------------------------------------------------


def test_to_keras_of_a_keras_layer_says_to_use_to_torch():
    with pytest.raises(ValueError, match=r"use convbridge.to_torch"):
        convbridge.to_keras(keras.layers.Conv2D(4, 3))
    with pytest.raises(ValueError, match=r"use convbridge.to_torch"):
        convbridge.to_keras("keras.layers.Conv2D(4, 3)")


def test_to_torch_of_a_torch_module_says_to_use_to_keras():
    with pytest.raises(ValueError, match=r"use convbridge.to_keras"):
        convbridge.to_torch(torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match=r"use convbridge.to_keras"):
        convbridge.to_torch("nn.Conv2d(3, 4, 3)")


def test_meta_and_lazy_modules_say_what_to_do():
    with pytest.raises(ValueError, match=r"meta device.*to_empty"):
        convbridge.to_keras(torch.nn.Conv2d(3, 4, 3, device="meta"))
    lazy = torch.nn.LazyConv2d(8, 3)
    with pytest.raises(ValueError, match=r"has not run yet.*call it once"):
        convbridge.to_keras(lazy)
    with pytest.raises(ValueError, match=r"has not run yet"):
        convbridge.translate(lazy)
    lazy(torch.zeros(1, 5, 8, 8))  # now an nn.Conv2d(5, 8, 3)
    _check_keras(convbridge.to_keras(lazy), lazy, (1, 5, 8, 8))


def test_a_tensor_as_input_shape_says_pass_its_shape():
    module = torch.nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"not a Tensor of shape \(1, 3, 8, 8\): pass x.shape"):
        convbridge.translate(module, input_shape=torch.randn(1, 3, 8, 8))
    assert convbridge.translate(module, input_shape=torch.randn(1, 3, 8, 8).shape).input_shape == [1, 3, 8, 8]


def test_half_precision_modules_convert_exactly_widened():
    module = torch.nn.Conv2d(3, 4, 3, padding=1).half()
    layer = convbridge.to_keras(module)  # used to refuse what translate() accepted
    reference = torch.nn.Conv2d(3, 4, 3, padding=1)
    reference.load_state_dict({k: v.float() for k, v in module.state_dict().items()})
    _check_keras(layer, reference, (1, 3, 6, 7))
    kernel = convbridge.convert_weights(module.to(torch.bfloat16))["kernel"]
    assert kernel.dtype == np.float32
    integer = torch.nn.Conv2d(3, 4, 3)
    integer.weight = torch.nn.Parameter(integer.weight.detach().to(torch.int8), requires_grad=False)
    with pytest.raises(ValueError, match=r"torch.int8: convbridge converts floating point weights"):
        convbridge.convert_weights(integer)


def test_text_builds_layers_with_default_initialisation():
    module = convbridge.to_torch("keras.layers.Conv2D(8, 3, strides=2, padding='same', activation='relu')",
                                 input_shape=(None, None, None, 3))
    assert module(torch.zeros(1, 3, 9, 10)).shape == (1, 8, 5, 5)
    tf_module = convbridge.to_torch("tf.nn.conv2d(x, w, 2, 'SAME')", filters_shape=(3, 3, 4, 8))
    assert tf_module(torch.zeros(1, 4, 9, 10)).shape == (1, 8, 5, 5)
    layer = convbridge.to_keras("nn.Conv2d(3, 8, 3, stride=2, padding=1)")
    assert tuple(layer(np.zeros((1, 9, 10, 3), np.float32)).shape) == (1, 5, 5, 8)


# ---- 8. the smaller things a user notices -----------------------------------------------------------------------


def _cli(*arguments):
    return subprocess.run([str(CONVBRIDGE_BIN), *arguments], capture_output=True, text=True, timeout=60)


def test_emitted_keras_code_carries_only_the_classes_it_uses():
    reflect = translate("nn.Conv2d(3, 16, 3, padding=1, padding_mode='reflect')", "keras")
    assert "class TorchReflectPad" in reflect
    for unused in ("class TorchEdgePad", "class TorchGroupedConvTranspose", "class ExpectInputSize", "torch_edge_pad"):
        assert unused not in reflect, unused
    assert len(reflect.splitlines()) < 80  # was 152 with every helper class embedded
    plain = translate("nn.Conv2d(3, 16, 3)", "keras")
    assert "class " not in plain
    reverse = _cli("translate", "keras.layers.Conv2D(4, 3, strides=2, padding='same')", "--input-shape",
                   "None,None,None,3", "--emit", "torch").stdout
    assert "class TFSamePad" in reverse and "class CropEnd" not in reverse and "class ExpectInputSize" not in reverse


def test_explanations_are_wrapped_and_quote_this_layers_kernel():
    out = _cli("translate", "nn.Conv2d(3, 16, 7, stride=2, padding=3)").stdout
    explanation = out.split("\nKeras code:\n")[0].splitlines()
    assert max(len(line) for line in explanation[1:]) <= 110, max(explanation, key=len)
    assert "k=3" not in out  # it used to quote a k=3 example for every layer
    assert "TF 'same' pads (2, 3)" in " ".join(line.strip() for line in explanation)  # this layer's k=7 at 224
    dilated = " ".join(line.strip() for line in _cli("translate", "nn.Conv2d(4, 8, 3, stride=2, dilation=2)").stdout
                       .splitlines())
    assert "would compute 4x the outputs" in dilated  # this layer's strides, in the one-op plan's why
    depthwise = " ".join(line.strip() for line in _cli("translate", "nn.Conv2d(4, 4, 3, stride=2, dilation=2, "
                                                                   "groups=4)").stdout.splitlines())
    assert "about 4x the work of the strided convolution" in depthwise


def test_pasted_assignment_lines_translate():
    result = _cli("translate", "self.conv1 = nn.Conv2d(3, 16, 3, padding=1),", "--emit", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["source"]["in_channels"] == 3
    assert convbridge.translate("conv = nn.Conv2d(3, 16, 3)").source_text == "conv = nn.Conv2d(3, 16, 3)"


def test_cli_usage_errors_are_one_convbridge_error_line_with_a_suggestion():
    result = _cli("translate", "nn.Conv2d(3, 16, 3)", "--input_shape", "1,3,8,8")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("convbridge: error: unknown option '--input_shape' (did you mean --input-shape?); see "
                             "convbridge translate --help\n")
    missing = _cli("translate")
    assert missing.returncode == 2 and missing.stderr.startswith("convbridge: error: ")
    help_text = _cli("translate", "--help").stdout
    assert "{false}" not in help_text and "--seed N" in help_text and "--input-shape SHAPE" in help_text


def test_code_only_output_says_on_stderr_when_it_was_not_verified():
    skipped = _cli("translate", "nn.Conv2d(3, 16, 3)", "--emit", "keras", "--no-verify")
    assert skipped.returncode == 0 and "def make_layer" in skipped.stdout
    assert skipped.stderr == "convbridge: note: verification skipped (--no-verify)\n"
    checked = _cli("translate", "nn.Conv2d(3, 16, 3)", "--emit", "keras")
    assert checked.returncode == 0 and checked.stderr == ""


def test_json_plan_carries_the_verification_result():
    plan = json.loads(_cli("translate", "nn.Conv2d(3, 16, 3, stride=2, padding=1)", "--emit", "json").stdout)
    assert plan["verification"]["result"] == "pass" and plan["verification"]["cases"]
    assert plan["verification"]["max_abs_diff"] <= plan["verification"]["tolerance"]
    unverified = json.loads(_cli("translate", "nn.Conv2d(3, 16, 3)", "--emit", "json", "--no-verify").stdout)
    assert unverified["verification"] is None
    reverse = json.loads(_cli("translate", "keras.layers.Conv2D(4, 3, activation='relu')", "--input-shape",
                              "None,None,None,3", "--emit", "json").stdout)
    assert reverse["verification"]["result"] == "pass"
    assert reverse["steps"][-1] == {"op": "activation", "module": "ReLU", "arguments": {},
                                    "why": reverse["steps"][-1]["why"]}
    assert reverse["source"]["activation"] == "'relu'"
