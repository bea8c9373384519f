"""Weight files read without a framework and without executing anything: torch.save zip checkpoints, safetensors,
.npz and Keras 3 .weights.h5 / .keras (through libhdf5 in C++; h5py is never imported), through the C++ readers (the same ones `convbridge weights` uses)."""

import json
import os

import numpy as np

from convbridge import _impl

# dtype names (PyTorch's spelling) -> numpy dtypes; bfloat16 and float8 need ml_dtypes (which TensorFlow installs).
_NUMPY = {"bool": np.bool_, "uint8": np.uint8, "int8": np.int8, "int16": np.int16, "uint16": np.uint16,
          "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "float16": np.float16,
          "float32": np.float32, "float64": np.float64}
_ML_DTYPES = {"bfloat16": "bfloat16", "float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2"}


def _numpy_dtype(name, tensor):
    if name in _NUMPY:
        return np.dtype(_NUMPY[name]).newbyteorder("<")
    try:
        import ml_dtypes
    except ImportError:
        raise ValueError(f"tensor {tensor!r} is {name}, which numpy has no dtype for: install ml_dtypes "
                         f"(pip install ml_dtypes) to read it") from None
    return np.dtype(getattr(ml_dtypes, _ML_DTYPES[name]))


def read_weights(path):
    """{name: numpy array} for every tensor of a torch.save zip (.pt/.pth/.bin), safetensors, .npz, Keras .weights.h5
    or .keras file (Keras tensors are named by their HDF5 path with '/' -> '.': "layers.conv2d.vars.0").

    Nothing in the file is executed: a checkpoint's pickle is interpreted by a machine that calls nothing (see
    README "Weight files"); a malformed or hostile file raises ValueError naming the problem. Nested checkpoints
    ({"model": ..., "optimizer": ...}) give dotted names ("model.conv1.weight"). Each array is a view of the
    buffer the reader filled, C order, native little-endian.
    """
    arrays = {}
    for name, dtype, shape, data in _impl.read_weight_file(os.fspath(path)):
        arrays[name] = data.view(_numpy_dtype(dtype, name)).reshape(shape)
    return arrays


def inspect_weights(path):
    """What a weight file holds, without reading its tensor data: format, description, tensors (name, dtype,
    shape), for a checkpoint the globals its pickle names (and which it refused to run), for a .keras its config.json
    as parsed JSON ("model_config": data only, nothing it names is imported)."""
    file_format, description, tensors, globals_, notes, model_config = _impl.inspect_weight_file(os.fspath(path))
    result = {
        "format": file_format,
        "description": description,
        "tensors": [{"name": n, "dtype": d, "shape": tuple(s)} for n, d, s in tensors],
        "globals": [{"name": n, "meaning": m, "known": k, "references": r, "refused_calls": c}
                    for n, m, k, r, c in globals_],
        "notes": list(notes),
    }
    if model_config:
        result["model_config"] = json.loads(model_config)
    return result
