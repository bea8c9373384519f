#!/usr/bin/env python3
"""Converted layers against the best hand-written exact TensorFlow, per real-model layer shape (not a test).

For every row of bench/tf_layer_shapes.json (a PyTorch conv and its input shape) this times, in one process:
  - convbridge.to_keras(module): the Keras layer, called inside tf.function;
  - the tf.nn code of convbridge.translate(module).tf_code(): conv(x, weight, bias) inside tf.function, the
    weights graph constants (their re-layout folded, as for a deployed layer);
  - hand-written TF for the same layer, written below per kind of layer (Keras' own layer, and raw tf.nn ops with
    the padding, strides, dilations and groups spelled out by hand), each checked exact against PyTorch (float64)
    before it is timed; the fastest of them is the baseline.
Keras' own ConvND with groups > 1 is not among the hand-written forms (see handwritten_forward).
Timing: every candidate of a row runs one untimed call and then `--inner` timed calls per round (more for fast
layers, so that a round takes ~30 ms), the candidates take turns within each round (so
load from other processes falls on all of them alike), and each candidate's time is its median round. The ratio
is convbridge's time / the fastest hand-written time; the target is <= 1.05.

    PYTHONPATH=build-python/pkg python bench/tf_plans_vs_handwritten.py [--rounds 15] [--inner 5] [--threads 1]
        [--only REGEX] [--write]

--write puts the table into README.md between the tf-plans-bench markers.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import torch
from torch import nn

import convbridge
import keras

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
BEGIN, END = "<!-- tf-plans-bench -->", "<!-- /tf-plans-bench -->"
TARGET = 1.05


def torch_module(text):
    module = eval(text, {"nn": nn})  # the rows are this repository's own constructor texts
    torch.manual_seed(0)
    for parameter in module.parameters():  # weights of a trained net's magnitude, not all-equal ones
        torch.nn.init.normal_(parameter, std=0.1)
    return module.eval()


def channels_last(array):
    return np.moveaxis(array, 1, -1)


def spatial_rank(module):
    return len(module.kernel_size)


# ---- hand-written TF, per kind of layer -------------------------------------------------------------------------
# Each function gets the PyTorch module and returns {name: f(x)} for channels_last float32 x; the weights are TF
# constants in TF's layout, re-laid out here by hand.


def _bias(module):
    return None if module.bias is None else tf.constant(module.bias.detach().numpy())


def _with_bias(y, bias):
    return y if bias is None else tf.nn.bias_add(y, bias)


def _tf_pads(module):
    return [[0, 0]] + [[p, p] for p in module.padding] + [[0, 0]]


def _tf_same_equals_torch(module, shape):
    """TF 'SAME' at this input size pads exactly PyTorch's (p, p) and gives its output size."""
    for size, k, s, d, p in zip(shape[2:], module.kernel_size, module.stride, module.dilation, module.padding):
        eff = (k - 1) * d + 1
        out = -(-size // s)
        need = max((out - 1) * s + eff - size, 0)
        if need // 2 != p or out != (size + 2 * p - eff) // s + 1:
            return False
    return True


def handwritten_forward(module, shape):
    rank, groups = spatial_rank(module), module.groups
    cin, cout = module.in_channels, module.out_channels
    weight = module.weight.detach().numpy()
    bias = _bias(module)
    kernel = tf.constant(np.transpose(weight, (*range(2, 2 + rank), 1, 0)))  # (*k, C_in/G, C_out)
    strides, dilations = list(module.stride), list(module.dilation)
    pads = _tf_pads(module)
    padded = any(module.padding)
    variants = {}
    depthwise = groups == cin and groups > 1

    # The raw op: conv2d takes explicit pads, strides with dilations, and the grouped kernel (C_in/G in-depth); not
    # with one input channel per group at stride > 1, where TF 2.21's oneDNN kernel is wrong for a 1-wide output
    # (tests/python/test_traps.py): exact at this row's shape, but no exact translation of the layer.
    if rank == 2 and not (cin // groups == 1 and max(strides) > 1):
        variants["tf.nn.conv2d, explicit pads"] = lambda x: _with_bias(
            tf.nn.conv2d(x, kernel, [1, *strides, 1], pads, dilations=[1, *dilations, 1]), bias)
        if _tf_same_equals_torch(module, shape):  # TF's own split is PyTorch's at this size
            variants["tf.nn.conv2d, 'SAME'"] = lambda x: _with_bias(
                tf.nn.conv2d(x, kernel, [1, *strides, 1], "SAME", dilations=[1, *dilations, 1]), bias)
    if rank == 3 and groups == 1:
        variants["tf.pad + tf.nn.conv3d"] = lambda x: _with_bias(
            tf.nn.conv3d(tf.pad(x, pads) if padded else x, kernel, [1, *strides, 1], "VALID",
                         dilations=[1, *dilations, 1]), bias)
        if _tf_same_equals_torch(module, shape):
            variants["tf.nn.conv3d, 'SAME'"] = lambda x: _with_bias(
                tf.nn.conv3d(x, kernel, [1, *strides, 1], "SAME", dilations=[1, *dilations, 1]), bias)
    if rank == 3 and groups > 1:
        # No grouped Conv3D CPU kernel: one conv3d per group.
        kernels = tf.split(kernel, groups, axis=-1)
        variants["tf.pad + conv3d per group"] = lambda x: _with_bias(tf.concat(
            [tf.nn.conv3d(xg, kg, [1, *strides, 1], "VALID", dilations=[1, *dilations, 1])
             for xg, kg in zip(tf.split(tf.pad(x, pads) if padded else x, groups, axis=-1), kernels)], -1), bias)
    if depthwise and rank == 2:
        multiplier = cout // cin
        depth_kernel = tf.constant(np.transpose(weight.reshape(cin, multiplier, *module.kernel_size), (2, 3, 0, 1)))
        if max(strides) == 1 or max(dilations) == 1:  # depthwise_conv2d is wrong with both (test_traps.py trap 8)
            variants["tf.nn.depthwise_conv2d, explicit pads"] = lambda x: _with_bias(
                tf.nn.depthwise_conv2d(x, depth_kernel, [1, *strides, 1], pads, dilations=dilations), bias)
            layer = keras.layers.DepthwiseConv2D(module.kernel_size, strides=strides, dilation_rate=dilations,
                                                 depth_multiplier=multiplier, use_bias=bias is not None)
            layer.build((None, None, None, cin))
            layer.set_weights([depth_kernel.numpy()] + ([] if bias is None else [bias.numpy()]))
            pad_layer = keras.layers.ZeroPadding2D(tuple((p, p) for p in module.padding))
            variants["Keras ZeroPadding2D + DepthwiseConv2D"] = lambda x: layer(pad_layer(x))
    # Keras' ConvND refuses strides with dilations; with groups > 1 it runs through XLA on the CPU (4-37x slower
    # than the forms above, measured) and XLA's worker threads, still spinning after each call, slow whichever
    # candidate runs next on a 2-core machine, so it is left out.
    if (max(strides) == 1 or max(dilations) == 1) and groups == 1:
        conv_class = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
        pad_class = {1: keras.layers.ZeroPadding1D, 2: keras.layers.ZeroPadding2D, 3: keras.layers.ZeroPadding3D}[rank]
        layer = conv_class(cout, module.kernel_size, strides=strides, dilation_rate=dilations, groups=groups,
                           use_bias=bias is not None)
        layer.build((None,) + (None,) * rank + (cin,))
        layer.set_weights([kernel.numpy()] + ([] if bias is None else [bias.numpy()]))
        pad_layer = pad_class(tuple((p, p) for p in module.padding))
        variants[f"Keras ZeroPadding{rank}D + Conv{rank}D"] = (lambda x: layer(pad_layer(x))) if padded else layer
    return variants


def handwritten_transposed(module, shape):
    """ConvTranspose2d without dilation, groups or output_padding (the rows here): TF's kernel (*k, C_out, C_in) is
    PyTorch's (C_in, C_out, *k) permuted, no flip; PyTorch's padding p crops p from both ends of the full output."""
    weight = module.weight.detach().numpy()
    bias = _bias(module)
    kernel = tf.constant(np.transpose(weight, (2, 3, 1, 0)))
    (sh, sw), (kh, kw), (ph, pw) = module.stride, module.kernel_size, module.padding
    cout = module.out_channels

    def output_shape(x):
        size = tf.shape(x)
        return tf.stack([size[0], (size[1] - 1) * sh + kh - 2 * ph, (size[2] - 1) * sw + kw - 2 * pw, cout])

    variants = {
        "tf.nn.conv2d_transpose, explicit crop": lambda x: _with_bias(tf.nn.conv2d_transpose(
            x, kernel, output_shape(x), [1, sh, sw, 1], [[0, 0], [ph, ph], [pw, pw], [0, 0]]), bias),
    }
    if kh - sh == 2 * ph and kw - sw == 2 * pw:  # then TF 'SAME' (in*s outputs from (k-s)//2) is PyTorch's window
        variants["tf.nn.conv2d_transpose, 'SAME'"] = lambda x: _with_bias(tf.nn.conv2d_transpose(
            x, kernel, output_shape(x), [1, sh, sw, 1], "SAME"), bias)
    same = kh - sh == 2 * ph and kw - sw == 2 * pw
    layer = keras.layers.Conv2DTranspose(cout, (kh, kw), strides=(sh, sw), padding="same" if same else "valid",
                                         output_padding=None if same else (0, 0), use_bias=bias is not None)
    layer.build((None, None, None, module.in_channels))
    layer.set_weights([kernel.numpy()] + ([] if bias is None else [bias.numpy()]))
    if same:
        variants["Keras Conv2DTranspose('same')"] = layer
    else:
        crop = keras.layers.Cropping2D(((ph, ph), (pw, pw)))
        variants["Keras Conv2DTranspose + Cropping2D"] = lambda x: crop(layer(x))
    return variants


# ---- timing -----------------------------------------------------------------------------------------------------


def tolerance(module):
    """atol = 4e-5 * sqrt(K), K the accumulation length, as tests/python/conftest.py tolerance_for."""
    per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
    return 4e-5 * math.sqrt(per_output)


def time_interleaved(functions, x, rounds, inner):
    compiled = {name: tf.function(f) for name, f in functions.items()}
    for f in compiled.values():  # trace, then warm the kernels' caches
        f(x).numpy()
        f(x).numpy()
    # At least `inner` calls per timed block, and enough that a block takes ~30 ms: single calls of a 1 ms layer
    # are at the mercy of the scheduler on a shared machine.
    start = time.perf_counter()
    for f in compiled.values():
        f(x).numpy()
    per_call = (time.perf_counter() - start) / len(compiled)
    inner = max(inner, math.ceil(0.03 / max(per_call, 1e-6)))
    samples = {name: [] for name in compiled}
    names = list(compiled)
    for round_index in range(rounds):
        # Each round starts with the next candidate, so no candidate always runs first (or after the same one).
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            f = compiled[name]
            f(x).numpy()  # untimed: the previous candidate's worker threads may still be spinning
            start = time.perf_counter()
            for _ in range(inner):
                y = f(x)
            y.numpy()
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: float(np.median(values)) for name, values in samples.items()}


def plan_summary(plan):
    steps = json.loads(plan.to_json())["steps"]
    parts = []
    for step in steps:
        if step["op"] == "conv":
            kind = "DepthwiseConv" if step["kind"] == "depthwise" else "Conv"
            parts.append(f"Tf{kind}" if step.get("implementation") == "tf_conv" else f"{kind}{step['rank']}D")
        elif step["op"] == "conv_transpose":
            parts.append(f"Conv{step['rank']}DTranspose")
        else:
            parts.append(step["op"])
    return " + ".join(parts)


def bench_row(row, rounds, inner):
    module = torch_module(row["layer"])
    shape = tuple(row["input"])
    x_first = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = channels_last(module.double()(torch.from_numpy(x_first.astype(np.float64))).numpy())
    module.float()
    x = tf.constant(np.ascontiguousarray(channels_last(x_first)))
    atol = tolerance(module)

    hand = (handwritten_transposed if isinstance(module, nn.ConvTranspose2d) else handwritten_forward)(module, shape)
    plan = convbridge.translate(module)
    layer = convbridge.to_keras(module)
    namespace = {}
    exec(plan.tf_code(), namespace)
    weight = module.weight.detach().numpy()
    bias = None if module.bias is None else module.bias.detach().numpy()
    conv = namespace["conv"]

    def tf_code(x):
        # The weights as constants of the traced graph, so Grappler folds their re-layout (a deployed layer). Held
        # in tf.Variables to train, conv re-lays the PyTorch-layout weight at every call instead.
        return conv(x, tf.constant(weight), None if bias is None else tf.constant(bias))

    candidates = {"convbridge to_keras": layer, "convbridge tf_code": tf_code}
    candidates.update({f"hand: {name}": f for name, f in hand.items()})
    for name, f in candidates.items():
        worst = float(np.max(np.abs(np.asarray(f(x)).astype(np.float64) - expected)))
        if not worst <= atol:
            raise AssertionError(f"{row['layer']}: {name} is not exact (max |diff| {worst:.2e} > {atol:.2e})")
    times = time_interleaved(candidates, x, rounds, inner)
    hand_times = {name[len("hand: "):]: t for name, t in times.items() if name.startswith("hand: ")}
    best = min(hand_times, key=hand_times.get)
    return {"row": row, "plan": plan_summary(plan), "to_keras": times["convbridge to_keras"],
            "tf_code": times["convbridge tf_code"], "hand": hand_times, "best": best}


def markdown(results, args):
    lines = [
        f"Converted layer vs the fastest hand-written exact TF for the same layer, batch 1, on this machine "
        f"({platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores; TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}); `bench/tf_plans_vs_handwritten.py`, shapes from `bench/tf_layer_shapes.json`. "
        f"TF intra-op threads: {args.threads or 'default'}. "
        f"Times: median of {args.rounds} interleaved rounds of at least {args.inner} calls (and ~30 ms) inside "
        f"tf.function; ratio = "
        f"convbridge / fastest hand-written (target <= {TARGET}). Every candidate is checked exact against PyTorch "
        f"(float64) first.",
        "",
        "| model | layer | input | convbridge plan | fastest hand-written | hand ms | to_keras ms | ratio | "
        "tf_code ms | ratio |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    misses = []
    for r in results:
        row, best = r["row"], r["hand"][r["best"]]
        keras_ratio, tf_ratio = r["to_keras"] / best, r["tf_code"] / best
        shape = "x".join(str(v) for v in row["input"][1:])
        lines.append(f"| {row['model']} | `{row['layer']}` | {shape} | {r['plan']} | {r['best']} | {best * 1e3:.3f} | "
                     f"{r['to_keras'] * 1e3:.3f} | {keras_ratio:.2f} | {r['tf_code'] * 1e3:.3f} | {tf_ratio:.2f} |")
        for what, ratio in (("to_keras", keras_ratio), ("tf_code", tf_ratio)):
            if ratio > TARGET:
                others = ", ".join(f"{name} {t * 1e3:.3f} ms" for name, t in r["hand"].items())
                misses.append(f"- {row['model']} {row['name']}: {what} {ratio:.2f}x (hand-written: {others})")
    lines.append("")
    lines.append("Rows over the target in this run:" if misses else "Every row is within the target in this run.")
    lines += misses
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--only", help="regular expression: run the rows whose layer text or name matches")
    parser.add_argument("--write", action="store_true", help="write the table into README.md")
    parser.add_argument("--threads", type=int, default=0,
                        help="TF intra-op threads (0: TF's default); on a machine shared with other jobs, 1 gives "
                             "steadier ratios, since a 2-thread op waits for both threads to be scheduled")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rows = json.loads((HERE / "tf_layer_shapes.json").read_text())["rows"]
    if args.only:
        rows = [r for r in rows if re.search(args.only, r["layer"] + " " + r["name"])]
    results = []
    for row in rows:
        result = bench_row(row, args.rounds, args.inner)
        results.append(result)
        best = result["hand"][result["best"]]
        print(f"{row['model']:18s} {row['name']:32s} hand {best * 1e3:8.3f} ms ({result['best']}); to_keras "
              f"{result['to_keras'] / best:5.2f}x, tf_code {result['tf_code'] / best:5.2f}x", flush=True)
    table = markdown(results, args)
    print()
    print(table)
    if args.write:
        text = README.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        README.write_text(text[:start] + "\n" + table + text[end:])


if __name__ == "__main__":
    main()
