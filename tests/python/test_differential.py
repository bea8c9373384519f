"""Randomized differential suite: generated PyTorch conv configurations against real PyTorch and real Keras/TF.

For every generated case the real PyTorch layer is the reference (float64) and these must reproduce it:
  - convbridge.to_keras(module)                          (input_shape unknown and known)
  - the Keras source of plan.keras_code()                (input_shape unknown and known)
  - the tf.nn source of plan.tf_code()                   (input_shape unknown and known)
  - the C++ reference engine: PyTorch semantics and the plan run with TF semantics (three-way agreement)
Configurations PyTorch rejects, at construction or for the generated input size, must raise ValueError.

Profiles (HYPOTHESIS_PROFILE): "ci" (default) runs a fixed, derandomized set of examples of which at least
CONVBRIDGE_CASES (2000 unless set) are valid and compared; "dev" runs 20000 random examples. The seed of a failing example is printed by Hypothesis.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbridge
from conftest import torch_layer
from differential_support import channels_and_groups, check_every_path_against_torch, size_argument, tuple_text

# Cases compared against PyTorch per CI run (configurations PyTorch rejects come on top of these).
CI_CASES = int(os.environ.get("CONVBRIDGE_CASES", "2000"))
settings.register_profile(
    "ci", max_examples=CI_CASES * 3 // 2, derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=list(HealthCheck))
settings.register_profile("dev", max_examples=20000, deadline=None, print_blob=True,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

STATS = {"cases": 0, "torch_rejected": 0, "compared": 0}


def pytest_terminal_summary_line() -> str:
    return (f"differential: {STATS['cases']} generated cases, {STATS['compared']} compared against PyTorch, "
            f"{STATS['torch_rejected']} rejected by PyTorch and by convbridge")





@st.composite
def conv_case(draw):
    rank = draw(st.sampled_from([1, 1, 2, 2, 2, 3]))
    groups, in_channels, out_channels = channels_and_groups(draw, ["single", "depthwise", "grouped"])
    kernel, kernel_text = draw(size_argument(rank, 1, 4 if rank < 3 else 3))
    stride, stride_text = draw(size_argument(rank, 1, 3))
    dilation, dilation_text = draw(size_argument(rank, 1, 3))
    # 'same' mostly where PyTorch allows it (stride 1); now and then with a stride, which must be rejected.
    forms = ["int", "tuple", "valid", "default"] + (["same"] * 3 if max(stride) == 1 else [])
    padding_form = draw(st.sampled_from(forms)) if draw(st.integers(0, 29)) else "same"
    if padding_form == "int":
        padding_text = str(draw(st.integers(0, 3)))
    elif padding_form == "tuple":
        padding_text = tuple_text(draw(st.lists(st.integers(0, 3), min_size=rank, max_size=rank)))
    elif padding_form in ("same", "valid"):
        padding_text = repr(padding_form)
    else:
        padding_text = None
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    bias = draw(st.booleans())
    arguments = [str(in_channels), str(out_channels), f"kernel_size={kernel_text}", f"stride={stride_text}"]
    if padding_text is not None:
        arguments.append(f"padding={padding_text}")
    arguments += [f"dilation={dilation_text}", f"groups={groups}", f"bias={bias}", f"padding_mode={mode!r}"]
    text = f"nn.Conv{rank}d({', '.join(arguments)})"
    # Input sizes from just below the dilated kernel extent to a few strides above it: odd, even, minimal and
    # (rarely, for a rejection check) too small.
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    spatial = [draw(st.integers(max(1, e - 2), e + 3 * s + 2)) for e, s in zip(extent, stride)]
    batch = draw(st.integers(1, 3))
    return text, (batch, in_channels, *spatial)




@given(conv_case())
def test_generated_configurations_match_pytorch(case):
    text, shape = case
    STATS["cases"] += 1
    try:
        module = torch_layer(text)
        with torch.no_grad():
            module(torch.zeros(shape))
        torch_error = None
    except (ValueError, RuntimeError) as error:
        torch_error = error
    if torch_error is not None:
        STATS["torch_rejected"] += 1
        with pytest.raises(ValueError):
            convbridge.translate(text, input_shape=shape)
        return

    STATS["compared"] += 1
    check_every_path_against_torch(module, text, shape)


def test_enough_cases_ran():
    """The CI profile must have exercised at least CONVBRIDGE_CASES configurations (runs after the suite above)."""
    if STATS["cases"] == 0:
        pytest.skip("run together with test_generated_configurations_match_pytorch")
    print(pytest_terminal_summary_line())
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        assert STATS["compared"] >= CI_CASES, pytest_terminal_summary_line()
    assert STATS["torch_rejected"] > 0, "no rejected configuration was generated: " + pytest_terminal_summary_line()
