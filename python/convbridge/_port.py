"""convbridge.port: trained PyTorch weights into a Keras model written by hand. The matching, the lint and every
re-layout are C++ (convbridge._impl.plan_port, the same code as `convbridge port`); this adapter only captures the
Keras model as data (convbridge._keras_capture), turns the checkpoint into arrays, sets the Keras variables, and,
given the PyTorch module, runs both models on one input.
"""

import collections
import json
import os

import numpy as np

from convbridge import _impl

LintFinding = collections.namedtuple("LintFinding", "layer check severity message")


class PortError(ValueError):
    """The checkpoint does not fill the Keras model exactly: the message names each Keras layer and the problem
    (lint errors, Keras weights nothing fills). port(..., force=True) loads what it can anyway."""


class PortResult:
    """What port() did: report() (the same text as the CLI's), matches [(keras layer, torch module)], lint
    [LintFinding], missing and unused names, and max_difference (relative to the PyTorch output's largest magnitude,
    None without a torch_module)."""

    def __init__(self, plan, info):
        self._report = plan.report()
        self.info = info
        self.matches = [(layer["keras_layer"], layer["torch_module"]) for layer in info["layers"]
                        if layer["torch_module"] is not None]
        findings = [f for layer in info["layers"] for f in layer["lint"]] + list(info["model_lint"])
        self.lint = [LintFinding(f["layer"], f["check"], f["severity"], f["message"]) for f in findings]
        self.missing = list(info["missing"])
        self.unused = list(info["unused"])
        self.errors = info["errors"]
        self.max_difference = None

    def report(self):
        text = self._report
        if self.max_difference is not None:
            text += f"verified against the PyTorch module: max difference {self.max_difference:.2e} relative\n"
        return text

    def __repr__(self):
        return (f"PortResult({len(self.matches)} layer(s) matched, {self.errors} error(s), "
                f"max_difference={self.max_difference})")


def _array(value, name):
    """A numpy array of a torch tensor or array-like (bfloat16 and float16 widened to float32, exactly)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        return value.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise PortError(f"checkpoint entry {name!r} is {array.dtype}, not numbers")
    return array


def _flatten(checkpoint, prefix, out):
    """Nested dicts (a training checkpoint) -> {dotted name: array}, in insertion order; other values (an epoch
    number, argparse.Namespace) are skipped, as the file reader skips them."""
    for key, value in checkpoint.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, name + ".", out)
        elif hasattr(value, "shape") and hasattr(value, "dtype"):
            out[name] = _array(value, name)
    return out


def _checkpoint_arrays(checkpoint):
    if isinstance(checkpoint, (str, bytes, os.PathLike)):
        from convbridge._weights import read_weights

        arrays = read_weights(checkpoint)
        return {name: a.astype(np.float32) if str(a.dtype) in ("float16", "bfloat16") else a
                for name, a in arrays.items()}
    if isinstance(checkpoint, dict):
        return _flatten(checkpoint, "", {})
    raise PortError(f"checkpoint must be a path or a (nested) dict of tensors, not {type(checkpoint).__name__}")


# nn classes whose constructor the lint compares exactly (convs by parse_pytorch_layer, norms by parse_op_layer).
_LINTED_MODULES = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
                   "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "LayerNorm", "InstanceNorm1d",
                   "InstanceNorm2d", "InstanceNorm3d")


def _module_texts(torch_module):
    """{module path: "nn.Conv2d(...)"}: each leaf module's constructor as its repr writes it."""
    texts = {}
    for name, module in torch_module.named_modules():
        if type(module).__name__ in _LINTED_MODULES and type(module).__module__.startswith("torch.nn"):
            texts[name] = "nn." + repr(module)
    return texts


def _layers_by_path(keras, model, prefix="", out=None):
    out = {} if out is None else out
    for layer in model.layers:
        path = prefix + layer.name
        if isinstance(layer, keras.Model):
            _layers_by_path(keras, layer, path + "/", out)
        else:
            out[path] = layer
    return out


def _compare(torch, keras_model, torch_module, example_input):
    if example_input is None:
        shape = tuple(keras_model.inputs[0].shape[1:])
        if any(s is None for s in shape):
            shape = tuple(64 if s is None else s for s in shape[:-1]) + shape[-1:]
        rank = len(shape)
        nchw = (1, shape[-1]) + shape[:-1] if rank >= 2 else (1,) + shape
        example_input = np.random.default_rng(0).standard_normal(nchw).astype(np.float32)
    example_input = np.asarray(example_input, dtype=np.float32)
    with torch.no_grad():
        was_training = torch_module.training
        torch_module.eval()
        expected = torch_module(torch.from_numpy(example_input)).detach().numpy()
        torch_module.train(was_training)
    x = np.moveaxis(example_input, 1, -1) if example_input.ndim >= 3 else example_input
    got = np.asarray(keras_model(x, training=False))
    if got.ndim >= 3 and got.ndim == expected.ndim:
        got = np.moveaxis(got, -1, 1)
    if got.shape != expected.shape:
        raise PortError(f"the Keras model's output has shape {got.shape} and the PyTorch module's {expected.shape}")
    scale = max(float(np.abs(expected).max()), 1e-30)
    return float(np.abs(got.astype(np.float64) - expected).max()) / scale


def port(checkpoint, keras_model, torch_module=None, example_input=None, force=False):
    """Fills `keras_model` (a built Functional or Sequential model, written by hand) with a PyTorch checkpoint's
    weights, exactly re-laid out, after linting every pair for what weights cannot fix.

        result = convbridge.port("resnet18.pth", my_keras_resnet)            # or a state_dict
        result = convbridge.port(torch_model.state_dict(), my_keras_resnet, torch_module=torch_model)
        print(result.report()); result.max_difference                       # <= 1e-4 when they agree

    checkpoint: a torch.save / safetensors / .npz path (read without executing anything), or a (nested) dict of
    tensors or arrays; training checkpoints ({"model": ..., "optimizer": ...}) and DDP "module." prefixes are
    handled. torch_module: the PyTorch model; its constructors make the lint exact (stride, padding, eps), and both
    models then run on `example_input` (NCHW numpy; default one random input at the Keras input size).
    Raises PortError naming the layer on lint errors or Keras weights nothing fills, before any weight is set,
    unless force=True.
    """
    import keras

    from convbridge._keras_capture import capture

    description, _ = capture(keras_model)
    arrays = _checkpoint_arrays(checkpoint)
    if not arrays:
        raise PortError("the checkpoint holds no tensors")
    texts = _module_texts(torch_module) if torch_module is not None else {}
    plan = _impl.plan_port(json.dumps(description), [(name, list(a.shape)) for name, a in arrays.items()], texts)
    result = PortResult(plan, json.loads(plan.report_json()))
    if result.errors and not force:
        problems = [f"'{f.layer}' [{f.check}]: {f.message}" for f in result.lint if f.severity == "error"]
        problems += [f"{name}: no checkpoint tensor fills it" for name in result.missing]
        raise PortError(f"{len(problems)} problem(s) porting into Keras model '{keras_model.name}' (nothing was "
                        f"set; force=True loads it anyway):\n  " + "\n  ".join(problems))
    layers = _layers_by_path(keras, keras_model)
    values = collections.defaultdict(dict)
    for layer_path, name, source, fill in plan.variables():
        if source is not None:
            values[layer_path][name] = plan.convert(layer_path, name, np.ascontiguousarray(arrays[source], np.float32))
        elif fill is not None:
            values[layer_path][name] = fill
    for layer_path, new in values.items():
        layer = layers[layer_path]
        current = layer.get_weights()
        names = [v.name.split("/")[-1] for v in layer.weights]
        for i, name in enumerate(names):
            if name in new:
                value = new[name]
                current[i] = (np.full(current[i].shape, value, current[i].dtype) if np.isscalar(value)
                              else value.astype(current[i].dtype).reshape(current[i].shape))
        layer.set_weights(current)
    if torch_module is not None:
        import torch

        result.max_difference = _compare(torch, keras_model, torch_module, example_input)
    return result
