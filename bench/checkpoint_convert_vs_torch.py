"""Reading and converting a large torch.save checkpoint: `convbridge weights convert` (C++, nothing executed) against
the script people write, torch.load(weights_only=True) + numpy + safetensors (or h5py), each run as its own process
so that wall time and peak resident memory (GNU time's %M) are the whole job's. Prints a Markdown table with the
ratios (README, "Weight files"). Not a test: nothing here is asserted, except that the outputs hold the same bytes.

    .venv/bin/python bench/checkpoint_convert_vs_torch.py [--megabytes 600] [--repeats 3] [--cli build/convbridge]

The checkpoint is a nested training checkpoint ({"model": state_dict, "epoch": ...}) of float32 tensors shaped like
VGG-16's (its 25088 x 4096 classifier weight, 411 MB, is the largest tensor), topped up with 3x3 kernels to the
requested size. The page cache is warmed by one untimed run of each job, so both read the file from memory.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

TORCH_TO_SAFETENSORS = textwrap.dedent("""
    import sys, torch, safetensors.numpy
    checkpoint = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
    flat = {}
    def walk(prefix, value):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, torch.Tensor):
            flat[prefix] = value.numpy()
    walk("", checkpoint)
    safetensors.numpy.save_file(flat, sys.argv[2])
""")

TORCH_TO_H5 = textwrap.dedent("""
    import sys, torch, h5py
    checkpoint = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
    with h5py.File(sys.argv[2], "w") as f:
        def walk(prefix, value):
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(f"{prefix}/{key}" if prefix else str(key), item)
            elif isinstance(value, torch.Tensor):
                f.create_dataset(prefix, data=value.numpy())
        walk("", checkpoint)
""")


def vgg16_like_state_dict(megabytes):
    import torch
    generator = torch.Generator().manual_seed(0)
    shapes = {}
    channels = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512),
                (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    for i, (cin, cout) in enumerate(channels):
        shapes[f"features.{i}.weight"] = (cout, cin, 3, 3)
        shapes[f"features.{i}.bias"] = (cout,)
    shapes.update({"classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,),
                   "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
                   "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)})
    total = sum(int(np.prod(s)) * 4 for s in shapes.values())
    extra = 0
    while total < megabytes * 1e6:
        shapes[f"extra.{extra}.weight"] = (512, 512, 3, 3)
        total += 512 * 512 * 9 * 4
        extra += 1
    return {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}, total


def timed(command):
    """(wall seconds, peak RSS in MB) of one process, from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command], check=True,
                       stdout=subprocess.DEVNULL)
        seconds, kilobytes = report.read().split()
    return float(seconds), int(kilobytes) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cli", default="build/convbridge")
    parser.add_argument("--directory", default=None, help="where the checkpoint and outputs go (default: a temp dir)")
    args = parser.parse_args()

    import torch
    with tempfile.TemporaryDirectory(dir=args.directory) as directory:
        checkpoint = os.path.join(directory, "checkpoint.pt")
        state, total = vgg16_like_state_dict(args.megabytes)
        largest = max(t.numel() * 4 for t in state.values())
        torch.save({"model": state, "epoch": 90, "best_accuracy": 0.7159}, checkpoint)
        del state
        jobs = {
            "convbridge weights convert -> .safetensors":
                [args.cli, "weights", "convert", checkpoint, "-o", os.path.join(directory, "cb.safetensors")],
            "torch.load + numpy + safetensors":
                [sys.executable, "-c", TORCH_TO_SAFETENSORS, checkpoint, os.path.join(directory, "torch.safetensors")],
            "torch.load + numpy + h5py":
                [sys.executable, "-c", TORCH_TO_H5, checkpoint, os.path.join(directory, "torch.h5")],
        }
        for command in jobs.values():  # warm the page cache and the imports
            timed(command)
        results = {name: [] for name in jobs}
        for _ in range(args.repeats):  # alternating, so a slow spell of the machine hits every job alike
            for name, command in jobs.items():
                results[name].append(timed(command))

        import safetensors.numpy
        ours = safetensors.numpy.load_file(os.path.join(directory, "cb.safetensors"))
        theirs = safetensors.numpy.load_file(os.path.join(directory, "torch.safetensors"))
        same = sorted(ours) == sorted(theirs) and all(ours[k].dtype == theirs[k].dtype and ours[k].shape ==
                                                      theirs[k].shape and ours[k].tobytes() == theirs[k].tobytes()
                                                      for k in ours)
        del ours, theirs

    print(f"checkpoint: {total / 1e6:.0f} MB of float32, largest tensor {largest / 1e6:.0f} MB; "
          f"median of {args.repeats} alternating runs; load average {os.getloadavg()[0]:.1f}; "
          f"outputs identical: {same}\n")
    print("| job | seconds | peak RSS MB | time / convbridge | peak RSS / convbridge |")
    print("|---|---|---|---|---|")
    base_seconds = statistics.median(s for s, _ in results[next(iter(jobs))])
    base_rss = statistics.median(m for _, m in results[next(iter(jobs))])
    for name, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        rss = statistics.median(m for _, m in runs)
        print(f"| {name} | {seconds:.2f} | {rss:.0f} | {seconds / base_seconds:.2f} | {rss / base_rss:.2f} |")


if __name__ == "__main__":
    main()
