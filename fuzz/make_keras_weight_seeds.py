#!/usr/bin/env python3
"""Seeds for fuzz_keras_weights: .weights.h5 and .keras files written by real Keras 3 (save_weights and
model.save of a small Functional model with Conv2D, BatchNormalization, ReLU, a nested model and Dense, in float32,
float16 and float64) and small HDF5 files built with h5py that reach the reader's other paths (big-endian, bool,
integers, chunked deflate + shuffle + fletcher32, scalars, creation-ordered groups) and its refusals (soft and
external links, external and virtual datasets, strings, an unknown filter, a 2^40-element shape). Needs keras and
h5py (requirements-test.txt); the product never uses h5py.

    /work/main/.venv/bin/python fuzz/make_keras_weight_seeds.py   # rewrites fuzz/corpus/fuzz_keras_weights/
"""
import hashlib
import os
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "corpus", "fuzz_keras_weights")


def keras_files(work):
    import keras
    out = []
    for dtype in ("float32", "float16", "float64"):
        inner_in = keras.Input((4, 4, 2))
        inner = keras.Model(inner_in, keras.layers.Conv2D(2, 1, dtype=dtype)(inner_in))
        inp = keras.Input((4, 4, 1))
        x = keras.layers.Conv2D(2, 3, padding="same", dtype=dtype)(inp)
        x = keras.layers.BatchNormalization(dtype=dtype)(x)
        x = keras.layers.ReLU()(x)
        x = inner(x)
        x = keras.layers.Dense(2, dtype=dtype)(keras.layers.Flatten()(x))
        model = keras.Model(inp, x)
        weights = os.path.join(work, f"{dtype}.weights.h5")
        archive = os.path.join(work, f"{dtype}.keras")
        model.save_weights(weights)
        model.save(archive)
        out += [weights, archive]
    return out


def h5py_files(work):
    def build(name, fill):
        path = os.path.join(work, name + ".h5")
        with h5py.File(path, "w") as f:
            fill(f)
        return path

    def types(f):
        f["layers/a/vars/0"] = np.arange(6, dtype=">f4").reshape(2, 3)
        f["layers/a/vars/1"] = np.array([True, False, True])
        f["layers/a/vars/2"] = np.arange(4, dtype="<i2")
        f["layers/a/vars/10"] = np.arange(3, dtype=">u8")
        f["layers/a/vars/11"] = np.float64(2.5)
        f.create_group("layers/empty/vars")
        f.create_group("vars")

    def chunked(f):
        f.create_dataset("x", data=np.arange(64, dtype="<f4"), chunks=(16,), compression="gzip", shuffle=True,
                         fletcher32=True)

    def ordered(f):
        g = f.create_group("g", track_order=True)
        g["b"] = np.ones(2, np.float32)
        g["a"] = np.zeros(2, np.float32)
        g.create_group("c")

    def soft(f):
        f["x"] = np.ones(3, np.float32)
        f["alias"] = h5py.SoftLink("/x")

    def external_link(f):
        f["elsewhere"] = h5py.ExternalLink("other.h5", "/x")

    def external_dataset(f):
        f.create_dataset("x", shape=(4,), dtype="<f4", external=[("raw.bin", 0, 16)])

    def virtual(f):
        layout = h5py.VirtualLayout(shape=(4,), dtype="<f4")
        layout[:] = h5py.VirtualSource("source.h5", "x", shape=(4,))
        f.create_virtual_dataset("v", layout, fillvalue=0)

    def string(f):
        f["s"] = np.array([b"abc", b"def"])

    def unknown_filter(f):
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((4,))
        dcpl.set_filter(32004, h5py.h5z.FLAG_OPTIONAL, ())
        dataset = h5py.h5d.create(f.id, b"x", h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple((4,)), dcpl=dcpl)
        dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(4, dtype=np.float32))

    def shape_bomb(f):
        f.create_dataset("x", shape=(1 << 40,), dtype="<f4", chunks=(1 << 16,), compression="gzip")

    return [build(fill.__name__, fill) for fill in (types, chunked, ordered, soft, external_link, external_dataset,
                                                    virtual, string, unknown_filter, shape_bomb)]


def main():
    shutil.rmtree(corpus, ignore_errors=True)
    os.makedirs(corpus)
    with tempfile.TemporaryDirectory() as work:
        count = 0
        for path in keras_files(work) + h5py_files(work):
            data = open(path, "rb").read()
            if len(data) > 65536:
                print(f"skipped {os.path.basename(path)}: {len(data)} bytes")
                continue
            with open(os.path.join(corpus, hashlib.sha1(data).hexdigest()), "wb") as out:
                out.write(data)
            count += 1
    print(f"wrote {count} seeds to {corpus}")


if __name__ == "__main__":
    main()
