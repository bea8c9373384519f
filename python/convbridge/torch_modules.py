"""PyTorch modules for the parts of TensorFlow/Keras convolutions that nn.ConvNd has no argument for.

convbridge.to_torch builds models from these classes; the text below the embed marker is copied verbatim into
the code `convbridge translate --emit torch` prints, one `# convbridge-section:` at a time (those a plan uses, after
the common comment), so both run the same lines.
"""

import torch
import torch.nn.functional as F
from torch import nn

# convbridge-embed-begin


# These modules are written to be deployable as well as run eagerly: torch.jit.script compiles them, torch.jit.trace
# records their size arithmetic (so a trace made at one input size is exact at another) and torch.export.export
# keeps H/W symbolic. What that takes, each checked against torch 2.13:
# - Attributes are lists of ints, indexed in range() loops: TorchScript infers a Python list of ints as List[int]
#   and has no reversed() for it, while a tuple attribute becomes a fixed-length Tuple that cannot be indexed by a
#   loop variable.
# - Sizes come from x.shape[i] and stay in integer arithmetic (//, +, -, abs), never int(...), max(...) or a Python
#   `if` on them: under torch.jit.trace every x.shape entry is a traced 0-dim tensor (torch/csrc/Size.cpp,
#   THPSize_NewFromSymSizes) and tensors in an int-list argument such as F.pad's `pad` are recorded, not frozen
#   (torch/csrc/utils/python_arg_parser.cpp: "Elements of torch.Size are tensors during tracing"), while int() or
#   a comparison turns them into constants with a TracerWarning; under torch.export a size is a SymInt, and int()
#   or a bool of it adds a guard that specialises the dimension ("Constraints violated").
# - torch.export assumes a dynamic dimension is not 0 or 1 (its "0/1 specialization", docs.pytorch.org
#   compile/dynamic_shapes_zero_one_specialization), so give H/W a torch.export.Dim min at which every
#   intermediate size is at least 2 (for a strided conv: min = stride + 1, so that ceil(in / stride) >= 2).


# convbridge-section: TFSamePad


class TFSamePad(nn.Module):
    """TensorFlow's 'same' zero padding, computed from each input's size (it depends on it when stride > 1).

    Per spatial axis: out = ceil(in / s), need = max(0, (out - 1) * s + kernel_extent - in), need // 2 before and
    the rest after (tensorflow/core/framework/kernel_shape_util.cc). Input is channels_first (N, C, *spatial).
    It always comes right before a 'valid' convolution with this kernel extent and these strides, which reads
    exactly the (out - 1) * s + kernel_extent elements starting at the first one.
    """

    def __init__(self, kernel_extent, strides):
        super().__init__()
        self.kernel_extent = [int(k) for k in kernel_extent]
        self.strides = [int(s) for s in strides]

    def forward(self, x):
        rank = len(self.strides)
        pads = [0] * (2 * rank)  # F.pad order: last axis (before, after) first
        for i in range(rank):
            size = x.shape[2 + i]
            stride = self.strides[i]
            extent = self.kernel_extent[i]
            # Unclamped need: (ceil(size / s) - 1) * s + extent - size; ceil via floor division of ints.
            need = ((size + stride - 1) // stride - 1) * stride + extent - size
            # extent >= stride: (out - 1) * s >= size - s, so need >= extent - s >= 0 and TF's max(0, .) is a no-op.
            before = need // 2
            if extent < stride:  # constants of the module, not sizes: no guard, no trace constant
                # need may be negative here: the last window ends -need elements before the input does. TF pads
                # nothing; we pad (need + |need|) // 4 = max(0, need) // 2 before, as TF does, and end the padded
                # input at need - before, i.e. for need < 0 crop the -need trailing elements that no window of the
                # following conv reads (its windows and outputs are the same, bit for bit). Padding max(0, need)
                # after instead would need a max on sizes, which torch.export cannot keep symbolic.
                before = (need + abs(need)) // 4
            pads[2 * (rank - 1 - i)] = before
            pads[2 * (rank - 1 - i) + 1] = need - before
        return F.pad(x, pads)

    def extra_repr(self):
        return f"kernel_extent={tuple(self.kernel_extent)}, strides={tuple(self.strides)}"


# convbridge-section: CropEnd


class CropEnd(nn.Module):
    """Drops the last `crop[i]` elements of spatial axis i of a channels_first tensor."""

    def __init__(self, crop):
        super().__init__()
        self.crop = [int(c) for c in crop]

    def forward(self, x):
        # narrow(dim, 0, size - c) is the view x[..., :size - c, ...]; size comes from x.shape, so trace and export
        # record it rather than a constant.
        for i in range(len(self.crop)):
            x = x.narrow(2 + i, 0, x.shape[2 + i] - self.crop[i])
        return x

    def extra_repr(self):
        return f"crop={tuple(self.crop)}"


# convbridge-section: ExpectInputSize


class ExpectInputSize(nn.Module):
    """Refuses inputs whose spatial size is not `spatial_size`: the modules after it are exact for that size only.

    `why` ends the error message. TorchScript compiles the raise; a scripted module raises torch.jit.Error whose
    message ends with "builtins.ValueError: <this message>". torch.export turns the check into a guard on the input
    size (the module is for one size anyway); torch.jit.trace cannot record it (TracerWarning), so script or export
    a module that starts with it.
    """

    def __init__(self, spatial_size, why="translate with None sizes in the input shape for a module exact at every "
                                         "input size"):
        super().__init__()
        self.spatial_size = [int(v) for v in spatial_size]
        self.why = str(why)

    def forward(self, x):
        rank = len(self.spatial_size)
        if x.dim() != 2 + rank:
            raise ValueError(f"expected a {2 + rank}-D channels_first input (N, C, *spatial), got {x.dim()}-D")
        got = [x.shape[2 + i] for i in range(rank)]
        if got != self.spatial_size:
            raise ValueError(f"this module is exact only for inputs of spatial size {self.spatial_size}, but the "
                             f"input has spatial size {got}; {self.why}")
        return x

    def extra_repr(self):
        return f"spatial_size={tuple(self.spatial_size)}"


# ---- normalization family ----


# convbridge-section: ChannelsLayerNorm


class ChannelsLayerNorm(nn.Module):
    """Layer normalization over the channel axis alone, at each position of a channels_first tensor (N, C, *spatial).

    Keras' LayerNormalization(axis=-1) on channels_last tensors; nn.LayerNorm normalizes trailing axes only, so
    this moves C last, applies F.layer_norm over it and moves it back, the way ConvNeXt's LayerNorm does for
    channels_first input (facebookresearch/ConvNeXt models/convnext.py, LayerNorm). `weight` and `bias` are (C).
    """

    def __init__(self, channels: int, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True):
        super().__init__()
        self.channels = int(channels)
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(self.channels)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(self.channels)) if elementwise_affine and bias else None

    def forward(self, x):
        y = F.layer_norm(torch.movedim(x, 1, -1), [self.channels], self.weight, self.bias, self.eps)
        return torch.movedim(y, -1, 1)

    def extra_repr(self):
        return f"{self.channels}, eps={self.eps}, elementwise_affine={self.weight is not None}"
