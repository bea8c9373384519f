"""Whole PyTorch models -> Keras 3. The capture (convbridge._capture, torch.export) and the live objects are here;
the planning is C++ (convbridge._impl.plan_torch_model). The Keras model is built by running the generated model.py
source itself, so what `keras_source()` and `save()` hand the user is exactly what `to_keras` returns.
"""

import os
import sys
import tempfile
import types

import numpy as np

from convbridge import _impl

# float32 on both sides: the converted model agrees with PyTorch to this relative difference at every node. A
# node's difference is relative to the largest magnitude of the computation that produced it (its own output and,
# recursively, its inputs'): float32 round-off grows with the values a result is computed from, so a node whose
# output is small by cancellation (a squeeze-excite projection of large features) still carries the absolute
# error of those features. The end-to-end check of the zoo tests is relative to the output alone.
RELATIVE_TOLERANCE = 1e-4


class ConversionError(ValueError):
    """A model convbridge cannot convert exactly: the message names the op, the module path and the source line."""


# A None size of input_shape is captured at this size (example_shape overrides it) and verified there and one
# above it (an odd and an even size).
EXAMPLE_SIZE = 64


def _shapes(input_shape, what="input_shape"):
    if input_shape is None or isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
        raise ConversionError(f"{what}={input_shape!r} must be PyTorch's (N, C, *spatial), e.g. (1, 3, 224, 224)")
    shapes = list(input_shape) if input_shape and isinstance(list(input_shape)[0], (tuple, list)) else [input_shape]
    for shape in shapes:
        if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__") or len(tuple(shape)) < 2:
            raise ConversionError(f"{what}={input_shape!r} must be PyTorch's (N, C, *spatial), e.g. (1, 3, 224, 224)")
        for axis, size in enumerate(shape):
            if size is None and axis >= 2:
                continue
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                where = "the batch and channel sizes" if size is None else "sizes"
                raise ConversionError(f"{what}={tuple(shape)!r}: {where} must be positive ints (None is for spatial "
                                      f"sizes that may vary)")
    return [tuple(shape) for shape in shapes]


def _example_shapes(input_shape, example_shape):
    """(concrete shapes to capture at, the None axes of each input)."""
    shapes = _shapes(input_shape)
    dynamic = [[axis for axis, size in enumerate(shape) if size is None] for shape in shapes]
    if example_shape is None:
        return [tuple(EXAMPLE_SIZE if s is None else s for s in shape) for shape in shapes], dynamic
    examples = _shapes(example_shape, "example_shape")
    if len(examples) != len(shapes) or any(
            len(e) != len(s) or any(a is None or (b is not None and a != b) for a, b in zip(e, s))
            for e, s in zip(examples, shapes)):
        raise ConversionError(f"example_shape={example_shape!r} must fill the None sizes of input_shape="
                              f"{input_shape!r} with ints and repeat its other sizes")
    return examples, dynamic


def _random_inputs(shapes, seed):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator) for shape in shapes]


def _to_target_layout(array, placement):
    perm = placement["perm"]
    if placement["view_shape"]:
        viewed = array.reshape(placement["view_shape"]).transpose(perm)
        return viewed.reshape(viewed.shape[0], -1)
    return array.transpose(perm) if perm else array


def _run_generated(source, name):
    module = types.ModuleType(f"convbridge_generated_{name}")
    module.__file__ = f"<convbridge model.py for {name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # our own generated source, nothing else
    return module


def recording_locals(call, code):
    """call() and the local variables of the frame running `code` when it returns: every intermediate tensor of the
    generated build_model() / forward()."""
    recorded = {}

    def profiler(frame, event, arg):
        if event == "return" and frame.f_code is code:
            recorded.update(frame.f_locals)

    previous = sys.getprofile()
    sys.setprofile(profiler)
    try:
        result = call()
    finally:
        sys.setprofile(previous)
    return result, recorded


def _build_recording_locals(module):
    """module.build_model() and the local variables of its frame when it returns (every intermediate tensor)."""
    return recording_locals(module.build_model, module.build_model.__code__)


def relative_to_upstream(by_tensor, nodes):
    """{tensor: (max abs difference, magnitude, want shape, got shape)} -> {tensor: (relative difference, want
    shape, got shape)}: relative to the magnitude of the computation behind each tensor, its own and, recursively,
    its inputs' (nodes in execution order)."""
    scale = {tensor: entry[1] for tensor, entry in by_tensor.items()}
    for node in nodes:
        upstream = max((scale.get(t, 0.0) for t in node.get("inputs", [])), default=0.0)
        for tensor in node["outputs"]:
            if tensor in scale:
                scale[tensor] = max(scale[tensor], upstream)
    return {tensor: (error / max(scale[tensor], 1e-30), want_shape, got_shape)
            for tensor, (error, _, want_shape, got_shape) in by_tensor.items()}


def save_files_atomically(directory, writers):
    """Writes each file of directory (created if missing) by writers[name](open binary file), every one under a
    temporary name first, then renames them all: a failure part-way leaves none of them behind."""
    os.makedirs(directory, exist_ok=True)
    partials = {}
    try:
        for final, write in writers.items():
            # The temporary name is recorded before anything is written, so the finally clause always removes it.
            descriptor, partials[final] = tempfile.mkstemp(dir=directory, suffix=".partial")
            with os.fdopen(descriptor, "wb") as f:
                write(f)
        for final, partial in partials.items():
            os.replace(partial, os.path.join(directory, final))
    finally:
        for partial in partials.values():
            if os.path.exists(partial):
                os.remove(partial)
    return os.path.join(directory, next(iter(writers)))


def difference(want, got):
    """(max abs difference, max finite magnitude of want) of two float64 arrays; inf when the shapes differ. Equal
    values count as no difference, infinities (max pooling's -inf padding) and NaNs included; a magnitude never
    counts an infinity, which would make every difference after it look relatively small."""
    finite = np.abs(want[np.isfinite(want)])
    magnitude = float(np.max(finite)) if finite.size else 0.0
    if got.shape != want.shape:
        return float("inf"), magnitude
    if not want.size:
        return 0.0, magnitude
    same = (want == got) | (np.isnan(want) & np.isnan(got))
    with np.errstate(invalid="ignore"):
        gaps = np.where(same, 0.0, np.abs(got - want))
    return float(np.nanmax(gaps)) if not np.isnan(gaps).all() else float("inf"), magnitude


def verification_report(nodes, by_tensor, source, target):
    """(per node: its difference and whether it is within RELATIVE_TOLERANCE; a ConversionError naming the first
    node that is not, or None)."""
    report = []
    first_failure = None
    for node in nodes:
        for tensor in node["outputs"]:
            if tensor not in by_tensor:
                continue
            diff, want_shape, got_shape = by_tensor[tensor]
            ok = diff <= RELATIVE_TOLERANCE
            report.append({"node": node["node"], "origin": node["origin"], "target": node["target"],
                           "tensor": tensor, "max_relative_difference": diff,
                           "tolerance": RELATIVE_TOLERANCE, "ok": ok, "shape": want_shape})
            if not ok and first_failure is None:
                first_failure = (node, diff, want_shape, got_shape)
    if first_failure is None:
        return report, None
    node, diff, want_shape, got_shape = first_failure
    return report, ConversionError(
        f"verification failed: the first node that diverges is {node['node']} [{node['source_op']}] "
        f"{node['origin']} -> {node['target']}: max relative difference {diff:.3g} > "
        f"{RELATIVE_TOLERANCE:g} (shapes: {source} {want_shape}, {target} {got_shape}). This is a convbridge "
        f"bug; please report it with the model")


class ModelConversion:
    """A PyTorch model converted to Keras 3: explain(), keras_source(), save(directory), keras_model, report()."""

    def __init__(self, torch_model, input_shape, verify=True, seed=0, example_shape=None):
        from convbridge import _capture

        shapes, self._dynamic = _example_shapes(input_shape, example_shape)
        self._inputs = _random_inputs(shapes, seed)
        # Verified at the example size and, where sizes vary, one above it too.
        self._verify_inputs = [self._inputs]
        if any(self._dynamic):
            grown = [tuple(size + 1 if axis in axes else size for axis, size in enumerate(shape))
                     for shape, axes in zip(shapes, self._dynamic)]
            self._verify_inputs.append(_random_inputs(grown, seed + 1))
        try:
            graph, self._parameters, self._program = _capture.capture(torch_model, self._inputs, self._dynamic)
        except _capture.CaptureError as error:
            raise ConversionError(str(error)) from None
        try:
            self._plan = _impl.plan_torch_model(graph)
        except ValueError as error:
            raise ConversionError(str(error)) from None
        self._source = self._plan.keras_source()
        self._weights = self._plan.target_weights(self._parameters)
        self._module = _run_generated(self._source, self._plan.model_name)
        self._model, self._locals = _build_recording_locals(self._module)
        self._module.load_weights(self._model, self._weights)
        self._tensors = self._plan.tensors()  # built from the C++ plan on each call: read once
        self._nodes = self._plan.nodes()
        self._expected = {}  # PyTorch's node outputs per entry of _verify_inputs, each computed once
        self._report = None
        if len(self._verify_inputs) > 1:
            self._check_same_forward_at_other_sizes()
        if verify:
            self._verify()

    def _check_same_forward_at_other_sizes(self):
        """With None sizes the Keras model takes any size, so the PyTorch forward must be the same computation at
        every size: torch.export records the conditions it assumed (guards); running the exported program at
        another size trips them."""
        try:
            self._expected_outputs(1)
        except Exception as error:  # torch raises AssertionError or RuntimeError for a failed guard
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            shapes = [tuple(x.shape) for x in self._verify_inputs[1]]
            raise ConversionError(
                f"input_shape has None sizes, but the model's forward is not the same computation at every size: at "
                f"{shapes[0] if len(shapes) == 1 else shapes} it fails the condition torch.export recorded at the "
                f"example size ({message}). Give the sizes in input_shape (or an example_shape where the forward "
                f"holds for the sizes you need)") from None

    # ---- what the user reads ----
    @property
    def keras_model(self):
        return self._model

    @property
    def runtime_transposes(self):
        """Transposes the Keras model runs; 0 unless the PyTorch model moves data across the channel axis."""
        return self._plan.runtime_transposes

    def explain(self):
        return self._plan.explain()

    def keras_source(self):
        return self._source

    def nodes(self):
        return self._nodes

    def save(self, directory):
        """Writes model.py and weights.npz into directory (created if missing); nothing is left half-written."""
        return save_files_atomically(directory, {"model.py": lambda f: f.write(self._source.encode("utf-8")),
                                                 "weights.npz": lambda f: np.savez(f, **self._weights)})

    # ---- verification ----
    def report(self):
        """Per node: its max relative difference against PyTorch and the tolerance (verify=True)."""
        if self._report is None:
            self._verify()
        return self._report

    def _verify(self):
        import keras

        placements = [p for p in self._tensors if p["variable"] in self._locals]
        probe = keras.Model(self._model.inputs, [self._locals[p["variable"]] for p in placements])
        by_tensor = {}
        for index in range(len(self._verify_inputs)):
            for tensor, result in self._compare(probe, placements, index).items():
                if tensor not in by_tensor or result[0] > by_tensor[tensor][0]:
                    by_tensor[tensor] = result
        self._report_from(by_tensor)

    def _expected_outputs(self, index):
        """PyTorch's output of every node on _verify_inputs[index]."""
        if index not in self._expected:
            from convbridge import _capture

            self._expected[index] = _capture.node_outputs(self._program, self._verify_inputs[index])
        return self._expected[index]

    def _compare(self, probe, placements, index):
        """{tensor: (max relative difference, PyTorch shape, Keras shape)} for _verify_inputs[index]."""
        import torch

        inputs = self._verify_inputs[index]
        expected = self._expected_outputs(index)
        feeds = [np.ascontiguousarray(x.numpy().transpose([0] + list(range(2, x.ndim)) + [1]) if x.ndim >= 3
                                      else x.numpy()) for x in inputs]
        actual = probe(feeds)
        if not isinstance(actual, (list, tuple)):
            actual = [actual]
        by_tensor = {}
        input_names = [p["tensor"] for p in self._tensors][:len(inputs)]
        for placement, value in zip(placements, actual):
            source = expected.get(placement["tensor"])
            if source is None and placement["tensor"] in input_names:
                source = inputs[input_names.index(placement["tensor"])]
            if not isinstance(source, torch.Tensor):
                continue
            want = _to_target_layout(source.detach().numpy().astype(np.float64), placement)
            got = np.asarray(value, dtype=np.float64)
            error, magnitude = difference(want, got)
            by_tensor[placement["tensor"]] = (error, magnitude, tuple(want.shape), tuple(got.shape))
        return relative_to_upstream(by_tensor, self._nodes)

    def _report_from(self, by_tensor):
        self._report, error = verification_report(self._nodes, by_tensor, "PyTorch", "Keras")
        if error is not None:
            raise error
