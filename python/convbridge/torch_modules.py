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


# ---- pooling family ----
# convbridge-section: TFSamePool


class TFSamePool(nn.Module):
    """TensorFlow 'SAME' max or average pooling on a channels_first tensor, at every input size.

    Per spatial axis, as TFSamePad: out = ceil(n / s), need = max(0, (out - 1) * s + extent - n), need // 2 before
    and the rest after (tensorflow/core/framework/kernel_shape_util.cc). Max pooling pads with -inf (TF's padding
    never wins a max); average pooling divides each window's sum by its input elements, TF's divisor
    (tensorflow/core/kernels/avgpooling_op.cc), computed as the average of the zero-padded input over the average of
    a zero-padded ones plane.
    """

    def __init__(self, kind: str, kernel_size, stride, dilation):
        super().__init__()
        self.kind = str(kind)
        self.kernel_size = [int(k) for k in kernel_size]
        self.stride = [int(s) for s in stride]
        self.dilation = [int(d) for d in dilation]

    def _pool(self, x, maximum: bool):
        rank = len(self.stride)
        if maximum:
            if rank == 1:
                return F.max_pool1d(x, self.kernel_size, self.stride, [0], self.dilation)
            if rank == 2:
                return F.max_pool2d(x, self.kernel_size, self.stride, [0, 0], self.dilation)
            return F.max_pool3d(x, self.kernel_size, self.stride, [0, 0, 0], self.dilation)
        if rank == 1:
            return F.avg_pool1d(x, self.kernel_size, self.stride)
        if rank == 2:
            return F.avg_pool2d(x, self.kernel_size, self.stride)
        return F.avg_pool3d(x, self.kernel_size, self.stride)

    def forward(self, x):
        rank = len(self.stride)
        pads = [0] * (2 * rank)  # F.pad order: last axis (before, after) first
        for i in range(rank):
            size = x.shape[2 + i]
            stride = self.stride[i]
            extent = (self.kernel_size[i] - 1) * self.dilation[i] + 1
            need = ((size + stride - 1) // stride - 1) * stride + extent - size
            need = (need + abs(need)) // 2  # max(0, need) in integer arithmetic (trace and export keep it symbolic)
            pads[2 * (rank - 1 - i)] = need // 2
            pads[2 * (rank - 1 - i) + 1] = need - need // 2
        if self.kind == "max":
            return self._pool(F.pad(x, pads, value=float("-inf")), True)
        ones = torch.ones_like(x[:1, :1])
        return self._pool(F.pad(x, pads), False) / self._pool(F.pad(ones, pads), False)

    def extra_repr(self):
        return (f"kind={self.kind!r}, kernel_size={tuple(self.kernel_size)}, stride={tuple(self.stride)}, "
                f"dilation={tuple(self.dilation)}")


# ---- resizing family ----
# convbridge-section: Interpolate
from typing import List, Optional  # noqa: E402  (for TorchScript's attribute types)


class Interpolate(nn.Module):
    """F.interpolate as a module, for the arguments nn.Upsample lacks (antialias).

    TF's antialiased resize (scale_and_translate with a triangle or Keys cubic A = -0.5 kernel, stretched by in / out
    when downscaling) is F.interpolate(antialias=True) with mode 'bilinear' or 'bicubic' and align_corners=False.
    """

    size: Optional[List[int]]
    scale_factor: Optional[List[float]]

    def __init__(self, size=None, scale_factor=None, mode="bilinear", align_corners=False, antialias=False):
        super().__init__()
        self.size = None if size is None else [int(v) for v in size]
        self.scale_factor = None if scale_factor is None else [float(v) for v in scale_factor]
        self.mode = mode
        self.align_corners = align_corners
        self.antialias = antialias

    def forward(self, x):
        return F.interpolate(x, size=self.size, scale_factor=self.scale_factor, mode=self.mode,
                             align_corners=self.align_corners, antialias=self.antialias)

    def extra_repr(self):
        return (f"size={self.size}, scale_factor={self.scale_factor}, mode={self.mode!r}, "
                f"align_corners={self.align_corners}, antialias={self.antialias}")


# convbridge-section: SeparableResize
from typing import List  # noqa: E402  (for TorchScript's attribute types)


def _keys_cubic(distance: torch.Tensor, a: float) -> torch.Tensor:
    """Keys' cubic convolution weight of a tap at `distance` (torch cubic_convolution1/2, TF's bicubic table)."""
    d = distance.abs()
    near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    far = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    return torch.where(d <= 1.0, near, torch.where(d < 2.0, far, torch.zeros_like(d)))


def _one_hot(index: torch.Tensor, depth: int) -> torch.Tensor:
    return F.one_hot(index, depth).to(torch.float64)


def _resize_axis_matrix(in_size: int, out_size: int, scale_factor: float, mode: str, coordinates: str,
                        rounding: str, cubic_a: float, cubic_edges: str, cubic_table_steps: int, antialias: bool,
                        use_given_scale: bool, device: torch.device) -> torch.Tensor:
    """The (out, in) float64 interpolation matrix of one axis; the construction of resize_axis_matrix in
    convbridge's C++ core (src/ops/resizing.cpp), each branch following the framework kernel named there."""
    if mode == "nearest":
        # float32 positions, as torch's nearest kernels and TF's resize_nearest_neighbor compute them.
        if use_given_scale:
            scale32 = torch.tensor(1.0 / scale_factor, dtype=torch.float64).to(torch.float32)
        else:
            scale32 = torch.tensor(float(in_size), dtype=torch.float32) / torch.tensor(float(out_size),
                                                                                     dtype=torch.float32)
        xs = torch.arange(out_size, device=device)
        xf = xs.to(torch.float32)
        if rounding == "floor":
            if out_size == in_size:
                index = xs
            elif out_size == 2 * in_size:
                index = xs // 2
            else:
                index = torch.floor(xf * scale32.to(device)).to(torch.int64)
        else:
            index = torch.floor((xf + 0.5) * scale32.to(device)).to(torch.int64)
        return _one_hot(index.clamp(0, in_size - 1), in_size)
    x = torch.arange(out_size, dtype=torch.float64, device=device)
    scale = 1.0 / scale_factor if use_given_scale else float(in_size) / float(out_size)
    if antialias:
        half_width = 2.0 if mode == "cubic" else 1.0
        support = half_width * scale if scale >= 1.0 else half_width
        inverse = 1.0 / scale if scale >= 1.0 else 1.0
        center = scale * (x + 0.5)
        # int64 conversions truncate toward zero, as the C++ int64_t(...) casts do.
        low = (center - support + 0.5).to(torch.int64).clamp(min=0)
        high = (center + support + 0.5).to(torch.int64).clamp(max=in_size)
        taps = torch.arange(in_size, device=device)[None, :]
        distance = (taps.to(torch.float64) - center[:, None] + 0.5) * inverse
        if mode == "cubic":
            weights = _keys_cubic(distance, cubic_a)
        else:
            weights = (1.0 - distance.abs()).clamp(min=0.0)
        inside = (taps >= low[:, None]) & (taps < high[:, None])
        weights = torch.where(inside, weights, torch.zeros_like(weights))
        total = weights.sum(dim=1, keepdim=True)
        return torch.where(total != 0.0, weights / torch.where(total == 0.0, torch.ones_like(total), total), weights)
    if coordinates == "align_corners":
        if out_size > 1:
            source = x * float(in_size - 1) / float(out_size - 1)
        else:
            source = torch.zeros_like(x)
    elif coordinates == "asymmetric":
        source = x * scale
    else:
        source = (x + 0.5) * scale - 0.5
    if mode == "linear":
        source = source.clamp(min=0.0)
        low = torch.floor(source).to(torch.int64).clamp(max=in_size - 1)
        high = (low + 1).clamp(max=in_size - 1)
        lam = (source - low.to(torch.float64))[:, None]
        return _one_hot(low, in_size) * (1.0 - lam) + _one_hot(high, in_size) * lam
    base = torch.floor(source)
    t = source - base
    if cubic_table_steps > 0:
        # TF's resize_bicubic table: lrintf(t * steps), half to even (torch.round rounds half to even too).
        t = torch.round(t * cubic_table_steps) / cubic_table_steps
    first = base.to(torch.int64) - 1
    weights = [_keys_cubic(1.0 + t, cubic_a), _keys_cubic(t, cubic_a), _keys_cubic(1.0 - t, cubic_a),
               _keys_cubic(2.0 - t, cubic_a)]
    if cubic_edges == "renormalize":
        kept = []
        for k in range(4):
            index = first + k
            kept.append(torch.where((index >= 0) & (index <= in_size - 1), weights[k], torch.zeros_like(t)))
        total = kept[0] + kept[1] + kept[2] + kept[3]
        usable = total.abs() >= 1000.0 * 1.1920929e-7
        weights = [torch.where(usable, w / torch.where(usable, total, torch.ones_like(total)), w) for w in kept]
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64, device=device)
    for k in range(4):
        matrix = matrix + _one_hot((first + k).clamp(0, in_size - 1), in_size) * weights[k][:, None]
    return matrix


class SeparableResize(nn.Module):
    """Resizes the spatial axes of a channels_first tensor with TF's (or PyTorch's) interpolation conventions.

    Each spatial axis is multiplied by an (out, in) interpolation matrix built from the input size at run time,
    applied with torch.einsum. The conventions are the data of convbridge's ResizeOp (see the Keras layer of the
    same name in convbridge/keras_layers.py); TF's bicubic is mode='cubic', cubic_a=-0.5,
    cubic_edges='renormalize', cubic_table_steps=1024.
    """

    size: List[int]
    scale_factor: List[float]

    def __init__(self, mode="linear", coordinates="half_pixel", rounding="floor", cubic_a=-0.75,
                 cubic_edges="clamp", cubic_table_steps=0, antialias=False, size=None, scale_factor=None,
                 use_given_scale=False):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError("SeparableResize needs exactly one of size and scale_factor")
        self.mode = mode
        self.coordinates = coordinates
        self.rounding = rounding
        self.cubic_a = float(cubic_a)
        self.cubic_edges = cubic_edges
        self.cubic_table_steps = int(cubic_table_steps)
        self.antialias = bool(antialias)
        # Lists (not Optional) so that torch.jit.script types them: an empty list stands for "not given".
        self.size = [] if size is None else [int(v) for v in size]
        self.scale_factor = [] if scale_factor is None else [float(v) for v in scale_factor]
        self.use_given_scale = bool(use_given_scale)

    def forward(self, x):
        rank = len(self.size) if len(self.size) > 0 else len(self.scale_factor)
        letters = "dhw"[3 - rank:]
        for axis in range(rank):
            in_size = x.shape[2 + axis]
            if len(self.size) > 0:
                out_size = self.size[axis]
                scale = 1.0
            else:
                scale = self.scale_factor[axis]
                out_size = int(float(in_size) * scale // 1)  # torch: int64(in * scale) in double
            matrix = _resize_axis_matrix(in_size, out_size, scale, self.mode, self.coordinates, self.rounding,
                                         self.cubic_a, self.cubic_edges, self.cubic_table_steps, self.antialias,
                                         self.use_given_scale, x.device)
            source = "nc" + letters
            target = source.replace(letters[axis], "o")
            x = torch.einsum("o" + letters[axis] + "," + source + "->" + target, matrix.to(x.dtype), x)
        return x

    def extra_repr(self):
        return (f"mode={self.mode!r}, coordinates={self.coordinates!r}, rounding={self.rounding!r}, "
                f"cubic_a={self.cubic_a}, cubic_edges={self.cubic_edges!r}, "
                f"cubic_table_steps={self.cubic_table_steps}, antialias={self.antialias}, size={self.size}, "
                f"scale_factor={self.scale_factor}, use_given_scale={self.use_given_scale}")


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


# convbridge-section: KerasNormalization


class KerasNormalization(nn.Module):
    """Keras' Normalization layer on a channels_first tensor: (x - mean) / max(sqrt(variance), epsilon), or with
    invert mean + x * max(sqrt(variance), epsilon), in Keras' order of operations
    (keras/src/layers/preprocessing/normalization.py, call). `shape` broadcasts the per-channel statistics over the
    input without its batch axis, e.g. (C, 1, 1); epsilon is keras.backend.epsilon()."""

    def __init__(self, shape, invert: bool = False, epsilon: float = 1e-7):
        super().__init__()
        self.invert = bool(invert)
        self.epsilon = float(epsilon)
        self.register_buffer("mean", torch.zeros(tuple(shape)))
        self.register_buffer("variance", torch.ones(tuple(shape)))

    def forward(self, x):
        std = torch.clamp_min(torch.sqrt(self.variance), self.epsilon)
        if self.invert:
            return self.mean + x * std
        return (x - self.mean) / std

    def extra_repr(self):
        return f"{tuple(self.mean.shape)}, invert={self.invert}, epsilon={self.epsilon}"


# ---- padding family ----
# convbridge-section: SymmetricPad


class SymmetricPad(nn.Module):
    """tf.pad(mode='SYMMETRIC') on the spatial axes of a channels_first tensor: mirror including the edge entry,
    [1, 2, 3] padded by 2 -> [2, 1, 1, 2, 3, 3, 2]. PyTorch has no such mode (replicate equals it for pads of 1
    only). `padding` is in PyTorch's order, the last axis first (left, right, top, bottom, front, back); each pad
    is at most its axis' size, as TensorFlow requires."""

    def __init__(self, padding):
        super().__init__()
        self.padding = [int(v) for v in padding]

    def forward(self, x):
        for pair in range(len(self.padding) // 2):
            axis = x.dim() - 1 - pair
            before = self.padding[2 * pair]
            after = self.padding[2 * pair + 1]
            size = x.shape[axis]
            x = torch.cat([x.narrow(axis, 0, before).flip([axis]), x,
                           x.narrow(axis, size - after, after).flip([axis])], dim=axis)
        return x

    def extra_repr(self):
        return f"padding={tuple(self.padding)}"


# convbridge-section: TFDepthToSpace


class TFDepthToSpace(nn.Module):
    """tf.nn.depth_to_space(x, block_size) on a channels_first tensor: (N, C*r*r, H, W) -> (N, C, H*r, W*r).

    TensorFlow reads output channel c at block offset (i, j) from input channel (i*r + j)*C + c (the block offset
    in the high-order bits, ONNX "DCR"); nn.PixelShuffle reads c*r*r + i*r + j ("CRD"), so it is no substitute."""

    def __init__(self, block_size):
        super().__init__()
        self.block_size = int(block_size)

    def forward(self, x):
        r = self.block_size
        n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        x = x.reshape(n, r, r, c // (r * r), h, w)  # channel index (i*r + j)*C + c
        x = x.permute(0, 3, 4, 1, 5, 2)              # (N, C, H, i, W, j)
        return x.reshape(n, c // (r * r), h * r, w * r)

    def extra_repr(self):
        return f"block_size={self.block_size}"


# convbridge-section: TFSpaceToDepth


class TFSpaceToDepth(nn.Module):
    """tf.nn.space_to_depth(x, block_size) on a channels_first tensor: (N, C, H*r, W*r) -> (N, C*r*r, H, W), output
    channel (i*r + j)*C + c holding block offset (i, j) of input channel c (TensorFlow's DCR order)."""

    def __init__(self, block_size):
        super().__init__()
        self.block_size = int(block_size)

    def forward(self, x):
        r = self.block_size
        n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        x = x.reshape(n, c, h // r, r, w // r, r)  # (N, C, H, i, W, j)
        x = x.permute(0, 3, 5, 1, 2, 4)             # (N, i, j, C, H, W)
        return x.reshape(n, r * r * c, h // r, w // r)

    def extra_repr(self):
        return f"block_size={self.block_size}"
