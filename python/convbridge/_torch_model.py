"""Whole Keras models -> PyTorch. The capture (convbridge._keras_capture: the model's config as data) and the live
objects are here; the planning is C++ (convbridge._impl.plan_keras_model). The nn.Module is built by running the
generated model.py source itself, so what `torch_source()` and `save()` hand the user is exactly what `to_torch`
returns.
"""

import json
import os

import numpy as np

from convbridge import _impl
from convbridge._model import (EXAMPLE_SIZE, ConversionError, _run_generated, _to_target_layout, difference,
                               recording_locals, relative_to_upstream, save_files_atomically, verification_report)


_SAFETENSORS_DTYPES = {np.dtype("float32"): ("F32", "<f4"), np.dtype("int64"): ("I64", "<i8")}


def write_safetensors(f, tensors):
    """Writes {name: float32 or int64 array} into the binary file f in the safetensors format (an 8-byte little-endian header size, a JSON
    header with each tensor's dtype, shape and byte range, the bytes; the header padded with spaces to 8 bytes)."""
    header, offset, chunks = {}, 0, []
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        code, layout = _SAFETENSORS_DTYPES[array.dtype]
        data = np.ascontiguousarray(array, dtype=layout).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        chunks.append(data)
    header["__metadata__"] = {"format": "pt", "generator": "convbridge"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for chunk in chunks:
        f.write(chunk)


def _example_inputs(model, example_shape, seed):
    """Random inputs in Keras' layout for every model input (None sizes from example_shape or EXAMPLE_SIZE; batch
    2), and whether any size was None."""
    shapes = [tuple(t.shape) for t in model.inputs]
    if example_shape is not None:
        given = list(example_shape) if example_shape and isinstance(list(example_shape)[0], (tuple, list)) \
            else [example_shape]
        if len(given) != len(shapes) or any(
                len(g) != len(s) or any(b is not None and a != b for a, b in zip(g[1:], s[1:]))
                or any(not isinstance(a, int) or a < 1 for a in g) for g, s in zip(given, shapes)):
            raise ConversionError(f"example_shape={example_shape!r} must give every size of the Keras inputs "
                                  f"{shapes} (Keras' layout (N, *spatial, C)), filling their None sizes")
        concrete = [tuple(g) for g in given]
    else:
        concrete = [tuple(2 if axis == 0 else EXAMPLE_SIZE if size is None else size
                          for axis, size in enumerate(shape)) for shape in shapes]
    dynamic = any(size is None for shape in shapes for size in shape[1:])
    rng = np.random.default_rng(seed)
    feeds = [[rng.standard_normal(shape).astype(np.float32) for shape in concrete]]
    if dynamic:  # and one size above, where the sizes vary: odd and even
        grown = [tuple(size + 1 if axis > 0 and original is None else size
                       for axis, (size, original) in enumerate(zip(c, s))) for c, s in zip(concrete, shapes)]
        feeds.append([rng.standard_normal(shape).astype(np.float32) for shape in grown])
    return feeds


def _channels_first(array):
    return np.ascontiguousarray(np.moveaxis(array, -1, 1)) if array.ndim >= 3 else array


class TorchModelConversion:
    """A Keras model converted to PyTorch: torch_model, explain(), torch_source(), save(directory), report()."""

    def __init__(self, keras_model, verify=True, seed=0, example_shape=None):
        from convbridge import _keras_capture

        try:
            description, parameters = _keras_capture.capture(keras_model)
        except _keras_capture.CaptureError as error:
            raise ConversionError(str(error)) from None
        try:
            self._plan = _impl.plan_keras_model(json.dumps(description))
        except ValueError as error:
            raise ConversionError(str(error)) from None
        self._keras_model = keras_model
        self._source = self._plan.torch_source()
        self._state = self._plan.state_dict(parameters)
        self._generated = _run_generated(self._source, self._plan.class_name)
        self._module = self._build()
        self._tensors = self._plan.tensors()
        self._nodes = self._plan.nodes()
        self._report = None
        self._seed = seed
        self._example_shape = example_shape
        if verify:
            self._verify()

    def _build(self):
        import torch

        module = getattr(self._generated, self._plan.class_name)()
        state = {name: torch.from_numpy(np.array(array)) for name, array in self._state.items()}
        missing, unexpected = module.load_state_dict(state, strict=False)
        missing = [key for key in missing if not key.endswith("num_batches_tracked")]
        if missing or unexpected:  # the plan and its source disagree: ours, not the user's
            raise ConversionError(f"internal: the generated module does not take the converted weights (missing "
                                  f"{missing}, unexpected {unexpected})")
        return module.eval()

    # ---- what the user reads ----
    @property
    def torch_model(self):
        return self._module

    @property
    def runtime_transposes(self):
        """Transposes the PyTorch module runs; 0 unless the Keras model moves data across the channel axis."""
        return self._plan.runtime_transposes

    def explain(self):
        return self._plan.explain()

    def torch_source(self):
        return self._source

    def nodes(self):
        return self._nodes

    def save(self, directory):
        """Writes model.py and model.safetensors into directory (created if missing); nothing is left half-written."""
        # model.safetensors is the live module's whole state_dict: what load_model() loads strictly.
        state = {name: tensor.detach().numpy() for name, tensor in self._module.state_dict().items()}
        return save_files_atomically(directory, {"model.py": lambda f: f.write(self._source.encode("utf-8")),
                                                 "model.safetensors": lambda f: write_safetensors(f, state)})

    # ---- verification ----
    def report(self):
        """Per node: its max relative difference against Keras and the tolerance."""
        if self._report is None:
            self._verify()
        return self._report

    def _keras_probe(self):
        """A Keras model returning every top-level layer's output, and for each the graph tensor it is."""
        import keras

        last_node = {}
        for node in self._nodes:  # the last node of a layer computes its output (Dense: its activation)
            if node["outputs"] and "_call" not in node["node"]:
                last_node[node["module"]] = node["outputs"][0]
        placements = {p["tensor"]: p for p in self._tensors}
        tensors, outputs = [], []
        for layer in self._keras_model.layers:
            tensor = last_node.get(layer.name)
            if tensor is None or tensor not in placements or len(layer._inbound_nodes) != 1:
                continue
            output = layer.output
            if not hasattr(output, "shape"):
                continue
            tensors.append(tensor)
            outputs.append(output)
        return keras.Model(self._keras_model.inputs, outputs), tensors

    def _expected(self, probe, feeds):
        """The probe's outputs on feeds; compiled with XLA where TF's eager kernels are wrong (one input channel
        and a stride > 1: ../shared/reference/layer-semantics.md)."""
        import tensorflow as tf

        if self._needs_xla():
            values = tf.function(probe, jit_compile=True)(feeds)
        else:
            values = probe(feeds)
        return [np.asarray(v, dtype=np.float64) for v in (values if isinstance(values, (list, tuple)) else [values])]

    def _needs_xla(self):
        for layer in _all_layers(self._keras_model):
            strides = getattr(layer, "strides", None)
            if strides is None or not hasattr(layer, "kernel_size"):
                continue
            try:
                channels = layer.input.shape[-1]
            except (AttributeError, ValueError):
                channels = None
            groups = getattr(layer, "groups", 1) or 1
            per_group = channels // groups if channels else None
            if (per_group == 1 or channels == 1) and any(s > 1 for s in strides):
                return True
        return False

    def _verify(self):
        import torch

        probe, probe_tensors = self._keras_probe()
        placements = {p["tensor"]: p for p in self._tensors}
        by_tensor = {}
        for feeds in _example_inputs(self._keras_model, self._example_shape, self._seed):
            try:
                expected = self._expected(probe, feeds)
            except Exception as error:  # Keras' own refusal of the size (a kernel larger than the input, ...)
                message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise ConversionError(
                    f"the Keras model cannot run at the verification size {[tuple(x.shape) for x in feeds]} "
                    f"({message}): pass example_shape=(N, *spatial, C) with sizes it accepts") from None
            torch_inputs = [torch.from_numpy(_channels_first(x)) for x in feeds]
            with torch.no_grad():
                _, recorded = recording_locals(lambda: self._module(*torch_inputs), type(self._module).forward.__code__)
            raw = {}
            for tensor, want_keras in zip(probe_tensors, expected):
                placement = placements[tensor]
                value = recorded.get(placement["variable"])
                if not isinstance(value, torch.Tensor):
                    continue
                want = _to_target_layout(want_keras, placement)
                got = value.detach().numpy().astype(np.float64)
                error, magnitude = difference(want, got)
                raw[tensor] = (error, magnitude, tuple(want.shape), tuple(got.shape))
            for tensor, result in relative_to_upstream(raw, self._nodes).items():
                if tensor not in by_tensor or result[0] > by_tensor[tensor][0]:
                    by_tensor[tensor] = result
        self._report, error = verification_report(self._nodes, by_tensor, "Keras", "PyTorch")
        if error is not None:
            raise error


def _all_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer
