"""convbridge: translate convolution layers between PyTorch and TensorFlow/Keras exactly.

    import convbridge
    plan = convbridge.translate(torch_conv)           # or translate(torch_conv, input_shape=(1, 3, 224, 224))
    print(plan.explain())
    layer = convbridge.to_keras(torch_conv)            # Keras layer, weights loaded, channels_last in and out
    weights = convbridge.convert_weights(torch_conv)   # {"kernel": ..., "bias": ...} in the Keras layout
    module = convbridge.to_torch(keras_conv)           # nn.Module, weights loaded, channels_first in and out
    convbridge.port("resnet18.pth", my_keras_resnet)    # trained weights into a hand-written Keras model, linted
    plan = convbridge.translate("tf.nn.conv2d(x, w, 2, 'SAME')", filters_shape=(3, 3, 16, 32))
    print(plan.torch_code())                           # make_module(filters) for a tf.nn call

Neither torch nor tensorflow is needed to import convbridge; each is imported only by the call that needs it.
"""

import reprlib
import sys
import warnings

from convbridge._impl import LayerPlan, Plan, TorchPlan, __version__
from convbridge._impl import plan_keras_layer as _plan_keras_layer
from convbridge._impl import plan_pytorch_layer as _plan_pytorch_layer
from convbridge._impl import plan_tf_nn_call as _plan_tf_nn_call
from convbridge import _impl, _keras_registration, _keras_source, _op_layers, _torch
from convbridge._model import ConversionError
from convbridge._port import PortError, PortResult, port
from convbridge._weights import inspect_weights, read_weights

_keras_registration.install()  # saved models with convbridge's Keras layers load after `import convbridge`

__all__ = ["Plan", "TorchPlan", "LayerPlan", "ConversionError", "translate", "to_keras", "to_torch", "convert",
           "convert_weights", "read_weights", "inspect_weights", "port", "PortError", "PortResult", "__version__"]


def _input_shape(input_shape, allow_unknown=False):
    """A list of ints (-1 for None entries with allow_unknown), checked exactly as the CLI's --input-shape."""
    if input_shape is None:
        return None
    if hasattr(input_shape, "dtype") and getattr(input_shape, "ndim", 1) != 1:  # a tensor passed for its shape
        raise ValueError(f"input_shape must be a shape such as (1, 3, 224, 224), not a {type(input_shape).__name__} "
                         f"of shape {tuple(input_shape.shape)}: pass x.shape")
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
        raise ValueError(f"input_shape={reprlib.repr(input_shape)} must be a sequence of ints such as (1, 3, 224, 224)")
    entries = []
    for value in input_shape:
        if value is None and allow_unknown:
            entries.append("None")
        elif isinstance(value, bool) or not (isinstance(value, int) or (hasattr(value, "__index__"))):
            raise ValueError(f"input_shape={tuple(input_shape)!r} must be a sequence of ints: {value!r} is not one")
        else:
            entries.append(str(int(value)))
    return _impl.parse_input_shape(",".join(entries), allow_unknown)


def _layer_text(text):
    """The text as the C++ front-end takes it: str, or bytes when it is not valid Unicode (as the CLI gets it)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _is_keras_text(text):
    return _impl.names_keras_layer(_layer_text(text))


def _filters_shape(filters_shape):
    """A list of positive ints, checked exactly as the CLI's --filters-shape."""
    if isinstance(filters_shape, (str, bytes)) or not hasattr(filters_shape, "__iter__"):
        raise ValueError(f"filters_shape={reprlib.repr(filters_shape)} must be a sequence of ints, e.g. (3, 3, 16, 32)")
    entries = []
    for value in filters_shape:
        if isinstance(value, bool) or not (isinstance(value, int) or hasattr(value, "__index__")):
            raise ValueError(f"filters_shape={reprlib.repr(tuple(filters_shape))} must be a sequence of ints: "
                             f"{reprlib.repr(value)} is not one")
        entries.append(str(int(value)))
    return _impl.parse_filters_shape(",".join(entries))


def _is_op_layer(obj):
    """A pooling / normalization / resizing / padding / pixel shuffle / activation layer (object or text)."""
    if isinstance(obj, str):
        return _impl.names_op_layer(_layer_text(obj))
    return _op_layers.is_torch_op_module(obj) or _op_layers.is_keras_op_layer(obj)


def _plan_op_layer(obj, input_shape):
    channels = 0
    if isinstance(obj, str):
        text = obj
    elif _op_layers.is_torch_op_module(obj):
        text = _op_layers.torch_layer_text(obj)
    else:
        text = _op_layers.keras_layer_text(obj)
        channels = _op_layers.keras_channels(obj)
    return _warned(_impl.plan_op_layer(_layer_text(text), _input_shape(input_shape, allow_unknown=True), channels))


def translate(layer, input_shape=None, filters_shape=None):
    """Plans the exact translation of a conv layer, in the direction its framework implies.

    - torch.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d (or its constructor text) -> a Plan to TensorFlow/Keras.
      input_shape: the PyTorch input (N, C, *spatial); without it the plan is exact for every input size, with it
      the cheapest plan exact for that size.
    - a Keras Conv/DepthwiseConv/SeparableConv/ConvTranspose layer (or its constructor text, e.g.
      "keras.layers.Conv2D(16, 3, strides=2, padding='same')") -> a TorchPlan to PyTorch. input_shape: what the
      Keras layer sees (N, *spatial, C), None for unknown sizes; needed for text and for unbuilt layers (channels).
    - the text of a tf.nn.conv1d/conv2d/conv3d/depthwise_conv2d/convolution or conv*_transpose call (e.g.
      "tf.nn.conv2d(x, w, strides=2, padding='SAME')") -> a TorchPlan to PyTorch. filters_shape (required): the
      filters tensor's shape, e.g. (3, 3, 16, 32); input_shape (optional): (N, *spatial, C), None for unknown sizes.
    - a pooling, normalization, resizing, padding, pixel shuffle or activation layer of either framework (module,
      layer or text, e.g. "nn.MaxPool2d(3, 2, 1, ceil_mode=True)", "keras.layers.BatchNormalization()",
      "tf.nn.depth_to_space(x, 2)") -> a LayerPlan to the other framework. input_shape (optional) in the source's
      layout, None for unknown sizes.
    Raises ValueError for configurations or shapes the framework rejects, with the message the CLI prints.
    """
    if _is_op_layer(layer):
        if filters_shape is not None:
            raise ValueError("filters_shape is for tf.nn convolutions; this layer does not take it")
        return _plan_op_layer(layer, input_shape)
    if isinstance(layer, str) and _impl.names_tf_nn_call(_layer_text(layer)):
        if filters_shape is None:
            text = _layer_text(layer)
            raise ValueError(_impl.tf_nn_call_needs_filters_shape(text if isinstance(text, bytes) else text.encode()))
        return _plan_tf_nn_call(_layer_text(layer), _filters_shape(filters_shape),
                                _input_shape(input_shape, allow_unknown=True))
    if filters_shape is not None:
        raise ValueError("filters_shape is for tf.nn calls; this layer's text or object says its kernel")
    if _keras_source.is_keras_layer(layer) or (isinstance(layer, str) and _is_keras_text(layer)):
        if isinstance(layer, str):
            _impl.check_keras_layer_text(_layer_text(layer))  # the text's own fault first, as the CLI reports it
        shape = _input_shape(input_shape, allow_unknown=True)
        if isinstance(layer, str):
            if shape is not None and shape[-1] < 0:
                raise ValueError("input_shape must give the channel count (its last entry), e.g. (None, None, None, 3)")
            # Without input_shape the text's own input_shape=(H, W, C) gives the channels, else this raises.
            return _warned(_plan_keras_layer(_layer_text(layer), -1 if shape is None else shape[-1], shape))
        channels = _keras_source.in_channels(layer, input_shape)
        return _warned(_plan_keras_layer(_keras_source.layer_text(layer), channels, shape))
    text = _layer_text(layer) if isinstance(layer, str) else _torch.layer_text(layer)
    return _plan_pytorch_layer(text, _input_shape(input_shape))


def _warned(plan):
    for message in plan.warnings:  # likely mistakes, e.g. a PyTorch-layout input shape for a Keras layer
        warnings.warn(f"convbridge: {message}", UserWarning, stacklevel=3)
    return plan


def _converted(plan, module):
    weight, bias = _torch.weights(module)  # float32/float64; half precision widened exactly
    kernel = plan.convert_kernel(weight)
    return kernel, None if bias is None else bias.numpy()


def _is_keras_model(obj):
    """A keras.Model (Functional, Sequential or subclassed): whole-model conversion, not one layer."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def to_torch(layer, input_shape=None, filters_shape=None, verify=True, example_shape=None):
    """An nn.Module (or small nn.Sequential) with the Keras layer's weights loaded, such that
    to_torch(k)(x_channels_first) equals k(x) moved to channels_first, within float32 round-off: for every input
    size when input_shape is None or has None sizes, for that size otherwise (the module then refuses other sizes).

    `layer` may also be the text translate() accepts (a Keras constructor or a tf.nn call with filters_shape): the
    module is then built with PyTorch's default initialisation, ready for load_state_dict. Needs torch.

    A whole Keras model (Functional or Sequential) gives an nn.Module with the weights loaded that takes and
    returns channels_first tensors (rank-2 ones as they are), one argument per Keras input, outputs in the Keras
    model's structure; it is verified against Keras node by node unless verify=False (see convert).

        module = convbridge.to_torch(keras.applications.ResNet50(weights=None))
        module(torch.randn(1, 3, 224, 224))
    """
    if _is_keras_model(layer):
        if input_shape is not None or filters_shape is not None:
            raise ConversionError("to_torch of a whole Keras model takes its input shape from the model: pass "
                                  "example_shape=(N, *spatial, C) to choose the size it is verified at")
        return convert(layer, verify=verify, example_shape=example_shape).torch_model
    is_text = isinstance(layer, str)
    if _is_op_layer(layer):
        plan = translate(layer, input_shape)
        if plan.target_framework != "PyTorch":
            raise ValueError("to_torch converts Keras layers and TensorFlow calls; this is a PyTorch layer: use "
                             "convbridge.to_keras for PyTorch -> Keras")
        from convbridge import _op_layers as adapters

        weights = None if is_text else adapters.keras_weights(layer, plan.source_weight_names)
        return adapters.build_torch(plan, weights, 0 if is_text else adapters.keras_channels(layer))
    if not is_text and not _keras_source.is_keras_layer(layer):
        if type(layer).__module__.startswith("torch"):
            raise ValueError(f"{type(layer).__qualname__} is already a PyTorch module: to_torch converts Keras layers; "
                             f"use convbridge.to_keras(module) for PyTorch -> Keras")
        raise ValueError(f"to_torch expects a Keras convolution layer ({', '.join(_keras_source.CLASSES)}) or its "
                         f"text, got {type(layer).__module__}.{type(layer).__qualname__}")
    plan = translate(layer, input_shape, filters_shape)
    if isinstance(plan, Plan):
        raise ValueError("to_torch converts Keras layers and tf.nn calls; this text is a PyTorch layer: use "
                         "convbridge.to_keras for PyTorch -> Keras")
    from convbridge import _torch_target  # imports torch only here

    if is_text:
        return _torch_target.build_module(plan, None, None)
    keras_weights, bias = _keras_source.weights(layer, plan.weight_names)
    return _torch_target.build_module(plan, keras_weights, bias)


def convert_weights(module) -> dict:
    """The module's weights in the layout of the Keras layer to_keras builds, bit for bit.

    Returns {"kernel": numpy array, "bias": numpy array or None}. The kernel is (*k, in/groups, out) for ConvND
    and (*k, in, multiplier) for DepthwiseConvND; the bias is unchanged.
    """
    if isinstance(module, str):
        raise ValueError("convert_weights needs the module itself (text has no weights): pass the nn.ConvNd")
    if _is_op_layer(module):
        return _op_layer_weights(module)
    kernel, bias = _converted(translate(module), module)
    return {"kernel": kernel, "bias": bias}


def _is_torch_model(obj):
    """A torch nn.Module that is not one layer translate() plans on its own (conv or op-set layer)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.nn.Module):
        return False
    if _is_op_layer(obj):
        return False
    return not any(isinstance(obj, getattr(torch.nn, name)) for name in _torch._CONV_CLASSES)


def convert(model, input_shape=None, verify=True, example_shape=None):
    """Converts a whole model: a PyTorch nn.Module (eval mode) to Keras 3, or a Keras 3 Functional or Sequential
    model to PyTorch.

    Keras -> PyTorch (convbridge.convert(keras_model)): the input shape is the model's own; returns a
    TorchModelConversion: .torch_model (an nn.Module, weights loaded, channels_first in and out), .explain(),
    .torch_source() (model.py), .save(directory) (model.py and model.safetensors; model.py needs torch only and
    defines load_model()), .report(), .runtime_transposes. None sizes in the Keras input are verified at
    example_shape (Keras' layout (N, *spatial, C); default 64 for each None) and one above it.

        conversion = convbridge.convert(keras.applications.MobileNetV2(weights=None))
        conversion.save("mobilenet_torch")   # mobilenet_torch/model.py: load_model()

    PyTorch -> Keras: for inputs of input_shape (N, C, *spatial), or a list of such shapes for a model with several
    inputs.

    None spatial sizes (input_shape=(1, 3, None, None)) make the Keras model exact for every size where each op's
    plan allows it (else ConversionError names the op and the size it needs); the model is captured and verified
    at example_shape (default: 64 for each None) and at one above it.

    Returns a ModelConversion: .keras_model (a functional keras.Model, weights loaded, channels_last in and out),
    .explain() (per node: module path, source line, target layers, why), .keras_source() (model.py),
    .save(directory) (model.py and weights.npz; model.py runs without convbridge), .report() (per node: max
    relative difference against PyTorch), .runtime_transposes. With verify (the default) the converted model is run
    against PyTorch on a random input and every node's output compared; a mismatch raises ConversionError naming
    the first node that diverges. Raises ConversionError for ops convbridge does not convert (naming the op, the
    module and the source line) and for a model in training mode. Needs torch and keras.

        conversion = convbridge.convert(resnet.eval(), (1, 3, 224, 224))
        print(conversion.explain())
        conversion.save("resnet_keras")     # resnet_keras/model.py: load_model()
    """
    if _is_keras_model(model):
        if input_shape is not None:
            raise ConversionError("a Keras model's input shape is its own: pass example_shape=(N, *spatial, C) to "
                                  "choose the size it is verified at")
        from convbridge import _torch_model

        return _torch_model.TorchModelConversion(model, verify=verify, example_shape=example_shape)
    if input_shape is None:
        raise ConversionError(f"convert of a PyTorch model ({type(model).__name__}) needs input_shape, PyTorch's "
                              f"(N, C, *spatial), e.g. input_shape=(1, 3, 224, 224)")
    from convbridge import _model

    return _model.ModelConversion(model, input_shape, verify=verify, example_shape=example_shape)


def to_keras(module, input_shape=None, verify=True, example_shape=None):
    """A Keras layer (or small keras.Sequential) with the module's weights loaded, such that
    to_keras(m)(x_channels_last) equals m(x) moved to channels_last, within float32 round-off: for every input size
    when input_shape is None, for that size otherwise (the layer then refuses other sizes).

    `module` may also be a PyTorch constructor's text ("nn.Conv2d(3, 16, 3)"): the layer is then built with Keras'
    default initialisation. Needs keras (with the TensorFlow backend).

    A whole model (any other nn.Module, in eval mode) needs input_shape (N, C, *spatial): the result is a functional
    keras.Model with the weights loaded, verified against PyTorch node by node unless verify=False (see convert).
    """
    if _is_torch_model(module):
        if input_shape is None:
            raise ConversionError(f"to_keras of a whole model ({type(module).__name__}) needs input_shape, "
                                  f"PyTorch's (N, C, *spatial), e.g. input_shape=(1, 3, 224, 224)")
        return convert(module, input_shape, verify=verify, example_shape=example_shape).keras_model
    if _keras_source.is_keras_layer(module) or (isinstance(module, str) and _is_keras_text(module)):
        raise ValueError("this is a Keras layer: to_keras converts PyTorch modules; use convbridge.to_torch(layer) "
                         "for Keras -> PyTorch")
    if isinstance(module, str) and _impl.names_tf_nn_call(_layer_text(module)):
        raise ValueError("this is a tf.nn call: to_keras converts PyTorch modules; use convbridge.to_torch(text, "
                         "filters_shape=...) for TensorFlow -> PyTorch")
    plan = translate(module, input_shape)
    if isinstance(plan, LayerPlan):
        if plan.target_framework != "Keras":
            raise ValueError("this is a Keras layer or TensorFlow call: to_keras converts PyTorch modules; use "
                             "convbridge.to_torch(layer) for Keras -> PyTorch")
        weights = None if isinstance(module, str) else _op_layers.torch_weights(module, plan.source_weight_names)
        return _op_layers.build_keras(plan, weights)
    from convbridge import _keras  # imports keras only here

    kernel, bias = (None, None) if isinstance(module, str) else _converted(plan, module)
    return _keras.build_layer(plan.to_json(), kernel, bias)


def _op_layer_weights(obj):
    """{target weight name: numpy array} for a layer of the op set, in the layout of the layer the other framework
    gets (PyTorch -> Keras or Keras -> PyTorch), bit for bit."""
    import json

    plan = translate(obj)
    if _op_layers.is_torch_op_module(obj):
        source = _op_layers.torch_weights(obj, plan.source_weight_names)
    else:
        source = _op_layers.keras_weights(obj, plan.source_weight_names)
    steps = json.loads(plan.to_json())["steps"]
    out = {}
    for step, arrays in zip(steps, plan.target_weights(source)):
        for weight, array in zip(step["weights"], arrays):
            out[weight["name"]] = array
    return out
