"""PyTorch target adapter: builds nn.Modules from a TF/Keras -> PyTorch plan (its JSON form), weights loaded.

Module choices mirror the PyTorch emitter (src/emit/torch_emitter.cpp): fixed pads -> nn.ConstantPadNd; TF 'same'
padding that depends on the input size -> TFSamePad; nn.ConvNd / nn.ConvTransposeNd; a shorter transposed output
-> CropEnd; Keras' activation= -> its nn module; and, first, ExpectInputSize when the plan is exact for its input
size only, so that another size raises instead of giving wrong numbers.
"""

import json

import torch
from torch import nn

from convbridge.torch_modules import CropEnd, ExpectInputSize, TFSamePad


def _conv_module(step):
    transposed = step["module"].startswith("ConvTranspose")
    cls = getattr(nn, step["module"])
    padding = step["padding"] if isinstance(step["padding"], str) else tuple(step["padding"])
    common = dict(stride=tuple(step["stride"]), padding=padding, dilation=tuple(step["dilation"]),
                  groups=step["groups"], bias=step["bias"])
    if transposed:
        common["output_padding"] = tuple(step["output_padding"])
    return cls(step["in_channels"], step["out_channels"], tuple(step["kernel_size"]), **common)


def _size_guard(plan, source):
    """ExpectInputSize for a plan exact only for its input shape (channels_last, spatial sizes known), with the
    reason the emitter gives (src/emit/torch_emitter.cpp, torch_size_guard)."""
    spatial = tuple(plan.input_shape[1:-1])
    if not spatial or any(v < 0 for v in spatial):  # the planner only fixes plans to fully known sizes
        raise ValueError(f"plan exact for one input size has input shape {tuple(plan.input_shape)}")
    if source.get("framework") == "tensorflow" and source.get("output_shape") is not None:
        return ExpectInputSize(spatial, "the call's output_shape allows only this input size")
    return ExpectInputSize(spatial)


def build_module(plan, keras_weights, bias):
    """nn.Module (or nn.Sequential) for `plan` (a TorchPlan), channels_first in and out."""
    described = json.loads(plan.to_json())
    rank = len(described["source"]["kernel_size"])
    modules = [] if plan.exact_for_every_input_size else [_size_guard(plan, described["source"])]
    conv_index = 0
    names = plan.weight_names
    for step in described["steps"]:
        if step["op"] == "pad":
            if step["mode"] == "tf_same_at_runtime":
                modules.append(TFSamePad(step["kernel_extent"], step["strides"]))
            else:
                flat = [v for before, after in reversed(step["pads"]) for v in (before, after)]
                modules.append(getattr(nn, f"ConstantPad{rank}d")(tuple(flat), 0.0))
        elif step["op"] == "conv":
            module = _conv_module(step)
            if keras_weights is not None:  # None: built from text, PyTorch's default initialisation
                weight = plan.torch_weight(conv_index, keras_weights[names.index(step["weight"])])
                with torch.no_grad():
                    module.weight.copy_(torch.from_numpy(weight))
                    if module.bias is not None:
                        module.bias.copy_(torch.from_numpy(bias))
            modules.append(module)
            conv_index += 1
        elif step["op"] == "crop_end":
            modules.append(CropEnd(step["crop"]))
        elif step["op"] == "activation":  # Keras' activation=, e.g. nn.LeakyReLU(negative_slope=0.2)
            modules.append(getattr(nn, step["module"])(**step["arguments"]))
        else:  # a newer plan than this adapter knows: refuse rather than build something inexact
            raise ValueError(f"unknown plan step {step['op']!r}")
    return modules[0] if len(modules) == 1 else nn.Sequential(*modules)
