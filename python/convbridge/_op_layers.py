"""Adapters for the layers of the op set (pooling, normalization, resizing, padding, pixel shuffle, activations):
capture a live PyTorch module or Keras layer as the constructor text the C++ front-ends parse, and build the live
target objects a LayerPlan describes (its JSON: each step's callee and arguments, and its weights). Planning stays
in C++; nothing here knows a layer kind.

Neither torch nor keras is imported at module level: a module or layer object implies its framework is loaded, and
the builders import theirs when called.
"""

import inspect
import json
import sys

from convbridge import _impl

# Constructor parameters that never change the values.
_TORCH_IGNORED = {"device", "dtype", "inplace"}
_KERAS_IGNORED = {"name", "trainable", "dtype", "autocast"}
_KERAS_IGNORED_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


def _torch_class(module):
    """The torch.nn class (of module's MRO) that the C++ front-end knows, or None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn") and _impl.names_op_layer(f"nn.{cls.__name__}()"):
            return cls
    return None


def is_torch_op_module(obj):
    return _torch_class(obj) is not None


def torch_layer_text(module):
    """nn.Class(name=value, ...) from the constructor's parameters, read back from the module's attributes."""
    cls = _torch_class(module)
    arguments = []
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or name in _TORCH_IGNORED or parameter.kind in (parameter.VAR_POSITIONAL,
                                                                          parameter.VAR_KEYWORD):
            continue
        if not hasattr(module, name):
            continue
        value = getattr(module, name)
        if hasattr(value, "shape") and hasattr(value, "dtype"):  # a Parameter where the argument was a flag (bias)
            value = True
        elif value is None and name == "bias" and parameter.default is True:
            value = False  # LayerNorm(bias=False) stores bias = None
        if isinstance(value, list):
            value = tuple(value)
        arguments.append(f"{name}={value!r}")
    return f"nn.{cls.__name__}({', '.join(arguments)})"


def torch_weights(module, names):
    """The module's weights and buffers named by the plan, as float32/float64 numpy arrays."""
    import torch

    arrays = []
    for name in names:
        tensor = getattr(module, name, None)
        if tensor is None:
            raise ValueError(f"the {type(module).__name__} has no weight {name!r}")
        if tensor.is_meta:
            raise ValueError(f"the {type(module).__name__}'s {name} is on the meta device and holds no values: "
                             f"materialise it first (module.to_empty(device='cpu'), then load_state_dict(...))")
        tensor = tensor.detach().cpu()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()
        if tensor.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"the {type(module).__name__}'s {name} is {tensor.dtype}: convbridge converts floating "
                             f"point weights; call module.float() first")
        arrays.append(tensor.contiguous().numpy())
    return arrays


def _keras_class(layer):
    for cls in type(layer).__mro__:
        if cls.__module__.startswith("keras") and _impl.names_op_layer(f"keras.layers.{cls.__name__}()"):
            return cls
    return None


def is_keras_op_layer(obj):
    return _keras_class(obj) is not None


def keras_layer_text(layer):
    """keras.layers.Class(key=value, ...) from get_config(), without the keys that cannot change the values."""
    cls = _keras_class(layer)
    arguments = []
    for key, value in layer.get_config().items():
        if key in _KERAS_IGNORED or key.endswith(_KERAS_IGNORED_SUFFIXES) or isinstance(value, dict):
            continue
        if callable(value):  # an activation function object
            value = getattr(value, "__name__", str(value))
        arguments.append(f"{key}={value!r}")
    return f"keras.layers.{cls.__name__}({', '.join(arguments)})"


def keras_channels(layer):
    """The channel count a built layer's weights say (their last axis), else 0."""
    if getattr(layer, "built", False) and layer.weights:
        return int(layer.weights[0].shape[-1])
    return 0


def keras_weights(layer, names):
    import numpy as np

    by_name = {variable.path.rsplit("/", 1)[-1]: np.asarray(variable) for variable in layer.weights}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(f"the {type(layer).__name__} has no weight {missing[0]!r}: is it built?")
    return [by_name[name] for name in names]


# ---- building the target ----------------------------------------------------------------------------------------

def _value(value, channels):
    if isinstance(value, list):
        return tuple(_value(v, channels) for v in value)
    if isinstance(value, dict):
        if value.get("name") == "channels":
            if not channels:
                raise ValueError("the channel count is unknown: pass input_shape with the channels, or a built layer")
            return channels
        if "float" in value:
            return float(value["float"])
        raise ValueError(f"unknown plan value {value!r}")
    return value


def _call(call, namespace, ours, channels):
    callee = call["callee"]
    if callee.startswith("convbridge."):
        factory = getattr(ours, callee[len("convbridge."):])
    else:
        prefix, _, name = callee.rpartition(".")
        if prefix not in namespace:  # a newer plan than this adapter: refuse rather than build something inexact
            raise ValueError(f"unknown callee {callee!r} in the plan")
        factory = getattr(namespace[prefix], name)
    args = [_value(v, channels) for v in call["args"]]
    kwargs = {k: _value(v, channels) for k, v in call["kwargs"].items()}
    return factory(*args, **kwargs)


def _plan_channels(described, channels):
    shape = described["channels_first_input"]
    if len(shape) > 1 and shape[1] > 0:
        return shape[1]
    return channels


def build_keras(plan, source_weights, channels=0):
    """The Keras layer (or keras.Sequential) for a PyTorch -> Keras LayerPlan, weights loaded when given."""
    import keras

    from convbridge import keras_layers

    described = json.loads(plan.to_json())
    channels = _plan_channels(described, channels)
    if source_weights is not None and not channels and source_weights:
        channels = int(source_weights[0].shape[0])
    targets = plan.target_weights(source_weights) if source_weights is not None else None
    shape = described["channels_first_input"]
    # Without an input shape the op's own spatial rank (a 1-D or 3-D pooling), 2 for ops that take any.
    rank = len(shape) - 2 if shape else (described["source"].get("rank") or 2)
    exact_everywhere = described["exact_for"] == "every_input_size"
    spatial = (None,) * rank if exact_everywhere else tuple(shape[2:])
    layers = []
    for index, step in enumerate(described["steps"]):
        layer = _call(step["call"], {"keras.layers": keras.layers}, keras_layers, channels)
        if step["weights"]:
            # The plan's spatial sizes when it is for one size: LayerNormalization over spatial axes builds gamma
            # from them.
            layer.build((None,) + spatial + (channels,))
            if targets is not None:
                layer.set_weights(list(targets[index]))
        layers.append(layer)
    if not exact_everywhere:
        layers.insert(0, keras_layers.ExpectInputSize(spatial))
    if len(layers) == 1:
        return layers[0]
    return keras.Sequential([keras.Input(shape=spatial + (channels or None,))] + layers)


def build_torch(plan, source_weights, channels=0):
    """The nn.Module (or nn.Sequential) for a Keras/TF -> PyTorch LayerPlan, in eval mode, weights loaded."""
    import torch
    from torch import nn

    from convbridge import torch_modules

    described = json.loads(plan.to_json())
    channels = _plan_channels(described, channels)
    if source_weights is not None and not channels and source_weights:
        channels = int(source_weights[0].shape[-1])
    targets = plan.target_weights(source_weights) if source_weights is not None else None
    modules = []
    for index, step in enumerate(described["steps"]):
        module = _call(step["call"], {"nn": nn, "torch.nn": nn}, torch_modules, channels)
        if targets is not None:
            with torch.no_grad():
                for weight, values in zip(step["weights"], targets[index]):
                    getattr(module, weight["name"]).copy_(torch.from_numpy(values))
        modules.append(module)
    if described["exact_for"] != "every_input_size":
        modules.insert(0, torch_modules.ExpectInputSize(described["channels_first_input"][2:]))
    module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)
    return module.eval()
