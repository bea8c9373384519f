"""The reference engine against PyTorch's float64 CPU convolution, per real-model layer, in one run.

For each row of bench/layer_shapes.json (the rows marked "bench", or all with --all) it times, interleaved so both
see the same machine load:
  engine:  Plan.reference_forward(x, weight, bias), the engine's PyTorch semantics in float64 on its GEMM path
           (numpy in, numpy out: the copies across the binding are included);
  PyTorch: the same nn.ConvNd / nn.ConvTransposeNd in float64 on the CPU (F.convNd, under torch.no_grad()),
and prints a Markdown table of medians and their ratio (engine / PyTorch; the target is <= 1.5), plus the largest
difference between the two outputs relative to the output's magnitude.

    scripts/dev_package.sh   # builds the package into build-python/pkg
    PYTHONPATH=build-python/pkg .venv/bin/python bench/engine_vs_torch.py [--all] [--repeats 7]

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

import convbridge

TABLE = pathlib.Path(__file__).with_name("layer_shapes.json")


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
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per layer and side (median reported)")
    parser.add_argument("--filter", default="", help="only rows whose model/name contains this text")
    args = parser.parse_args()

    rows = [r for r in json.loads(TABLE.read_text())["layers"] if args.all or r["bench"]]
    rows = [r for r in rows if args.filter in f"{r['model']}/{r['name']}"]
    rng = np.random.default_rng(0)
    lines = []
    worst = 0.0
    for row in rows:
        module = eval(row["layer"], {"nn": nn}).to(torch.float64).eval()  # the table's own constructor text
        plan = convbridge.translate(row["layer"], input_shape=tuple(row["input_shape"]))
        x = rng.uniform(-1, 1, row["input_shape"])
        weight = module.weight.detach().numpy()
        bias = None if module.bias is None else module.bias.detach().numpy()
        x_torch = torch.from_numpy(x)

        def run_torch():
            with torch.no_grad():
                return module(x_torch)

        def run_engine():
            return plan.reference_forward(x, weight, bias)

        run_engine(), run_torch()  # warm-up: page faults, BLAS buffers and threads, MKL's kernel choice
        # Interleaved: engine, PyTorch, engine, ... so that a load change hits both sides alike.
        engine_times, torch_times = [], []
        for _ in range(args.repeats):
            t, engine_out = timed(run_engine)
            engine_times.append(t)
            t, torch_out = timed(run_torch)
            torch_times.append(t)
        engine_s, torch_s = statistics.median(engine_times), statistics.median(torch_times)
        expected = torch_out.numpy()
        difference = float(np.max(np.abs(engine_out - expected)) / max(np.max(np.abs(expected)), 1e-300))
        ratio = engine_s / torch_s
        worst = max(worst, ratio)
        macs = multiply_adds(module, x.shape, expected.shape)
        lines.append(f"| {row['model']} | {row['name']} | `{row['layer']}` | {'x'.join(map(str, row['input_shape'][1:]))} "
                     f"| {macs / 1e6:,.0f} | {engine_s * 1e3:.2f} | {torch_s * 1e3:.2f} | {ratio:.2f} "
                     f"| {difference:.1e} |")
        print(lines[-1], flush=True)

    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print()
    print(f"Reference engine (convbridge {convbridge.__version__}, float64, GEMM path) vs PyTorch {torch.__version__} "
          f"float64 CPU conv, batch 1, {platform.machine()}, {os.cpu_count()} cores; torch threads "
          f"{torch.get_num_threads()}; OPENBLAS_CORETYPE {coretype}. Median of {args.repeats} interleaved runs after a "
          f"warm-up; ratio = engine time / PyTorch time (target <= 1.5); max rel. diff = max |engine - PyTorch| / "
          f"max |PyTorch|.")
    print()
    print("| model | layer | PyTorch layer | input (C x spatial) | MMACs | engine ms | PyTorch ms | ratio "
          "| max rel. diff |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for line in lines:
        print(line)
    print()
    print(f"worst ratio: {worst:.2f} over {len(lines)} layers")


if __name__ == "__main__":
    main()
