"""Differential tests: the Keras and tf.nn code convbridge emits reproduces the real PyTorch layer.

Every case runs
- both emitters (--emit keras, --emit tf) without --input-shape (the code must be exact for every size), checked at
  the case's sizes (odd and even) plus the smallest input PyTorch accepts;
- both emitters with --input-shape for each of those shapes, checked at that shape;
- --emit json with --input-shape: output_shape must be PyTorch's output shape.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import (
    check_emitted_against_torch,
    torch_layer,
    torch_minimal_input_shape,
    translate_json,
)


def case(case_id: str, text: str, *spatial_sizes, batch: int = 2):
    """A named case: the layer text and spatial sizes (tuples, or ints for Conv1d) tested besides the minimum."""
    sizes = [s if isinstance(s, tuple) else (s,) for s in spatial_sizes]
    return pytest.param(text, sizes, batch, id=case_id)


CASES = [
    # ---------------------------------------------------------------- Conv1d
    case("1d-valid-default", "nn.Conv1d(3, 5, 3)", 7, 8),
    case("1d-valid-string", "nn.Conv1d(3, 5, 3, padding='valid')", 9, 10),
    case("1d-pad-int", "nn.Conv1d(3, 5, 3, padding=1)", 7, 8),
    case("1d-pad-tuple", "nn.Conv1d(3, 5, 5, padding=(3,))", 6, 9),
    case("1d-same-odd-kernel", "nn.Conv1d(3, 5, 3, padding='same')", 7, 8),
    case("1d-same-even-kernel", "nn.Conv1d(3, 5, 4, padding='same')", 7, 8),
    case("1d-same-even-kernel-dilated", "nn.Conv1d(3, 5, 4, padding='same', dilation=3)", 11, 12),
    case("1d-same-odd-kernel-dilated", "nn.Conv1d(3, 5, 3, padding='same', dilation=2)", 5, 6),
    case("1d-stride2-pad1-odd-even", "nn.Conv1d(3, 5, 3, stride=2, padding=1)", 7, 8, 224, 225),
    case("1d-stride2-even-kernel", "nn.Conv1d(3, 5, 4, stride=2, padding=1)", 7, 8),
    case("1d-stride3-valid", "nn.Conv1d(3, 5, 3, stride=3)", 10, 11),
    case("1d-stride2-dilation2", "nn.Conv1d(3, 5, 3, stride=2, dilation=2, padding=2)", 9, 10),
    case("1d-stride3-dilation2-groups2", "nn.Conv1d(4, 6, 3, stride=3, dilation=2, groups=2, padding=1)", 10, 11),
    case("1d-stride2-dilation3-depthwise-m2", "nn.Conv1d(4, 8, 3, stride=2, dilation=3, groups=4)", 11, 12),
    case("1d-depthwise-m1", "nn.Conv1d(4, 4, 3, groups=4, padding=1)", 7, 8),
    case("1d-depthwise-m3", "nn.Conv1d(4, 12, 3, groups=4, padding=1)", 7, 8),
    case("1d-single-input-channel", "nn.Conv1d(1, 3, 3, groups=1)", 7, 8),
    case("1d-groups-4-6-2", "nn.Conv1d(4, 6, 3, groups=2)", 7, 8),
    case("1d-groups-6-9-3-same", "nn.Conv1d(6, 9, 4, groups=3, padding='same')", 7, 8),
    case("1d-reflect-same-even", "nn.Conv1d(3, 4, 4, padding='same', padding_mode='reflect')", 7, 8),
    case("1d-replicate-same-even", "nn.Conv1d(3, 4, 4, padding='same', padding_mode='replicate')", 7, 8),
    case("1d-circular-same-even", "nn.Conv1d(3, 4, 4, padding='same', padding_mode='circular')", 7, 8),
    case("1d-reflect-int", "nn.Conv1d(3, 4, 3, padding=2, padding_mode='reflect')", 7, 8),
    case("1d-replicate-int", "nn.Conv1d(3, 4, 3, padding=2, padding_mode='replicate')", 7, 8),
    case("1d-circular-int", "nn.Conv1d(3, 4, 3, padding=3, padding_mode='circular')", 7, 8),
    case("1d-circular-stride2-dilation2", "nn.Conv1d(3, 4, 3, stride=2, dilation=2, padding=2, padding_mode='circular')", 9, 10),
    case("1d-replicate-depthwise-stride2", "nn.Conv1d(4, 8, 3, stride=2, groups=4, padding=1, padding_mode='replicate')", 7, 8),
    case("1d-reflect-same-even-dilated", "nn.Conv1d(3, 4, 4, dilation=3, padding='same', padding_mode='reflect')", 11, 12),
    case("1d-circular-same-even-dilated-depthwise", "nn.Conv1d(3, 6, 2, dilation=3, groups=3, padding='same', padding_mode='circular')", 7, 8),
    case("1d-no-bias", "nn.Conv1d(3, 5, 3, padding=1, bias=False)", 7, 8),
    case("1d-batch3", "nn.Conv1d(3, 5, 3, padding=1)", 9, batch=3),
    case("1d-keywords-torch-prefix", "torch.nn.Conv1d(in_channels=3, out_channels=5, kernel_size=3, stride=1, padding=1)", 7),
    # ---------------------------------------------------------------- Conv2d
    case("2d-valid-default", "nn.Conv2d(3, 4, 3)", (7, 8), (8, 7)),
    case("2d-valid-string", "nn.Conv2d(3, 4, (3, 2), padding='valid')", (7, 8)),
    case("2d-pad-int", "nn.Conv2d(3, 4, 3, padding=1)", (7, 8), (8, 7)),
    case("2d-pad-tuple-rect-kernel", "nn.Conv2d(3, 4, (3, 5), padding=(1, 2))", (7, 8), (8, 9)),
    case("2d-pad-tuple-asym-values", "nn.Conv2d(3, 4, 3, padding=(0, 2))", (7, 8)),
    case("2d-same-odd-kernel", "nn.Conv2d(3, 4, 3, padding='same')", (7, 8)),
    case("2d-same-even-kernel", "nn.Conv2d(3, 4, 4, padding='same')", (7, 8)),
    case("2d-same-even-kernel-dilated", "nn.Conv2d(3, 4, (4, 2), padding='same', dilation=(2, 3))", (9, 8), (10, 11)),
    case("2d-stride2-224-225", "nn.Conv2d(3, 4, 3, stride=2, padding=1)", (224, 224), (225, 225), (224, 225)),
    case("2d-stride2-even-kernel-7-8", "nn.Conv2d(3, 4, 4, stride=2, padding=1)", (7, 7), (8, 8), (7, 8)),
    case("2d-stride-rect", "nn.Conv2d(3, 4, (3, 1), stride=(2, 3), padding=(1, 0))", (7, 8), (8, 9)),
    case("2d-stride2-dilation2", "nn.Conv2d(3, 4, 3, stride=2, dilation=2, padding=2)", (9, 10), (10, 9)),
    case("2d-stride-one-axis-dilation-other", "nn.Conv2d(3, 4, (3, 2), stride=(2, 1), dilation=(1, 2))", (7, 8)),
    case("2d-stride2-dilation2-groups2", "nn.Conv2d(4, 6, 3, stride=2, dilation=2, groups=2, padding=1)", (9, 10)),
    case("2d-stride2-dilation2-depthwise-m3", "nn.Conv2d(4, 12, 3, stride=2, dilation=2, groups=4, padding=2)", (9, 10), (10, 11)),
    case("2d-stride2-dilation3-depthwise-m1", "nn.Conv2d(4, 4, 3, stride=2, dilation=3, groups=4)", (11, 12)),
    case("2d-depthwise-m1", "nn.Conv2d(4, 4, 3, groups=4, padding=1)", (7, 8)),
    case("2d-depthwise-m3", "nn.Conv2d(4, 12, 3, groups=4, padding=1)", (7, 8)),
    case("2d-depthwise-stride2-pad1", "nn.Conv2d(4, 8, 3, stride=2, groups=4, padding=1)", (14, 14), (15, 15)),
    case("2d-depthwise-same-even", "nn.Conv2d(4, 4, 4, groups=4, padding='same')", (7, 8)),
    case("2d-groups-4-6-2", "nn.Conv2d(4, 6, 3, groups=2)", (7, 8)),
    case("2d-groups-6-9-3-pad", "nn.Conv2d(6, 9, 3, groups=3, padding=1)", (7, 8)),
    case("2d-groups-stride2", "nn.Conv2d(4, 6, 3, stride=2, groups=2, padding=1)", (7, 8), (8, 8)),
    case("2d-reflect-same-even", "nn.Conv2d(3, 4, (4, 2), padding='same', padding_mode='reflect')", (7, 8)),
    case("2d-replicate-same-even", "nn.Conv2d(3, 4, (4, 2), padding='same', padding_mode='replicate')", (7, 8)),
    case("2d-circular-same-even", "nn.Conv2d(3, 4, (4, 2), padding='same', padding_mode='circular')", (7, 8)),
    case("2d-reflect-int", "nn.Conv2d(3, 4, 3, padding=2, padding_mode='reflect')", (7, 8)),
    case("2d-replicate-int", "nn.Conv2d(3, 4, 3, padding=2, padding_mode='replicate')", (7, 8)),
    case("2d-circular-int", "nn.Conv2d(3, 4, 3, padding=2, padding_mode='circular')", (7, 8)),
    case("2d-reflect-tuple-stride2", "nn.Conv2d(3, 4, 3, stride=2, padding=(1, 2), padding_mode='reflect')", (7, 8)),
    case("2d-replicate-dilated-same", "nn.Conv2d(3, 4, 3, dilation=2, padding='same', padding_mode='replicate')", (7, 8)),
    case("2d-circular-depthwise-m2", "nn.Conv2d(3, 6, 3, groups=3, padding=1, padding_mode='circular')", (7, 8)),
    case("2d-replicate-groups", "nn.Conv2d(4, 6, 3, groups=2, padding=(2, 1), padding_mode='replicate')", (7, 8)),
    case("2d-no-bias", "nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)", (7, 8)),
    case("2d-no-bias-depthwise", "nn.Conv2d(4, 8, 3, groups=4, padding=1, bias=False)", (7, 8)),
    case("2d-batch3", "nn.Conv2d(3, 4, 3, padding=1)", (6, 7), batch=3),
    case("2d-batch1", "nn.Conv2d(3, 4, 3, padding=1)", (6, 7), batch=1),
    case("2d-bare-name-keywords", "Conv2d(3, 4, kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), bias=True)", (7, 8)),
    case("2d-wide-channels-k5", "nn.Conv2d(32, 16, 5, padding=2)", (9, 10)),
    case("2d-groups-one-output-per-group", "nn.Conv2d(4, 2, 3, groups=2, padding=1)", (7, 8)),
    case("2d-reflect-zero-pad-on-one-axis", "nn.Conv2d(3, 4, 3, padding=(0, 2), padding_mode='reflect')", (7, 8)),
    case("2d-list-arguments", "nn.Conv2d(3, 4, kernel_size=[3, 2], stride=[2, 1], padding=[1, 0])", (7, 8)),
    case("2d-bias-none", "nn.Conv2d(3, 4, 3, bias=None)", (7, 8)),
    case("2d-device-dtype-kwargs", "nn.Conv2d(3, 4, 3, padding=1, device='cpu', dtype=torch.float32)", (7, 8)),
    case("2d-module-path", "torch.nn.modules.conv.Conv2d(3, 4, 3, 2, 1)", (7, 8)),
    case("2d-all-positional", "nn.Conv2d(4, 6, 3, 2, 1, 1, 2, False, 'replicate')", (7, 8)),
    # ---------------------------------------------------------------- Conv3d
    case("3d-valid-default", "nn.Conv3d(2, 3, 3)", (5, 6, 7)),
    case("3d-valid-string", "nn.Conv3d(2, 3, (3, 1, 2), padding='valid')", (5, 6, 7)),
    case("3d-pad-tuple", "nn.Conv3d(2, 3, (3, 1, 2), padding=(1, 0, 1))", (5, 6, 7), (6, 5, 4)),
    case("3d-pad-int", "nn.Conv3d(2, 3, 3, padding=1)", (5, 6, 7)),
    case("3d-same-odd", "nn.Conv3d(2, 3, 3, padding='same')", (5, 6, 7)),
    case("3d-same-even", "nn.Conv3d(2, 3, (2, 3, 4), padding='same')", (5, 6, 7)),
    case("3d-same-even-dilated", "nn.Conv3d(2, 3, 2, padding='same', dilation=(1, 2, 3))", (5, 6, 7)),
    case("3d-stride2-odd-even", "nn.Conv3d(2, 3, 3, stride=2, padding=1)", (7, 8, 7), (8, 7, 8)),
    case("3d-stride2-even-kernel", "nn.Conv3d(2, 3, 2, stride=2, padding=1)", (7, 8, 6)),
    case("3d-stride2-dilation2", "nn.Conv3d(2, 3, 3, stride=2, dilation=2, padding=1)", (7, 8, 9)),
    case("3d-stride2-dilation2-groups2", "nn.Conv3d(4, 6, 3, stride=2, dilation=2, groups=2)", (7, 8, 9)),
    case("3d-stride2-dilation2-depthwise-m3", "nn.Conv3d(2, 6, 3, stride=2, dilation=2, groups=2, padding=1)", (7, 8, 9)),
    case("3d-depthwise-m1", "nn.Conv3d(3, 3, 3, groups=3, padding=1)", (5, 6, 7)),
    case("3d-depthwise-m3", "nn.Conv3d(2, 6, 3, groups=2, padding=1)", (5, 6, 7)),
    case("3d-groups-4-6-2", "nn.Conv3d(4, 6, 3, groups=2, padding=1)", (5, 6, 7)),
    case("3d-groups-stride2", "nn.Conv3d(4, 6, 3, stride=2, groups=2, padding=1)", (7, 8, 7)),
    case("3d-reflect-same-even", "nn.Conv3d(2, 3, (2, 3, 4), padding='same', padding_mode='reflect')", (5, 6, 7)),
    case("3d-replicate-same-even", "nn.Conv3d(2, 3, (2, 3, 4), padding='same', padding_mode='replicate')", (5, 6, 7)),
    case("3d-circular-same-even", "nn.Conv3d(2, 3, (2, 3, 4), padding='same', padding_mode='circular')", (5, 6, 7)),
    case("3d-reflect-int", "nn.Conv3d(2, 3, 3, padding=2, padding_mode='reflect')", (5, 6, 7)),
    case("3d-replicate-int", "nn.Conv3d(2, 3, 3, padding=2, padding_mode='replicate')", (5, 6, 7)),
    case("3d-circular-int", "nn.Conv3d(2, 3, 3, padding=(1, 2, 3), padding_mode='circular')", (5, 6, 7)),
    case("3d-circular-groups-stride2", "nn.Conv3d(4, 6, 3, stride=2, groups=2, padding=1, padding_mode='circular')", (6, 7, 8)),
    case("3d-no-bias", "nn.Conv3d(2, 3, 3, padding=1, bias=False)", (5, 6, 7)),
    case("3d-no-bias-groups", "nn.Conv3d(4, 6, 3, groups=2, bias=False)", (5, 6, 7)),
    case("3d-batch3", "nn.Conv3d(2, 3, 3, padding=1)", (4, 5, 6), batch=3),
]

EMITTERS = [pytest.param("keras", id="keras"), pytest.param("tf", id="tf")]


def shapes_for(text: str, sizes, batch: int):
    """Full PyTorch input shapes: the case's sizes at its batch, then the smallest input PyTorch accepts."""
    in_channels = torch_layer(text).in_channels
    shapes = [(batch, in_channels, *s) for s in sizes]
    minimal = torch_minimal_input_shape(text)
    if minimal not in shapes:
        shapes.append(minimal)
    return shapes


@pytest.mark.parametrize("emit", EMITTERS)
@pytest.mark.parametrize("text, sizes, batch", CASES)
def test_exact_for_every_size(text, sizes, batch, emit):
    """Without --input-shape the emitted code must reproduce PyTorch at every size (odd, even and minimal)."""
    check_emitted_against_torch(text, emit, shapes_for(text, sizes, batch))


@pytest.mark.parametrize("emit", EMITTERS)
@pytest.mark.parametrize("text, sizes, batch", CASES)
def test_exact_for_given_input_shape(text, sizes, batch, emit):
    """With --input-shape S the emitted code must reproduce PyTorch at S (it may use size-specific TF 'same')."""
    for shape in shapes_for(text, sizes, batch):
        check_emitted_against_torch(text, emit, [shape], cli_input_shape=shape)


@pytest.mark.parametrize("text, sizes, batch", CASES)
def test_json_output_shape_matches_torch(text, sizes, batch):
    module = torch_layer(text)
    unknown = translate_json(text)
    assert unknown["input_shape"] is None and unknown["output_shape"] is None, unknown
    assert unknown["exact_for"] == "every_input_size", f"{text}: without --input-shape the plan must be general"
    assert unknown["data_format"] == "channels_last"
    for shape in shapes_for(text, sizes, batch):
        with torch.no_grad():
            torch_shape = list(module(torch.zeros(shape)).shape)
        plan = translate_json(text, shape)
        context = f"layer {text!r}, --input-shape {shape}"
        assert plan["input_shape"] == list(shape), context
        assert plan["output_shape"] == torch_shape, f"{context}: JSON output_shape {plan['output_shape']} != torch {torch_shape}"
        assert plan["exact_for"] in ("every_input_size", "input_shape"), context
        assert plan["data_format"] == "channels_last", context
        ops = [step["op"] for step in plan["steps"]]
        assert ops.count("conv") == 1 and set(ops) <= {"pad", "conv", "subsample"}, f"{context}: steps {ops}"
        assert all(step.get("why") for step in plan["steps"]), f"{context}: every step needs a 'why'"
        assert plan["source"]["text"] == text, context


@pytest.mark.parametrize("text, sizes, batch", CASES)
def test_explain_reports_verification_pass(text, sizes, batch):
    """The default --emit explain ends with the reference engine's verdict."""
    from conftest import run_cli

    proc = run_cli("translate", text)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("Verification (reference engine")]
    assert len(lines) == 1 and "PASS" in lines[0], f"layer {text!r}: explain output lacks a PASS line:\n{proc.stdout}"
    assert "def make_layer(weight, bias=None)" in proc.stdout


def test_case_table_is_well_formed():
    """Each case's PyTorch layer constructs, and the table covers Conv1d/2d/3d, all padding modes and bias off."""
    texts = [p.values[0] for p in CASES]
    assert len(set(p.id for p in CASES)) == len(CASES)
    for text in texts:
        torch_layer(text)
    for rank in (1, 2, 3):
        for mode in ("reflect", "replicate", "circular"):
            assert any(f"Conv{rank}d" in t and mode in t for t in texts), (rank, mode)
        assert any(f"Conv{rank}d" in t and "bias=False" in t for t in texts), rank
    assert np.all([torch_layer(t).weight.dtype == torch.float32 for t in texts])


@pytest.mark.parametrize("text, sizes, batch", CASES)
def test_keras_layer_in_functional_model(text, sizes, batch):
    """The emitted Keras layer (including custom padding layers) works on symbolic inputs inside a functional
    keras.Model: static output shape equals PyTorch's (channels_last) for a fixed-size Input, and the model's
    output matches PyTorch. With an unknown-size Input the model must still build."""
    import keras

    from conftest import (
        assert_same_output,
        load_emitted,
        random_input,
        stable_seed,
        to_channels_first,
        to_channels_last,
        tolerance_for,
        torch_reference,
        weights_of,
    )

    module = torch_layer(text)
    emitted = load_emitted(text, "keras")
    weight, bias = weights_of(module)
    rank = len(module.kernel_size)
    shape = (batch, module.in_channels, *sizes[0])
    x = random_input(shape, stable_seed(text, shape))
    expected = torch_reference(module, x)

    inputs = keras.Input(shape=(*sizes[0], module.in_channels), batch_size=batch)
    model = keras.Model(inputs, emitted.module.make_layer(weight, bias)(inputs))
    expected_cl = (expected.shape[0], *expected.shape[2:], expected.shape[1])
    assert tuple(model.output.shape) == expected_cl, f"{text}: static shape {model.output.shape} vs {expected_cl}"
    got = to_channels_first(np.asarray(model(np.ascontiguousarray(to_channels_last(x)))))
    assert_same_output(emitted, shape, got, expected, tolerance_for(module))

    open_inputs = keras.Input(shape=(*([None] * rank), module.in_channels))
    open_model = keras.Model(open_inputs, emitted.module.make_layer(weight, bias)(open_inputs))
    assert tuple(open_model.output.shape) == (None, *([None] * rank), module.out_channels)


@pytest.mark.parametrize("emit", EMITTERS)
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("nn.Conv1d(4, 8, 3, groups=4, bias=False)", id="1d-depthwise-nobias"),
        pytest.param("nn.Conv2d(4, 6, 3, groups=2)", id="2d-groups-bias"),
        pytest.param("nn.Conv3d(2, 3, 3, padding=1, padding_mode='circular', bias=False)", id="3d-circular-nobias"),
    ],
)
def test_weight_and_bias_arguments_are_checked(text, emit):
    """make_layer/conv take PyTorch-layout weights; bias must be None exactly when the layer has bias=False."""
    from conftest import load_emitted, weights_of

    module = torch_layer(text)
    weight, bias = weights_of(module)
    emitted = load_emitted(text, emit)
    rank = len(module.kernel_size)
    x = np.zeros((1, *([5] * rank), module.in_channels), np.float32)

    def call(w, b):
        if emit == "keras":
            return emitted.module.make_layer(w, b)(x)
        return emitted.module.conv(x, w, b)

    call(weight, bias)  # the right arguments work
    with pytest.raises(ValueError):
        call(np.zeros(weight.shape[:-1] + (weight.shape[-1] + 1,), np.float32), bias)  # wrong kernel shape
    with pytest.raises(ValueError):
        call(np.moveaxis(weight, 0, -1), bias)  # channels_last-style kernel instead of PyTorch's layout
    if bias is None:
        with pytest.raises(ValueError, match="bias=False"):
            call(weight, np.zeros(module.out_channels, np.float32))
    else:
        with pytest.raises(ValueError, match="bias"):
            call(weight, None)
        with pytest.raises(ValueError, match="bias"):
            call(weight, np.zeros(module.out_channels + 1, np.float32))
