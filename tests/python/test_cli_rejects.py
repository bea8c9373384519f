"""Configurations PyTorch rejects must be rejected by convbridge: exit status 2, nothing on stdout, and exactly one
"convbridge: error:" message on stderr that names the offending argument.

For every PyTorch-level configuration the real PyTorch is asked first (construction, or a forward pass on the
given input shape) so the table cannot drift from what PyTorch actually does; pure syntax errors skip that step.
"""

from __future__ import annotations

import pytest
import torch

import convbridge

from conftest import TORCH_NAMESPACE, run_cli, torch_forward_error

SYNTAX = "syntax"  # not PyTorch-checkable: the text is not valid Python


def reject(case_id, text, input_shape, *needles, torch_stage="any"):
    """torch_stage: 'construct' (PyTorch raises in __init__), 'forward' (raises on input_shape), 'any' (either),
    or SYNTAX (not valid Python)."""
    return pytest.param(text, input_shape, needles, torch_stage, id=case_id)


REJECTS = [
    # padding strings
    reject("same-with-stride2", "nn.Conv2d(3, 4, 3, padding='same', stride=2)", None, "padding='same'", "stride=2",
           torch_stage="construct"),
    reject("same-with-stride-tuple", "nn.Conv2d(3, 4, 3, padding='same', stride=(1, 2))", None, "padding='same'",
           "stride=(1, 2)", torch_stage="construct"),
    reject("same-with-stride2-1d", "nn.Conv1d(3, 4, 3, stride=2, padding='same')", None, "padding='same'", "stride",
           torch_stage="construct"),
    reject("padding-full", "nn.Conv2d(3, 4, 3, padding='full')", None, "padding='full'", torch_stage="construct"),
    reject("padding-Same-case", "nn.Conv2d(3, 4, 3, padding='Same')", None, "padding='Same'", torch_stage="construct"),
    reject("padding-causal", "nn.Conv1d(3, 4, 3, padding='causal')", None, "padding='causal'",
           torch_stage="construct"),
    # groups
    reject("groups-not-dividing-in", "nn.Conv2d(3, 4, 3, groups=2)", None, "in_channels=3", "groups=2",
           torch_stage="construct"),
    reject("groups-not-dividing-out", "nn.Conv2d(4, 5, 3, groups=2)", None, "out_channels=5", "groups=2",
           torch_stage="construct"),
    reject("groups-not-dividing-3d", "nn.Conv3d(6, 4, 3, groups=4)", None, "groups=4", torch_stage="construct"),
    reject("groups-zero", "nn.Conv2d(4, 4, 3, groups=0)", None, "groups=0", torch_stage="construct"),
    reject("groups-negative", "nn.Conv2d(4, 4, 3, groups=-2)", None, "groups=-2", torch_stage="construct"),
    # padding_mode
    reject("padding-mode-foo", "nn.Conv2d(4, 4, 3, padding_mode='foo')", None, "padding_mode='foo'",
           torch_stage="construct"),
    reject("padding-mode-symmetric", "nn.Conv2d(4, 4, 3, padding=1, padding_mode='symmetric')", None,
           "padding_mode='symmetric'", torch_stage="construct"),
    # non-positive sizes (PyTorch raises at the first forward)
    reject("stride-zero", "nn.Conv2d(4, 4, 3, stride=0)", (1, 4, 8, 8), "stride=0", torch_stage="forward"),
    reject("stride-negative-in-tuple", "nn.Conv2d(4, 4, 3, stride=(1, -1))", (1, 4, 8, 8), "stride=(1, -1)",
           torch_stage="forward"),
    reject("padding-negative", "nn.Conv2d(4, 4, 3, padding=-1)", (1, 4, 8, 8), "padding=-1", torch_stage="forward"),
    reject("padding-negative-in-tuple-1d", "nn.Conv1d(4, 4, 3, padding=(-2,))", (1, 4, 8), "padding=(-2,)",
           torch_stage="forward"),
    reject("dilation-zero", "nn.Conv2d(4, 4, 3, dilation=0)", (1, 4, 8, 8), "dilation=0", torch_stage="forward"),
    reject("dilation-zero-3d-tuple", "nn.Conv3d(4, 4, 3, dilation=(1, 0, 1))", (1, 4, 8, 8, 8),
           "dilation=(1, 0, 1)", torch_stage="forward"),
    reject("kernel-size-zero", "nn.Conv2d(4, 4, 0)", (1, 4, 8, 8), "kernel_size=0", torch_stage="forward"),
    reject("kernel-size-zero-in-tuple-3d", "nn.Conv3d(4, 4, (3, 0, 3))", (1, 4, 8, 8, 8), "kernel_size=(3, 0, 3)",
           torch_stage="forward"),
    # wrong tuple lengths
    reject("kernel-tuple-too-long", "nn.Conv2d(4, 4, (3, 3, 3))", (1, 4, 8, 8), "kernel_size=(3, 3, 3)",
           torch_stage="forward"),
    reject("stride-tuple-too-long", "nn.Conv2d(4, 4, 3, stride=(1, 1, 1))", (1, 4, 8, 8), "stride=(1, 1, 1)",
           torch_stage="forward"),
    reject("padding-tuple-too-long", "nn.Conv2d(4, 4, 3, padding=(1, 1, 1))", (1, 4, 8, 8), "padding=(1, 1, 1)",
           torch_stage="forward"),
    reject("dilation-tuple-too-short-3d", "nn.Conv3d(4, 4, 3, dilation=(1, 2))", (1, 4, 8, 8, 8),
           "dilation=(1, 2)", torch_stage="forward"),
    # Python binding errors
    reject("unknown-keyword-strides", "nn.Conv2d(4, 4, 3, strides=2)", None, "'strides'", torch_stage="construct"),
    reject("unknown-keyword-dilation-rate", "nn.Conv2d(4, 4, 3, dilation_rate=2)", None, "'dilation_rate'",
           torch_stage="construct"),
    reject("unknown-keyword-filters", "nn.Conv2d(in_channels=4, filters=4, kernel_size=3)", None, "'filters'",
           torch_stage="construct"),
    reject("missing-kernel-size", "nn.Conv2d(4, 4)", None, "'kernel_size'", torch_stage="construct"),
    reject("missing-out-channels", "nn.Conv1d(4, kernel_size=3)", None, "'out_channels'", torch_stage="construct"),
    reject("too-many-positionals", "nn.Conv2d(4, 4, 3, 1, 0, 1, 1, True, 'zeros', None, None, 7)", None,
           "arguments", torch_stage="construct"),
    # syntax (not valid Python at all, or a duplicate keyword, which Python rejects at compile time)
    reject("duplicate-keyword", "nn.Conv2d(4, 4, 3, stride=2, stride=1)", None, "multiple values", "'stride'",
           torch_stage=SYNTAX),
    reject("duplicate-positional-and-keyword", "nn.Conv2d(4, 4, 3, 1, stride=1)", None, "multiple values",
           "'stride'", torch_stage="construct"),
    reject("duplicate-kernel-size", "nn.Conv2d(4, 4, 3, kernel_size=5)", None, "multiple values", "'kernel_size'",
           torch_stage="construct"),
    reject("positional-after-keyword", "nn.Conv2d(4, 4, kernel_size=3, 2)", None, "positional argument",
           torch_stage=SYNTAX),
    reject("unbalanced-open", "nn.Conv2d(4, 4, 3", None, "column", torch_stage=SYNTAX),
    reject("unbalanced-close", "nn.Conv2d(4, 4, 3))", None, "column", torch_stage=SYNTAX),
    reject("unbalanced-tuple", "nn.Conv2d(4, 4, (3, 3)", None, "column", torch_stage=SYNTAX),
    reject("empty-text", "", None, "empty", torch_stage=SYNTAX),
    reject("blank-text", "   ", None, "empty", torch_stage=SYNTAX),
    # input shapes PyTorch refuses at forward
    reject("input-too-small", "nn.Conv2d(3, 4, 3)", (1, 3, 2, 2), "kernel", "2", torch_stage="forward"),
    reject("input-too-small-one-axis", "nn.Conv2d(3, 4, (3, 5), padding=(0, 1))", (1, 3, 8, 2), "W", "kernel",
           torch_stage="forward"),
    reject("input-too-small-dilated-3d", "nn.Conv3d(2, 3, 3, dilation=2)", (1, 2, 4, 9, 9), "D", "kernel",
           torch_stage="forward"),
    reject("input-too-small-stride-pad-1d", "nn.Conv1d(2, 3, 7, stride=2, padding=2)", (1, 2, 2), "kernel",
           torch_stage="forward"),
    reject("wrong-channel-count", "nn.Conv2d(3, 4, 3)", (1, 4, 8, 8), "channels", "in_channels=3",
           torch_stage="forward"),
    reject("wrong-channel-count-groups", "nn.Conv1d(4, 6, 3, groups=2)", (2, 2, 8), "channels", "in_channels=4",
           torch_stage="forward"),
    reject("reflect-pad-equals-size", "nn.Conv2d(3, 4, 3, padding=3, padding_mode='reflect')", (1, 3, 3, 8),
           "reflect", "3", torch_stage="forward"),
    reject("reflect-same-even-kernel-too-small", "nn.Conv1d(3, 4, 6, padding='same', padding_mode='reflect')",
           (1, 3, 3), "reflect", torch_stage="forward"),
    reject("reflect-tuple-w-too-small", "nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode='reflect')", (1, 3, 8, 2),
           "reflect", "W", torch_stage="forward"),
    reject("circular-pad-above-size", "nn.Conv2d(3, 4, 3, padding=3, padding_mode='circular')", (1, 3, 2, 8),
           "circular", torch_stage="forward"),
    reject("circular-pad-above-size-3d", "nn.Conv3d(2, 3, 3, padding=(1, 1, 4), padding_mode='circular')",
           (1, 2, 5, 5, 3), "circular", torch_stage="forward"),
]

# Bad --input-shape values (CLI-level; passed as a separate argv entry, so an empty one really is empty).
BAD_INPUT_SHAPES = [
    pytest.param("nn.Conv2d(3, 4, 3)", "1,3,8", ("input shape", "(1,3,8)", "4"), id="rank-too-small"),
    pytest.param("nn.Conv2d(3, 4, 3)", "1,3,8,8,8", ("input shape", "(1,3,8,8,8)"), id="rank-too-large"),
    pytest.param("nn.Conv1d(3, 4, 3)", "1,3,8,8", ("input shape", "(1,3,8,8)"), id="rank-too-large-1d"),
    pytest.param("nn.Conv2d(3, 4, 3)", "1,3,0,8", ("--input-shape", "0"), id="zero-size"),
    pytest.param("nn.Conv2d(3, 4, 3)", "1,3,-8,8", ("--input-shape", "-8"), id="negative-size"),
    pytest.param("nn.Conv2d(3, 4, 3)", "1,3,a,8", ("--input-shape", "a"), id="non-integer"),
    pytest.param("nn.Conv2d(3, 4, 3)", "1,3,8.5,8", ("--input-shape", "8.5"), id="float-size"),
    # An explicitly empty shape (e.g. an unset shell variable) must not silently mean "no input shape".
    pytest.param("nn.Conv2d(3, 4, 3)", "", ("--input-shape",), id="empty"),
]

# Command-line usage errors (handled by the argument parser): exit 2, nothing on stdout, the option named.
USAGE_ERRORS = [
    pytest.param(["translate", "nn.Conv2d(3, 4, 3)", "--emit", "foo"], "--emit", id="bad-emit"),
    pytest.param(["translate", "nn.Conv2d(3, 4, 3)", "--bogus"], "--bogus", id="unknown-option"),
    pytest.param(["translate"], "layer", id="missing-layer"),
    pytest.param(["translate", "nn.Conv2d(3, 4, 3)", "--input-shape"], "--input-shape", id="input-shape-no-value"),
    pytest.param(["translate", "nn.Conv2d(3, 4, 3)", "--input-shape="], "--input-shape", id="input-shape-equals-empty"),
]


def torch_rejects(text: str, input_shape, stage: str) -> str:
    """Asserts the real PyTorch rejects the configuration at the given stage; returns its message."""
    try:
        module = eval(text, dict(TORCH_NAMESPACE))  # noqa: S307 - test-owned text
    except (ValueError, TypeError, RuntimeError) as error:
        assert stage in ("construct", "any"), f"PyTorch rejected {text!r} at construction, expected at {stage}"
        return str(error)
    assert stage in ("forward", "any"), f"PyTorch constructed {text!r}; expected it to fail at construction"
    assert input_shape is not None, f"{text!r}: PyTorch accepts the layer; the case needs an input shape"
    with pytest.raises(RuntimeError) as info:
        with torch.no_grad():
            module(torch.zeros(input_shape))
    return str(info.value)


def assert_clean_rejection(args, needles):
    proc = run_cli(*args)
    shown = f"\ncommand: convbridge {args}\nexit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"
    assert proc.returncode == 2, "expected exit status 2" + shown
    assert proc.stdout == "", "nothing may reach stdout on an error" + shown
    assert proc.stderr.startswith("convbridge: error:"), shown
    assert proc.stderr.count("convbridge: error:") == 1, "exactly one error message" + shown
    for needle in needles:
        assert needle in proc.stderr, f"the message should name {needle!r}" + shown
    return proc


@pytest.mark.parametrize("text, input_shape, needles, torch_stage", REJECTS)
def test_cli_rejects_what_pytorch_rejects(text, input_shape, needles, torch_stage):
    if torch_stage == SYNTAX:
        if text.strip():
            with pytest.raises(SyntaxError):
                compile(text, "<layer>", "eval")
    else:
        torch_rejects(text, input_shape, torch_stage)
    shape_args = [] if input_shape is None else ["--input-shape", ",".join(map(str, input_shape))]
    for emit in ("explain", "keras", "tf", "json"):
        assert_clean_rejection(["translate", text, *shape_args, "--emit", emit], needles)


@pytest.mark.parametrize("text, shape, needles", BAD_INPUT_SHAPES)
def test_cli_rejects_bad_input_shape(text, shape, needles):
    for emit in ("keras", "json"):
        assert_clean_rejection(["translate", text, "--input-shape", shape, "--emit", emit], needles)


@pytest.mark.parametrize("args, needle", USAGE_ERRORS)
def test_cli_usage_errors(args, needle):
    # These come from the argument parser, whose messages do not carry the "convbridge: error:" prefix; only the
    # exit status, the silence on stdout and the option name are asserted.
    proc = run_cli(*args)
    assert proc.returncode == 2 and proc.stdout == "", (args, proc)
    assert needle in proc.stderr, (args, proc.stderr)


def test_valid_layer_at_boundary_sizes_is_accepted():
    """The neighbours of the rejected shapes above are accepted (the rejections are not over-eager)."""
    for text, shape in [
        ("nn.Conv2d(3, 4, 3)", (1, 3, 3, 3)),
        ("nn.Conv2d(3, 4, 3, padding=3, padding_mode='reflect')", (1, 3, 4, 8)),
        ("nn.Conv2d(3, 4, 3, padding=3, padding_mode='circular')", (1, 3, 3, 8)),
        ("nn.Conv1d(2, 3, 7, stride=2, padding=2)", (1, 2, 3)),
    ]:
        module = eval(text, dict(TORCH_NAMESPACE))  # noqa: S307
        with torch.no_grad():
            module(torch.zeros(shape))
        proc = run_cli("translate", text, "--input-shape", ",".join(map(str, shape)), "--emit", "json")
        assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------------------------
# nn.ConvTranspose1d/2d/3d: what PyTorch rejects, at construction or at the first forward
# ------------------------------------------------------------------------------------------------------------------

TRANSPOSED_REJECTS = [
    # padding_mode: ConvTranspose accepts only 'zeros' (PyTorch raises in __init__)
    reject("t-reflect-2d", "nn.ConvTranspose2d(3, 4, 3, padding_mode='reflect')", None, "padding_mode='reflect'",
           torch_stage="construct"),
    reject("t-reflect-2d-positional", "nn.ConvTranspose2d(3, 4, 3, 1, 1, 0, 1, True, 1, 'reflect')", None,
           "padding_mode='reflect'", torch_stage="construct"),
    reject("t-replicate-1d", "nn.ConvTranspose1d(3, 4, 3, padding_mode='replicate')", None,
           "padding_mode='replicate'", torch_stage="construct"),
    reject("t-circular-3d", "nn.ConvTranspose3d(2, 2, 3, padding=1, padding_mode='circular')", None,
           "padding_mode='circular'", torch_stage="construct"),
    # padding strings: accepted by __init__, fail at forward ("argument 'padding' must be tuple of ints")
    reject("t-padding-same-2d", "nn.ConvTranspose2d(3, 4, 3, padding='same')", (1, 3, 8, 8), "padding='same'",
           torch_stage="forward"),
    reject("t-padding-same-1d", "nn.ConvTranspose1d(3, 4, 3, padding='same')", (1, 3, 8), "padding='same'",
           torch_stage="forward"),
    reject("t-padding-valid-1d", "nn.ConvTranspose1d(3, 4, 3, padding='valid')", (1, 3, 8), "padding='valid'",
           torch_stage="forward"),
    # output_padding >= max(stride, dilation) (fails at forward)
    reject("t-op-equals-stride", "nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)", (1, 3, 5, 5),
           "output_padding=2", "stride=2", torch_stage="forward"),
    reject("t-op-stride1-default", "nn.ConvTranspose2d(3, 4, 3, output_padding=1)", (1, 3, 5, 5),
           "output_padding=1", torch_stage="forward"),
    reject("t-op-equals-dilation", "nn.ConvTranspose1d(2, 2, 3, stride=1, dilation=3, output_padding=3)", (1, 2, 5),
           "output_padding=3", "dilation=3", torch_stage="forward"),
    reject("t-op-one-axis-tuple", "nn.ConvTranspose2d(3, 4, 3, stride=(2, 3), output_padding=(1, 3))", (1, 3, 5, 5),
           "output_padding=(1, 3)", torch_stage="forward"),
    reject("t-op-3d-axis-with-dilation-elsewhere",
           "nn.ConvTranspose3d(2, 2, 3, stride=2, dilation=(1, 3, 1), output_padding=(1, 2, 2))", (1, 2, 4, 4, 4),
           "output_padding=(1, 2, 2)", torch_stage="forward"),
    # negative output_padding (fails at forward)
    reject("t-op-negative", "nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=-1)", (1, 3, 5, 5),
           "output_padding=-1", torch_stage="forward"),
    reject("t-op-negative-tuple-1d", "nn.ConvTranspose1d(3, 4, 3, stride=2, output_padding=(-1,))", (1, 3, 5),
           "output_padding=(-1,)", torch_stage="forward"),
    # input shapes giving an output size <= 0 ("Output size is too small")
    reject("t-output-size-negative", "nn.ConvTranspose2d(3, 4, 3, padding=3)", (1, 3, 2, 2), "output size", "-2",
           torch_stage="forward"),
    reject("t-output-size-zero-1d", "nn.ConvTranspose1d(2, 2, 1, padding=1)", (1, 2, 2), "W", "output size", "0",
           torch_stage="forward"),
    reject("t-output-size-zero-one-axis-3d", "nn.ConvTranspose3d(2, 3, (1, 3, 3), padding=(1, 0, 0))",
           (1, 2, 2, 3, 3), "D", "output size", torch_stage="forward"),
    # batch 2: PyTorch's oneDNN path returns an empty tensor here; its native check rejects (see below)
    reject("t-output-size-zero-batch2", "nn.ConvTranspose2d(3, 4, 3, padding=2)", (2, 3, 2, 5), "H", "output size",
           torch_stage="forward"),
    # the other arguments, as for ConvNd
    reject("t-stride-zero", "nn.ConvTranspose2d(3, 4, 3, stride=0)", (1, 3, 5, 5), "stride=0", torch_stage="forward"),
    reject("t-padding-negative", "nn.ConvTranspose1d(3, 4, 3, padding=-1)", (1, 3, 5), "padding=-1",
           torch_stage="forward"),
    reject("t-dilation-zero", "nn.ConvTranspose2d(3, 4, 3, dilation=0)", (1, 3, 5, 5), "dilation=0",
           torch_stage="forward"),
    reject("t-groups-not-dividing-in", "nn.ConvTranspose2d(3, 4, 3, groups=2)", None, "in_channels=3", "groups=2",
           torch_stage="construct"),
    reject("t-groups-not-dividing-out", "nn.ConvTranspose2d(4, 3, 3, groups=2)", None, "out_channels=3", "groups=2",
           torch_stage="construct"),
    reject("t-op-tuple-too-long", "nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=(0, 0, 0))", (1, 3, 5, 5),
           "output_padding=(0, 0, 0)", torch_stage="any"),
    reject("t-wrong-channel-count", "nn.ConvTranspose2d(3, 4, 3)", (1, 4, 8, 8), "channels", "in_channels=3",
           torch_stage="forward"),
    reject("t-unknown-keyword", "nn.ConvTranspose2d(3, 4, 3, outputpadding=1)", None, "'outputpadding'",
           torch_stage="construct"),
]


def torch_rejects_transposed(text: str, input_shape, stage: str) -> str:
    """Like torch_rejects, for ConvTranspose: a forward failure may be a TypeError (padding strings), and an output
    size of 0 counts as rejected when PyTorch's native kernels reject it (its oneDNN path, on by default, returns an
    empty tensor for batch > 1 instead)."""
    try:
        module = eval(text, dict(TORCH_NAMESPACE))  # noqa: S307 - test-owned text
    except (ValueError, TypeError, RuntimeError) as error:
        assert stage in ("construct", "any"), f"PyTorch rejected {text!r} at construction, expected at {stage}"
        return str(error)
    assert isinstance(module, torch.nn.modules.conv._ConvTransposeNd), text
    assert stage in ("forward", "any"), f"PyTorch constructed {text!r}; expected it to fail at construction"
    assert input_shape is not None, f"{text!r}: PyTorch accepts the layer; the case needs an input shape"
    error = torch_forward_error(module, input_shape)
    assert error is not None, f"PyTorch ran {text!r} on {input_shape}"
    if "empty tensor" in str(error):  # the oneDNN path: the native kernels must raise
        with torch.backends.mkldnn.flags(enabled=False), pytest.raises(RuntimeError, match="Output size is too small"):
            with torch.no_grad():
                module(torch.zeros(input_shape))
    return str(error)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN:UserWarning")
@pytest.mark.parametrize("text, input_shape, needles, torch_stage", TRANSPOSED_REJECTS)
def test_cli_rejects_what_pytorch_rejects_transposed(text, input_shape, needles, torch_stage):
    torch_rejects_transposed(text, input_shape, torch_stage)
    shape_args = [] if input_shape is None else ["--input-shape", ",".join(map(str, input_shape))]
    for emit in ("explain", "keras", "tf", "json"):
        assert_clean_rejection(["translate", text, *shape_args, "--emit", emit], needles)
    # The Python API raises ValueError with the same message.
    with pytest.raises(ValueError) as info:
        convbridge.translate(text, input_shape=input_shape)
    assert all(needle in str(info.value) for needle in needles), str(info.value)


def test_valid_transposed_layer_at_boundary_sizes_is_accepted():
    """The neighbours of the rejected transposed cases are accepted (the rejections are not over-eager)."""
    for text, shape in [
        ("nn.ConvTranspose2d(3, 4, 3, padding=3)", (1, 3, 5, 5)),  # out = in - 4 = 1
        ("nn.ConvTranspose1d(2, 2, 1, padding=1)", (1, 2, 3)),
        ("nn.ConvTranspose2d(3, 4, 3, padding=2)", (2, 3, 3, 5)),
        ("nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1)", (1, 3, 5, 5)),  # op = stride - 1
        ("nn.ConvTranspose1d(2, 2, 3, stride=1, dilation=3, output_padding=2)", (1, 2, 1)),  # op = dilation - 1
        ("nn.ConvTranspose3d(2, 2, 3, stride=2, dilation=(1, 3, 1), output_padding=(1, 2, 1))", (1, 2, 2, 2, 2)),
        ("nn.ConvTranspose2d(3, 4, 3, padding_mode='zeros')", (1, 3, 2, 2)),
    ]:
        module = eval(text, dict(TORCH_NAMESPACE))  # noqa: S307
        assert torch_forward_error(module, shape) is None, text
        proc = run_cli("translate", text, "--input-shape", ",".join(map(str, shape)), "--emit", "json")
        assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------------------------
# The reverse direction (Keras 3 layer text -> PyTorch): what Keras rejects, what convbridge does not translate, and
# command-line misuse. Where the case is a Keras rule, the real Keras is asked first (construction, build with the
# input channels, or the shape rule for the input shape), so the table cannot drift from what Keras does.
# ------------------------------------------------------------------------------------------------------------------

KERAS_CHECK_NONE = "none"  # not a Keras rule (convbridge usage or scope)


def reverse_reject(case_id, args, needles, keras_text=None, channels=None, keras_shape=None, emits=None):
    """args: the argv after `convbridge` without --emit; emits: the --emit values to try (default explain, torch,
    json). keras_text/channels/keras_shape: when given, the real Keras must reject that layer (at construction, at
    build for `channels`, or for `keras_shape` by its shape rule)."""
    return pytest.param(args, needles, keras_text, channels, keras_shape, emits or ("explain", "torch", "json"),
                        id=case_id)


REVERSE_REJECTS = [
    reverse_reject("keras-text-without-input-shape", ["translate", "keras.layers.Conv2D(16, 3)"], ("--input-shape",)),
    reverse_reject("keras-text-without-input-shape-1d", ["translate", "layers.Conv1D(8, 3, padding='causal')"],
                   ("--input-shape",)),
    reverse_reject("keras-input-shape-without-channels",
                   ["translate", "keras.layers.Conv2D(16, 3)", "--input-shape", "None,None,None,None"],
                   ("--input-shape", "None,None,None,None", "channel")),
    reverse_reject("keras-input-shape-without-channels-known-sizes",
                   ["translate", "keras.layers.Conv1D(16, 3)", "--input-shape", "1,8,None"], ("--input-shape",
                                                                                            "channel")),
    reverse_reject("keras-activation-untranslated",
                   ["translate", "keras.layers.Conv2D(16, 3, activation='exponential')", "--input-shape",
                    "None,None,None,3"], ("activation='exponential'", "not supported yet")),
    reverse_reject("keras-activation-unknown-transposed",
                   ["translate", "keras.layers.Conv2DTranspose(8, 3, activation='Relu')", "--input-shape",
                    "1,5,5,3"], ("activation='Relu'", "not a Keras activation")),
    reverse_reject("keras-channels-first",
                   ["translate", "keras.layers.Conv2D(16, 3, data_format='channels_first')", "--input-shape",
                    "None,None,None,3"], ("data_format='channels_first'",)),
    reverse_reject("keras-strides-with-dilation",
                   ["translate", "keras.layers.Conv2D(16, 3, strides=2, dilation_rate=2)", "--input-shape",
                    "None,None,None,3"], ("strides", "dilation_rate"),
                   keras_text="keras.layers.Conv2D(16, 3, strides=2, dilation_rate=2)", channels=3),
    reverse_reject("keras-strides-with-dilation-transposed",
                   ["translate", "keras.layers.Conv1DTranspose(8, 3, strides=2, dilation_rate=2)", "--input-shape",
                    "None,None,3"], ("strides", "dilation_rate"),
                   keras_text="keras.layers.Conv1DTranspose(8, 3, strides=2, dilation_rate=2)", channels=3),
    reverse_reject("keras-output-padding-equals-strides",
                   ["translate", "keras.layers.Conv2DTranspose(8, 3, strides=2, output_padding=2)", "--input-shape",
                    "None,None,None,3"], ("output_padding=2", "strides=2"),
                   keras_text="keras.layers.Conv2DTranspose(8, 3, strides=2, output_padding=2)", channels=3),
    reverse_reject("keras-output-padding-above-strides-one-axis",
                   ["translate", "keras.layers.Conv2DTranspose(8, 3, strides=(2, 3), output_padding=(1, 4))",
                    "--input-shape", "None,None,None,3"], ("output_padding",),
                   keras_text="keras.layers.Conv2DTranspose(8, 3, strides=(2, 3), output_padding=(1, 4))",
                   channels=3),
    reverse_reject("keras-causal-on-conv2d",
                   ["translate", "keras.layers.Conv2D(8, 3, padding='causal')", "--input-shape", "None,None,None,3"],
                   ("padding='causal'",), keras_text="keras.layers.Conv2D(8, 3, padding='causal')", channels=3),
    reverse_reject("keras-causal-on-separable1d",
                   ["translate", "keras.layers.SeparableConv1D(8, 3, padding='causal')", "--input-shape",
                    "None,None,3"], ("padding='causal'",),
                   keras_text="keras.layers.SeparableConv1D(8, 3, padding='causal')", channels=3),
    reverse_reject("keras-filters-not-divisible-by-groups",
                   ["translate", "keras.layers.Conv2D(5, 3, groups=2)", "--input-shape", "None,None,None,4"],
                   ("filters=5", "groups=2"), keras_text="keras.layers.Conv2D(5, 3, groups=2)", channels=4),
    reverse_reject("keras-channels-not-divisible-by-groups",
                   ["translate", "keras.layers.Conv2D(4, 3, groups=2)", "--input-shape", "None,None,None,3"],
                   ("groups=2", "3"), keras_text="keras.layers.Conv2D(4, 3, groups=2)", channels=3),
    reverse_reject("keras-valid-input-smaller-than-kernel",
                   ["translate", "keras.layers.Conv2D(4, 3)", "--input-shape", "1,2,5,3"], ("input shape", "(1,2,5,3)"),
                   keras_text="keras.layers.Conv2D(4, 3)", channels=3, keras_shape=(1, 2, 5, 3)),
    reverse_reject("emit-keras-for-keras-layer",
                   ["translate", "keras.layers.Conv2D(16, 3)", "--input-shape", "None,None,None,3"], ("--emit keras",),
                   emits=("keras",)),
    reverse_reject("emit-tf-for-keras-layer",
                   ["translate", "layers.DepthwiseConv2D(3)", "--input-shape", "1,8,8,3"], ("--emit tf",),
                   emits=("tf",)),
    reverse_reject("emit-torch-for-pytorch-layer", ["translate", "nn.Conv2d(3, 16, 3)"], ("--emit torch",),
                   emits=("torch",)),
    reverse_reject("emit-torch-for-pytorch-layer-with-shape",
                   ["translate", "nn.ConvTranspose2d(3, 8, 3, stride=2)", "--input-shape", "1,3,5,5"],
                   ("--emit torch",), emits=("torch",)),
]


def keras_rejects(text: str, channels: int, shape) -> str:
    """Asserts the real Keras rejects the layer (construction, build for `channels`, or its shape rule for `shape`);
    returns the message."""
    import reverse_helpers

    try:
        layer = reverse_helpers.construct_keras_layer(text)
        rank = reverse_helpers.rank_of_class(reverse_helpers.class_name_of(text))
        layer.build(reverse_helpers.unknown_shape(rank, channels))
        if shape is not None:
            layer.compute_output_shape(tuple(shape))
    except ValueError as error:
        return str(error)
    raise AssertionError(f"the real Keras accepts {text} with {channels} channels"
                         + ("" if shape is None else f" at {shape}"))


@pytest.mark.parametrize("args, needles, keras_text, channels, keras_shape, emits", REVERSE_REJECTS)
def test_cli_rejects_reverse(args, needles, keras_text, channels, keras_shape, emits):
    if keras_text is not None:
        keras_rejects(keras_text, channels, keras_shape)
    for emit in emits:
        assert_clean_rejection([*args, "--emit", emit], needles)
    # The Python API raises ValueError for the Keras-level cases (the --emit cases have no API counterpart).
    if not any(n.startswith("--emit") for n in needles):
        text = args[1]
        shape = None
        if "--input-shape" in args:
            shape = [None if v == "None" else int(v) for v in args[args.index("--input-shape") + 1].split(",")]
        with pytest.raises(ValueError):
            convbridge.translate(text, input_shape=shape)


def test_reverse_valid_neighbours_are_accepted():
    """The neighbours of the rejected reverse cases are accepted (the rejections are not over-eager)."""
    for text, shape in [
        ("keras.layers.Conv2D(16, 3, activation='linear')", "None,None,None,3"),
        ("keras.layers.Conv2D(16, 3, activation=None, data_format='channels_last')", "None,None,None,3"),
        ("keras.layers.Conv2D(16, 3, strides=2, dilation_rate=1)", "None,None,None,3"),
        ("keras.layers.DepthwiseConv2D(3, strides=2, dilation_rate=2)", "None,None,None,3"),
        ("keras.layers.Conv2DTranspose(8, 3, strides=2, output_padding=1)", "None,None,None,3"),
        ("keras.layers.Conv1D(8, 3, padding='causal')", "None,None,3"),
        ("keras.layers.Conv2D(6, 3, groups=2)", "None,None,None,4"),
        ("keras.layers.Conv2D(4, 3)", "1,3,5,3"),
        ("keras.layers.Conv2D(4, 3)", "None,None,None,3"),
    ]:
        proc = run_cli("translate", text, "--input-shape", shape, "--emit", "json")
        assert proc.returncode == 0, (text, shape, proc.stderr)
