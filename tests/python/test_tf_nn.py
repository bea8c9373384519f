"""tf.nn convolution CALL TEXT -> PyTorch, against the REAL TensorFlow call.

convbridge.translate("tf.nn.conv2d(x, w, strides=2, padding='SAME')", filters_shape=..., input_shape=...) gives a
TorchPlan whose torch_code() defines make_module(filters) (TF-layout filters, channels_first module). The reference
is always the same call text evaluated by the real TensorFlow (eager, float32) with `x` and `w` bound to tensors
(`eval(text, {"tf": tf, "tensorflow": tf, x_name: x, w_name: w})`), so the text itself is what is tested, spelling
included. The PyTorch side runs in float64 on the same float32 values; tolerance atol = 4e-5 * sqrt(K), K the number
of products summed into one output (prod(kernel) * filters in_depth; prod(kernel) for depthwise_conv2d; for the
transposed functions, filters (*kernel, out_channels, in_channels), at most prod(kernel) * in_channels), exactly as
reverse_helpers.keras_tolerance (weights U(-1/sqrt(K), 1/sqrt(K)), standard-normal input). Do not widen it.

1. A randomized differential profile (Hypothesis; "ci": derandomized, fixed number of examples, settings attached to
   the test) generating tf.nn.conv1d / conv2d / conv3d / depthwise_conv2d / convolution call texts, prefix `tf.nn.` or
   `tensorflow.nn.`, arguments positional or by keyword (in any order, with data_format / name sometimes given),
   strides / dilations in every accepted form (int, list or tuple of 1, n or n+2 entries; full lists for conv3d and
   depthwise_conv2d) and sometimes in rejected forms (wrong length, zero, non-1 batch/channel entry, int for conv3d /
   depthwise), padding 'SAME' / 'VALID' / an explicit list of pairs (lists or tuples; conv2d and depthwise_conv2d) and
   sometimes lower case, explicit lists where they are not allowed, non-zero batch/channel pairs, negative pads;
   kernels 1..4 (1..3 in 3-D), 1..6 channels, grouped convolutions (filters in_depth dividing the input channels,
   sometimes not dividing it, or out channels not divisible by the groups), depthwise multipliers 1..3, input sizes
   around the kernel extent (including too small), batch 1..3.
   For each case the real TF result decides:
     - TF raises, or returns an output whose shape is not the mathematically expected one (TF's oneDNN kernels
       return a tensor of the input's size, holding garbage, when a 'VALID' input is smaller than the kernel):
       convbridge.translate(text, input_shape=known, filters_shape=...) must raise ValueError (and so must the plan
       for unknown sizes when the configuration, not the size, is what TF rejects);
     - otherwise make_module() from TorchPlan.torch_code() must reproduce TF's output, plan.output_shape(known) must
       be TF's output shape and plan.verify() must pass, for the plan of the known shape AND the plans for unknown
       sizes: (None, ..., None, C), (N, None.., C) or some spatial sizes known, and input_shape=None (only when the
       filters' in_depth is the input's channel count: without an input shape convbridge cannot see the groups).
   Two documented refusals are checked as such, without TF: channels_first data_format ("not supported yet") and
   depthwise_conv2d with strides > 1 and dilations > 1 (TF only warns and computes wrong values there: see
   test_depthwise_stride_with_dilation_is_refused).
   TF facts the profile handles (each proven by a named test below):
     - TF's default CPU kernels (oneDNN) have bugs: wrong values for one input channel per group, stride > 1 along
       the last spatial axis, output width 1 and batch > 1 (test_traps.py::test_fact_tf_onednn_single_channel_width1_
       stride_bug; depthwise_conv2d too: test_fact_tf_onednn_depthwise_width1_stride_bug), and they silently ignore
       non-zero batch/channel explicit padding that TF's own kernels reject. When TF and convbridge disagree, the
       same call, tensors included, is run by TF in a worker process with TF_ENABLE_ONEDNN_OPTS=0 (the arbiter
       below; for depthwise_conv2d with unequal strides, which TF's own kernel refuses, under XLA in that worker).
       The case passes only if that run agrees with convbridge and disagrees with the oneDNN run. Such cases are
       counted and listed in the summary.
     - Grouped 3-D convolutions (tf.nn.conv3d, or tf.nn.convolution with 5-D filters, in_depth < channels) raise in
       eager TF on CPU ("input and filter must have the same depth"), although they are well defined; for them the
       same call under tf.function(jit_compile=True) (XLA) is the reference. Where XLA cannot build the call either
       (TF's graph-mode Conv3D shape function swaps the height and width dilations:
       test_fact_tf_graph_conv3d_shape_function_swaps_dilations), the same call text is run eagerly once per group
       on the group's channels and the outputs concatenated (grouped convolution by definition, computed by TF).
       Nothing else in this profile uses XLA.
   The summary (generated, compared, rejected by both, refused, oneDNN arbitrations) is printed by
   test_enough_tf_nn_cases_ran (pytest -s / -rP) and the CI profile must compare at least CONVBRIDGE_TF_NN_CASES
   (800 unless set; at least 500 asked) calls against TF.
1b. A second randomized profile (same profiles: "ci" derandomized) for the transposed functions
   tf.nn.conv1d_transpose / conv2d_transpose / conv3d_transpose / conv_transpose(input, filters, output_shape,
   strides, padding='SAME', ...): kernels 1..4 (1..3 in 3-D), strides 1..3, dilations 1..2 (with strides > 1 too),
   'SAME' / 'VALID' / explicit lists of 4 pairs (conv2d_transpose, 2-D conv_transpose), channels 1..5, input sizes
   1..6 (1..4 in 3-D), strides / dilations as int, 1, n or n + 2 entries, arguments positional or by keyword. The
   output_shape is one TF accepts for the input (its forward convolution with the same padding gives the input
   back: any out with ceil(out / s) == in for 'SAME', (in-1)*s + eff + r, r < s, for 'VALID', solved with the pads
   for lists), its batch entry an int or the name `batch` (bound to N in the eval namespace). Now and then the
   output_shape (a spatial size, the channels, the batch) or the strides / dilations form is wrong, or the padding
   lower case, or data_format channels_first. TF decides, as in 1.: TF raises -> convbridge.translate(text,
   input_shape=x's shape, ...) raises ValueError; TF runs it -> for the known input shape and for a derived one
   (input_shape omitted, all-None but the channels, or batch only) make_module (float64) reproduces TF, the plan's
   and its JSON's input / output shapes are x's / TF's (an unknown batch stays unknown), verify() passes and
   exact_for_every_input_size is False (the plan is for that input size only). Two refusals of calls TF runs are
   checked as such: channels_first, and the documented limitation of padding lists whose before - after + r (r =
   (out + before + after - eff) % s) is not below max(stride, dilation) ("not supported yet": PyTorch's
   output_padding must be below it), where TF is shown to run the call. TF facts: TF's own CPU kernels refuse
   dilations > 1 for the transposed convolutions (explicit lists do not go through oneDNN): XLA is the reference
   there (test_fact_tf_cpu_transposed_dilations_need_xla); oneDNN skips checks (it runs non-1 batch/channel dilation
   entries) and the oneDNN-off worker (under XLA for dilations) decides, as in 1. test_enough_tf_nn_transposed_cases_ran
   prints the summary; CI compares at least CONVBRIDGE_TF_NN_TRANSPOSED_CASES (300 unless set) calls.
2. Named tests for the traps: TF 'SAME' at stride 2 whose split depends on the input size, explicit asymmetric and
   symmetric padding lists, grouped conv2d inferred from shapes, depthwise channel order with a multiplier, conv1d
   with a stride list, conv3d 'SAME' stride 2, convolution with dilations; each documented rejection raises ValueError
   naming the argument and its value, and for those TF rejects too, TF is shown to reject it. Transposed: 'SAME' at
   stride 2 for even and odd outputs (a CropEnd step for the even one) with TF's output shown to be the window
   z[before : before + out] of the full transposed output z, 'VALID' with an output longer than z (output_padding),
   an explicit asymmetric list, conv1d_transpose, conv3d_transpose with an int stride, conv_transpose dispatching on
   len(output_shape), dilated conv2d_transpose, a named batch entry, input_shape / output_shape channel mismatches
   (TF rejects them too), and the 'not supported yet' padding list (TF runs it).
3. The CLI: `convbridge translate <tf.nn call> --filters-shape ... --emit torch` printed code against TF (a
   transposed call too).

The library bugs this file found are fixed; each keeps its test (test_fixed_*). Inputs TF runs through a path that
silently drops part of an argument are refused on purpose (test_refused_*), and the generator steers around them
(KNOWN_BUGS); a newly found bug would go there, with a strict xfail, only until it is fixed.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbridge
from conftest import CONVBRIDGE_BIN, emitted_dir, exec_source, stable_seed
from reverse_helpers import ATOL_PER_SQRT_TERM, assert_matches_keras, error_summary, plan_code_module, torch_forward64
import tensorflow as tf

CI_CASES = int(os.environ.get("CONVBRIDGE_TF_NN_CASES", "800"))
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
PROFILES = {
    # About 2 in 3 generated calls are compared against TF (the rest are rejected by both, or refused): 2x leaves a
    # margin, so that generator changes do not drop the count below CI_CASES.
    "ci": settings(max_examples=CI_CASES * 2, derandomize=True, deadline=None, print_blob=True,
                   suppress_health_check=list(HealthCheck)),
    "dev": settings(max_examples=20000, deadline=None, print_blob=True, suppress_health_check=list(HealthCheck)),
}

# Inputs TF runs through a path that silently drops part of an argument, which convbridge deliberately refuses (each
# proven and checked by its test_refused_*): the generator steers around them. (Every library bug this file found
# is fixed and its test is an ordinary test now; a key of a bug goes here only while it is being fixed.)
KNOWN_BUGS = {
    "depthwise_short_dilations",  # depthwise_conv2d dilations=[d] (one entry): TF runs it as (d, 1)
    "depthwise_dilated_padding_entries",  # depthwise_conv2d, dilations > 1: TF drops batch/channel padding pairs
}

FUNCTIONS = ["conv1d", "conv2d", "conv2d", "conv3d", "depthwise_conv2d", "depthwise_conv2d", "convolution",
             "convolution"]
RANK = {"conv1d": 1, "conv2d": 2, "conv3d": 3, "depthwise_conv2d": 2}
CHANNELS_LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
CHANNELS_FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}

STATS = {"cases": 0, "compared": 0, "tf_rejected": 0, "tf_rejected_size": 0, "tf_rejected_config": 0,
         "refused": 0, "xla_reference": 0, "per_group_reference": 0, "unknown_forms": 0, "none_input_shape": 0,
         "per_function": {}, "onednn_arbitrated": 0, "onednn_cases": [], "known_bug_verify": 0, "seconds": 0.0}


def summary_line() -> str:
    per = ", ".join(f"{name} {count}" for name, count in sorted(STATS["per_function"].items()))
    return (f"differential (tf.nn): {STATS['cases']} generated calls in {STATS['seconds']:.0f} s, {STATS['compared']} "
            f"compared against TF ({per}) with {STATS['unknown_forms']} unknown-size plans besides the known-size "
            f"ones ({STATS['none_input_shape']} with input_shape=None), {STATS['xla_reference']} grouped 3-D calls "
            f"with TF's XLA as the reference and {STATS['per_group_reference']} with TF per group; "
            f"{STATS['tf_rejected']} rejected by TF and by convbridge "
            f"({STATS['tf_rejected_config']} configurations, {STATS['tf_rejected_size']} input sizes), "
            f"{STATS['refused']} refused by convbridge (channels_first, depthwise strides with dilations); "
            f"{STATS['onednn_arbitrated']} decided by TF with oneDNN off; {STATS['known_bug_verify']} plans whose "
            f"verify() hit the known bug test_fixed_verify_explicit_padding_unknown_sizes"
            + "".join(f"\n    {line}" for line in STATS["onednn_cases"][:20]))


def _note(line: str) -> None:
    STATS["onednn_arbitrated"] += 1
    if line not in STATS["onednn_cases"]:
        STATS["onednn_cases"].append(line)


# ------------------------------------------------------------------------------------------------------------------
# Running a tf.nn call text with real tensors
# ------------------------------------------------------------------------------------------------------------------

SAME_DEPTH_ERROR = "input and filter must have the same depth"  # TF CPU: grouped Conv3D is not implemented


def tf_namespace(names, x, w, extra=None) -> dict:
    return {"tf": tf, "tensorflow": tf, **(extra or {}), names[0]: tf.constant(x), names[1]: tf.constant(w)}


def tf_call(text: str, names, x: np.ndarray, w: np.ndarray, jit: bool = False, extra=None):
    """(float32 numpy output, None) or (None, the exception TF raised), for the text evaluated with the input and
    filters bound to the names. jit: run it as tf.function(jit_compile=True) (XLA) instead of eagerly. extra: other
    names the text uses (the transposed calls' `batch`), bound to plain Python values."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if jit:
                function = tf.function(lambda a, b: eval(text, {"tf": tf, "tensorflow": tf, **(extra or {}),
                                                               names[0]: a, names[1]: b}),
                                       jit_compile=True)
                y = function(tf.constant(x), tf.constant(w))
            else:
                y = eval(text, tf_namespace(names, x, w, extra))  # noqa: S307 - test-generated call text
        return np.asarray(y), None
    except Exception as error:  # noqa: BLE001 - TF raises ValueError, TypeError, OpError subclasses, SyntaxError
        return None, error


# The arbiter: the same call, same tensors, run by TF with its oneDNN kernels off (a worker process started on first
# use, one per session). See the module docstring.
_WORKER_SOURCE = r"""
import os, pickle, sys, warnings
proto_out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)  # anything TF prints goes to stderr, not into the protocol
import numpy as np, tensorflow as tf
proto_in = sys.stdin.buffer
while True:
    header = proto_in.read(8)
    if len(header) < 8:
        break
    text, names, x, w, jit, extra = pickle.loads(proto_in.read(int.from_bytes(header, "little")))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if jit:
                f = tf.function(lambda a, b: eval(text, {"tf": tf, "tensorflow": tf, **extra, names[0]: a,
                                                         names[1]: b}), jit_compile=True)
                y = np.asarray(f(tf.constant(x), tf.constant(w)))
            else:
                y = np.asarray(eval(text, {"tf": tf, "tensorflow": tf, **extra, names[0]: tf.constant(x),
                                           names[1]: tf.constant(w)}))
        result = ("ok", y)
    except Exception as e:
        result = ("error", "%s: %s" % (type(e).__name__, str(e).strip()[:3000]))
    data = pickle.dumps(result)
    proto_out.write(len(data).to_bytes(8, "little") + data)
    proto_out.flush()
"""

_worker = None


def _tf_worker():
    global _worker
    if _worker is None or _worker.poll() is not None:
        import atexit

        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
        _worker = subprocess.Popen([sys.executable, "-c", _WORKER_SOURCE], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        worker = _worker

        def _stop():
            if worker.poll() is None:
                worker.stdin.close()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
            worker.stdout.close()

        atexit.register(_stop)
    return _worker


def tf_call_without_onednn(text: str, names, x: np.ndarray, w: np.ndarray, jit: bool = False, extra=None):
    """(output, None) or (None, error text): tf_call in a process with TF_ENABLE_ONEDNN_OPTS=0."""
    request = pickle.dumps((text, tuple(names), x, w, jit, dict(extra or {})))
    worker = _tf_worker()
    worker.stdin.write(len(request).to_bytes(8, "little") + request)
    worker.stdin.flush()
    header = worker.stdout.read(8)
    if len(header) < 8:
        raise RuntimeError("the oneDNN-free TF worker died")
    status, value = pickle.loads(worker.stdout.read(int.from_bytes(header, "little")))
    return (value, None) if status == "ok" else (None, value)


# ------------------------------------------------------------------------------------------------------------------
# Shapes, weights, tolerance (independent of convbridge)
# ------------------------------------------------------------------------------------------------------------------


def expected_output_shape(function, shape, filters_shape, strides, dilations, padding):
    """The mathematically expected output shape (channels_last), or None when some output size would be < 1.
    strides / dilations: the spatial values; padding: 'SAME', 'VALID' or a list of spatial (before, after) pairs."""
    rank = len(filters_shape) - 2
    if min(strides) < 1 or min(dilations) < 1:
        return None
    out = []
    for axis in range(rank):
        size, s = shape[1 + axis], strides[axis]
        extent = (filters_shape[axis] - 1) * dilations[axis] + 1
        if padding == "SAME":
            o = -(-size // s)
        else:
            before, after = (0, 0) if padding == "VALID" else padding[axis]
            padded = size + before + after
            o = (padded - extent) // s + 1 if padded >= extent else 0
        if o < 1:
            return None
        out.append(o)
    channels = filters_shape[-2] * filters_shape[-1] if function == "depthwise_conv2d" else filters_shape[-1]
    return (shape[0], *out, channels)


def accumulation_length(function: str, filters_shape) -> int:
    kernel = math.prod(filters_shape[:-2])
    if function.endswith("_transpose"):
        # filters (*kernel, out_channels, in_channels): each output sums at most prod(kernel) taps per input channel
        return kernel * filters_shape[-1]
    return kernel if function == "depthwise_conv2d" else kernel * filters_shape[-2]


def tf_nn_tolerance(function: str, filters_shape) -> float:
    """atol = 4e-5 * sqrt(K), as reverse_helpers.keras_tolerance (see the module docstring)."""
    return ATOL_PER_SQRT_TERM * math.sqrt(accumulation_length(function, filters_shape))


def tf_nn_tensors(text: str, function: str, shape, filters_shape):
    """(x, w): float32 standard-normal input (channels_last) and filters U(-1/sqrt(K), 1/sqrt(K)), seeded by the text
    and the shapes."""
    rng = np.random.default_rng(stable_seed(text, tuple(shape), tuple(filters_shape)))
    bound = 1.0 / math.sqrt(accumulation_length(function, filters_shape))
    x = rng.standard_normal(tuple(shape)).astype(np.float32)
    w = rng.uniform(-bound, bound, tuple(filters_shape)).astype(np.float32)
    return x, w


def make_module_from_plan(plan, w: np.ndarray, label: str):
    """(module, path of the code): make_module(<float64 filters>) from plan.torch_code(), as a user would call it."""
    code, path = plan_code_module(plan, label)
    assert plan.weight_names in (["filters"], ["filter"]), plan.weight_names
    return code.make_module(w.astype(np.float64)), path


def assert_matches_tf(got: np.ndarray, expected: np.ndarray, atol: float, context: str) -> None:
    """got: float64 PyTorch output moved to channels_last; expected: float32 TF output."""
    assert_matches_keras(got, expected, atol, context, reference="TF")


def squash(text: str) -> str:
    return "".join(str(text).split())


def assert_names(message: str, needles, context: str = "") -> None:
    """Every needle appears in the message (spaces ignored: convbridge echoes lists without them)."""
    for needle in needles:
        assert squash(needle) in squash(message), f"the message should name {needle!r}: {message!r}{context}"


# ------------------------------------------------------------------------------------------------------------------
# The generator
# ------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    text: str
    function: str
    rank: int
    names: tuple
    filters_shape: tuple
    shape: tuple  # the known channels_last input shape
    unknown_forms: tuple  # input_shape values for the size-independent plans (tuples with None, or None)
    model_shape: tuple | None  # expected_output_shape(...)
    refused: str | None  # a documented convbridge refusal of a call TF runs
    grouped3d: bool
    explicit_padding: bool = False
    notes: tuple = field(default=())


def rare(draw, one_in: int) -> bool:
    """True about once in `one_in` draws (the rare value sits in the middle of the range: Hypothesis favours the
    bounds)."""
    return draw(st.integers(0, one_in - 1)) == one_in // 2


def seq_text(values, tuple_form: bool, spaced: bool = True) -> str:
    sep = ", " if spaced else ","
    if tuple_form:
        return "(" + sep.join(str(v) for v in values) + ("," if len(values) == 1 else "") + ")"
    return "[" + sep.join(str(v) for v in values) + "]"


@st.composite
def size_text(draw, function, values, argument, bad_entries=True):
    """The text of a strides/dilations argument with spatial values `values`, in a form the function accepts
    (mostly), or rarely in a form TF rejects. Returns (text or None for 'omitted', spatial values).
    bad_entries: whether a full-length list may get a non-1 batch or channel entry."""
    n = len(values)
    tuple_form = draw(st.booleans())
    spaced = draw(st.booleans())
    full_only = function in ("conv3d", "depthwise_conv2d")
    if argument == "dilations" and function == "depthwise_conv2d":
        if rare(draw, 25):
            return str(values[0]), values  # an int: TF raises TypeError
        if all(v == 1 for v in values) and draw(st.booleans()):
            return None if draw(st.booleans()) else "None", values
        return seq_text(values, tuple_form, spaced), values
    if argument == "dilations" and all(v == 1 for v in values) and draw(st.integers(0, 2)) > 0:
        return None if draw(st.booleans()) else "None", values
    if argument == "strides" and function == "convolution" and all(v == 1 for v in values) and draw(st.booleans()):
        return None if draw(st.booleans()) else "None", values
    if full_only:
        if rare(draw, 25):
            return str(values[0]), values  # an int: TF raises TypeError (conv3d, depthwise_conv2d)
        if rare(draw, 25):
            return seq_text(values, tuple_form, spaced), values  # spatial entries only: TF rejects the length
    else:
        if rare(draw, 30):  # a length TF rejects (n + 1 is never 1, n or n + 2)
            return seq_text(list(values) + [1], tuple_form, spaced), values
        equal = len(set(values)) == 1
        form = draw(st.sampled_from(["int", "one", "n", "full", "full"] if equal else ["n", "full"]))
        if form == "int":
            return str(values[0]), values
        if form == "one":
            return seq_text([values[0]], tuple_form, spaced), values
        if form == "n":
            return seq_text(values, tuple_form, spaced), values
    # the full form: [1, *spatial, 1], rarely with a non-1 batch or channel entry (TF rejects it)
    batch, channel = 1, 1
    if rare(draw, 25) and bad_entries:
        if draw(st.booleans()) and not (n == 1 and "conv1d_batch_entry" in KNOWN_BUGS):
            batch = 2
        else:
            channel = 2
    return seq_text([batch, *values, channel], tuple_form, spaced), values


@st.composite
def tf_nn_case(draw):
    function = draw(st.sampled_from(FUNCTIONS))
    rank = RANK.get(function) or draw(st.sampled_from([1, 2, 2, 3]))
    names = draw(st.sampled_from([("x", "w"), ("x", "w"), ("inputs", "kernel"), ("images", "filters")]))
    prefix = draw(st.sampled_from(["tf.nn.", "tf.nn.", "tf.nn.", "tensorflow.nn."]))
    notes = []

    # Filters and channels.
    kernel = [draw(st.integers(1, 4 if rank < 3 else 3)) for _ in range(rank)]
    groups = 1
    if function == "depthwise_conv2d":
        channels = draw(st.integers(1, 5))
        multiplier = draw(st.integers(1, 3))
        depth = channels + 1 if rare(draw, 30) else channels  # TF: the filter's 3rd dim must be the channel count
        filters_shape = (*kernel, depth, multiplier)
    else:
        if draw(st.integers(0, 3)) == 0:
            groups = draw(st.integers(2, 3))
            in_depth = draw(st.integers(1, 2))
            channels = groups * in_depth
            out = groups * draw(st.integers(1, 2))
            if rare(draw, 12):
                channels += 1  # in_depth does not divide the channels: TF rejects
                notes.append("channels not divisible by in_depth")
            elif rare(draw, 12):
                out += 1  # out channels not divisible by the groups: TF rejects
                notes.append("out not divisible by groups")
        else:
            channels = draw(st.integers(1, 6))
            in_depth = channels
            out = draw(st.integers(1, 6))
        filters_shape = (*kernel, in_depth, out)

    # Strides and dilations (spatial values), mostly within the function's rules.
    strides = [draw(st.integers(1, 3)) for _ in range(rank)]
    if draw(st.integers(0, 2)) == 0:
        strides = [1] * rank
    dilations = [draw(st.integers(1, 3)) for _ in range(rank)] if draw(st.integers(0, 2)) == 0 else [1] * rank
    if rare(draw, 40):
        strides[draw(st.integers(0, rank - 1))] = 0  # TF: "Stride must be > 0"
    elif rare(draw, 40):
        dilations[draw(st.integers(0, rank - 1))] = 0  # TF: "Dilated rates should be larger than 0"
    # depthwise_conv2d (refused by convbridge) and convolution (TF raises) take strides > 1 with dilations > 1 only
    # now and then; conv1d/2d/3d accept it.
    if function in ("depthwise_conv2d", "convolution") and max(strides) > 1 and max(dilations) > 1 and \
            not rare(draw, 6):
        if draw(st.booleans()):
            dilations = [1] * rank
        else:
            strides = [1] * rank
    # tf.nn.convolution takes its dilated path when any dilations entry is not 1, and that path drops the batch and
    # channel entries of both lists (test_fixed_convolution_dilated_path_drops_batch_and_channel_entries).
    lenient = function == "convolution" and "convolution_dilated_path_entries" in KNOWN_BUGS
    strides_text, _ = draw(size_text(function, strides, "strides", bad_entries=not (lenient and max(dilations) > 1)))
    dilations_text, _ = draw(size_text(function, dilations, "dilations", bad_entries=not lenient))

    # Padding.
    explicit_allowed = function in ("conv2d", "depthwise_conv2d")
    padding_text = None
    padding = draw(st.sampled_from(["SAME", "VALID"] + (["explicit"] if explicit_allowed else [])))
    if padding == "explicit" or (not explicit_allowed and rare(draw, 30) and not (
            function == "convolution" and rank == 2 and max(dilations) > 1
            and "convolution_dilated_explicit_padding" in KNOWN_BUGS)):
        pads = [(draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(rank)]
        pairs = [[0, 0], *[list(p) for p in pads], [0, 0]]
        dilated_depthwise = function == "depthwise_conv2d" and max(dilations) > 1 and \
            "depthwise_dilated_padding_entries" in KNOWN_BUGS
        if rare(draw, 15) and not dilated_depthwise:
            pairs[draw(st.sampled_from([0, -1]))][draw(st.integers(0, 1))] = 1  # TF: batch/channel pads not allowed
            notes.append("batch/channel padding")
        elif rare(draw, 20):
            pairs[1][0] = -1  # TF: negative padding
            pads[0] = (-1, pads[0][1])
        elif rare(draw, 30):
            pairs = pairs[:-1]  # TF: n + 2 pairs needed
        tuple_form = draw(st.booleans())
        spaced = draw(st.booleans())
        padding_text = seq_text([seq_text(p, tuple_form, spaced) for p in pairs], tuple_form, spaced)
        padding = pads
    else:
        spelled = padding
        if rare(draw, 20):
            spelled = padding.lower() if draw(st.booleans()) else padding.capitalize()  # TF: upper case only
        padding_text = repr(spelled) if draw(st.integers(0, 3)) else f'"{spelled}"'
        if function == "convolution" and padding == "VALID" and draw(st.integers(0, 2)) == 0:
            padding_text = None  # convolution's default

    # data_format.
    data_format_text = None
    refused = None
    if rare(draw, 30):
        data_format_text = repr(CHANNELS_FIRST[rank])
        refused = "channels_first data_format"
    elif draw(st.integers(0, 4)) == 0:
        data_format_text = draw(st.sampled_from([repr(CHANNELS_LAST[rank]), "None"]
                                                if function in ("depthwise_conv2d", "convolution")
                                                else [repr(CHANNELS_LAST[rank])]))
    if refused is None and function == "depthwise_conv2d" and max(strides) > 1 and max(dilations) > 1:
        refused = "depthwise_conv2d with strides > 1 and dilations > 1"
    name_text = repr(draw(st.sampled_from(["conv", "my_conv"]))) if draw(st.integers(0, 5)) == 0 else None

    # The call text: the first `positional` parameters positionally (filled with their defaults where not chosen),
    # the others by keyword in a random order.
    stride_name = "stride" if function == "conv1d" else "strides"
    filter_name = "filter" if function == "depthwise_conv2d" else "filters"
    default_format = {"conv1d": "'NWC'", "conv2d": "'NHWC'", "conv3d": "'NDHWC'"}.get(function, "None")
    parameters = [("input", names[0], None), (filter_name, names[1], None),
                  (stride_name, strides_text, "None"), ("padding", padding_text, "'VALID'"),
                  ("data_format", data_format_text, default_format), ("dilations", dilations_text, "None"),
                  ("name", name_text, "None")]
    required = 4 if function != "convolution" else 2
    last_given = max(i for i, (_, value, _) in enumerate(parameters) if value is not None)
    positional = draw(st.integers(0, last_given + 1))
    if required > 2 and positional < 2 and draw(st.booleans()):
        positional = 2  # the usual spelling: tf.nn.conv2d(x, w, strides=..., padding=...)
    arguments, keywords = [], []
    for i, (pname, value, default) in enumerate(parameters):
        if i < positional:
            arguments.append(value if value is not None else default)
        elif value is not None:
            keywords.append(f"{pname}={value}")
    keywords = list(draw(st.permutations(keywords)))
    if keywords and arguments and rare(draw, 50):  # a positional argument after a keyword: a SyntaxError
        arguments = arguments[:-1] + keywords[:1] + arguments[-1:]
        keywords = keywords[1:]
    text = f"{prefix}{function}({', '.join(arguments + keywords)})"

    # Input sizes around the kernel extent, including sizes too small for it.
    extent = [(k - 1) * max(d, 1) + 1 for k, d in zip(kernel, dilations)]
    spatial = [draw(st.integers(max(1, e - 2), e + 3 * max(s, 1) + 1)) for e, s in zip(extent, strides)]
    if rank == 3:
        spatial = [min(v, 7) for v in spatial]
    batch = draw(st.integers(1, 3))
    shape = (batch, *spatial, channels)

    forms = [(None,) * (rank + 1) + (channels,)]
    choice = draw(st.sampled_from(["batch_known", "partial"] if rank > 1 else ["batch_known"]))
    if choice == "batch_known":
        forms.append((batch,) + (None,) * rank + (channels,))
    else:
        known_axis = draw(st.integers(0, rank - 1))
        forms.append((None, *[v if i == known_axis else None for i, v in enumerate(spatial)], channels))
    if filters_shape[-2] == channels or function == "depthwise_conv2d":
        forms.append(None)  # no input shape: convbridge takes the channel count from the filters

    model_shape = expected_output_shape(function, shape, filters_shape, strides, dilations,
                                        padding if isinstance(padding, list) else padding)
    if isinstance(padding, list) and min(min(p) for p in padding) < 0:
        model_shape = None
    grouped3d = rank == 3 and filters_shape[-2] != channels
    return Case(text, function, rank, names, tuple(filters_shape), shape, tuple(forms), model_shape, refused,
                grouped3d, isinstance(padding, list), tuple(notes))


# ------------------------------------------------------------------------------------------------------------------
# The differential test
# ------------------------------------------------------------------------------------------------------------------


def _context(case: Case, label: str, input_shape, code_path=None, extra: str = "") -> str:
    where = (f"\n  call text:     {case.text}\n  filters_shape: {case.filters_shape}\n  input shape:   {case.shape} "
             f"(N, *spatial, C)\n  path:          {label}\n  plan for:      input_shape={input_shape}"
             f"\n  reproduce:     convbridge.translate({case.text!r}, input_shape={input_shape}, "
             f"filters_shape={case.filters_shape}); tensors: tf_nn_tensors(text, {case.function!r}, shape, "
             f"filters_shape)")
    if code_path is not None:
        where += f"\n  emitted code:  {code_path}"
    return where + extra


def _expect_value_error(case: Case, input_shape, why: str) -> str:
    try:
        plan = convbridge.translate(case.text, input_shape=input_shape, filters_shape=case.filters_shape)
    except ValueError as error:
        return str(error)
    raise AssertionError(f"convbridge.translate accepted what it must reject ({why}); its plan: {plan!r}"
                         + _context(case, "convbridge.translate", input_shape))


def _translate(case: Case, input_shape, why: str):
    try:
        return convbridge.translate(case.text, input_shape=input_shape, filters_shape=case.filters_shape)
    except ValueError as error:
        raise AssertionError(f"convbridge rejects a call TF runs ({why}): {error}"
                             + _context(case, "convbridge.translate", input_shape)) from error


def tf_call_per_group(text: str, names, x: np.ndarray, w: np.ndarray, groups: int):
    """The same call text evaluated eagerly once per group, on the group's input channels and filters, outputs
    concatenated along the channels: grouped convolution by its definition, computed by TF's own (ungrouped) kernel."""
    in_depth, out = w.shape[-2], w.shape[-1]
    outputs = []
    for g in range(groups):
        y, error = tf_call(text, names, np.ascontiguousarray(x[..., g * in_depth:(g + 1) * in_depth]),
                           np.ascontiguousarray(w[..., g * (out // groups):(g + 1) * (out // groups)]))
        if error is not None:
            return None, error
        outputs.append(y)
    return np.concatenate(outputs, axis=-1), None


def _tf_reference(case: Case, x, w):
    """(output, None, how) or (None, error, None): the real TF call, eagerly ("eager"). Grouped 3-D calls, which
    eager TF cannot run on CPU (SAME_DEPTH_ERROR), are run under XLA ("xla"); where XLA cannot build them either
    (TF's graph-mode Conv3D shape function swaps the height and width dilations, see
    test_fact_tf_graph_conv3d_shape_function_swaps_dilations) the same text is run eagerly per group ("per_group").
    An output of a shape other than the expected one counts as a rejection."""
    y, error = tf_call(case.text, case.names, x, w)
    how = "eager"
    groups = x.shape[-1] // w.shape[-2] if w.ndim == x.ndim else 1
    well_defined = w.ndim == x.ndim and x.shape[-1] % w.shape[-2] == 0 and w.shape[-1] % groups == 0
    if (error is not None and case.grouped3d and well_defined and case.model_shape is not None
            and SAME_DEPTH_ERROR in str(error)):
        y, _ = tf_call(case.text, case.names, x, w, jit=True)
        how = "xla"
        if y is None:
            y, _ = tf_call_per_group(case.text, case.names, x, w, groups)
            how = "per_group"
        if y is not None:
            error = None
    if y is not None and (case.model_shape is None or tuple(y.shape) != case.model_shape):
        return None, ValueError(f"TF returned an output of shape {tuple(y.shape)}; expected "
                                f"{case.model_shape or 'none (some output size < 1)'}"), None
    return y, error, how if error is None else None


@PROFILES[PROFILE]
@given(tf_nn_case())
def test_generated_tf_nn_calls_match_tf(case: Case):
    started = time.perf_counter()
    try:
        _check_case(case)
    finally:
        STATS["seconds"] += time.perf_counter() - started


def _check_case(case: Case):
    STATS["cases"] += 1
    if case.refused is not None:
        STATS["refused"] += 1
        for input_shape in (case.shape, case.unknown_forms[0]):
            message = _expect_value_error(case, input_shape, f"convbridge refuses {case.refused}")
            if case.refused.startswith("channels_first"):
                # Unless an earlier argument is rejected first, the refusal says so.
                assert "not supported yet" in message or "data_format" not in message, message
        return

    x, w = tf_nn_tensors(case.text, case.function, case.shape, case.filters_shape)
    expected, error, how = _tf_reference(case, x, w)
    arbiter = None  # TF with oneDNN off: (output, error text), asked only when needed

    if error is not None:
        try:
            plan = convbridge.translate(case.text, input_shape=case.shape, filters_shape=case.filters_shape)
        except ValueError:
            plan = None
        if plan is None:
            STATS["tf_rejected"] += 1
            if case.model_shape is not None:
                # The sizes are fine, so TF rejects the configuration: no input size can make it valid.
                STATS["tf_rejected_config"] += 1
                _expect_value_error(case, case.unknown_forms[0],
                                    f"TF rejects the configuration: {error_summary(error)}")
            else:
                STATS["tf_rejected_size"] += 1
            return
        # convbridge plans a call TF rejects: unless TF without oneDNN runs it (a oneDNN bug), convbridge is wrong.
        arbiter = tf_call_without_onednn(case.text, case.names, x, w, jit=case.grouped3d)
        if arbiter[0] is None or case.model_shape is None or tuple(arbiter[0].shape) != case.model_shape:
            off = error_summary(arbiter[1]) if arbiter[0] is None else f"output shape {arbiter[0].shape}"
            raise AssertionError(f"convbridge plans a call the real TF rejects: {error_summary(error)} (with oneDNN "
                                 f"off: {off}); plan output shape {plan.output_shape(list(case.shape))}"
                                 + _context(case, "convbridge.translate", case.shape))
        _note(f"{case.text} {case.filters_shape} at {case.shape}: oneDNN {error_summary(error)}")
        expected = arbiter[0]

    try:
        convbridge.translate(case.text, input_shape=case.shape, filters_shape=case.filters_shape)
    except ValueError as rejection:
        # TF (oneDNN) runs it. TF's oneDNN kernels skip some of TF's own checks (non-zero batch/channel padding):
        # if TF without oneDNN rejects the call too, the rejection stands.
        arbiter = arbiter or tf_call_without_onednn(case.text, case.names, x, w, jit=case.grouped3d)
        # Only the check oneDNN skips counts (not, say, the own depthwise kernel's "equal length strides" limit,
        # which oneDNN lifts), unless the generator put the non-zero batch/channel padding there itself.
        if arbiter[0] is None and ("Nonzero explicit padding" in arbiter[1] or "batch/channel padding" in case.notes):
            STATS["tf_rejected"] += 1
            STATS["tf_rejected_config"] += 1
            _note(f"{case.text} {case.filters_shape} at {case.shape}: oneDNN ran it, TF's own kernel: "
                  f"{error_summary(arbiter[1])}")
            _expect_value_error(case, case.unknown_forms[0], f"TF without oneDNN rejects it: {arbiter[1]}")
            return
        raise AssertionError(f"convbridge rejects a call TF runs (with and without oneDNN): {rejection}"
                             + _context(case, "convbridge.translate", case.shape)) from None

    STATS["compared"] += 1
    STATS["per_function"][case.function] = STATS["per_function"].get(case.function, 0) + 1
    if how in ("xla", "per_group"):
        STATS[f"{how}_reference"] += 1
    atol = tf_nn_tolerance(case.function, case.filters_shape)

    def check(got, context):
        nonlocal arbiter
        try:
            assert_matches_tf(got, expected, atol, context)
        except AssertionError as mismatch:
            # TF with oneDNN on is the reference unless it is the one that is off (a TF oneDNN bug).
            if arbiter is None:
                arbiter = tf_call_without_onednn(case.text, case.names, x, w, jit=case.grouped3d)
            if arbiter[0] is None and not case.grouped3d:
                # TF's own kernels cannot run it (depthwise_conv2d with unequal strides): XLA then, still with oneDNN
                # off.
                arbiter = tf_call_without_onednn(case.text, case.names, x, w, jit=True)
            reference, reason = arbiter
            if reference is None or reference.shape != expected.shape:
                off = error_summary(reason) if reference is None else f"output shape {reference.shape}"
                raise AssertionError(f"{mismatch}\n  TF with oneDNN off: {off}") from None
            onednn_off = np.abs(reference.astype(np.float64) - expected)
            if not np.all(np.isfinite(expected)) or float(onednn_off.max()) > atol:
                assert_matches_tf(got, reference, atol, context + "\n  reference: TF with oneDNN off (the oneDNN "
                                  "run disagrees with it: a TF oneDNN bug)")
                _note(f"{case.text} {case.filters_shape} at {case.shape}: oneDNN output off")
                return
            raise

    for input_shape in (case.shape, *case.unknown_forms):
        known = input_shape is case.shape
        label = "known size" if known else "unknown sizes"
        plan = _translate(case, input_shape, label)
        got_shape = plan.output_shape(list(case.shape))
        assert got_shape == list(expected.shape), (f"TorchPlan.output_shape {got_shape} != TF {list(expected.shape)}"
                                                   + _context(case, f"output_shape, {label}", input_shape))
        if known:
            described = json.loads(plan.to_json())
            assert described["output_shape"] == list(expected.shape), (
                f"JSON output_shape {described['output_shape']} != TF {list(expected.shape)}"
                + _context(case, "to_json", input_shape))
        else:
            STATS["unknown_forms"] += 1
            STATS["none_input_shape"] += int(input_shape is None)
            assert plan.exact_for_every_input_size, _context(case, "exact_for_every_input_size", input_shape)
        verification = plan.verify()
        if not verification["passed"] and is_known_verify_bug(case, plan, verification):
            STATS["known_bug_verify"] += 1
        else:
            assert verification["passed"], (f"reference engine: {verification['summary']}"
                                             + _context(case, f"verify, {label}", input_shape))
        module, code_path = make_module_from_plan(plan, w, "known" if known else "unknown")
        check(torch_forward64(module, x), _context(case, f"torch_code make_module, {label}", input_shape, code_path))


def is_known_verify_bug(case: Case, plan, verification) -> bool:
    """test_fixed_verify_explicit_padding_unknown_sizes: for a size-independent plan of a call with an explicit
    padding list, verify() samples input sizes 1..2*stride+3 regardless of the kernel extent, finds none valid and
    reports passed=False with the bogus reason "the smallest check needs more than 2^63 operations"."""
    return ("verify_explicit_padding_unknown_sizes" in KNOWN_BUGS and case.explicit_padding
            and plan.exact_for_every_input_size and not verification["cases"]
            and "more than 2^63" in verification["summary"])


def test_enough_tf_nn_cases_ran():
    """The CI profile must have compared at least CONVBRIDGE_TF_NN_CASES calls (runs after the suite above)."""
    if STATS["cases"] == 0:
        pytest.skip("run together with test_generated_tf_nn_calls_match_tf")
    print(summary_line())
    if PROFILE == "ci":
        assert STATS["compared"] >= CI_CASES, summary_line()
    assert STATS["tf_rejected_config"] > 0 and STATS["tf_rejected_size"] > 0 and STATS["refused"] > 0, summary_line()
    assert STATS["none_input_shape"] > 0, summary_line()
    assert set(STATS["per_function"]) == {"conv1d", "conv2d", "conv3d", "depthwise_conv2d", "convolution"}, \
        summary_line()


# ------------------------------------------------------------------------------------------------------------------
# The transposed functions: tf.nn.conv1d_transpose / conv2d_transpose / conv3d_transpose / conv_transpose
# ------------------------------------------------------------------------------------------------------------------

TRANSPOSED_CI_CASES = int(os.environ.get("CONVBRIDGE_TF_NN_TRANSPOSED_CASES", "300"))
TRANSPOSED_PROFILES = {
    # About 3 in 5 generated calls are compared against TF (the rest: a wrong output_shape or argument, rejected by
    # both, or a refusal; Hypothesis favours the rare branches' bounds): 3x leaves a margin.
    "ci": settings(max_examples=TRANSPOSED_CI_CASES * 3, derandomize=True, deadline=None, print_blob=True,
                   suppress_health_check=list(HealthCheck)),
    "dev": settings(max_examples=10000, deadline=None, print_blob=True, suppress_health_check=list(HealthCheck)),
}
TRANSPOSED_FUNCTIONS = ["conv1d_transpose", "conv2d_transpose", "conv2d_transpose", "conv3d_transpose",
                        "conv_transpose", "conv_transpose"]
TRANSPOSED_RANK = {"conv1d_transpose": 1, "conv2d_transpose": 2, "conv3d_transpose": 3}
NOT_SUPPORTED_YET = "not supported yet"
NO_CPU_DILATIONS = "do not yet support dilation"  # TF's own CPU Conv2DBackpropInput / Conv3DBackpropInputV2
STATS["transposed"] = {"cases": 0, "compared": 0, "plans": 0, "per_function": {}, "batch_named": 0,
                       "tf_rejected": 0, "wrong_output_shape": 0, "refused_padding": 0, "refused_channels_first": 0,
                       "onednn_arbitrated": 0, "onednn_cases": [], "xla_reference": 0, "model_disagreed": 0,
                       "crop_end": 0, "output_longer_than_full": 0,
                       "seconds": 0.0}


def transposed_summary_line() -> str:
    t = STATS["transposed"]
    per = ", ".join(f"{name} {count}" for name, count in sorted(t["per_function"].items()))
    return (f"differential (tf.nn transposed): {t['cases']} generated calls in {t['seconds']:.0f} s, {t['compared']} "
            f"compared against TF ({per}; {t['plans']} plans, {t['batch_named']} with a named batch, "
            f"{t['crop_end']} with a CropEnd step, {t['output_longer_than_full']} with an output longer than the "
            f"full transposed output); {t['tf_rejected']} rejected by TF and by convbridge "
            f"({t['wrong_output_shape']} wrong output_shape), {t['refused_padding']} padding lists refused as "
            f"'{NOT_SUPPORTED_YET}' (TF runs them), {t['refused_channels_first']} channels_first refused; "
            f"{t['onednn_arbitrated']} decided by TF with oneDNN off, {t['xla_reference']} with TF's XLA as the "
            f"reference (dilations > 1, which TF's own CPU kernels refuse); {t['model_disagreed']} rejected by both "
            f"although the generator's model accepts them"
            + "".join(f"\n    {line}" for line in t["onednn_cases"][:20]))


def _transposed_note(line: str) -> None:
    t = STATS["transposed"]
    t["onednn_arbitrated"] += 1
    if line not in t["onednn_cases"]:
        t["onednn_cases"].append(line)


def transposed_output_sizes(padding, size: int, kernel: int, stride: int, dilation: int) -> list:
    """Every output size TF accepts for an input size along one axis: those whose forward convolution (same padding)
    gives `size` back (TF: "Size of out_backprop doesn't match computed"). padding: 'SAME', 'VALID' or a pair."""
    extent = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return list(range((size - 1) * stride + 1, size * stride + 1))  # ceil(out / s) == size
    before, after = (0, 0) if padding == "VALID" else padding
    return [o for o in ((size - 1) * stride + extent + r - before - after for r in range(stride)) if o >= 1]


def transposed_forward_size(padding, out: int, kernel: int, stride: int, dilation: int):
    """The forward convolution's output size for an input of size `out` (None when the kernel does not fit)."""
    extent = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return -(-out // stride)
    before, after = (0, 0) if padding == "VALID" else padding
    return (out + before + after - extent) // stride + 1 if out + before + after >= extent else None


def transposed_refuses_pair(pair, out: int, kernel: int, stride: int, dilation: int) -> bool:
    """The documented limitation: an explicit (before, after) pair with before - after + r >= stride (r the rest of
    the forward division) would need a PyTorch output_padding not below the stride; PyTorch takes output_padding <
    max(stride, dilation), and convbridge uses that too (stride 1, dilation 2, pads (1, 0) is translated)."""
    extent = (kernel - 1) * dilation + 1
    before, after = pair
    return before - after + (out + before + after - extent) % stride >= max(stride, dilation)


@dataclass(frozen=True)
class TransposedCase:
    text: str
    function: str
    rank: int
    filters_shape: tuple  # (*kernel, out_channels, in_channels)
    shape: tuple  # the input x (N, *spatial, in_channels)
    output_shape: tuple  # the output_shape the text asks for, with the real batch
    batch_named: bool  # output_shape's batch entry is the name `batch` (bound to N for TF)
    unknown_form: object  # a second input_shape for convbridge: None, all-None but the channels, or batch only
    tf_accepts: bool  # by the generator's model (TF decides; the model only labels the summary)
    refused: str | None  # a documented convbridge refusal of a call TF runs
    crop_end: bool  # some axis ends before PyTorch's padding can end it (before - after + r < 0)
    longer_than_full: bool  # some output is longer than the full transposed output (VALID with r > 0)
    notes: tuple = field(default=())


@st.composite
def transposed_size_text(draw, values, argument):
    """(text, accepted): strides / dilations text for a transposed function: int (equal values), one entry, n entries
    or n + 2 (batch and channel entries 1), rarely a form TF rejects (accepted False; TF's oneDNN kernels skip some of
    these checks: the oneDNN-off arbiter decides). Text None: omitted."""
    tuple_form, spaced = draw(st.booleans()), draw(st.booleans())
    if argument == "dilations" and all(v == 1 for v in values) and draw(st.integers(0, 2)) > 0:
        return (None if draw(st.booleans()) else "None"), True
    if rare(draw, 40):
        return seq_text(list(values) + [1], tuple_form, spaced), False  # n + 1 entries: TF rejects the length
    if rare(draw, 40):
        return seq_text([1, *values, draw(st.sampled_from([2, 3]))], tuple_form, spaced), False  # channel entry
    if rare(draw, 40):
        return seq_text([draw(st.sampled_from([2, 3])), *values, 1], tuple_form, spaced), False  # batch entry
    forms = ["n", "full"] + (["int", "int", "one"] if len(set(values)) == 1 else [])
    form = draw(st.sampled_from(forms))
    if form == "int":
        return str(values[0]), True
    if form == "one":
        return seq_text([values[0]], tuple_form, spaced), True
    if form == "n":
        return seq_text(values, tuple_form, spaced), True
    return seq_text([1, *values, 1], tuple_form, spaced), True


@st.composite
def tf_nn_transposed_case(draw):
    function = draw(st.sampled_from(TRANSPOSED_FUNCTIONS))
    rank = TRANSPOSED_RANK.get(function) or draw(st.sampled_from([1, 2, 2, 3]))
    prefix = draw(st.sampled_from(["tf.nn.", "tf.nn.", "tf.nn.", "tensorflow.nn."]))
    notes = []
    kernel = [draw(st.integers(1, 4 if rank < 3 else 3)) for _ in range(rank)]
    out_channels, in_channels = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    filters_shape = (*kernel, out_channels, in_channels)
    strides = [draw(st.integers(1, 3)) for _ in range(rank)] if draw(st.integers(0, 3)) else [1] * rank
    dilations = [draw(st.integers(1, 2)) for _ in range(rank)] if draw(st.integers(0, 2)) == 0 else [1] * rank
    if rare(draw, 60):
        strides[draw(st.integers(0, rank - 1))] = 0  # TF rejects it
        notes.append("zero stride")
    strides_text, strides_ok = draw(transposed_size_text(strides, "strides"))
    dilations_text, dilations_ok = draw(transposed_size_text(dilations, "dilations"))
    if not (strides_ok and dilations_ok):
        notes.append("strides/dilations form")

    explicit_allowed = rank == 2 and function in ("conv2d_transpose", "conv_transpose")
    padding = draw(st.sampled_from(["SAME", "VALID"] + (["explicit", "explicit"] if explicit_allowed else [])))
    sizes = [draw(st.integers(1, 6 if rank < 3 else 4)) for _ in range(rank)]
    batch = draw(st.integers(1, 3))
    channels_first = rare(draw, 40)

    # Per axis: the padding (for explicit lists) and an output size TF accepts for the input size.
    axis_padding, out = [], []
    for axis in range(rank):
        k, s, d, size = kernel[axis], max(strides[axis], 1), dilations[axis], sizes[axis]
        pad = "SAME" if padding == "SAME" else "VALID" if padding == "VALID" else \
            (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        choices = transposed_output_sizes(pad, size, k, s, d)
        if not choices:  # the pads eat the whole output: drop them on this axis
            pad = (0, 0)
            choices = transposed_output_sizes(pad, size, k, s, d)
        axis_padding.append(pad)
        out.append(draw(st.sampled_from(choices)))
    output_shape = [batch, *out, out_channels]
    tf_accepts = min(strides) > 0 and not channels_first and strides_ok and dilations_ok
    notes_before = len(notes)
    if draw(st.integers(0, 9)) == 0:  # an output_shape TF rejects
        kind = draw(st.sampled_from(["size", "size", "size", "channels", "batch"]))
        if kind == "size":
            axis = draw(st.integers(0, rank - 1))
            k, s, d, pad = kernel[axis], max(strides[axis], 1), dilations[axis], axis_padding[axis]
            valid = transposed_output_sizes(pad, sizes[axis], k, s, d)
            wrong_sizes = [o for o in (min(valid) - 1, max(valid) + 1, min(valid) - s)
                           if o >= 1 and transposed_forward_size(pad, o, k, s, d) != sizes[axis]]
            if wrong_sizes:
                out[axis] = draw(st.sampled_from(wrong_sizes))
                output_shape[1 + axis] = out[axis]
                notes.append(f"output size {out[axis]} on axis {axis}")
        elif kind == "channels":
            channels = out_channels + draw(st.sampled_from([1, 2]))
            # A multiple of out_channels whose groups divide in_channels is a grouped transposed convolution TF's
            # oneDNN kernels (and XLA) run: test_fixed_transposed_grouped_output_channels.
            grouped = channels % out_channels == 0 and in_channels % (channels // out_channels) == 0 and rank < 3
            if not (grouped and "transposed_grouped_output_channels" in KNOWN_BUGS):
                output_shape[-1] = channels
                notes.append("output_shape channels")
        else:
            output_shape[0] = batch + 1
            notes.append("output_shape batch")
    tf_accepts = tf_accepts and len(notes) == notes_before
    batch_named = output_shape[0] == batch and draw(st.integers(0, 2)) == 0
    tuple_form, spaced = draw(st.booleans()), draw(st.booleans())
    shape_entries = ["batch" if batch_named else str(output_shape[0]), *map(str, output_shape[1:])]
    if "output_shape_none_batch" not in KNOWN_BUGS and rare(draw, 40):
        shape_entries[0] = "None"  # TF: "Attempt to convert a value (None) ... to a Tensor"
        tf_accepts = False
        notes.append("output_shape batch None")
    output_shape_text = seq_text(shape_entries, tuple_form, spaced)

    if padding == "explicit":
        pairs = [[0, 0], *[list(p) for p in axis_padding], [0, 0]]
        pair_tuples = draw(st.booleans())
        padding_text = seq_text([seq_text(p, pair_tuples, spaced) for p in pairs], pair_tuples, spaced)
    else:
        spelled = padding
        if rare(draw, 30):
            spelled = padding.lower()  # TF: upper case only
            tf_accepts = False
            notes.append("lower-case padding")
        padding_text = repr(spelled) if draw(st.integers(0, 3)) else f'"{spelled}"'
        if spelled == "SAME" and draw(st.integers(0, 3)) == 0:
            padding_text = None  # the default

    data_format_text = None
    if channels_first:
        data_format_text = repr(CHANNELS_FIRST[rank])
    elif draw(st.integers(0, 4)) == 0:
        data_format_text = draw(st.sampled_from([repr(CHANNELS_LAST[rank])] + (["None"] if function ==
                                                                                  "conv_transpose" else [])))
    name_text = repr("deconv") if draw(st.integers(0, 5)) == 0 else None
    default_format = {"conv1d_transpose": "'NWC'", "conv2d_transpose": "'NHWC'",
                      "conv3d_transpose": "'NDHWC'"}.get(function, "None")
    parameters = [("input", "x", None), ("filters", "w", None), ("output_shape", output_shape_text, None),
                  ("strides", strides_text, "None"), ("padding", padding_text, "'SAME'"),
                  ("data_format", data_format_text, default_format), ("dilations", dilations_text, "None"),
                  ("name", name_text, "None")]
    if strides_text is None:
        strides_text = seq_text(strides, False)
        parameters[3] = ("strides", strides_text, "None")  # strides is required
    last_given = max(i for i, (_, value, _) in enumerate(parameters) if value is not None)
    positional = draw(st.integers(2, last_given + 1))
    arguments, keywords = [], []
    for i, (pname, value, default) in enumerate(parameters):
        if i < positional:
            arguments.append(value if value is not None else default)
        elif value is not None:
            keywords.append(f"{pname}={value}")
    keywords = list(draw(st.permutations(keywords)))
    text = f"{prefix}{function}({', '.join(arguments + keywords)})"

    shape = (batch, *sizes, in_channels)
    form = draw(st.sampled_from(["none", "channels", "batch"]))
    unknown_form = None if form == "none" else (None,) * (rank + 1) + (in_channels,) if form == "channels" else \
        (batch,) + (None,) * rank + (in_channels,)

    refused = "channels_first data_format" if channels_first else None
    crop_end = longer = False
    if tf_accepts:
        for axis in range(rank):
            k, s, d, pad = kernel[axis], strides[axis], dilations[axis], axis_padding[axis]
            extent = (k - 1) * d + 1
            if pad == "SAME":
                need = max(0, (sizes[axis] - 1) * s + extent - out[axis])
                pair = (need // 2, need - need // 2)
            else:
                pair = (0, 0) if pad == "VALID" else pad
            r = (out[axis] + sum(pair) - extent) % s
            if pad not in ("SAME", "VALID") and transposed_refuses_pair(pad, out[axis], k, s, d):
                refused = refused or "padding list"
            crop_end |= pair[0] - pair[1] + r < 0
            longer |= out[axis] > (sizes[axis] - 1) * s + extent - pair[0]
    return TransposedCase(text, function, rank, filters_shape, shape, tuple(output_shape), batch_named,
                          unknown_form, tf_accepts, refused, crop_end, longer, tuple(notes))


def _transposed_context(case: TransposedCase, label: str, input_shape, code_path=None) -> str:
    where = (f"\n  call text:     {case.text}\n  filters_shape: {case.filters_shape} (*kernel, out, in)"
             f"\n  input x:       {case.shape}{'  (batch = %d)' % case.shape[0] if case.batch_named else ''}"
             f"\n  path:          {label}"
             f"\n  reproduce:     convbridge.translate({case.text!r}, input_shape={input_shape}, "
             f"filters_shape={case.filters_shape}); tensors: tf_nn_tensors(text, {case.function!r}, shape, "
             f"filters_shape)")
    return where + (f"\n  emitted code:  {code_path}" if code_path is not None else "")


def unknown_batch_entries() -> tuple:
    """What the JSON shapes may hold for an unknown batch: null, or while the bug of
    test_fixed_json_unknown_batch_is_not_null is open, what convbridge writes (-1 in input_shape, 1 in output_shape)."""
    return (None, -1, 1) if "json_unknown_batch" in KNOWN_BUGS else (None,)


@TRANSPOSED_PROFILES[PROFILE]
@given(tf_nn_transposed_case())
def test_generated_tf_nn_transposed_calls_match_tf(case: TransposedCase):
    started = time.perf_counter()
    try:
        _check_transposed_case(case)
    finally:
        STATS["transposed"]["seconds"] += time.perf_counter() - started


def _check_transposed_case(case: TransposedCase):
    t = STATS["transposed"]
    t["cases"] += 1
    extra = {"batch": case.shape[0]}
    x, w = tf_nn_tensors(case.text, case.function, case.shape, case.filters_shape)
    expected, error = tf_call(case.text, ("x", "w"), x, w, extra=extra)
    arbiter = None  # TF with oneDNN off: (output, error text), asked only when needed
    uses_xla = False
    if error is not None and NO_CPU_DILATIONS in str(error):
        # TF's own CPU kernels (explicit padding lists bypass oneDNN) refuse dilations > 1 for the transposed
        # convolutions, which are well defined: the same call under XLA is the reference (test_fact_tf_cpu_...).
        expected, error = tf_call(case.text, ("x", "w"), x, w, jit=True, extra=extra)
        t["xla_reference"] += int(error is None)

    def ask_arbiter():
        nonlocal arbiter, uses_xla
        if arbiter is None:
            arbiter = tf_call_without_onednn(case.text, ("x", "w"), x, w, extra=extra)
            if arbiter[0] is None and NO_CPU_DILATIONS in arbiter[1]:
                # TF's own CPU kernels refuse dilations > 1 for the transposed convolutions: XLA, still oneDNN off
                arbiter = tf_call_without_onednn(case.text, ("x", "w"), x, w, jit=True, extra=extra)
                uses_xla = True
        return arbiter

    if case.refused == "channels_first data_format":
        t["refused_channels_first"] += 1
        for input_shape in (case.shape, case.unknown_form):
            try:
                convbridge.translate(case.text, input_shape=input_shape, filters_shape=case.filters_shape)
            except ValueError as rejection:
                message = str(rejection)
                assert NOT_SUPPORTED_YET in message or "data_format" not in message, message
            else:
                raise AssertionError("convbridge translated a channels_first call"
                                     + _transposed_context(case, "translate", input_shape))
        return

    def convbridge_rejection(input_shape):
        try:
            convbridge.translate(case.text, input_shape=input_shape, filters_shape=case.filters_shape)
        except ValueError as rejection:
            return str(rejection)
        return None

    if error is not None:
        rejection = convbridge_rejection(case.shape)
        if rejection is not None and case.tf_accepts:
            # Both reject what the generator's model calls valid: TF without oneDNN (or XLA) must reject it too.
            reference, reason = ask_arbiter()
            assert reference is None, (f"TF (oneDNN) and convbridge reject a call TF with oneDNN off runs: "
                                       f"{error_summary(error)}; convbridge: {rejection}"
                                       + _transposed_context(case, "translate", case.shape))
            t["model_disagreed"] += 1
        if rejection is not None:
            t["tf_rejected"] += 1
            t["wrong_output_shape"] += int(any(note.startswith("output") for note in case.notes))
            if "output_shape channels" in case.notes:  # no input size makes it valid
                assert convbridge_rejection(case.unknown_form) is not None, \
                    _transposed_context(case, "translate", case.unknown_form)
            return
        # convbridge plans a call TF (oneDNN) rejects: unless TF without oneDNN runs it, convbridge is wrong.
        reference, reason = ask_arbiter()
        if reference is None or tuple(reference.shape) != case.output_shape:
            off = error_summary(reason) if reference is None else f"output shape {reference.shape}"
            raise AssertionError(f"convbridge plans a call the real TF rejects: {error_summary(error)} (with oneDNN "
                                 f"off: {off})" + _transposed_context(case, "translate", case.shape))
        t["xla_reference"] += int(uses_xla)
        _transposed_note(f"{case.text} {case.filters_shape} at {case.shape}: oneDNN {error_summary(error)}")
        expected = reference

    assert tuple(expected.shape) == case.output_shape, (f"TF's output {expected.shape} is not its output_shape"
                                                        + _transposed_context(case, "TF", case.shape))
    if case.refused == "padding list":
        # The documented limitation: TF runs it (just shown), convbridge refuses it, for every input_shape form.
        t["refused_padding"] += 1
        for input_shape in (case.shape, case.unknown_form):
            message = convbridge_rejection(input_shape)
            assert message is not None and NOT_SUPPORTED_YET in message, (
                f"the padding list should be refused as '{NOT_SUPPORTED_YET}': {message}"
                + _transposed_context(case, "translate", input_shape))
        return

    rejection = convbridge_rejection(case.shape)
    if rejection is not None:
        # TF (oneDNN) runs it. If TF without oneDNN rejects it (oneDNN skips checks), the rejection stands.
        reference, reason = ask_arbiter()
        if reference is None and not case.tf_accepts:
            t["tf_rejected"] += 1
            t["wrong_output_shape"] += int(any(note.startswith("output") for note in case.notes))
            _transposed_note(f"{case.text} {case.filters_shape} at {case.shape}: oneDNN ran it, TF's own kernel: "
                             f"{error_summary(reason)}")
            return
        raise AssertionError(f"convbridge rejects a call TF runs: {rejection}"
                             + _transposed_context(case, "translate", case.shape))

    t["compared"] += 1
    t["per_function"][case.function] = t["per_function"].get(case.function, 0) + 1
    t["batch_named"] += int(case.batch_named)
    t["crop_end"] += int(case.crop_end)
    t["output_longer_than_full"] += int(case.longer_than_full)
    atol = tf_nn_tolerance(case.function, case.filters_shape)
    derived = list(case.shape[1:])  # the spatial sizes and channels convbridge must derive from output_shape

    for input_shape in (case.shape, case.unknown_form):
        label = "known size" if input_shape is case.shape else "derived size"
        plan = convbridge.translate(case.text, input_shape=input_shape, filters_shape=case.filters_shape)
        t["plans"] += 1
        context = _transposed_context(case, label, input_shape)
        assert not plan.exact_for_every_input_size, context
        described = json.loads(plan.to_json())
        batch_known = not case.batch_named or (input_shape is not None and input_shape[0] is not None)
        assert described["input_shape"][1:] == derived, f"JSON input_shape {described['input_shape']}" + context
        assert described["output_shape"][1:] == list(expected.shape[1:]), \
            f"JSON output_shape {described['output_shape']} != TF {list(expected.shape)}" + context
        if batch_known:
            assert described["input_shape"][0] == described["output_shape"][0] == case.shape[0], \
                f"JSON shapes {described['input_shape']} -> {described['output_shape']}" + context
        else:
            assert described["input_shape"][0] in unknown_batch_entries() and \
                described["output_shape"][0] in unknown_batch_entries(), \
                f"JSON shapes {described['input_shape']} -> {described['output_shape']} (unknown batch)" + context
        got_shape = plan.output_shape(list(case.shape))
        assert got_shape == list(expected.shape), f"TorchPlan.output_shape {got_shape} != TF" + context
        verification = plan.verify()
        assert verification["passed"], f"reference engine: {verification['summary']}" + context
        module, code_path = make_module_from_plan(plan, w, "transposed")
        got = torch_forward64(module, x)
        context = _transposed_context(case, f"torch_code make_module, {label}", input_shape, code_path)
        try:
            assert_matches_tf(got, expected, atol, context)
        except AssertionError as mismatch:
            reference, reason = ask_arbiter()
            if reference is None or reference.shape != expected.shape:
                off = error_summary(reason) if reference is None else f"output shape {reference.shape}"
                raise AssertionError(f"{mismatch}\n  TF with oneDNN off: {off}") from None
            onednn_off = np.abs(reference.astype(np.float64) - expected)
            if np.all(np.isfinite(expected)) and float(onednn_off.max()) <= atol:
                raise
            assert_matches_tf(got, reference, atol, context + "\n  reference: TF with oneDNN off (the oneDNN run "
                              "disagrees with it: a TF oneDNN bug)")
            t["xla_reference"] += int(uses_xla)
            _transposed_note(f"{case.text} {case.filters_shape} at {case.shape}: oneDNN output off")
            expected = reference


def test_enough_tf_nn_transposed_cases_ran():
    """The CI profile must have compared at least CONVBRIDGE_TF_NN_TRANSPOSED_CASES transposed calls (runs after the
    profile above)."""
    t = STATS["transposed"]
    if t["cases"] == 0:
        pytest.skip("run together with test_generated_tf_nn_transposed_calls_match_tf")
    print(transposed_summary_line())
    if PROFILE == "ci":
        assert t["compared"] >= TRANSPOSED_CI_CASES, transposed_summary_line()
    assert set(t["per_function"]) == {"conv1d_transpose", "conv2d_transpose", "conv3d_transpose",
                                      "conv_transpose"}, transposed_summary_line()
    assert t["tf_rejected"] > 0 and t["wrong_output_shape"] > 0 and t["refused_padding"] > 0, \
        transposed_summary_line()
    assert t["batch_named"] > 0 and t["crop_end"] > 0 and t["output_longer_than_full"] > 0, transposed_summary_line()



# ------------------------------------------------------------------------------------------------------------------
# Named traps
# ------------------------------------------------------------------------------------------------------------------


def check_against_tf(text: str, filters_shape, plan_shape, shapes, names=("x", "w")):
    """The plan for input_shape=plan_shape (None, with None sizes, or known) reproduces the real TF call at every
    channels_last input shape in `shapes` (make_module from torch_code, float64) and gives TF's output shape.
    Returns the plan."""
    function = text.split("(", 1)[0].rsplit(".", 1)[-1]
    plan = convbridge.translate(text, input_shape=plan_shape, filters_shape=filters_shape)
    verification = plan.verify()
    assert verification["passed"], verification["summary"]
    atol = tf_nn_tolerance(function, filters_shape)
    for shape in shapes:
        x, w = tf_nn_tensors(text, function, shape, filters_shape)
        expected, error = tf_call(text, names, x, w)
        assert error is None, f"TF rejects {text} at {shape}: {error_summary(error)}"
        context = f"\n  call text: {text}\n  filters_shape: {filters_shape}\n  input: {shape}\n  plan for: {plan_shape}"
        assert plan.output_shape(list(shape)) == list(expected.shape), context
        module, path = make_module_from_plan(plan, w, "named")
        assert_matches_tf(torch_forward64(module, x), expected, atol, context + f"\n  code: {path}")
    return plan


def steps_of(plan) -> list:
    return json.loads(plan.to_json())["steps"]


def test_same_at_stride2_split_depends_on_input_size():
    """TF 'SAME' pads need = max(0, (ceil(in/s)-1)*s + k - in), need//2 before: for k=3, s=2 an even size pads (0, 1),
    an odd one (1, 1). No fixed nn.Conv2d padding does both; the size-independent plan pads at run time."""
    text, filters_shape = "tf.nn.conv2d(x, w, strides=2, padding='SAME')", (3, 3, 2, 3)
    # The trap itself, on real TF: SAME equals VALID after tf.pad with (0, 1) at size 8 and (1, 1) at size 9.
    for size, pads in ((8, (0, 1)), (9, (1, 1))):
        x, w = tf_nn_tensors(text, "conv2d", (1, size, size, 2), filters_shape)
        same = tf.nn.conv2d(x, w, 2, "SAME").numpy()
        valid = tf.nn.conv2d(tf.pad(x, [[0, 0], pads, pads, [0, 0]]), w, 2, "VALID").numpy()
        assert np.abs(same - valid).max() < 1e-5, (size, pads)
    shapes = [(2, 8, 8, 2), (2, 9, 9, 2), (1, 8, 9, 2), (1, 10, 7, 2), (3, 1, 1, 2), (1, 2, 3, 2), (1, 12, 5, 2)]
    for plan_shape in ((None, None, None, 2), None, (None, 8, None, 2)):
        fits = [s for s in shapes if all(p is None or p == v for p, v in zip(plan_shape or (), s))]
        plan = check_against_tf(text, filters_shape, plan_shape, fits)
        assert plan.exact_for_every_input_size
        assert any(step.get("mode") == "tf_same_at_runtime" for step in steps_of(plan)), plan.to_json()
        assert "TFSamePad" in plan.torch_code()
    # Known sizes: the cheapest plan for each, different for even and odd sizes.
    odd = check_against_tf(text, filters_shape, (2, 9, 9, 2), [(2, 9, 9, 2)])
    assert [step["op"] for step in steps_of(odd)] == ["conv"] and steps_of(odd)[0]["padding"] == [1, 1]
    even = check_against_tf(text, filters_shape, (2, 8, 8, 2), [(2, 8, 8, 2)])
    assert [step["op"] for step in steps_of(even)] == ["pad", "conv"], even.to_json()
    assert steps_of(even)[0]["pads"] == [[0, 1], [0, 1]] and steps_of(even)[1]["padding"] == [0, 0]
    assert not odd.exact_for_every_input_size and not even.exact_for_every_input_size


def test_explicit_asymmetric_padding_becomes_a_constant_pad():
    text, filters_shape = "tf.nn.conv2d(x, w, 1, [[0, 0], [1, 2], [0, 1], [0, 0]])", (3, 3, 4, 5)
    for plan_shape in (None, (None, None, None, 4), (1, 7, 6, 4)):
        shapes = [(1, 7, 6, 4)] if plan_shape and plan_shape[1] else [(1, 7, 6, 4), (2, 1, 2, 4), (1, 4, 9, 4)]
        plan = check_against_tf(text, filters_shape, plan_shape, shapes)
        steps = steps_of(plan)
        assert [step["op"] for step in steps] == ["pad", "conv"], plan.to_json()
        assert steps[0]["mode"] == "zeros" and steps[0]["pads"] == [[1, 2], [0, 1]]
        assert steps[1]["padding"] == [0, 0]
        assert "nn.ConstantPad2d((0, 1, 1, 2), 0.0)" in plan.torch_code()  # (left, right, top, bottom)


def test_explicit_symmetric_padding_is_the_convs_own():
    text, filters_shape = "tf.nn.conv2d(x, w, [1, 2, 2, 1], ((0, 0), (1, 1), (2, 2), (0, 0)))", (3, 4, 3, 2)
    for plan_shape in (None, (None, None, None, 3), (2, 6, 5, 3)):
        shapes = [(2, 6, 5, 3)] if plan_shape and plan_shape[1] else [(2, 6, 5, 3), (1, 1, 1, 3), (1, 7, 8, 3)]
        plan = check_against_tf(text, filters_shape, plan_shape, shapes)
        steps = steps_of(plan)
        assert [step["op"] for step in steps] == ["conv"], plan.to_json()
        assert steps[0]["padding"] == [1, 2] and steps[0]["stride"] == [2, 2]


def test_grouped_conv2d_is_inferred_from_the_shapes():
    """Filters of input depth 2 on a 6-channel input: TF runs 3 groups (each group's 2 channels with its own 2 of the
    6 output filters); convbridge must make nn.Conv2d(6, 6, groups=3)."""
    text, filters_shape = "tf.nn.conv2d(x, w, 1, 'SAME')", (3, 3, 2, 6)
    # TF really groups: equal to the concatenation of per-group convolutions.
    x, w = tf_nn_tensors(text, "conv2d", (2, 5, 6, 6), filters_shape)
    grouped = tf.nn.conv2d(x, w, 1, "SAME").numpy()
    per_group, _ = tf_call_per_group(text, ("x", "w"), x, w, 3)
    assert np.abs(grouped - per_group).max() < 1e-5
    for plan_shape in ((None, None, None, 6), (2, 5, 6, 6)):
        plan = check_against_tf(text, filters_shape, plan_shape, [(2, 5, 6, 6)])
        conv = steps_of(plan)[-1]
        assert (conv["in_channels"], conv["out_channels"], conv["groups"]) == (6, 6, 3), conv
    # Without an input shape the channel count is the filters' in_depth: an ungrouped convolution of 2 channels.
    plan = convbridge.translate(text, filters_shape=filters_shape)
    assert steps_of(plan)[-1]["groups"] == 1 and steps_of(plan)[-1]["in_channels"] == 2


def test_depthwise_channel_order_with_multiplier():
    """TF's depthwise output channel c*M + m is input channel c through filter[:, :, c, m]; PyTorch's grouped conv
    with groups=C orders its outputs group by group, so the weight must be (C*M, 1, kh, kw) in that same order."""
    text, filters_shape = "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'SAME')", (3, 2, 3, 2)
    shapes = [(2, 6, 5, 3), (1, 1, 4, 3)]
    for plan_shape in (None, (None, None, None, 3), (2, 6, 5, 3)):
        plan = check_against_tf(text, filters_shape, plan_shape, shapes[:1] if plan_shape and plan_shape[1] else shapes)
        assert plan.weight_names == ["filter"]
        conv = steps_of(plan)[-1]
        assert (conv["in_channels"], conv["out_channels"], conv["groups"]) == (3, 6, 3), conv
    # The comparison tells the orders apart: the other order (m*C + c) is far off.
    x, w = tf_nn_tensors(text, "depthwise_conv2d", shapes[0], filters_shape)
    expected = tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME").numpy()
    module, _ = make_module_from_plan(convbridge.translate(text, filters_shape=filters_shape), w, "order")
    got = torch_forward64(module, x)
    swapped = got.reshape(*got.shape[:-1], 3, 2).swapaxes(-1, -2).reshape(got.shape)
    assert np.abs(swapped - expected).max() > 100 * tf_nn_tolerance("depthwise_conv2d", filters_shape)


def test_conv1d_with_a_stride_list():
    text, filters_shape = "tf.nn.conv1d(x, w, [1, 2, 1], 'SAME')", (3, 4, 5)
    shapes = [(2, 8, 4), (2, 9, 4), (1, 1, 4), (3, 2, 4)]
    for plan_shape in (None, (None, None, 4)):
        plan = check_against_tf(text, filters_shape, plan_shape, shapes)
        assert steps_of(plan)[-1]["stride"] == [2] and steps_of(plan)[-1]["module"] == "Conv1d"
    for shape in shapes:
        check_against_tf(text, filters_shape, shape, [shape])
    check_against_tf("tf.nn.conv1d(input=x, filters=w, stride=(2,), padding='VALID', dilations=[1, 2, 1])",
                     filters_shape, None, [(2, 9, 4), (1, 5, 4)])


def test_conv3d_same_at_stride2():
    text, filters_shape = "tf.nn.conv3d(x, w, strides=[1, 2, 2, 2, 1], padding='SAME')", (3, 3, 2, 2, 4)
    shapes = [(2, 4, 5, 6, 2), (1, 5, 5, 5, 2), (1, 1, 2, 3, 2)]
    for plan_shape in (None, (None, None, None, None, 2)):
        plan = check_against_tf(text, filters_shape, plan_shape, shapes)
        assert any(step.get("mode") == "tf_same_at_runtime" for step in steps_of(plan))
    for shape in shapes:
        check_against_tf(text, filters_shape, shape, [shape])


def test_convolution_with_dilations():
    cases = [
        ("tf.nn.convolution(x, w, padding='SAME', dilations=[2, 3])", (3, 3, 3, 4), [(2, 9, 10, 3), (1, 2, 1, 3)]),
        ("tf.nn.convolution(x, w, dilations=2)", (3, 2, 4), [(2, 9, 2), (1, 5, 2)]),
        ("tensorflow.nn.convolution(input=x, filters=w, strides=None, padding='VALID', dilations=(1, 2, 1))",
         (2, 2, 3, 2, 3), [(1, 3, 5, 4, 2)]),
    ]
    for text, filters_shape, shapes in cases:
        plan = check_against_tf(text, filters_shape, None, shapes)
        rank = len(filters_shape) - 2
        dilation = {1: [2], 2: [2, 3], 3: [1, 2, 1]}[rank]
        assert steps_of(plan)[-1]["dilation"] == dilation, plan.to_json()
        for shape in shapes:
            check_against_tf(text, filters_shape, shape, [shape])


# ------------------------------------------------------------------------------------------------------------------
# Rejections, proven against TF
# ------------------------------------------------------------------------------------------------------------------

# tf_verdict: how the real TF rejects the call: "eager" (the eager call raises), "own_kernel" (TF's own kernel
# raises; the default oneDNN kernel silently ignores the problem), "shape" (oneDNN returns an output of the input's
# size holding garbage, TF's own kernel an empty one), "refusal" (TF runs it: a documented convbridge refusal) or
# None (not a TF question).
# channels_only: the rejection needs the input's channel count (not visible with input_shape=None).
def rejection(case_id, text, filters_shape, input_shape, needles, tf_verdict="eager", channels_only=False):
    return pytest.param(text, filters_shape, input_shape, needles, tf_verdict, channels_only, id=case_id)


REJECTIONS = [
    rejection("lowercase-same", "tf.nn.conv2d(x, w, 2, 'same')", (3, 3, 4, 8), (1, 9, 9, 4), ["padding='same'"]),
    rejection("lowercase-valid-depthwise", "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], padding='valid')",
              (3, 3, 4, 1), (1, 9, 9, 4), ["padding='valid'"]),
    rejection("conv3d-int-strides", "tf.nn.conv3d(x, w, strides=2, padding='SAME')", (2, 2, 2, 4, 8),
              (1, 5, 5, 5, 4), ["strides=2", "list of 5"]),
    rejection("conv3d-int-dilations", "tf.nn.conv3d(x, w, [1, 1, 1, 1, 1], 'SAME', dilations=2)", (2, 2, 2, 4, 8),
              (1, 5, 5, 5, 4), ["dilations=2", "list of 5"]),
    rejection("depthwise-int-strides", "tf.nn.depthwise_conv2d(x, w, 2, 'SAME')", (3, 3, 4, 2), (1, 9, 9, 4),
              ["strides=2", "list of 4"]),
    rejection("depthwise-two-strides", "tf.nn.depthwise_conv2d(x, w, [2, 2], 'SAME')", (3, 3, 4, 2), (1, 9, 9, 4),
              ["strides=[2, 2]"]),
    rejection("depthwise-four-dilations", "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'VALID', dilations=[1, 2, 2, 1])",
              (3, 3, 4, 2), (1, 9, 9, 4), ["dilations=[1, 2, 2, 1]"]),
    rejection("batch-padding", "tf.nn.conv2d(x, w, 1, [[1, 0], [1, 1], [1, 1], [0, 0]])", (3, 3, 4, 8), (1, 9, 9, 4),
              ["padding=[[1, 0], [1, 1], [1, 1], [0, 0]]", "batch", "[1, 0]"], "own_kernel"),
    rejection("channel-padding", "tf.nn.conv2d(x, w, 1, [[0, 0], [1, 1], [1, 1], [0, 2]])", (3, 3, 4, 8),
              (1, 9, 9, 4), ["padding=[[0, 0], [1, 1], [1, 1], [0, 2]]", "channel", "[0, 2]"], "own_kernel"),
    rejection("batch-padding-depthwise", "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], [[0, 1], [1, 1], [0, 0], [0, 0]])",
              (3, 3, 4, 1), (1, 9, 9, 4), ["padding=[[0, 1], [1, 1], [0, 0], [0, 0]]", "batch"], "own_kernel"),
    rejection("negative-padding", "tf.nn.conv2d(x, w, 1, [[0, 0], [-1, 1], [0, 0], [0, 0]])", (3, 3, 4, 8),
              (1, 9, 9, 4), ["padding=[[0, 0], [-1, 1], [0, 0], [0, 0]]", "-1"]),
    rejection("three-padding-pairs", "tf.nn.conv2d(x, w, 1, [[0, 0], [1, 1], [1, 1]])", (3, 3, 4, 8), (1, 9, 9, 4),
              ["padding=[[0, 0], [1, 1], [1, 1]]", "3 pairs"]),
    rejection("conv1d-explicit-padding", "tf.nn.conv1d(x, w, 1, [[0, 0], [1, 1], [0, 0]])", (3, 4, 8), (1, 9, 4),
              ["padding=[[0, 0], [1, 1], [0, 0]]", "tf.nn.conv1d"]),
    rejection("conv3d-explicit-padding",
              "tf.nn.conv3d(x, w, [1, 1, 1, 1, 1], [[0, 0], [1, 1], [1, 1], [1, 1], [0, 0]])", (2, 2, 2, 4, 8),
              (1, 5, 5, 5, 4), ["padding=[[0, 0], [1, 1], [1, 1], [1, 1], [0, 0]]", "tf.nn.conv3d"]),
    rejection("convolution-explicit-padding", "tf.nn.convolution(x, w, 1, [[0, 0], [1, 1], [1, 1], [0, 0]])",
              (3, 3, 4, 8), (1, 9, 9, 4), ["padding=[[0, 0], [1, 1], [1, 1], [0, 0]]", "tf.nn.convolution"]),
    rejection("nchw", "tf.nn.conv2d(x, w, 1, 'SAME', data_format='NCHW')", (3, 3, 4, 8), (1, 4, 9, 9),
              ["data_format='NCHW'", "not supported yet"], "refusal"),
    rejection("ncw", "tf.nn.conv1d(x, w, 1, 'SAME', 'NCW')", (3, 4, 8), (1, 4, 9),
              ["data_format='NCW'", "not supported yet"], "refusal"),
    rejection("ncdhw-convolution", "tf.nn.convolution(x, w, padding='SAME', data_format='NCDHW')", (2, 2, 2, 4, 8),
              (1, 4, 5, 5, 5), ["data_format='NCDHW'", "not supported yet"], "refusal"),
    rejection("filters-depth-not-dividing-channels", "tf.nn.conv2d(x, w, 1, 'VALID')", (3, 3, 3, 8), (1, 7, 7, 4),
              ["4 channels", "input depth 3"], channels_only=True),
    rejection("out-channels-not-dividing-groups", "tf.nn.conv2d(x, w, 1, 'VALID')", (3, 3, 2, 5), (1, 7, 7, 4),
              ["2 groups", "5 output channels"], channels_only=True),
    rejection("depthwise-filter-depth", "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'VALID')", (3, 3, 3, 2),
              (1, 7, 7, 4), ["4 channels", "in_channels 3"], channels_only=True),
    rejection("filters-shape-rank-3-for-conv2d", "tf.nn.conv2d(x, w, 1, 'VALID')", (3, 3, 4), (1, 7, 7, 4),
              ["filters", "3 entries", "4-D"]),
    rejection("filters-shape-rank-5-for-conv2d", "tf.nn.conv2d(x, w, 1, 'VALID')", (3, 3, 2, 4, 8), (1, 7, 7, 4),
              ["filters", "5 entries", "4-D"]),
    rejection("convolution-strides-with-dilations", "tf.nn.convolution(x, w, strides=2, dilations=2)", (3, 3, 4, 8),
              (1, 9, 9, 4), ["strides=2", "dilations=2"]),
    rejection("zero-stride", "tf.nn.conv2d(x, w, 0, 'VALID')", (3, 3, 4, 8), (1, 9, 9, 4), ["strides=0"]),
    rejection("zero-dilation-conv1d", "tf.nn.conv1d(x, w, 1, 'VALID', dilations=[1, 0, 1])", (3, 4, 8), (1, 9, 4),
              ["dilations=[1, 0, 1]"]),
    rejection("strides-length-3-conv2d", "tf.nn.conv2d(x, w, [1, 2, 1], 'VALID')", (3, 3, 4, 8), (1, 9, 9, 4),
              ["strides=[1, 2, 1]", "3 entries"]),
    rejection("stride-channel-entry", "tf.nn.conv2d(x, w, [1, 2, 2, 2], 'VALID')", (3, 3, 4, 8), (1, 9, 9, 4),
              ["strides=[1, 2, 2, 2]", "batch or channel"]),
    rejection("dilation-batch-entry-conv3d", "tf.nn.conv3d(x, w, [1, 1, 1, 1, 1], 'VALID', dilations=[2, 1, 1, 1, 1])",
              (2, 2, 2, 4, 8), (1, 5, 5, 5, 4), ["dilations=[2, 1, 1, 1, 1]", "batch or channel"]),
    rejection("input-smaller-than-kernel", "tf.nn.conv2d(x, w, 1, 'VALID')", (3, 3, 4, 8), (2, 2, 9, 4),
              ["(2,2,9,4)", "smaller than the kernel"], "shape"),
    rejection("input-smaller-than-dilated-kernel-conv1d", "tf.nn.conv1d(x, w, 1, 'VALID', dilations=3)", (2, 4, 8),
              (2, 3, 4), ["(2,3,4)", "smaller than the kernel"], "shape"),
    rejection("unknown-keyword", "tf.nn.conv2d(x, w, 1, 'VALID', rate=2)", (3, 3, 4, 8), (1, 9, 9, 4), ["'rate'"]),
    rejection("missing-padding", "tf.nn.conv2d(x, w, 1)", (3, 3, 4, 8), (1, 9, 9, 4), ["'padding'"]),
]


def tf_rejects(text, filters_shape, input_shape, verdict) -> str:
    """Asserts the real TF rejects the call in the way `verdict` says (see `rejection`); returns what it said."""
    function = text.split("(", 1)[0].rsplit(".", 1)[-1]
    x, w = tf_nn_tensors(text, function, input_shape, filters_shape)
    y, error = tf_call(text, ("x", "w"), x, w)
    if verdict == "eager":
        assert error is not None, f"TF runs {text} at {input_shape} with filters {filters_shape}: output {y.shape}"
        return error_summary(error)
    # TF's default (oneDNN) kernel runs it without an error; TF's own kernel raises.
    assert error is None, f"TF's oneDNN kernel now rejects {text}: {error_summary(error)}; update the table"
    if verdict == "shape":
        assert y.shape[1:-1] == input_shape[1:-1], f"oneDNN returned {y.shape}: no longer the input's garbage shape"
    own, own_error = tf_call_without_onednn(text, ("x", "w"), x, w)
    if verdict == "shape" and own is not None:  # TF's own kernel returns an empty output
        assert own.size == 0, f"TF with oneDNN off runs {text} at {input_shape}: output {own.shape}"
        return f"TF with oneDNN off: empty output {own.shape}"
    assert own is None, f"TF with oneDNN off runs {text} at {input_shape}: output {own.shape}"
    return error_summary(own_error)


@pytest.mark.parametrize("text, filters_shape, input_shape, needles, tf_verdict, channels_only", REJECTIONS)
def test_rejections_name_the_argument_and_tf_agrees(text, filters_shape, input_shape, needles, tf_verdict,
                                                    channels_only):
    if tf_verdict in ("eager", "own_kernel", "shape"):
        tf_rejects(text, filters_shape, input_shape, tf_verdict)
    elif tf_verdict == "refusal":  # TF runs it: convbridge's refusal is its own (channels_first is not translated)
        function = text.split("(", 1)[0].rsplit(".", 1)[-1]
        y, error = tf_call(text, ("x", "w"), *tf_nn_tensors(text, function, input_shape, filters_shape))
        assert error is None, f"TF rejects {text}: {error_summary(error)}"
    # The known shape; unless the input size is the problem, the same with unknown sizes; unless the channel count
    # is, no input shape at all.
    shapes = [input_shape]
    if tf_verdict != "shape":
        shapes.append((None,) * (len(input_shape) - 1) + (input_shape[-1],))
        if not channels_only:
            shapes.append(None)
    for shape in shapes:
        with pytest.raises(ValueError) as info:
            convbridge.translate(text, input_shape=shape, filters_shape=filters_shape)
        assert_names(str(info.value), needles, f"\n  call: {text} filters_shape={filters_shape} input_shape={shape}")


def test_missing_filters_shape_is_rejected():
    for text in ("tf.nn.conv2d(x, w, 1, 'VALID')", "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'SAME')"):
        with pytest.raises(ValueError, match="filters_shape"):
            convbridge.translate(text)
        with pytest.raises(ValueError, match="filters_shape"):
            convbridge.translate(text, input_shape=(1, 9, 9, 4))


def test_depthwise_stride_with_dilation_is_refused():
    """TF's depthwise_conv2d with strides > 1 and dilations > 1 only warns ("all values of strides must be 1") and
    returns values that are not the strided, dilated convolution: convbridge refuses it, naming both arguments."""
    text, filters_shape, shape = "tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], 'VALID', dilations=[2, 2])", \
        (2, 2, 3, 2), (2, 7, 7, 3)
    x, w = tf_nn_tensors(text, "depthwise_conv2d", shape, filters_shape)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], "VALID", dilations=[2, 2]).numpy()
    assert any("strides must be 1" in str(c.message) for c in caught), [str(c.message) for c in caught]
    weight = torch.from_numpy(np.transpose(w, (2, 3, 0, 1)).reshape(6, 1, 2, 2)).double()
    math_result = torch.nn.functional.conv2d(torch.from_numpy(np.moveaxis(x, -1, 1)).double(), weight, stride=2,
                                             dilation=2, groups=3).numpy()
    assert y.shape == np.moveaxis(math_result, 1, -1).shape
    assert np.abs(y - np.moveaxis(math_result, 1, -1)).max() > 0.1, "TF now computes it correctly: revisit"
    for input_shape in (shape, None, (None, None, None, 3)):
        with pytest.raises(ValueError) as info:
            convbridge.translate(text, input_shape=input_shape, filters_shape=filters_shape)
        assert_names(str(info.value), ["strides=[1, 2, 2, 1]", "dilations=[2, 2]"])


def test_conv_functions_accept_strides_with_dilations():
    """Unlike depthwise_conv2d and convolution, tf.nn.conv1d/conv2d/conv3d run strides > 1 with dilations > 1
    correctly: convbridge translates them."""
    check_against_tf("tf.nn.conv2d(x, w, 2, 'SAME', dilations=2)", (3, 3, 2, 4), None, [(2, 9, 10, 2), (1, 4, 3, 2)])
    check_against_tf("tf.nn.conv1d(x, w, 3, 'VALID', dilations=2)", (3, 2, 4), None, [(2, 11, 2), (1, 5, 2)])
    check_against_tf("tf.nn.conv3d(x, w, [1, 2, 1, 2, 1], 'SAME', dilations=[1, 1, 2, 2, 1])", (2, 2, 2, 2, 3),
                     None, [(1, 5, 6, 7, 2)])


# ------------------------------------------------------------------------------------------------------------------
# TF facts the profile relies on
# ------------------------------------------------------------------------------------------------------------------


def test_fact_tf_cannot_run_grouped_conv3d_eagerly_but_xla_can():
    """Why grouped 3-D calls use XLA (or TF per group) as the reference in the profile."""
    text, filters_shape, shape = "tf.nn.conv3d(x, w, [1, 1, 2, 1, 1], 'SAME')", (2, 2, 2, 2, 6), (2, 4, 5, 5, 4)
    x, w = tf_nn_tensors(text, "conv3d", shape, filters_shape)
    _, error = tf_call(text, ("x", "w"), x, w)
    assert error is not None and SAME_DEPTH_ERROR in str(error), "TF runs grouped conv3d eagerly now: revisit"
    xla, xla_error = tf_call(text, ("x", "w"), x, w, jit=True)
    assert xla_error is None
    per_group, _ = tf_call_per_group(text, ("x", "w"), x, w, 2)
    assert np.abs(xla - per_group).max() < 1e-5
    for plan_shape in ((None, None, None, None, 4), shape):
        plan = convbridge.translate(text, input_shape=plan_shape, filters_shape=filters_shape)
        module, _ = make_module_from_plan(plan, w, "grouped3d")
        assert_matches_tf(torch_forward64(module, x), xla, tf_nn_tolerance("conv3d", filters_shape), f"\n {text}")


def test_fact_tf_graph_conv3d_shape_function_swaps_dilations():
    """TF's graph-mode (tf.function / XLA) Conv3D shape function pairs the height and width dilations with the wrong
    axes: the static shape is wrong, and where it goes negative the call cannot be built (eager is right). So for a
    grouped dilated 3-D call XLA can fail, and the profile then runs the same text per group eagerly."""
    x = np.zeros((1, 6, 7, 8, 1), np.float32)
    w = np.zeros((1, 3, 1, 1, 1), np.float32)  # kernel 3 along H, dilation 2 along W: H out = 7 - 3 + 1 = 5
    function = lambda a, b: tf.nn.conv3d(a, b, [1, 1, 1, 1, 1], "VALID", dilations=[1, 1, 1, 2, 1])  # noqa: E731
    assert tuple(function(x, w).shape) == (1, 6, 5, 8, 1)
    static = tf.function(function).get_concrete_function(tf.TensorSpec(x.shape), tf.TensorSpec(w.shape))
    assert tuple(static.structured_outputs.shape) == (1, 6, 3, 8, 1), "TF's Conv3D shape function is fixed: revisit"


def test_fact_tf_onednn_depthwise_width1_stride_bug():
    """TF's oneDNN depthwise kernel is wrong (huge values) for stride > 1 along W with an output width of 1, even at
    batch 1; TF's own depthwise kernel refuses unequal strides, so the profile's arbiter uses XLA (oneDNN off)."""
    text, filters_shape, shape = "tf.nn.depthwise_conv2d(x, w, [1, 1, 2, 1], 'SAME')", (1, 2, 1, 2), (1, 3, 1, 1)
    x, w = tf_nn_tensors(text, "depthwise_conv2d", shape, filters_shape)
    onednn, _ = tf_call(text, ("x", "w"), x, w)
    own, own_error = tf_call_without_onednn(text, ("x", "w"), x, w)
    assert own is None and "equal length strides" in own_error, own_error
    xla, _ = tf_call_without_onednn(text, ("x", "w"), x, w, jit=True)
    assert not np.abs(onednn - xla).max() < 0.1, "TF's oneDNN depthwise width-1 bug seems fixed: revisit"
    for plan_shape in (shape, None):
        plan = convbridge.translate(text, input_shape=plan_shape, filters_shape=filters_shape)
        module, _ = make_module_from_plan(plan, w, "onednn")
        assert_matches_tf(torch_forward64(module, x), xla, tf_nn_tolerance("depthwise_conv2d", filters_shape),
                          f"\n {text}")


# ------------------------------------------------------------------------------------------------------------------
# Bugs this file found (fixed) and the inputs convbridge refuses although TF runs them (KNOWN_BUGS)
# ------------------------------------------------------------------------------------------------------------------


def test_fixed_conv1d_batch_entry_of_stride_list():
    """Was refused: TF puts the batch entry of a conv1d stride/dilations list on the size-1 height axis of its
    internal 2-D conv, where it changes nothing."""
    filters_shape, shapes = (2, 4, 3), [(2, 9, 4), (1, 4, 4)]
    for text, same_as in (("tf.nn.conv1d(x, w, [2, 2, 1], 'VALID')", "tf.nn.conv1d(x, w, 2, 'VALID')"),
                          ("tf.nn.conv1d(x, w, 1, 'SAME', dilations=[3, 2, 1])",
                           "tf.nn.conv1d(x, w, 1, 'SAME', dilations=2)"),
                          ("tf.nn.convolution(x, w, [2, 2, 1], 'VALID')", "tf.nn.convolution(x, w, 2, 'VALID')")):
        for shape in shapes:  # TF: the batch entry changes nothing
            x, w = tf_nn_tensors(text, "conv1d", shape, filters_shape)
            assert np.array_equal(tf_call(text, ("x", "w"), x, w)[0], tf_call(same_as, ("x", "w"), x, w)[0])
        check_against_tf(text, filters_shape, None, shapes)


def test_refused_depthwise_one_entry_dilations():
    """tf.nn.depthwise_conv2d(..., dilations=[d]) runs in TF as dilation (d, 1) (with_space_to_batch takes the list's
    length as the number of spatial axes): convbridge refuses it rather than guess which axis was meant."""
    text, filters_shape, shapes = "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'VALID', dilations=[2])", \
        (2, 2, 3, 2), [(2, 5, 6, 3)]
    x, w = tf_nn_tensors(text, "depthwise_conv2d", shapes[0], filters_shape)
    two = "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'VALID', dilations=[2, 1])"
    assert np.array_equal(tf_call(text, ("x", "w"), x, w)[0], tf_call(two, ("x", "w"), x, w)[0])
    with pytest.raises(ValueError) as info:
        convbridge.translate(text, input_shape=shapes[0], filters_shape=filters_shape)
    assert_names(str(info.value), ["dilations=[2]", "list of 2 ints"])


def test_fixed_convolution_dilated_explicit_padding():
    """Was refused: a 2-D tf.nn.convolution with dilations > 1 takes a padding list (its dilated path)."""
    text = "tf.nn.convolution(x, w, 1, [[0, 0], [1, 2], [0, 1], [0, 0]], dilations=2)"
    check_against_tf(text, (3, 2, 3, 4), None, [(2, 7, 8, 3), (1, 3, 2, 3)])


def test_fixed_convolution_dilated_path_drops_batch_and_channel_entries():
    """Was refused: tf.nn.convolution's dilated path keeps only the spatial entries of strides and dilations."""
    cases = [("tf.nn.convolution(x, w, 1, 'SAME', dilations=[1, 2, 2])",
              "tf.nn.convolution(x, w, 1, 'SAME', dilations=2)", (2, 3, 4), (2, 9, 3)),
             ("tf.nn.convolution(x, w, 1, 'SAME', dilations=[2, 1, 1, 1])",
              "tf.nn.convolution(x, w, 1, 'SAME')", (2, 2, 3, 4), (2, 9, 8, 3)),
             ("tf.nn.convolution(x, w, [1, 2, 1, 1], 'VALID', dilations=[2, 1, 1, 1])",
              "tf.nn.convolution(x, w, [2, 1], 'VALID')", (2, 2, 3, 4), (2, 9, 8, 3)),
             ("tf.nn.convolution(x, w, [2, 1, 1, 1], 'SAME', dilations=[1, 2, 1, 1])",
              "tf.nn.convolution(x, w, 1, 'SAME', dilations=[2, 1])", (2, 2, 3, 4), (2, 9, 8, 3))]
    for text, same_as, filters_shape, shape in cases:
        x, w = tf_nn_tensors(text, "convolution", shape, filters_shape)
        assert np.array_equal(tf_call(text, ("x", "w"), x, w)[0], tf_call(same_as, ("x", "w"), x, w)[0]), text
    for text, _, filters_shape, shape in cases:
        check_against_tf(text, filters_shape, None, [shape])


def test_refused_depthwise_dilated_padding_batch_and_channel_pairs():
    """With dilations > 1 tf.nn.depthwise_conv2d goes through with_space_to_batch, which keeps only the spatial pairs
    of a padding list and silently drops non-zero batch/channel pairs (without dilation TF rejects them: "Nonzero
    explicit padding in the batch or depth dimensions"). convbridge refuses them everywhere."""
    filters_shape, shape = (2, 2, 3, 2), (2, 6, 7, 3)
    text = "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], [[1, 0], [1, 1], [0, 2], [0, 3]], dilations=[1, 2])"
    same_as = "tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], [[0, 0], [1, 1], [0, 2], [0, 0]], dilations=[1, 2])"
    x, w = tf_nn_tensors(text, "depthwise_conv2d", shape, filters_shape)
    assert np.array_equal(tf_call(text, ("x", "w"), x, w)[0], tf_call(same_as, ("x", "w"), x, w)[0])
    assert tf_call_without_onednn(text, ("x", "w"), x, w)[0] is not None  # TF's own kernels run it too
    with pytest.raises(ValueError) as info:
        convbridge.translate(text, input_shape=shape, filters_shape=filters_shape)
    assert_names(str(info.value), ["padding=", "batch dimension"])


def test_fixed_verify_explicit_padding_unknown_sizes():
    """Was a bug: verify() sampled sizes from 1 for padding lists, so no sample fitted a kernel larger than the
    pads ('skipped: ... more than 2^63 operations')."""
    for text, filters_shape in (("tf.nn.conv2d(x, w, 1, [[0, 0], [0, 0], [0, 0], [0, 0]])", (5, 5, 1, 1)),
                                ("tf.nn.conv2d(x, w, 1, [[0, 0], [1, 0], [0, 0], [0, 0]], dilations=[1, 2])",
                                 (1, 4, 1, 1))):
        plan = convbridge.translate(text, filters_shape=filters_shape)
        verification = plan.verify()
        assert verification["passed"], f"{text} {filters_shape}: {verification['summary']}"


def test_wrong_rank_filters_shape_message_names_the_value():
    with pytest.raises(ValueError) as info:
        convbridge.translate("tf.nn.conv2d(x, w, 1, 'VALID')", input_shape=(1, 7, 7, 4), filters_shape=(3, 3, 4))
    assert_names(str(info.value), ["filters shape (3, 3, 4)", "3 entries", "4-D"])


def test_wrong_rank_input_shape_is_reported_as_such():
    with pytest.raises(ValueError) as info:
        convbridge.translate("tf.nn.conv2d(x, w, 1, 'VALID')", input_shape=(1, 9, 9), filters_shape=(3, 3, 4, 8))
    assert_names(str(info.value), ["3 dimensions"])


# ------------------------------------------------------------------------------------------------------------------
# Named tests: the transposed functions
# ------------------------------------------------------------------------------------------------------------------


def tf_transposed_reference(text: str, x: np.ndarray, w: np.ndarray, batch=None):
    """The real TF call (eager; under XLA where TF's own CPU kernels refuse dilations > 1): (output, error)."""
    extra = {"batch": x.shape[0] if batch is None else batch}
    y, error = tf_call(text, ("x", "w"), x, w, extra=extra)
    if error is not None and NO_CPU_DILATIONS in str(error):
        y, error = tf_call(text, ("x", "w"), x, w, jit=True, extra=extra)
    return y, error


def check_transposed_against_tf(text: str, filters_shape, input_shape, x_shape, plan_input_shape="derive"):
    """The plan for input_shape (omitted when "derive") reproduces the real TF call on an input of x_shape (TF's
    output shape, values, verify(), the derived input shape). Returns (plan, TF output)."""
    function = text.split("(", 1)[0].rsplit(".", 1)[-1]
    plan = convbridge.translate(text, filters_shape=filters_shape) if input_shape == "derive" else \
        convbridge.translate(text, input_shape=input_shape, filters_shape=filters_shape)
    described = json.loads(plan.to_json())
    assert described["input_shape"][1:] == list(x_shape[1:]), plan.to_json()
    assert not plan.exact_for_every_input_size
    verification = plan.verify()
    assert verification["passed"], verification["summary"]
    x, w = tf_nn_tensors(text, function, x_shape, filters_shape)
    expected, error = tf_transposed_reference(text, x, w)
    assert error is None, f"TF rejects {text} at {x_shape}: {error_summary(error)}"
    context = f"\n  call text: {text}\n  filters_shape: {filters_shape}\n  input: {x_shape}\n  plan for: {input_shape}"
    assert plan.output_shape(list(x_shape)) == list(expected.shape), context
    module, path = make_module_from_plan(plan, w, "named_transposed")
    assert_matches_tf(torch_forward64(module, x), expected, tf_nn_tolerance(function, filters_shape),
                      context + f"\n  code: {path}")
    return plan, expected


def full_transposed_output(x: np.ndarray, w: np.ndarray, strides, dilations) -> np.ndarray:
    """z, the full transposed convolution (no padding, length (in-1)*s + eff per axis), by PyTorch in float64:
    the mathematical object every tf.nn.conv*_transpose output is a window of."""
    rank = x.ndim - 2
    weight = torch.from_numpy(np.transpose(w, (rank + 1, rank, *range(rank))).astype(np.float64))
    function = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
                3: torch.nn.functional.conv_transpose3d}[rank]
    z = function(torch.from_numpy(np.moveaxis(x, -1, 1).astype(np.float64)), weight, stride=tuple(strides),
                 dilation=tuple(dilations))
    return np.moveaxis(z.numpy(), 1, -1)


def conv_steps(plan) -> list:
    return [step for step in steps_of(plan) if step["op"] == "conv"]


def test_transposed_same_stride2_even_and_odd_outputs():
    """conv2d_transpose 'SAME' at stride 2, kernel 3, input 4: TF takes out 7 or 8 (ceil(out / 2) == 4) and returns
    z[before : before + out] of the full output z (length 9), before = need // 2 with need = 9 - out: out 7 starts
    at z[1] (padding 1, no crop), out 8 at z[0] and stops one short of z's end: a CropEnd step."""
    filters_shape, x_shape = (3, 3, 3, 4), (2, 4, 4, 4)
    for out, before, step_ops, padding, crop in ((8, 0, ["conv", "crop_end"], [0, 0], [1, 1]),
                                                 (7, 1, ["conv"], [1, 1], None)):
        text = f"tf.nn.conv2d_transpose(x, w, [2, {out}, {out}, 3], strides=2, padding='SAME')"
        plan, expected = check_transposed_against_tf(text, filters_shape, "derive", x_shape)
        # The trap on real TF: the output is that window of the full transposed output.
        x, w = tf_nn_tensors(text, "conv2d_transpose", x_shape, filters_shape)
        z = full_transposed_output(x, w, (2, 2), (1, 1))
        assert z.shape[1:3] == (9, 9)
        window = z[:, before:before + out, before:before + out]
        assert np.abs(window - expected).max() < tf_nn_tolerance("conv2d_transpose", filters_shape)
        steps = steps_of(plan)
        assert [step["op"] for step in steps] == step_ops, plan.to_json()
        assert steps[0]["module"] == "ConvTranspose2d" and steps[0]["padding"] == padding
        assert steps[0]["output_padding"] == [0, 0] and steps[0]["stride"] == [2, 2]
        if crop is not None:
            assert steps[1]["crop"] == crop and "CropEnd((1, 1))" in plan.torch_code()
        check_transposed_against_tf(text, filters_shape, x_shape, x_shape)


def test_transposed_valid_output_longer_than_full_output():
    """'VALID' takes out = (in-1)*s + eff + r for any r < s: with r > 0 the output runs past the full transposed
    output z (length L) and TF fills the r extra outputs with zeros; PyTorch's output_padding r does the same."""
    text, filters_shape, x_shape = "tf.nn.conv2d_transpose(x, w, [1, 10, 9, 2], [1, 3, 3, 1], 'VALID')", \
        (2, 3, 2, 3), (1, 3, 3, 3)
    # H: L = 2*3 + 2 = 8, out 10 (r = 2); W: L = 2*3 + 3 = 9, out 9 (r = 0)
    plan, expected = check_transposed_against_tf(text, filters_shape, "derive", x_shape)
    assert np.all(expected[:, 8:] == 0) and np.abs(expected[:, :8]).min() >= 0 and np.abs(expected[:, 7]).max() > 0
    steps = steps_of(plan)
    assert [step["op"] for step in steps] == ["conv"], plan.to_json()
    assert steps[0]["padding"] == [0, 0] and steps[0]["output_padding"] == [2, 0]
    assert "output_padding=(2, 0)" in plan.torch_code()


def test_transposed_explicit_asymmetric_padding_list():
    """An explicit list crops z: TF's output is z[before : before + out] per axis, out = (in-1)*s + eff - before -
    after + r (the forward conv of the output with the same pads gives the input)."""
    text = "tf.nn.conv2d_transpose(x, w, [2, 6, 11, 3], 2, [[0, 0], [2, 1], [0, 1], [0, 0]])"
    filters_shape, x_shape = (3, 3, 3, 4), (2, 4, 5, 4)
    # H: 3*2 + 3 - 2 - 1 + r, out 6 (r 0); W: 4*2 + 3 - 0 - 1 + r, out 11 (r 1)
    for input_shape in ("derive", x_shape, (None, None, None, 4), None):
        plan, expected = check_transposed_against_tf(text, filters_shape, input_shape, x_shape)
    x, w = tf_nn_tensors(text, "conv2d_transpose", x_shape, filters_shape)
    z = full_transposed_output(x, w, (2, 2), (1, 1))  # (2, 9, 11, 3)
    assert np.abs(z[:, 2:8, 0:11] - expected).max() < tf_nn_tolerance("conv2d_transpose", filters_shape)
    (conv,) = conv_steps(plan)
    assert conv["padding"] == [2, 0] and conv["output_padding"] == [1, 0], plan.to_json()  # before - after + r


def test_conv1d_transpose():
    text, filters_shape, x_shape = \
        "tf.nn.conv1d_transpose(x, w, output_shape=[2, 9, 4], strides=[1, 2, 1], padding='SAME')", (3, 4, 5), (2, 5, 5)
    for input_shape in ("derive", x_shape, (2, None, 5)):
        plan, _ = check_transposed_against_tf(text, filters_shape, input_shape, x_shape)
        assert conv_steps(plan)[0]["module"] == "ConvTranspose1d"
    _, error = tf_call(text, ("x", "w"), *tf_nn_tensors(text, "conv1d_transpose", (2, 4, 5), filters_shape))
    assert error is not None  # TF: the output_shape fixes the input size (ceil(9 / 2) = 5)


def test_conv3d_transpose_takes_int_strides():
    """Unlike tf.nn.conv3d (full lists only), conv3d_transpose takes an int."""
    text, filters_shape, x_shape = "tf.nn.conv3d_transpose(x, w, [1, 5, 6, 4, 2], 2, 'SAME')", (2, 3, 2, 2, 3), \
        (1, 3, 3, 2, 3)
    plan, _ = check_transposed_against_tf(text, filters_shape, "derive", x_shape)
    assert conv_steps(plan)[0]["module"] == "ConvTranspose3d" and conv_steps(plan)[0]["stride"] == [2, 2, 2]
    x, w = tf_nn_tensors(text, "conv3d", x_shape, (2, 3, 2, 3, 2))
    _, error = tf_call("tf.nn.conv3d(x, w, 2, 'SAME')", ("x", "w"), x, w)
    assert error is not None, "tf.nn.conv3d takes an int stride now: revisit"
    with pytest.raises(ValueError):
        convbridge.translate("tf.nn.conv3d(x, w, 2, 'SAME')", input_shape=x_shape, filters_shape=(2, 3, 2, 3, 2))


@pytest.mark.parametrize("specific, filters_shape, x_shape", [
    ("tf.nn.conv1d_transpose(x, w, [2, 7, 3], 2, 'VALID')", (3, 3, 2), (2, 3, 2)),
    ("tf.nn.conv2d_transpose(x, w, [2, 7, 8, 3], 2, 'VALID')", (3, 2, 3, 2), (2, 3, 4, 2)),
    ("tf.nn.conv3d_transpose(x, w, [1, 5, 4, 3, 2], [1, 2, 1, 1, 1], 'SAME')", (2, 2, 2, 2, 3), (1, 3, 4, 3, 3)),
], ids=["1d", "2d", "3d"])
def test_conv_transpose_dispatches_on_output_shape_length(specific, filters_shape, x_shape):
    """tf.nn.conv_transpose is conv{len(output_shape) - 2}d_transpose: same TF output, same plan."""
    generic = specific.replace(specific.split("(", 1)[0], "tf.nn.conv_transpose")
    x, w = tf_nn_tensors(specific, "conv_transpose", x_shape, filters_shape)
    assert np.array_equal(tf_call(generic, ("x", "w"), x, w)[0], tf_call(specific, ("x", "w"), x, w)[0])
    plan, _ = check_transposed_against_tf(generic, filters_shape, "derive", x_shape)
    specific_plan = convbridge.translate(specific, filters_shape=filters_shape)
    without_why = lambda p: [{k: v for k, v in step.items() if k != "why"} for step in steps_of(p)]  # noqa: E731
    assert without_why(plan) == without_why(specific_plan)  # (the why names the function)
    with pytest.raises(ValueError) as info:  # TF: "output_shape must be of length 3, 4 or 5"
        convbridge.translate("tf.nn.conv_transpose(x, w, [2, 7], 2, 'VALID')", filters_shape=(3, 3, 2))
    assert_names(str(info.value), ["output_shape=[2, 7]", "3, 4 or 5"])


def test_dilated_conv2d_transpose():
    """Dilations (with strides > 1 too): TF's oneDNN kernel runs 'SAME' / 'VALID' ones; explicit lists go to TF's own
    kernel, which refuses dilations > 1 on CPU (test_fact_tf_cpu_transposed_dilations_need_xla): XLA is the
    reference there."""
    filters_shape = (3, 2, 3, 4)
    for text, x_shape in (("tf.nn.conv2d_transpose(x, w, [2, 10, 7, 3], 2, 'VALID', dilations=[2, 1])", (2, 3, 3, 4)),
                          ("tf.nn.conv2d_transpose(x, w, [2, 8, 9, 3], [1, 2, 3, 1], 'SAME', dilations=2)",
                           (2, 4, 3, 4)),
                          ("tf.nn.conv2d_transpose(x, w, [1, 9, 5, 3], 1, [[0, 0], [1, 1], [0, 1], [0, 0]], "
                           "dilations=[2, 2])", (1, 7, 4, 4))):
        plan, _ = check_transposed_against_tf(text, filters_shape, "derive", x_shape)
        assert conv_steps(plan)[0]["dilation"] == ([2, 1] if "[2, 1]" in text else [2, 2]), plan.to_json()


def test_fact_tf_cpu_transposed_dilations_need_xla():
    """TF's own CPU Conv2DBackpropInput refuses dilations > 1 (oneDNN, which 'SAME'/'VALID' calls use, runs them;
    explicit padding lists bypass oneDNN): the profile takes XLA as the reference for those."""
    text = "tf.nn.conv2d_transpose(x, w, [1, 9, 5, 3], 1, [[0, 0], [1, 1], [0, 1], [0, 0]], dilations=2)"
    x, w = tf_nn_tensors(text, "conv2d_transpose", (1, 7, 4, 4), (3, 2, 3, 4))
    _, error = tf_call(text, ("x", "w"), x, w)
    assert error is not None and NO_CPU_DILATIONS in str(error), "TF's CPU kernel runs dilations now: revisit"
    xla, xla_error = tf_call(text, ("x", "w"), x, w, jit=True)
    assert xla_error is None
    z = full_transposed_output(x, w, (1, 1), (2, 2))  # (1, 10, 6, 3): H eff 5, W eff 3
    assert np.abs(z[:, 1:10, 0:5] - xla).max() < tf_nn_tolerance("conv2d_transpose", (3, 2, 3, 4))


def test_transposed_batch_entry_as_a_name():
    """output_shape=[batch, ...]: the batch is unknown to convbridge (TF reads it at run time); one plan serves every
    batch, given an input_shape's batch where there is one."""
    text, filters_shape = "tf.nn.conv2d_transpose(x, w, [batch, 8, 7, 3], 2, 'SAME')", (3, 3, 3, 4)
    plan = convbridge.translate(text, filters_shape=filters_shape)
    described = json.loads(plan.to_json())
    assert described["source"]["output_shape"] == [None, 8, 7, 3]
    assert described["input_shape"][1:] == [4, 4, 4] and described["input_shape"][0] in unknown_batch_entries()
    for batch in (1, 3):
        check_transposed_against_tf(text, filters_shape, "derive", (batch, 4, 4, 4))
        check_transposed_against_tf(text, filters_shape, (None, None, None, 4), (batch, 4, 4, 4))
        known, _ = check_transposed_against_tf(text, filters_shape, (batch, None, None, 4), (batch, 4, 4, 4))
        assert json.loads(known.to_json())["input_shape"] == [batch, 4, 4, 4]
        assert json.loads(known.to_json())["output_shape"] == [batch, 8, 7, 3]


def test_fixed_json_unknown_batch_is_not_null():
    """Reproducer: convbridge.translate("tf.nn.conv2d_transpose(x, w, [batch, 8, 7, 3], 2, 'SAME')",
    filters_shape=(3, 3, 3, 4)).to_json(): expected "input_shape": [null, 4, 4, 4], "output_shape": [null, 8, 7, 3]
    (as its own "source"."output_shape" [null, 8, 7, 3]); actual [-1, 4, 4, 4] and [1, 8, 7, 3]. (Forward plans
    for input_shape=(None, 8, 8, 4) do the same.) The profile accepts -1 / 1 while the key is in KNOWN_BUGS."""
    described = json.loads(convbridge.translate("tf.nn.conv2d_transpose(x, w, [batch, 8, 7, 3], 2, 'SAME')",
                                                filters_shape=(3, 3, 3, 4)).to_json())
    assert described["input_shape"] == [None, 4, 4, 4] and described["output_shape"] == [None, 8, 7, 3], described


def test_transposed_mismatched_input_shape_is_rejected_as_by_tf():
    """The output_shape fixes the input: a given input_shape that does not fit raises, and TF rejects that input."""
    text, filters_shape = "tf.nn.conv2d_transpose(x, w, [2, 8, 8, 3], 2, 'SAME')", (3, 3, 3, 4)
    check_transposed_against_tf(text, filters_shape, (2, 4, 4, 4), (2, 4, 4, 4))
    for shape in ((2, 5, 4, 4), (2, 3, 4, 4), (2, 4, 4, 5), (3, 4, 4, 4)):
        x, w = tf_nn_tensors(text, "conv2d_transpose", shape, filters_shape)
        _, error = tf_call(text, ("x", "w"), x, w)
        assert error is not None, f"TF runs {text} on an input of shape {shape}"
        with pytest.raises(ValueError) as info:
            convbridge.translate(text, input_shape=shape, filters_shape=filters_shape)
        assert_names(str(info.value), [f"input shape {shape}", "does not fit", "(2, 4, 4, 4)"])
    with pytest.raises(ValueError) as info:  # an output smaller than the kernel: no input gives it
        convbridge.translate("tf.nn.conv2d_transpose(x, w, [2, 2, 8, 3], 1, 'VALID')", filters_shape=filters_shape)
    assert_names(str(info.value), ["smaller than the kernel"])


def test_transposed_output_shape_channel_mismatch_is_rejected_as_by_tf():
    text, filters_shape, shape = "tf.nn.conv2d_transpose(x, w, [2, 8, 8, 4], 2, 'SAME')", (3, 3, 3, 4), (2, 4, 4, 4)
    x, w = tf_nn_tensors(text, "conv2d_transpose", shape, filters_shape)
    _, error = tf_call(text, ("x", "w"), x, w)
    assert error is not None
    for input_shape in (shape, None, (None, None, None, 4)):
        with pytest.raises(ValueError) as info:
            convbridge.translate(text, input_shape=input_shape, filters_shape=filters_shape)
        assert_names(str(info.value), ["output_shape=[2, 8, 8, 4]", "4 channels", "not a multiple of the filters' 3"])


def test_transposed_padding_list_beyond_output_padding_is_not_supported_yet():
    """A documented limitation: pads with before - after + r >= stride (r = (out + before + after - eff) % stride)
    would need a PyTorch output_padding not below the stride. TF runs the call (its output is the window
    z[before : before + out] of the full transposed output, computed here by PyTorch); convbridge refuses it."""
    filters_shape, x_shape = (3, 3, 3, 4), (1, 5, 3, 4)
    text = "tf.nn.conv2d_transpose(x, w, [1, 8, 8, 3], 2, [[0, 0], [3, 0], [0, 0], [0, 0]])"
    # H: out 8, pads (3, 0): (8 + 3 - 3) // 2 + 1 = 5, r = 0, 3 - 0 + 0 >= 2; W: (8 - 3) // 2 + 1 = 3
    assert transposed_refuses_pair((3, 0), 8, 3, 2, 1) and not transposed_refuses_pair((0, 0), 8, 3, 2, 1)
    x, w = tf_nn_tensors(text, "conv2d_transpose", x_shape, filters_shape)
    y, error = tf_call(text, ("x", "w"), x, w)
    assert error is None and y.shape == (1, 8, 8, 3), error
    own, _ = tf_call_without_onednn(text, ("x", "w"), x, w)
    z = full_transposed_output(x, w, (2, 2), (1, 1))  # (1, 11, 7, 3)
    window = np.zeros((1, 8, 8, 3))
    window[:, :, :7] = z[:, 3:11, :]  # W: out 8 > L 7, the last output zero
    for reference in (y, own):
        assert np.abs(window - reference).max() < tf_nn_tolerance("conv2d_transpose", filters_shape)
    for input_shape in (x_shape, None, (None, None, None, 4)):
        with pytest.raises(ValueError) as info:
            convbridge.translate(text, input_shape=input_shape, filters_shape=filters_shape)
        assert_names(str(info.value), ["pads 3 before and 0 after", NOT_SUPPORTED_YET])
    # The boundary: PyTorch takes output_padding < max(stride, dilation), so with dilation 2 at stride 1 the pads
    # (1, 0) (output_padding 1) are translated (TF's reference: XLA, test_fact_tf_cpu_transposed_dilations_need_xla).
    text = "tf.nn.conv2d_transpose(x, w, [1, 7, 7, 3], 1, [[0, 0], [1, 0], [0, 0], [0, 0]], dilations=2)"
    assert not transposed_refuses_pair((1, 0), 7, 3, 1, 2) and 1 - 0 + 0 >= 1
    plan, _ = check_transposed_against_tf(text, filters_shape, "derive", (1, 4, 3, 4))
    assert conv_steps(plan)[0]["output_padding"] == [1, 0], plan.to_json()


def test_fixed_transposed_output_shape_none_batch_is_accepted():
    """Reproducer: convbridge.translate("tf.nn.conv2d_transpose(x, w, [None, 8, 8, 3], 2, 'SAME')",
    filters_shape=(3, 3, 3, 4)). TF raises ValueError ("Attempt to convert a value (None) with an unsupported type
    (<class 'NoneType'>) to a Tensor"); expected: ValueError; actual: a plan for inputs (None, 4, 4, 4)."""
    text, filters_shape, shape = "tf.nn.conv2d_transpose(x, w, [None, 8, 8, 3], 2, 'SAME')", (3, 3, 3, 4), (2, 4, 4, 4)
    x, w = tf_nn_tensors(text, "conv2d_transpose", shape, filters_shape)
    _, error = tf_call(text, ("x", "w"), x, w)
    assert error is not None and "None" in str(error), "TF takes a None batch entry now: revisit"
    for input_shape in (shape, None):
        with pytest.raises(ValueError):
            convbridge.translate(text, input_shape=input_shape, filters_shape=filters_shape)


def test_fixed_transposed_grouped_output_channels():
    """Reproducer: convbridge.translate("tf.nn.conv2d_transpose(x, w, [1, 7, 7, 4], 2, 'VALID')", filters_shape=(3,
    3, 2, 4)) (x: (1, 3, 3, 4)). TF's oneDNN kernel runs it as a grouped transposed convolution (groups = 4 / 2 = 2:
    equal, to float32 rounding, to torch conv_transpose2d(..., groups=2)); so does XLA; TF's own CPU kernel says
    "Gradients for grouped convolutions are not supported". convbridge raises ValueError "output_shape=[1, 7, 7, 4] has
    4 channels but the filters make 2 (...; TensorFlow: "input depth must be evenly divisible by filter depth: 4 vs
    2")" although 4 is divisible by 2. Expected: a grouped ConvTranspose2d plan matching TF, or at least an honest
    "not supported yet" refusal."""
    text, filters_shape, shape = "tf.nn.conv2d_transpose(x, w, [1, 7, 7, 4], 2, 'VALID')", (3, 3, 2, 4), (1, 3, 3, 4)
    x, w = tf_nn_tensors(text, "conv2d_transpose", shape, filters_shape)
    y, error = tf_call(text, ("x", "w"), x, w)
    assert error is None, error_summary(error)
    weight = torch.from_numpy(np.transpose(w, (3, 2, 0, 1)).astype(np.float64))
    grouped = torch.nn.functional.conv_transpose2d(torch.from_numpy(np.moveaxis(x, -1, 1).astype(np.float64)), weight,
                                                   stride=2, groups=2).numpy()
    assert np.abs(np.moveaxis(grouped, 1, -1) - y).max() < tf_nn_tolerance("conv2d_transpose", filters_shape)
    try:
        plan = convbridge.translate(text, input_shape=shape, filters_shape=filters_shape)
    except ValueError as error:
        assert NOT_SUPPORTED_YET in str(error), str(error)
        return
    module, path = make_module_from_plan(plan, w, "grouped_transposed")
    assert_matches_tf(torch_forward64(module, x), y, tf_nn_tolerance("conv2d_transpose", filters_shape), str(path))


def test_fixed_transposed_batch_entry_tf_shape_subscript():
    """Reproducer: convbridge.translate("tf.nn.conv2d_transpose(x, w, [tf.shape(x)[0], 8, 8, 3], 2, 'SAME')",
    filters_shape=(3, 3, 3, 4)). TF runs it; parse_output_shape says the batch entry "may be any expression".
    Expected: a plan for inputs (None, 4, 4, 4), as for [batch, 8, 8, 3]. Actual: ValueError "filters_shape is for
    tf.nn calls; this layer's text or object says its kernel" (the call parser stops at the subscript, column 42,
    and the text is then taken for a Keras layer; without filters_shape the error is the parse error)."""
    text, filters_shape = "tf.nn.conv2d_transpose(x, w, [tf.shape(x)[0], 8, 8, 3], 2, 'SAME')", (3, 3, 3, 4)
    check_transposed_against_tf(text, filters_shape, "derive", (2, 4, 4, 4))


# ------------------------------------------------------------------------------------------------------------------
# The CLI
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, filters_shape, cli_shape, shapes", [
    pytest.param("tf.nn.conv2d(x, w, strides=2, padding='SAME')", (3, 3, 4, 6), None,
                 [(2, 8, 9, 4), (1, 1, 2, 4)], id="same-stride2-any-size"),
    pytest.param("tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], [[0, 0], [1, 2], [0, 1], [0, 0]])", (3, 3, 3, 2),
                 (1, 7, 8, 3), [(1, 7, 8, 3)], id="depthwise-explicit-known-size"),
    pytest.param("tf.nn.conv1d(x, w, 2, 'SAME')", (3, 4, 6), (None, None, 4), [(2, 9, 4), (2, 8, 4)],
                 id="conv1d-none-sizes"),
])
def test_cli_emit_torch_matches_tf(text, filters_shape, cli_shape, shapes):
    if not CONVBRIDGE_BIN.exists():
        pytest.fail(f"convbridge binary not found at {CONVBRIDGE_BIN} (set CONVBRIDGE_BIN)")
    cmd = [str(CONVBRIDGE_BIN), "translate", text, "--filters-shape", ",".join(map(str, filters_shape)),
           "--emit", "torch"]
    if cli_shape is not None:
        cmd += ["--input-shape", ",".join("None" if v is None else str(v) for v in cli_shape)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip(), f"{cmd}\n{proc.stderr}"
    path = emitted_dir() / f"tf_nn_cli_{stable_seed(text, cli_shape):08x}.py"
    path.write_text(proc.stdout)
    code = exec_source(proc.stdout, path, f"tf_nn_cli_{stable_seed(text, cli_shape):08x}")
    function = text.split("(", 1)[0].rsplit(".", 1)[-1]
    for shape in shapes:
        x, w = tf_nn_tensors(text, function, shape, filters_shape)
        expected, error = tf_call(text, ("x", "w"), x, w)
        assert error is None, error_summary(error)
        module = code.make_module(w)  # float32 filters, as a user would pass them
        assert_matches_tf(torch_forward64(module, x), expected, tf_nn_tolerance(function, filters_shape),
                          f"\n  command: {subprocess.list2cmdline(cmd)}\n  code: {path}\n  input: {shape}")


def test_cli_rejects_a_tf_nn_call_cleanly():
    for args in (["translate", "tf.nn.conv2d(x, w, 2, 'same')", "--filters-shape", "3,3,4,8"],
                 ["translate", "tf.nn.conv2d(x, w, 2, 'SAME')"],
                 ["translate", "tf.nn.conv3d(x, w, 2, 'SAME')", "--filters-shape", "3,3,3,4,8"]):
        proc = subprocess.run([str(CONVBRIDGE_BIN), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stdout == "", (args, proc)
        assert proc.stderr.startswith("convbridge: error:"), proc.stderr
        assert proc.stderr.count("convbridge: error:") == 1, proc.stderr


def test_cli_emit_torch_transposed_call_matches_tf():
    """`convbridge translate <tf.nn.conv2d_transpose call> --filters-shape ... --emit torch`: the printed code, exec'd,
    reproduces TF for every batch (the output_shape's batch entry is a name) at the input size it derives."""
    if not CONVBRIDGE_BIN.exists():
        pytest.fail(f"convbridge binary not found at {CONVBRIDGE_BIN} (set CONVBRIDGE_BIN)")
    text, filters_shape = "tf.nn.conv2d_transpose(x, w, [batch, 8, 7, 3], 2, 'SAME', dilations=[1, 2])", (3, 3, 3, 4)
    cmd = [str(CONVBRIDGE_BIN), "translate", text, "--filters-shape", ",".join(map(str, filters_shape)),
           "--emit", "torch"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip(), f"{cmd}\n{proc.stderr}"
    assert "(4, 4)" in proc.stdout  # the derived input size, named in the header
    label = f"tf_nn_cli_{stable_seed(text):08x}"
    path = emitted_dir() / f"{label}.py"
    path.write_text(proc.stdout)
    code = exec_source(proc.stdout, path, label)
    for shape in ((1, 4, 4, 4), (3, 4, 4, 4)):
        x, w = tf_nn_tensors(text, "conv2d_transpose", shape, filters_shape)
        expected, error = tf_transposed_reference(text, x, w)
        assert error is None and expected.shape == (shape[0], 8, 7, 3), error_summary(error)
        module = code.make_module(w)  # float32 filters, as a user would pass them
        assert_matches_tf(torch_forward64(module, x), expected, tf_nn_tolerance("conv2d_transpose", filters_shape),
                          f"\n  command: {subprocess.list2cmdline(cmd)}\n  code: {path}\n  input: {shape}")
    mismatch = subprocess.run(cmd[:-2] + ["--input-shape", "2,5,4,4"], capture_output=True, text=True, timeout=60)
    assert mismatch.returncode == 2 and mismatch.stdout == "" and "does not fit" in mismatch.stderr, mismatch
