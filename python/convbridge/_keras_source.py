"""Keras source adapter: reads a Keras 3 convolution layer's configuration and weights (TF/Keras -> PyTorch).

Only the layer object is inspected; keras itself is never imported here (a layer object implies it is loaded).
"""

CLASSES = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
            "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")


def is_keras_layer(obj):
    return any(cls.__module__.startswith("keras") and cls.__name__ in CLASSES for cls in type(obj).__mro__)


def _class_name(layer):
    for cls in type(layer).__mro__:
        if cls.__module__.startswith("keras") and cls.__name__ in CLASSES:
            return cls.__name__
    raise ValueError(f"convbridge expects a Keras convolution layer ({', '.join(CLASSES)}), "
                     f"got {type(layer).__module__}.{type(layer).__qualname__}")


def _activation_text(value):
    if value is None or value == "linear":
        return None
    return repr(value if isinstance(value, str) else getattr(value, "__name__", str(value)))


def layer_text(layer):
    """The constructor call that rebuilds the layer's configuration, for the C++ front-end to parse and check."""
    name = _class_name(layer)
    config = layer.get_config()
    arguments = []
    if "Depthwise" not in name:
        arguments.append(f"filters={config['filters']}")
    arguments.append(f"kernel_size={tuple(config['kernel_size'])!r}")
    arguments.append(f"strides={tuple(config['strides'])!r}")
    arguments.append(f"padding={config['padding']!r}")
    arguments.append(f"dilation_rate={tuple(config['dilation_rate'])!r}")
    if name.startswith("Conv") and "Transpose" not in name:
        arguments.append(f"groups={config.get('groups', 1)}")
    if "depth_multiplier" in config:
        arguments.append(f"depth_multiplier={config['depth_multiplier']}")
    if "Transpose" in name:
        output_padding = config.get("output_padding")
        arguments.append(f"output_padding={None if output_padding is None else tuple(output_padding)!r}")
    arguments.append(f"data_format={config.get('data_format')!r}")
    activation = _activation_text(config.get("activation"))
    if activation is not None:
        arguments.append(f"activation={activation}")
    arguments.append(f"use_bias={bool(config['use_bias'])}")
    return f"keras.layers.{name}({', '.join(arguments)})"


def in_channels(layer, input_shape):
    """The input channel count: from the built layer's kernel, else from input_shape (channels_last)."""
    name = _class_name(layer)
    if layer.built:
        if name.startswith("Separable"):
            return int(layer.depthwise_kernel.shape[-2])
        if "Transpose" in name:
            return int(layer.kernel.shape[-1])
        if name.startswith("Depthwise"):
            return int(layer.kernel.shape[-2])
        return int(layer.kernel.shape[-2]) * int(layer.get_config().get("groups", 1))
    if input_shape is not None and input_shape[-1] not in (None, -1):
        return int(input_shape[-1])
    raise ValueError(f"the {name} layer is not built, so its input channel count is unknown: build it or pass "
                     f"input_shape (channels_last, e.g. (None, None, None, 3))")


def weights(layer, weight_names):
    """The layer's weights as numpy arrays, in Keras layout and the plan's order, plus the bias (or None)."""
    import numpy as np

    by_name = {}
    for variable in layer.weights:
        by_name[variable.path.rsplit("/", 1)[-1]] = np.asarray(variable)
    missing = [name for name in weight_names if name not in by_name]
    if missing:
        raise ValueError(f"the layer has no weight named {missing[0]!r}: is it built?")
    return [by_name[name] for name in weight_names], by_name.get("bias")
