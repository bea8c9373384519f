"""Property-based differential test: random valid Conv1d/2d/3d configurations (groups, depthwise, stride with
dilation, every padding form and padding_mode, bias on/off) must be reproduced exactly by both emitters.

Hypothesis runs derandomized (a fixed example sequence) with no example database, so a failure reproduces on
every run and nothing is written outside tests/python. Failure messages carry the layer text and input shape.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from conftest import check_emitted_against_torch, torch_accepts, torch_layer, torch_minimal_input_shape


def tuple_text(values):
    return f"({values[0]},)" if len(values) == 1 else "(" + ", ".join(map(str, values)) + ")"


@st.composite
def layers(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = groups > 1 and draw(st.booleans())
    in_channels = groups if depthwise else groups * draw(st.integers(1, 3))
    out_channels = groups * draw(st.integers(1, 3))
    max_k = 3 if rank == 3 else 5
    kernel = [draw(st.integers(1, max_k)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 3)) for _ in range(rank)]
    stride = [draw(st.integers(1, 3)) for _ in range(rank)]
    padding_kind = draw(st.sampled_from(["int", "tuple", "valid", "same", "default"]))
    if padding_kind == "same":
        stride = [1] * rank
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    bias = draw(st.booleans())

    args = [str(in_channels), str(out_channels)]
    args.append(str(kernel[0]) if len(set(kernel)) == 1 and draw(st.booleans()) else tuple_text(kernel))
    if any(s != 1 for s in stride):
        args.append(f"stride={tuple_text(stride)}")
    if any(d != 1 for d in dilation):
        args.append(f"dilation={tuple_text(dilation)}")
    if padding_kind == "int":
        args.append(f"padding={draw(st.integers(0, 3))}")
    elif padding_kind == "tuple":
        args.append(f"padding={tuple_text([draw(st.integers(0, 3)) for _ in range(rank)])}")
    elif padding_kind in ("valid", "same"):
        args.append(f"padding='{padding_kind}'")
    if groups > 1:
        args.append(f"groups={groups}")
    if not bias:
        args.append("bias=False")
    if mode != "zeros":
        args.append(f"padding_mode='{mode}'")
    text = f"nn.Conv{rank}d({', '.join(args)})"

    minimal = torch_minimal_input_shape(text)
    batch = draw(st.integers(1, 2))
    limit = 4 if rank == 3 else 9
    sizes = [
        (batch, in_channels, *[m + draw(st.integers(0, limit)) for m in minimal[2:]]),
        (1, in_channels, *[m + draw(st.integers(0, limit)) for m in minimal[2:]]),
    ]
    return text, [s for s in sizes if torch_accepts(torch_layer(text), s)] or [minimal]


# CONVBRIDGE_RANDOM_EXAMPLES raises the count for a longer bug hunt (default 60 per test keeps the suite fast);
# CONVBRIDGE_RANDOM_SEED=<int> explores a different (still reproducible) sequence instead of the fixed one.
_SEED = os.environ.get("CONVBRIDGE_RANDOM_SEED")
RANDOM_SETTINGS = settings(
    max_examples=int(os.environ.get("CONVBRIDGE_RANDOM_EXAMPLES", "60")),
    deadline=None,
    derandomize=_SEED is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("emit", ["keras", "tf"])
@RANDOM_SETTINGS
@seed(int(_SEED or 0))
@given(case=layers())
def test_random_layer_every_size(emit, case):
    text, shapes = case
    check_emitted_against_torch(text, emit, shapes)


@pytest.mark.parametrize("emit", ["keras", "tf"])
@RANDOM_SETTINGS
@seed(int(_SEED or 0))
@given(case=layers())
def test_random_layer_known_shape(emit, case):
    text, shapes = case
    check_emitted_against_torch(text, emit, shapes[:1], cli_input_shape=shapes[0])
