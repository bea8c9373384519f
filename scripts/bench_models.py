"""Benchmark (not a test) of whole-model conversion on the zoo (tests/python/zoo), per model: conversion time
(capture + planning + building the Keras model, verification off), the verification's time, and inference time of
the converted Keras model beside PyTorch's on the same input (median of --repeats runs after a warm-up, batch 1,
CPU, both frameworks on all cores). Prints a Markdown table; --write puts it in README.md between the
`<!-- bench-models -->` markers.

    PYTHONPATH=build-python/pkg .venv/bin/python scripts/bench_models.py              # full size, 224x224
    PYTHONPATH=build-python/pkg .venv/bin/python scripts/bench_models.py --profile ci --models resnet18
"""

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

import convbridge  # noqa: E402
from zoo import ZOO, build_eval  # noqa: E402


def median_seconds(function, repeats):
    function()  # warm-up (graph tracing, allocator)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def channels_last(array):
    return np.ascontiguousarray(array.transpose([0] + list(range(2, array.ndim)) + [1]))


def bench(name, profile, repeats):
    entry = ZOO[name]
    shape = (entry.ci_inputs if profile == "ci" else entry.full_inputs)[0]
    model = build_eval(name, profile)
    start = time.perf_counter()
    conversion = convbridge.convert(model, shape, verify=False)
    convert_seconds = time.perf_counter() - start
    start = time.perf_counter()
    worst = max(row["max_relative_difference"] for row in conversion.report())
    verify_seconds = time.perf_counter() - start
    x = torch.randn(*shape)
    x_last = tf.constant(channels_last(x.numpy()))
    keras_model = conversion.keras_model
    compiled = tf.function(lambda inputs: keras_model(inputs, training=False))
    with torch.no_grad():
        torch_seconds = median_seconds(lambda: model(x), repeats)
    eager_seconds = median_seconds(lambda: keras_model(x_last, training=False), repeats)
    graph_seconds = median_seconds(lambda: compiled(x_last), repeats)
    parameters = sum(p.numel() for p in model.parameters())
    return dict(name=name, shape=shape, parameters=parameters, convert=convert_seconds, verify=verify_seconds,
                worst=worst, torch=torch_seconds, eager=eager_seconds, graph=graph_seconds,
                transposes=conversion.runtime_transposes)


def table(rows, profile):
    lines = [
        f"Zoo models at {'published' if profile == 'full' else 'CI (reduced)'} size, batch 1, on this machine "
        f"({platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}, TensorFlow {tf.__version__}); "
        f"`scripts/bench_models.py`. Inference: median of the runs after a warm-up; the ratio is Keras "
        f"(tf.function) time / PyTorch time.",
        "",
        "| model | input | params | convert | verify | max rel. diff | transposes | PyTorch | Keras eager | "
        "Keras tf.function | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {'x'.join(map(str, r['shape'][1:]))} | {r['parameters'] / 1e6:.2f}M | "
            f"{r['convert']:.2f} s | {r['verify']:.2f} s | {r['worst']:.1e} | {r['transposes']} | "
            f"{r['torch'] * 1e3:.1f} ms | {r['eager'] * 1e3:.1f} ms | {r['graph'] * 1e3:.1f} ms | "
            f"{r['graph'] / r['torch']:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["ci", "full"], default="full")
    parser.add_argument("--models", nargs="*", default=list(ZOO), choices=list(ZOO), metavar="NAME")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="put the table in README.md")
    arguments = parser.parse_args()
    rows = []
    for name in arguments.models:
        rows.append(bench(name, arguments.profile, arguments.repeats))
        print(f"{name}: converted in {rows[-1]['convert']:.2f} s", file=sys.stderr, flush=True)
    text = table(rows, arguments.profile)
    print(text)
    if arguments.write:
        readme = ROOT / "README.md"
        content = readme.read_text()
        begin, end = "<!-- bench-models -->", "<!-- /bench-models -->"
        if begin not in content or end not in content:
            raise SystemExit(f"README.md lacks the {begin} ... {end} markers")
        head, rest = content.split(begin, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


if __name__ == "__main__":
    main()
