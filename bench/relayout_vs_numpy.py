"""Weight re-layout from Python, measured side by side in one run: convbridge (convert_weights, and the plan's
binding alone) against numpy's np.ascontiguousarray(np.transpose(...)), torch's permute().contiguous() and a plain
copy of the same bytes (ndarray.copy(), which allocates its result as every re-layout here does). Prints a Markdown
table of bandwidths and ratios (README, "Weight re-layout speed"). Not a test: nothing here is asserted.

    PYTHONPATH=build-python/pkg .venv/bin/python bench/relayout_vs_numpy.py [--quick]

Each time is the median of repeated calls after one warm-up call; every result is freshly allocated, so the first
touch of its pages is inside every measurement alike. numpy's strided copy does not call BLAS, so
OPENBLAS_CORETYPE does not change it (the header line records whether it was set).
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

import convbridge


def median_seconds(function, repeats):
    function()  # warm-up: first-call costs (imports, plan caches, page-ins of the source) stay out
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
        del result
    return statistics.median(times)


def torch_case(name, module, axes, reshape=None):
    """A PyTorch layer: convbridge.convert_weights(module) and plan.convert_kernel(weight) against numpy/torch."""
    weight = module.weight.detach()
    plan = convbridge.translate(module)
    array = weight.numpy()

    def with_numpy():
        source = array.reshape(reshape) if reshape else array
        return np.ascontiguousarray(np.transpose(source, axes))

    def with_torch():
        source = weight.reshape(reshape) if reshape else weight
        return source.permute(*axes).contiguous()

    expected = with_numpy()
    assert np.array_equal(convbridge.convert_weights(module)["kernel"], expected)  # the same bits, else no row
    return name, array.nbytes, {
        "convert_weights": lambda: convbridge.convert_weights(module)["kernel"],
        "binding": lambda: plan.convert_kernel(weight),
        "numpy": with_numpy,
        "torch": with_torch,
        "copy": array.copy,
    }


def keras_case(name, kernel_size, channels, filters, dtype=np.float32):
    """A Keras Conv2D kernel (*k, I, O) -> PyTorch (O, I, *k) through TorchPlan.torch_weight."""
    plan = convbridge.translate(f"keras.layers.Conv2D({filters}, {kernel_size})", input_shape=(None, None, None, channels))
    kernel = np.random.default_rng(0).standard_normal((kernel_size, kernel_size, channels, filters)).astype(dtype)
    tensor = torch.from_numpy(kernel)
    axes = (3, 2, 0, 1)
    assert np.array_equal(plan.torch_weight(0, kernel), np.transpose(kernel, axes))
    return name, kernel.nbytes, {
        "binding": lambda: plan.torch_weight(0, kernel),
        "numpy": lambda: np.ascontiguousarray(np.transpose(kernel, axes)),
        "torch": lambda: tensor.permute(*axes).contiguous(),
        "copy": kernel.copy,
    }


def cases(quick):
    nn = torch.nn
    torch.manual_seed(0)
    yield torch_case("Conv2d(64, 64, 3) OIHW->HWIO", nn.Conv2d(64, 64, 3), (2, 3, 1, 0))
    yield torch_case("Conv2d(512, 512, 3) OIHW->HWIO", nn.Conv2d(512, 512, 3), (2, 3, 1, 0))
    yield torch_case("depthwise Conv2d(65536, 262144, 3, groups=65536) -> HWCM",
                     nn.Conv2d(65536, 262144, 3, groups=65536, bias=False), (2, 3, 0, 1), reshape=(65536, 4, 3, 3))
    yield torch_case("ConvTranspose2d(1024, 1024, 3) IOHW->HWOI", nn.ConvTranspose2d(1024, 1024, 3), (2, 3, 1, 0))
    yield torch_case("Conv3d(256, 256, 3) OIDHW->DHWIO", nn.Conv3d(256, 256, 3), (2, 3, 4, 1, 0))
    yield keras_case("Keras Conv2D(512, 3), 512 in: HWIO->OIHW", 3, 512, 512)
    if quick:
        return
    yield torch_case("Conv2d(2048, 2048, 3) OIHW->HWIO (the issue's kernel)", nn.Conv2d(2048, 2048, 3), (2, 3, 1, 0))
    yield torch_case("Conv2d(2048, 2048, 3) float64", nn.Conv2d(2048, 2048, 3).double(), (2, 3, 1, 0))
    yield torch_case("Conv3d(1024, 1024, 3) OIDHW->DHWIO", nn.Conv3d(1024, 1024, 3), (2, 3, 4, 1, 0))
    yield keras_case("Keras Conv2D(2048, 3), 2048 in: HWIO->OIHW", 3, 2048, 2048)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the tensors under 100 MB")
    parser.add_argument("--repeats", type=int, default=7)
    arguments = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), convbridge {convbridge.__version__}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}; GB/s = tensor bytes / median time of "
          f"{arguments.repeats} calls\n")
    print("| re-layout | MB | convert_weights GB/s | binding GB/s | numpy GB/s | torch GB/s | copy GB/s | "
          "binding / numpy | binding / torch | binding / copy |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, nbytes, functions in cases(arguments.quick):
        rate = {key: nbytes / median_seconds(function, arguments.repeats) / 1e9 for key, function in functions.items()}
        convert = f"{rate['convert_weights']:.2f}" if "convert_weights" in rate else "—"
        print(f"| {name} | {nbytes / 1e6:.1f} | {convert} | {rate['binding']:.2f} | {rate['numpy']:.2f} | "
              f"{rate['torch']:.2f} | {rate['copy']:.2f} | {rate['binding'] / rate['numpy']:.1f} | "
              f"{rate['binding'] / rate['torch']:.1f} | {rate['binding'] / rate['copy']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
