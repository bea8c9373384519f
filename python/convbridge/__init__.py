"""convbridge: translate convolution layers from PyTorch to TensorFlow/Keras exactly.

    import convbridge
    plan = convbridge.translate(torch_conv)           # or translate(torch_conv, input_shape=(1, 3, 224, 224))
    print(plan.explain())
    layer = convbridge.to_keras(torch_conv)            # Keras layer, weights loaded, channels_last in and out
    weights = convbridge.convert_weights(torch_conv)   # {"kernel": ..., "bias": ...} in the Keras layout

Neither torch nor tensorflow is needed to import convbridge; each is imported only by the call that needs it.
"""

from convbridge._impl import Plan, __version__
from convbridge._impl import plan_pytorch_layer as _plan_pytorch_layer
from convbridge import _torch

__all__ = ["Plan", "translate", "to_keras", "convert_weights", "__version__"]


def _input_shape(input_shape):
    if input_shape is None:
        return None
    try:
        shape = [int(v) for v in input_shape]
    except (TypeError, ValueError):
        raise ValueError(f"input_shape={input_shape!r} must be a sequence of ints (N, C, *spatial)") from None
    if any(int(v) != v for v in input_shape):
        raise ValueError(f"input_shape={input_shape!r} must be a sequence of ints (N, C, *spatial)")
    return shape


def translate(module, input_shape=None) -> Plan:
    """Plans the exact TensorFlow/Keras equivalent of a torch.nn.Conv1d/2d/3d (or of its constructor text).

    input_shape: the PyTorch input shape (N, C, *spatial). Without it the plan is exact for every input size;
    with it, it is the cheapest plan exact for that size. Raises ValueError for configurations or shapes PyTorch
    rejects, with the message the CLI prints.
    """
    text = module if isinstance(module, str) else _torch.layer_text(module)
    return _plan_pytorch_layer(text, _input_shape(input_shape))


def _converted(plan, module):
    weight, bias = _torch.weights(module)
    dtype = str(weight.dtype)
    if dtype not in ("torch.float32", "torch.float64"):
        raise ValueError(f"weight dtype {dtype} is not supported: convbridge converts float32 and float64 weights")
    kernel = plan.convert_kernel(weight)
    return kernel, None if bias is None else bias.numpy()


def convert_weights(module) -> dict:
    """The module's weights in the layout of the Keras layer to_keras builds, bit for bit.

    Returns {"kernel": numpy array, "bias": numpy array or None}. The kernel is (*k, in/groups, out) for ConvND
    and (*k, in, multiplier) for DepthwiseConvND; the bias is unchanged.
    """
    kernel, bias = _converted(translate(module), module)
    return {"kernel": kernel, "bias": bias}


def to_keras(module, input_shape=None):
    """A Keras layer (or small keras.Sequential) with the module's weights loaded, such that
    to_keras(m)(x_channels_last) equals m(x) moved to channels_last, within float32 round-off: for every input size
    when input_shape is None, for that size otherwise. Needs keras (with the TensorFlow backend)."""
    plan = translate(module, input_shape)
    from convbridge import _keras  # imports keras only here

    kernel, bias = _converted(plan, module)
    return _keras.build_layer(plan.to_json(), kernel, bias)
