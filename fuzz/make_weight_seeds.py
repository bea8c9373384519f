#!/usr/bin/env python3
"""Seeds for the weight-file fuzz targets, from the catalogue tests/hostile/make_hostile_files.py builds (standard
library only): torch.save zips and their bare data.pkl programs for fuzz_torch_checkpoint, safetensors files for
fuzz_safetensors, .npz archives for fuzz_npz. Files over 64 KiB (the bombs) are left out: the fuzzer finds its own.

    python3 fuzz/make_weight_seeds.py      # rewrites fuzz/corpus/fuzz_{torch_checkpoint,safetensors,npz}/
"""
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

here = os.path.dirname(os.path.abspath(__file__))
targets = {"pt": "fuzz_torch_checkpoint", "pth": "fuzz_torch_checkpoint", "safetensors": "fuzz_safetensors",
           "npz": "fuzz_npz"}


def main():
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, os.path.join(here, "..", "tests", "hostile", "make_hostile_files.py"), work],
                       check=True, stdout=subprocess.DEVNULL)
        for target in set(targets.values()):
            shutil.rmtree(os.path.join(here, "corpus", target), ignore_errors=True)
            os.makedirs(os.path.join(here, "corpus", target))
        count = 0
        for kind in ("valid", "hostile"):
            for name in sorted(os.listdir(os.path.join(work, kind))):
                data = open(os.path.join(work, kind, name), "rb").read()
                target = targets.get(name.rsplit(".", 1)[-1])
                if target is None or len(data) > 65536:
                    continue
                seeds = [data]
                if target == "fuzz_torch_checkpoint" and data.startswith(b"PK"):
                    try:
                        with zipfile.ZipFile(io.BytesIO(data)) as archive:
                            seeds += [archive.read(n) for n in archive.namelist() if n.endswith("data.pkl")]
                    except (zipfile.BadZipFile, ValueError, NotImplementedError, OSError, EOFError):
                        pass
                for seed in seeds:
                    if len(seed) > 65536:
                        continue
                    digest = hashlib.sha1(seed).hexdigest()
                    with open(os.path.join(here, "corpus", target, digest), "wb") as file:
                        file.write(seed)
                    count += 1
    print(f"{count} seeds")


if __name__ == "__main__":
    main()
