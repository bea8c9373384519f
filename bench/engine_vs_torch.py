"""The reference engine against PyTorch's float64 CPU convolution, per real-model layer, in one run.

For each row of bench/layer_shapes.json (the rows marked "bench", or all with --all) it times, in alternating
blocks so that both see the same machine load:
  engine:  reference_torch_conv, the engine's PyTorch semantics in float64 on its GEMM path, on tensors it holds
           (bench/engine_binding.cpp: no input or weight copied across the binding; the output is handed to numpy
           without a copy);
  PyTorch: the same nn.ConvNd / nn.ConvTransposeNd in float64 on the CPU (F.convNd, under torch.no_grad()),
and prints a Markdown table of medians and their ratio (engine / PyTorch; the target is <= 1.5), the largest
difference between the two outputs relative to the output's magnitude, and the time of one whole verify_plan at the
layer's shape (what `convbridge translate` spends on its check).

    cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVBRIDGE_BUILD_BENCHMARKS=ON \
      -DCONVBRIDGE_BUILD_PYTHON=ON -DCONVBRIDGE_BUILD_TESTS=OFF -DPython_EXECUTABLE=$PWD/.venv/bin/python
    cmake --build build-bench --target convbridge_bench
    PYTHONPATH=build-bench/bench .venv/bin/python bench/engine_vs_torch.py [--all] [--repeats 7]

Not a test: nothing here asserts a time. OPENBLAS_CORETYPE is read, never set (see README).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

import numpy as np
import torch
from torch import nn

import convbridge_bench

TABLE = pathlib.Path(__file__).with_name("layer_shapes.json")
PAUSE_S = 0.3  # longer than the worker threads' spin after a call


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def multiply_adds(module: nn.Module, x_shape, y_shape) -> int:
    taps = int(np.prod(module.kernel_size))
    if module.transposed:
        return int(np.prod(x_shape)) * taps * (module.out_channels // module.groups)
    return int(np.prod(y_shape)) * taps * (module.in_channels // module.groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="every row of the table, not only those marked bench")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per block (two blocks per side)")
    parser.add_argument("--filter", default="", help="only rows whose model/name contains this text")
    args = parser.parse_args()

    rows = [r for r in json.loads(TABLE.read_text())["layers"] if args.all or r["bench"]]
    rows = [r for r in rows if args.filter in f"{r['model']}/{r['name']}"]
    lines = []
    worst = 0.0
    for row in rows:
        module = eval(row["layer"], {"nn": nn}).to(torch.float64).eval()  # the table's own constructor text
        layer = convbridge_bench.EngineLayer(row["layer"], row["input_shape"])
        with torch.no_grad():  # both sides compute on the same values
            module.weight.copy_(torch.from_numpy(layer.weight()))
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(layer.bias()))
        x_torch = torch.from_numpy(layer.input())

        def run_torch():
            with torch.no_grad():
                return module(x_torch)

        # Blocks of back-to-back runs, in the order engine, PyTorch, PyTorch, engine, with a pause before each
        # block: both libraries keep their worker threads spinning for a while after a call (OpenBLAS's thread
        # server, PyTorch's OpenMP pool), which on 2 cores would slow whichever side ran right after the other.
        engine_times, torch_times = [], []
        for side in ("engine", "torch", "torch", "engine"):
            function, times = (layer.run, engine_times) if side == "engine" else (run_torch, torch_times)
            time.sleep(PAUSE_S)
            function()  # warm-up: page faults, threads woken, MKL's kernel choice
            for _ in range(args.repeats):
                t, out = timed(function)
                times.append(t)
            if side == "engine":
                engine_out = out
            else:
                torch_out = out
        engine_s, torch_s = statistics.median(engine_times), statistics.median(torch_times)
        time.sleep(PAUSE_S)
        verify_s, passed = timed(layer.verify)
        expected = torch_out.numpy()
        difference = float(np.max(np.abs(engine_out - expected)) / max(np.max(np.abs(expected)), 1e-300))
        ratio = engine_s / torch_s
        worst = max(worst, ratio)
        macs = multiply_adds(module, x_torch.shape, expected.shape)
        lines.append(f"| {row['model']} | {row['name']} | `{row['layer']}` | {'x'.join(map(str, row['input_shape'][1:]))} "
                     f"| {macs / 1e6:,.0f} | {engine_s * 1e3:.2f} | {torch_s * 1e3:.2f} | {ratio:.2f} "
                     f"| {difference:.1e} | {verify_s:.2f}{'' if passed else ' (FAILED)'} |")
        print(lines[-1], flush=True)

    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print()
    print(f"Reference engine (float64, GEMM path) vs PyTorch {torch.__version__} "
          f"float64 CPU conv, batch 1, {platform.machine()}, {os.cpu_count()} cores; torch threads "
          f"{torch.get_num_threads()}; BLAS {convbridge_bench.blas_config()}; OPENBLAS_CORETYPE {coretype}. Median of 2 x {args.repeats} runs per side, in "
          f"alternating blocks (engine, PyTorch, PyTorch, engine) each after a pause and a warm-up; ratio = engine time / PyTorch time (target <= 1.5); max rel. diff = max |engine - PyTorch| / "
          f"max |PyTorch|; verify s = one whole verify_plan at that shape (both frameworks' semantics, random "
          f"tensors, layout changes), as `convbridge translate` runs it.")
    print()
    print("| model | layer | PyTorch layer | input (C x spatial) | MMACs | engine ms | PyTorch ms | ratio "
          "| max rel. diff | verify s |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for line in lines:
        print(line)
    print()
    print(f"worst ratio: {worst:.2f} over {len(lines)} layers")


if __name__ == "__main__":
    main()
