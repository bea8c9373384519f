"""PyTorch adapter: reads a torch.nn.ConvNd's configuration and weights without needing torch to be importable
by convbridge itself (a module object already implies torch is loaded)."""

import sys

_CONV_CLASSES = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


def _conv_class_name(module):
    """'Conv2d' for an nn.Conv2d (or a subclass), else raise ValueError naming what was passed."""
    torch = sys.modules.get("torch")
    if torch is not None:
        for name in _CONV_CLASSES:
            if isinstance(module, getattr(torch.nn, name)):
                return name
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
    """(weight, bias) as CPU tensors in PyTorch layout, without copies where the module already is on the CPU."""
    weight = module.weight.detach().cpu().contiguous()
    bias = None if module.bias is None else module.bias.detach().cpu().contiguous()
    return weight, bias
