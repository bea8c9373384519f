"""Benchmark (not a test) of whole-model conversion Keras -> PyTorch on keras.applications (built with
weights=None, random normalization statistics: tests/python/keras_zoo), per model: conversion time (capture,
planning, building the nn.Module, verification off), the verification's time, the largest relative difference of
any layer against Keras, and inference time of the converted module beside Keras' (tf.function) on the same input
(median of --repeats runs after a warm-up, batch 1, CPU). Prints a Markdown table; --write puts it in README.md
between the `<!-- bench-keras-models -->` markers.

    PYTHONPATH=build-python/pkg .venv/bin/python scripts/bench_keras_models.py          # published sizes
    PYTHONPATH=build-python/pkg .venv/bin/python scripts/bench_keras_models.py --models resnet50
"""

import argparse
import os
import pathlib
import platform
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CONVBRIDGE_KERAS_ZOO_PROFILE", "full")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

import convbridge  # noqa: E402
from bench_models import median_seconds  # noqa: E402
from keras_zoo import FULL_APPLICATIONS  # noqa: E402

# One published size per model (the first of each application's full cases).
MODELS = {case.name.rsplit("-", 1)[0]: case for case in reversed(list(FULL_APPLICATIONS.values()))}


def bench(name, repeats):
    case = MODELS[name]
    model = case.model()
    shape = case.evaluations[0][0]
    start = time.perf_counter()
    conversion = convbridge.convert(model, verify=False)
    convert_seconds = time.perf_counter() - start
    start = time.perf_counter()
    worst = max(row["max_relative_difference"] for row in conversion.report())
    verify_seconds = time.perf_counter() - start
    x = np.random.default_rng(0).standard_normal((1, *shape[1:])).astype(np.float32)
    x_first = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    module = conversion.torch_model
    compiled = tf.function(lambda inputs: model(inputs, training=False))
    x_tf = tf.constant(x)
    with torch.no_grad():
        torch_seconds = median_seconds(lambda: module(x_first), repeats)
    graph_seconds = median_seconds(lambda: compiled(x_tf), repeats)
    parameters = sum(int(np.prod(w.shape)) for w in model.weights)
    return dict(name=name, shape=shape, parameters=parameters, convert=convert_seconds, verify=verify_seconds,
                worst=worst, torch=torch_seconds, graph=graph_seconds, transposes=conversion.runtime_transposes)


def table(rows):
    lines = [
        f"keras.applications at published size, batch 1, on this machine ({platform.machine()}, {os.cpu_count()} "
        f"cores; torch {torch.__version__}, TensorFlow {tf.__version__}); `scripts/bench_keras_models.py`. "
        f"Inference: median of the runs after a warm-up; the ratio is PyTorch time / Keras (tf.function) time.",
        "",
        "| model | input | params | convert | verify | max rel. diff | transposes | Keras tf.function | PyTorch | "
        "ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {'x'.join(map(str, r['shape'][1:]))} | {r['parameters'] / 1e6:.2f}M | "
            f"{r['convert']:.2f} s | {r['verify']:.2f} s | {r['worst']:.1e} | {r['transposes']} | "
            f"{r['graph'] * 1e3:.1f} ms | {r['torch'] * 1e3:.1f} ms | {r['torch'] / r['graph']:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS), metavar="NAME")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="put the table in README.md")
    arguments = parser.parse_args()
    rows = []
    for name in arguments.models:
        rows.append(bench(name, arguments.repeats))
        print(f"{name}: converted in {rows[-1]['convert']:.2f} s", file=sys.stderr, flush=True)
    text = table(rows)
    print(text)
    if arguments.write:
        readme = ROOT / "README.md"
        content = readme.read_text()
        begin, end = "<!-- bench-keras-models -->", "<!-- /bench-keras-models -->"
        if begin not in content or end not in content:
            raise SystemExit(f"README.md lacks the {begin} ... {end} markers")
        head, rest = content.split(begin, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


if __name__ == "__main__":
    main()
