"""Weight files against the real frameworks: files written by torch.save (plain state_dicts, nested training
checkpoints with an argparse.Namespace and optimizer state, DDP 'module.' names, float16 and bfloat16, views that
share a storage at an offset or transposed, a big-endian rewrite), by the safetensors package and by numpy.savez are
read bit for bit through `convbridge weights convert` and convbridge.read_weights; the files convbridge writes load
in safetensors and numpy. Also: what torch.save writes that convbridge refuses (TorchScript, legacy files), that a
pickle naming os.system is refused without running it, and that a failed convert leaves nothing behind.
"""

import argparse
import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import convbridge

safetensors_numpy = pytest.importorskip("safetensors.numpy")
safetensors_torch = pytest.importorskip("safetensors.torch")

REPO = Path(__file__).resolve().parents[2]
CONVBRIDGE_BIN = Path(os.environ.get("CONVBRIDGE_BIN", str(REPO / "build" / "convbridge")))


def run(*arguments):
    return subprocess.run([str(CONVBRIDGE_BIN), *map(str, arguments)], capture_output=True, text=True, timeout=120)


def raw(tensor):
    """A tensor's C-order bytes, whatever its dtype (bfloat16 included)."""
    tensor = tensor.detach().contiguous()
    return tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""


def flatten(obj, prefix=()):
    """{dotted name: tensor}, as convbridge names a checkpoint's tensors."""
    if isinstance(obj, torch.Tensor):
        return {".".join(prefix) or "tensor": obj}
    out = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.update(flatten(value, prefix + (str(key),)))
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            out.update(flatten(value, prefix + (str(index),)))
    return out


def expect_same(got, want):
    """got: {name: safetensors torch tensor}, want: {name: torch tensor}: same names, dtypes, shapes and bytes."""
    assert sorted(got) == sorted(want)
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype, name
        assert tuple(got[name].shape) == tuple(tensor.shape), name
        assert raw(got[name]) == raw(tensor), name


def convert_and_check(tmp_path, source, want):
    out = tmp_path / (Path(source).stem + ".safetensors")
    result = run("weights", "convert", source, "-o", out)
    assert result.returncode == 0, result.stderr
    expect_same(safetensors_torch.load_file(str(out)), want)
    # The Python API reads the same bytes.
    arrays = convbridge.read_weights(source)
    assert sorted(arrays) == sorted(want)
    for name, tensor in want.items():
        assert tuple(arrays[name].shape) == tuple(tensor.shape), name
        assert arrays[name].tobytes() == raw(tensor), name
    return out


def small_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 10))


def test_plain_state_dict(tmp_path):
    state = small_net().state_dict()
    torch.save(state, tmp_path / "net.pt")
    convert_and_check(tmp_path, tmp_path / "net.pt", dict(state))


def test_nested_training_checkpoint_with_namespace_ddp_names_and_optimizer_state(tmp_path):
    net = small_net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    checkpoint = {
        "model": {f"module.{k}": v for k, v in net.state_dict().items()},  # DistributedDataParallel's names
        "optimizer": optimizer.state_dict(),
        "epoch": 7,
        "best_acc1": 0.75,
        "args": argparse.Namespace(arch="resnet18", lr=0.1, workers=4),
        "scheduler": {"milestones": {30, 60}, "gamma": 0.1},
    }
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(checkpoint, path)
    want = flatten(checkpoint)
    assert "model.module.0.weight" in want and "optimizer.state.0.exp_avg" in want
    convert_and_check(tmp_path, path, want)
    report = json.loads(run("weights", "inspect", path, "--json").stdout)
    assert "argparse.Namespace" in report["refused"]
    namespace = next(g for g in report["globals"] if g["name"] == "argparse.Namespace")
    assert namespace["refused_calls"] == 1 and not namespace["known"]


def test_half_bfloat16_and_integer_dtypes(tmp_path):
    tensors = {"half": torch.randn(3, 5).half(), "bf16": torch.randn(4, 2).bfloat16(),
               "f64": torch.randn(3).double(), "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
               "u8": torch.arange(5, dtype=torch.uint8), "i16": torch.tensor([-3, 4], dtype=torch.int16),
               "i32": torch.tensor([1 << 30], dtype=torch.int32), "i64": torch.tensor([-(1 << 60)]),
               "bool": torch.tensor([True, False, True]), "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 4),
               "u16": torch.tensor([65535, 1], dtype=torch.uint16)}
    torch.save(tensors, tmp_path / "dtypes.pt")
    convert_and_check(tmp_path, tmp_path / "dtypes.pt", tensors)


def test_views_sharing_a_storage_at_offsets_and_transposed(tmp_path):
    base = torch.arange(60, dtype=torch.float32)
    tensors = {"base": base, "offset": base[7:19].view(3, 4), "transposed": base[:20].view(4, 5).t(),
               "strided": base[1::3], "expanded": torch.arange(3.0).expand(4, 3),
               "param": torch.nn.Parameter(torch.randn(2, 3))}
    torch.save(tensors, tmp_path / "views.pt")
    with zipfile.ZipFile(tmp_path / "views.pt") as archive:  # the views really share one storage record
        assert sum(1 for n in archive.namelist() if "/data/" in n) == 3
    convert_and_check(tmp_path, tmp_path / "views.pt", {k: v.detach() for k, v in tensors.items()})


def test_big_endian_archive(tmp_path):
    """torch writes byteorder 'big' on big-endian hosts: the same archive with every storage byte-swapped and that
    record reads to the same values (torch.load itself swaps it back the same way)."""
    tensors = {"w": torch.randn(3, 4), "h": torch.randn(5).half(), "i": torch.arange(4)}
    torch.save(tensors, tmp_path / "little.pt")
    element_size = {48: 4, 10: 2, 32: 8}  # each storage's byte length says its element size here
    with zipfile.ZipFile(tmp_path / "little.pt") as source, zipfile.ZipFile(tmp_path / "big.pt", "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                size = element_size[len(data)]
                data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
            target.writestr(info, data)
    loaded = torch.load(tmp_path / "big.pt")
    assert all(loaded[name].equal(tensor) for name, tensor in tensors.items())
    result = run("weights", "inspect", tmp_path / "big.pt")
    assert "big-endian" in result.stdout, result.stdout
    convert_and_check(tmp_path, tmp_path / "big.pt", tensors)


def test_safetensors_written_by_the_package(tmp_path):
    tensors = {"a": torch.randn(4, 3), "b": torch.randn(2).bfloat16(), "c": torch.arange(6).reshape(2, 3),
               "d": torch.zeros(0), "e": torch.tensor(True)}
    safetensors_torch.save_file(tensors, str(tmp_path / "in.safetensors"), metadata={"format": "pt"})
    convert_and_check(tmp_path, tmp_path / "in.safetensors", tensors)
    result = run("weights", "convert", tmp_path / "in.safetensors", "-o", tmp_path / "out.npz")
    assert result.returncode == 2 and "bfloat16" in result.stderr  # numpy has no bfloat16
    assert not (tmp_path / "out.npz").exists()


def test_numpy_savez_and_savez_compressed(tmp_path):
    arrays = {"x": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
              "fortran": np.asfortranarray(np.arange(24, dtype=np.int64).reshape(2, 3, 4)),
              "big_endian": np.arange(5, dtype=">f8"), "flags": np.array([True, False]), "scalar": np.float16(1.5),
              "name.with.dots": np.arange(3, dtype=np.uint32)}
    np.savez(tmp_path / "plain.npz", **arrays)
    np.savez_compressed(tmp_path / "compressed.npz", **arrays)
    for name in ("plain", "compressed"):
        out = tmp_path / f"{name}.safetensors"
        result = run("weights", "convert", tmp_path / f"{name}.npz", "-o", out)
        assert result.returncode == 0, result.stderr
        got = safetensors_numpy.load_file(str(out))
        assert sorted(got) == sorted(arrays)
        for key, array in arrays.items():
            want = np.asarray(array).astype(np.asarray(array).dtype.newbyteorder("<"), order="C")
            assert got[key].dtype == want.dtype and got[key].shape == want.shape, key
            assert got[key].tobytes() == want.tobytes(), key
        read = convbridge.read_weights(tmp_path / f"{name}.npz")
        for key, array in arrays.items():
            np.testing.assert_array_equal(read[key], array)


def test_files_we_write_load_in_safetensors_and_numpy(tmp_path):
    tensors = {"conv.weight": torch.randn(8, 3, 3, 3), "conv.bias": torch.randn(8), "steps": torch.tensor(3),
               "mask": torch.tensor([[True, False]]), "h": torch.randn(2, 2).half()}
    torch.save(tensors, tmp_path / "w.pt")
    assert run("weights", "convert", tmp_path / "w.pt", "-o", tmp_path / "w.safetensors").returncode == 0
    assert run("weights", "convert", tmp_path / "w.pt", "-o", tmp_path / "w.npz").returncode == 0
    expect_same(safetensors_torch.load_file(str(tmp_path / "w.safetensors")), tensors)
    with safetensors_torch.safe_open(str(tmp_path / "w.safetensors"), "pt") as opened:
        assert sorted(opened.keys()) == sorted(tensors)
    with np.load(tmp_path / "w.npz", allow_pickle=False) as loaded:
        assert sorted(loaded.files) == sorted(tensors)
        for name, tensor in tensors.items():
            assert loaded[name].dtype == tensor.numpy().dtype and loaded[name].tobytes() == raw(tensor), name
    # The header follows the reference writer: padded to 8 bytes, tensors by descending alignment, then name...
    header_size = int.from_bytes((tmp_path / "w.safetensors").read_bytes()[:8], "little")
    assert header_size % 8 == 0
    header = json.loads((tmp_path / "w.safetensors").read_bytes()[8:8 + header_size])
    assert list(header) == ["steps", "conv.bias", "conv.weight", "h", "mask"]
    # ... so the file is byte for byte what safetensors' own save_file writes for the same tensors.
    safetensors_torch.save_file(tensors, str(tmp_path / "reference.safetensors"))
    assert (tmp_path / "w.safetensors").read_bytes() == (tmp_path / "reference.safetensors").read_bytes()


def test_torchscript_and_legacy_files_are_refused_clearly(tmp_path):
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    torch.jit.save(scripted, tmp_path / "scripted.pt")
    result = run("weights", "inspect", tmp_path / "scripted.pt")
    assert result.returncode == 2 and "TorchScript archive" in result.stderr, result.stderr
    torch.save({"w": torch.ones(2)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    result = run("weights", "inspect", tmp_path / "legacy.pt")
    assert result.returncode == 2 and "legacy torch.save file" in result.stderr, result.stderr
    with pytest.raises(ValueError, match="legacy torch.save"):
        convbridge.read_weights(tmp_path / "legacy.pt")


class RunsACommand:
    """What a malicious checkpoint holds: unpickling it calls os.system."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_checkpoint_that_runs_a_command_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "EXECUTED"
    torch.save({"w": torch.ones(2), "payload": RunsACommand(f"touch {marker}")}, tmp_path / "evil.pt")
    for arguments in (("inspect",), ("convert", "-o", tmp_path / "evil.safetensors")):
        result = run("weights", arguments[0], tmp_path / "evil.pt", *arguments[1:])
        assert result.returncode == 2, result
        assert "which can run code: refusing the file (nothing was executed)" in result.stderr, result.stderr
    assert not marker.exists()
    assert not (tmp_path / "evil.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evil.pt"]  # no temporary file either


def test_inspect_reports_tensors_and_globals(tmp_path):
    torch.save({"w": torch.ones(2, 3), "args": argparse.Namespace(x=1)}, tmp_path / "ck.pt")
    report = convbridge.inspect_weights(tmp_path / "ck.pt")
    assert report["format"] == "torch"
    assert report["tensors"] == [{"name": "w", "dtype": "float32", "shape": (2, 3)}]
    names = {g["name"]: g for g in report["globals"]}
    assert names["torch._utils._rebuild_tensor_v2"]["known"]
    assert not names["argparse.Namespace"]["known"] and names["argparse.Namespace"]["refused_calls"] == 1
    text = run("weights", "inspect", tmp_path / "ck.pt").stdout
    assert "argparse.Namespace" in text and "refused: kept inert, 1 call(s) not run" in text
