"""Keras adapter: builds Keras layers from a plan (its JSON form), with the converted weights loaded.

Layer choices mirror the Keras emitter (src/emit/keras_emitter.cpp): a tf_conv step -> keras_layers.TfConv with the
explicit pads folded in; explicit zero padding otherwise -> ZeroPaddingND + 'valid'; reflect / replicate / circular -> the layers in convbridge.keras_layers; subsample ->
AveragePoolingND(pool_size=1, strides=s), which keeps x[::s]; transposed -> ConvNDTranspose (or
TorchGroupedConvTranspose) with explicit output_padding, then CroppingND. A multi-layer plan is a keras.Sequential
that starts with keras.Input((None,) * rank + (C,)), so it stays exact for every input size after its first call; a
plan exact for one input size only starts with keras.Input of that size and ExpectInputSize, which refuses others.
"""

import json

import keras

from convbridge import keras_layers

def _pairs(pads):
    return tuple((int(before), int(after)) for before, after in pads)


def _zero_padding(rank, pads):
    pads = _pairs(pads)
    layer = getattr(keras.layers, f"ZeroPadding{rank}D")
    return layer(pads[0] if rank == 1 else pads)


def _conv_layer(step):
    rank = step["rank"]
    if step.get("implementation") == "tf_conv":  # the explicit pads folded in (see build_layer)
        padding = _pairs(step["explicit_pads"]) if step["padding"] == "explicit" else step["padding"]
        if step["kind"] == "depthwise":
            return keras_layers.TfDepthwiseConv(tuple(step["kernel_size"]), strides=tuple(step["strides"]),
                                                dilation_rate=tuple(step["dilation_rate"]), padding=padding,
                                                depth_multiplier=step["depth_multiplier"],
                                                use_bias=step["use_bias"])
        return keras_layers.TfConv(step["filters"], tuple(step["kernel_size"]), strides=tuple(step["strides"]),
                                   dilation_rate=tuple(step["dilation_rate"]), padding=padding,
                                   groups=step["groups"], use_bias=step["use_bias"])
    common = dict(strides=tuple(step["strides"]), padding="same" if step["padding"] == "same" else "valid",
                  dilation_rate=tuple(step["dilation_rate"]), use_bias=step["use_bias"])
    if step["kind"] == "depthwise":
        return getattr(keras.layers, f"DepthwiseConv{rank}D")(
            tuple(step["kernel_size"]), depth_multiplier=step["depth_multiplier"], **common)
    return getattr(keras.layers, f"Conv{rank}D")(
        step["filters"], tuple(step["kernel_size"]), groups=step["groups"], **common)


def _transposed_layers(rank, step, kernel, bias):
    """ConvNDTranspose (TorchGroupedConvTranspose for groups > 1), then CroppingND for PyTorch's y[x] = z[x + p]."""
    same = step["padding"] == "same"
    common = dict(strides=tuple(step["strides"]), padding="same" if same else "valid",
                  output_padding=None if same else tuple(step["extra"]), use_bias=step["use_bias"])
    if step["groups"] > 1:
        conv = keras_layers.TorchGroupedConvTranspose(step["filters"], tuple(step["kernel_size"]),
                                                      groups=step["groups"], **common)
    else:
        conv = getattr(keras.layers, f"Conv{rank}DTranspose")(step["filters"], tuple(step["kernel_size"]), **common)
    conv.build((None,) + (None,) * rank + (step["in_channels"],))
    if kernel is not None:  # None: built from text, Keras' default initialisation
        conv.set_weights([kernel] if bias is None else [kernel, bias])
    layers = [conv]
    crops = _pairs(step.get("explicit_pads", [[0, 0]] * rank))
    if any(before or after for before, after in crops):
        layers.append(getattr(keras.layers, f"Cropping{rank}D")(crops[0] if rank == 1 else crops))
    return layers


def build_layer(plan_json, kernel, bias):
    """A Keras layer (or keras.Sequential) computing the plan on channels_last tensors, weights loaded."""
    plan = json.loads(plan_json)
    rank = len(plan["source"]["kernel_size"])
    channels = plan["source"]["in_channels"]
    layers = []
    if plan["exact_for"] != "every_input_size":
        layers.append(keras_layers.ExpectInputSize(plan["input_shape"][2:]))
    conv = None
    for step in plan["steps"]:
        if step["op"] == "pad":
            if step["mode"] == "zeros":
                layers.append(_zero_padding(rank, step["pads"]))
            elif step["mode"] == "reflect":
                layers.append(keras_layers.TorchReflectPad(_pairs(step["pads"])))
            else:
                layers.append(keras_layers.TorchEdgePad(_pairs(step["pads"]), step["mode"]))
        elif step["op"] == "conv":
            if step["padding"] == "explicit" and step.get("implementation") != "tf_conv":
                layers.append(_zero_padding(rank, step["explicit_pads"]))
            conv = _conv_layer(step)
            conv.build((None,) + (None,) * rank + (step["in_channels"],))
            if kernel is not None:  # None: built from text, Keras' default initialisation
                conv.set_weights([kernel] if bias is None else [kernel, bias])
            layers.append(conv)
        elif step["op"] == "conv_transpose":
            layers += _transposed_layers(rank, step, kernel, bias)
        elif step["op"] == "subsample":
            pool = getattr(keras.layers, f"AveragePooling{rank}D")
            layers.append(pool(pool_size=1, strides=tuple(step["strides"]), padding="valid"))
        else:  # a newer plan than this adapter knows: refuse rather than build something inexact
            raise ValueError(f"unknown plan step {step['op']!r}")
    if len(layers) == 1:
        return layers[0]  # built for (None, *None, C): any size
    spatial = (None,) * rank if plan["exact_for"] == "every_input_size" else tuple(plan["input_shape"][2:])
    return keras.Sequential([keras.Input(shape=spatial + (channels,))] + layers)
