"""PyTorch's replicate and circular padding for channels_last tensors, built from edge slices.

tf.pad and keras.ops.pad (on TensorFlow) have no replicate or circular mode, and SYMMETRIC is not replicate:
[1, 2, 3, 4] padded by 2 is [1, 1, 1, 2, 3, 4, 4, 4] with replicate but [2, 1, 1, 2, 3, 4, 4, 3] with SYMMETRIC.

The text below the embed marker is copied verbatim into the code `convbridge translate` emits, so generated code
and the convbridge package run the same lines.
"""

# convbridge-embed-begin


def _axis_slice(x, axis, start, stop):
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def torch_edge_pad(x, pads, mode, ops):
    """Pads the spatial axes of channels_last `x` like torch.nn.functional.pad(mode='replicate' or 'circular').

    pads: one (before, after) pair per spatial axis. ops: a numpy-like namespace with repeat and concatenate
    (keras.ops, or tensorflow.experimental.numpy). Circular padding wraps at most once, as PyTorch allows.
    """
    if mode not in ("replicate", "circular"):
        raise ValueError(f"mode={mode!r}: expected 'replicate' or 'circular'")
    for axis, (before, after) in enumerate(pads, start=1):
        parts = []
        if before:
            if mode == "replicate":
                parts.append(ops.repeat(_axis_slice(x, axis, 0, 1), before, axis=axis))
            else:
                parts.append(_axis_slice(x, axis, -before, None))
        parts.append(x)
        if after:
            if mode == "replicate":
                parts.append(ops.repeat(_axis_slice(x, axis, -1, None), after, axis=axis))
            else:
                parts.append(_axis_slice(x, axis, 0, after))
        x = ops.concatenate(parts, axis=axis)
    return x
