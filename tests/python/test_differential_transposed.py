"""Randomized differential suite for nn.ConvTranspose1d/2d/3d against real PyTorch and real Keras/TF.

Modeled on test_differential.py. For every generated case the real PyTorch layer is the reference (float64) and these
must reproduce it:
  - convbridge.to_keras(module)                          (input_shape unknown and known)
  - the Keras source of plan.keras_code()                (input_shape unknown and known)
  - the tf.nn source of plan.tf_code()                   (input_shape unknown and known)
  - the C++ reference engine: PyTorch semantics and the plan run with TF semantics (three-way agreement)
Configurations PyTorch rejects, at construction or at the first forward for the generated input size (output_padding
>= max(stride, dilation), negative output_padding, padding strings, padding_mode other than 'zeros', an output size
<= 0, ...), must make convbridge.translate raise ValueError.

An output size of 0 counts as rejected by PyTorch: its rule ("Output size is too small") is applied by the native
kernels and at batch 1, but its default oneDNN path returns an empty tensor for batch > 1 (see conftest's
torch_forward_error and test_traps.py::test_fact_torch_transposed_output_size_zero).

Profiles (HYPOTHESIS_PROFILE): "ci" (default) runs a fixed, derandomized set of examples of which at least
CONVBRIDGE_TRANSPOSED_CASES (1000 unless set) are valid and compared; "dev" runs 20000 random examples. The seed of
a failing example is printed by Hypothesis. The settings are attached to the test itself, so collecting this file
together with test_differential.py changes neither suite's profile.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbridge
from conftest import torch_layer
from conftest import torch_forward_error
from differential_support import channels_and_groups, check_every_path_against_torch, size_argument, tuple_text

# Cases compared against PyTorch per CI run (configurations PyTorch rejects come on top of these).
CI_CASES = int(os.environ.get("CONVBRIDGE_TRANSPOSED_CASES", "1000"))
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
PROFILES = {
    "ci": settings(max_examples=CI_CASES * 3 // 2, derandomize=True, deadline=None, print_blob=True,
                   suppress_health_check=list(HealthCheck)),
    "dev": settings(max_examples=20000, deadline=None, print_blob=True, suppress_health_check=list(HealthCheck)),
}

STATS = {"cases": 0, "torch_rejected": 0, "compared": 0, "rejected_at_construction": 0, "rejected_at_forward": 0}


def pytest_terminal_summary_line() -> str:
    return (f"differential (transposed): {STATS['cases']} generated cases, {STATS['compared']} compared against "
            f"PyTorch, {STATS['torch_rejected']} rejected by PyTorch and by convbridge "
            f"({STATS['rejected_at_construction']} at construction, {STATS['rejected_at_forward']} at forward)")





def rare(draw, one_in: int) -> bool:
    """True about once in `one_in` draws. (Hypothesis favours the bounds of an integer range, so the rare value is
    one in the middle of it.)"""
    return draw(st.integers(0, one_in - 1)) == one_in // 2


@st.composite
def output_padding_argument(draw, rank, stride, dilation):
    """Mostly valid (each axis < max(stride, dilation), including op >= stride where dilation allows it); now and
    then one PyTorch rejects (== max(stride, dilation), one more, or negative)."""
    limits = [max(s, d) for s, d in zip(stride, dilation)]
    if not rare(draw, 12):
        values = [draw(st.integers(0, limit - 1)) for limit in limits]
        if draw(st.integers(0, 3)) == 0:  # favour the largest legal value (op >= stride when dilation > stride)
            values = [limit - 1 for limit in limits]
    else:
        values = [draw(st.integers(0, limit - 1)) for limit in limits]
        axis = draw(st.integers(0, rank - 1))
        values[axis] = draw(st.sampled_from([limits[axis], limits[axis] + 1, -1]))
    if len(set(values)) == 1 and draw(st.booleans()):
        return values, str(values[0])
    return values, tuple_text(values)


@st.composite
def conv_transpose_case(draw):
    rank = draw(st.sampled_from([1, 1, 2, 2, 2, 3]))
    groups, in_channels, out_channels = channels_and_groups(draw, ["single", "single", "depthwise", "grouped"])
    kernel, kernel_text = draw(size_argument(rank, 1, 4 if rank < 3 else 3))
    stride, stride_text = draw(size_argument(rank, 1, 3))
    dilation, dilation_text = draw(size_argument(rank, 1, 3))
    output_padding, output_padding_text = draw(output_padding_argument(rank, stride, dilation))
    # padding: an int or a tuple (0..3); rarely a string, which ConvTranspose rejects at forward.
    padding_form = "string" if rare(draw, 40) else draw(st.sampled_from(["int", "tuple", "default"]))
    if padding_form == "int":
        padding_text = str(draw(st.integers(0, 3)))
    elif padding_form == "tuple":
        padding_text = tuple_text(draw(st.lists(st.integers(0, 3), min_size=rank, max_size=rank)))
    elif padding_form == "string":
        padding_text = repr(draw(st.sampled_from(["same", "valid"])))
    else:
        padding_text = None
    # padding_mode: only 'zeros' is accepted (others are rejected at construction).
    mode = draw(st.sampled_from(["reflect", "replicate", "circular"])) if rare(draw, 40) else "zeros"
    bias = draw(st.booleans())
    if rare(draw, 5) and padding_text is not None:
        # PyTorch's positional order: (in, out, kernel_size, stride, padding, output_padding, groups, bias, dilation,
        # padding_mode)
        arguments = [str(in_channels), str(out_channels), kernel_text, stride_text, padding_text, output_padding_text,
                     str(groups), str(bias), dilation_text] + ([repr(mode)] if mode != "zeros" else [])
    else:
        arguments = [str(in_channels), str(out_channels), f"kernel_size={kernel_text}", f"stride={stride_text}"]
        if padding_text is not None:
            arguments.append(f"padding={padding_text}")
        arguments += [f"output_padding={output_padding_text}", f"dilation={dilation_text}", f"groups={groups}",
                      f"bias={bias}"]
        if mode != "zeros" or draw(st.booleans()):
            arguments.append(f"padding_mode={mode!r}")
    text = f"nn.ConvTranspose{rank}d({', '.join(arguments)})"
    # Input sizes 1.. a few: with padding up to 3 the small ones give output sizes <= 0 now and then.
    spatial = [draw(st.integers(1, 6 if rank < 3 else 4)) for _ in range(rank)]
    batch = draw(st.integers(1, 3))
    return text, (batch, in_channels, *spatial)




@PROFILES.get(PROFILE, PROFILES["ci"])
@given(conv_transpose_case())
def test_generated_transposed_configurations_match_pytorch(case):
    text, shape = case
    STATS["cases"] += 1
    try:
        module = torch_layer(text)
        torch_error = None
    except (ValueError, TypeError, RuntimeError) as error:
        torch_error, stage = error, "construction"
    if torch_error is None:
        torch_error, stage = torch_forward_error(module, shape), "forward"
    if torch_error is not None:
        STATS["torch_rejected"] += 1
        STATS[f"rejected_at_{stage}"] += 1
        with pytest.raises(ValueError):
            convbridge.translate(text, input_shape=shape)
        return
    assert isinstance(module, torch.nn.modules.conv._ConvTransposeNd), text

    STATS["compared"] += 1
    check_every_path_against_torch(module, text, shape)


def test_enough_transposed_cases_ran():
    """The CI profile must have exercised at least CONVBRIDGE_TRANSPOSED_CASES configurations (runs after the suite
    above), and rejections at both stages."""
    if STATS["cases"] == 0:
        pytest.skip("run together with test_generated_transposed_configurations_match_pytorch")
    print(pytest_terminal_summary_line())
    if PROFILE == "ci":
        assert STATS["compared"] >= CI_CASES, pytest_terminal_summary_line()
    assert STATS["rejected_at_construction"] > 0 and STATS["rejected_at_forward"] > 0, (
        "no rejected configuration at construction or at forward was generated: " + pytest_terminal_summary_line())
