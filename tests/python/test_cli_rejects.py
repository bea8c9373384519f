"""Configurations PyTorch rejects must be rejected by convbridge: exit status 2, nothing on stdout, and exactly one
"convbridge: error:" message on stderr that names the offending argument.

For every PyTorch-level configuration the real PyTorch is asked first (construction, or a forward pass on the
given input shape) so the table cannot drift from what PyTorch actually does; pure syntax errors skip that step.
"""

from __future__ import annotations

import pytest
import torch

from conftest import TORCH_NAMESPACE, run_cli

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
