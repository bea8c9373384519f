"""PyTorch adapter: reads a torch.nn.ConvNd's configuration and weights without needing torch to be importable
by convbridge itself (a module object already implies torch is loaded)."""

import sys

_CONV_CLASSES = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


def _conv_class_name(module):
    """'Conv2d' for an nn.Conv2d (or a subclass), else raise ValueError naming what was passed and what to do."""
    torch = sys.modules.get("torch")
    if torch is not None:
        lazy = getattr(torch.nn.modules.lazy, "LazyModuleMixin", None)
        if lazy is not None and isinstance(module, lazy) and module.has_uninitialized_params():
            raise ValueError(
                f"{type(module).__name__} has not run yet, so its in_channels and weights are unknown: call it once "
                f"on an example input (module(x)), which turns it into an nn.{type(module).__name__[4:]}, then "
                f"translate it")
        for name in _CONV_CLASSES:
            if isinstance(module, getattr(torch.nn, name)):
                return name
    if type(module).__module__.startswith("keras"):
        raise ValueError(f"{type(module).__qualname__} is a Keras layer: convbridge.to_keras and convert_weights take "
                         f"PyTorch modules; use convbridge.to_torch(layer) for Keras -> PyTorch")
    raise ValueError(
        f"convbridge expects a torch.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d module (or its constructor text), "
        f"got {type(module).__module__}.{type(module).__qualname__}")


def layer_text(module):
    """The constructor call that rebuilds `module`'s configuration, e.g. 'nn.Conv2d(3, 16, kernel_size=(3, 3), ...)'.

    The C++ front-end parses and validates it, so a module whose attributes were edited into something PyTorch
    rejects gets the same message the CLI gives.
    """
    name = _conv_class_name(module)
    padding = module.padding
    padding_text = repr(padding) if isinstance(padding, str) else repr(tuple(padding))
    output_padding = (f"output_padding={tuple(module.output_padding)!r}, " if name.startswith("ConvTranspose")
                      else "")
    return (f"nn.{name}({module.in_channels}, {module.out_channels}, kernel_size={tuple(module.kernel_size)!r}, "
            f"stride={tuple(module.stride)!r}, padding={padding_text}, {output_padding}"
            f"dilation={tuple(module.dilation)!r}, groups={module.groups}, bias={module.bias is not None}, "
            f"padding_mode={module.padding_mode!r})")


def weights(module):
    """(weight, bias) as CPU tensors in PyTorch layout, without copies where the module already is on the CPU and
    float32 or float64. float16 and bfloat16 weights are widened to float32, which every value converts to exactly."""
    import torch

    if module.weight.is_meta:
        raise ValueError(f"the {type(module).__name__}'s weights are on the meta device and hold no values: "
                         f"materialise them first (module.to_empty(device='cpu'), then load_state_dict(...))")

    def host(tensor):
        tensor = tensor.detach().cpu()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()
        elif tensor.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"the {type(module).__name__}'s weights are {tensor.dtype}: convbridge converts floating "
                             f"point weights (float16, bfloat16, float32, float64); call module.float() first")
        return tensor.contiguous()

    return host(module.weight), None if module.bias is None else host(module.bias)
