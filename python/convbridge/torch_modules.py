"""PyTorch modules for the parts of TensorFlow/Keras convolutions that nn.ConvNd has no argument for.

convbridge.to_torch builds models from these classes; the text below the embed marker is copied verbatim into
the code `convbridge translate --emit torch` prints, so both run the same lines.
"""

import torch
import torch.nn.functional as F
from torch import nn

# convbridge-embed-begin


class TFSamePad(nn.Module):
    """TensorFlow's 'same' zero padding, computed from each input's size (it depends on it when stride > 1).

    Per spatial axis: out = ceil(in / s), need = max(0, (out - 1) * s + kernel_extent - in), need // 2 before and
    the rest after (tensorflow/core/framework/kernel_shape_util.cc). Input is channels_first (N, C, *spatial).
    """

    def __init__(self, kernel_extent, strides):
        super().__init__()
        self.kernel_extent = tuple(int(k) for k in kernel_extent)
        self.strides = tuple(int(s) for s in strides)

    def forward(self, x):
        pads = []
        for size, extent, stride in zip(reversed(x.shape[2:]), reversed(self.kernel_extent), reversed(self.strides)):
            out = -(-int(size) // stride)
            need = max(0, (out - 1) * stride + extent - int(size))
            pads += [need // 2, need - need // 2]
        return F.pad(x, pads)

    def extra_repr(self):
        return f"kernel_extent={self.kernel_extent}, strides={self.strides}"


class CropEnd(nn.Module):
    """Drops the last `crop[i]` elements of spatial axis i of a channels_first tensor."""

    def __init__(self, crop):
        super().__init__()
        self.crop = tuple(int(c) for c in crop)

    def forward(self, x):
        index = [slice(None), slice(None)] + [slice(0, size - c) for size, c in zip(x.shape[2:], self.crop)]
        return x[tuple(index)]

    def extra_repr(self):
        return f"crop={self.crop}"
