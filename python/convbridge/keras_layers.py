"""Keras layers for the PyTorch padding modes Keras has no layer for.

convbridge.to_keras builds models from these classes; the text below the embed marker is copied verbatim into the
code `convbridge translate --emit keras` prints, so both run the same lines.
"""

import keras

from convbridge.torch_padding import torch_edge_pad

# convbridge-embed-begin


def _padded_shape(input_shape, pads):
    shape = list(input_shape)
    for axis, (before, after) in enumerate(pads, start=1):
        if shape[axis] is not None:
            shape[axis] += before + after
    return tuple(shape)


class TorchReflectPad(keras.layers.Layer):
    """torch.nn.functional.pad(mode='reflect') on the spatial axes of a channels_last tensor.

    keras.ops.pad(mode='reflect') is tf.pad REFLECT on TensorFlow: mirror without repeating the edge, which is
    PyTorch's reflect. Like PyTorch, it needs every pad smaller than the padded axis.
    """

    def __init__(self, pads, **kwargs):
        super().__init__(**kwargs)
        self.pads = tuple(tuple(int(v) for v in p) for p in pads)

    def call(self, x):
        return keras.ops.pad(x, ((0, 0),) + self.pads + ((0, 0),), mode="reflect")

    def compute_output_shape(self, input_shape):
        return _padded_shape(input_shape, self.pads)

    def get_config(self):
        return {**super().get_config(), "pads": self.pads}


class TorchEdgePad(keras.layers.Layer):
    """torch.nn.functional.pad(mode='replicate' or 'circular') on the spatial axes of a channels_last tensor."""

    def __init__(self, pads, mode, **kwargs):
        super().__init__(**kwargs)
        self.pads = tuple(tuple(int(v) for v in p) for p in pads)
        self.mode = mode

    def call(self, x):
        return torch_edge_pad(x, self.pads, self.mode, keras.ops)

    def compute_output_shape(self, input_shape):
        return _padded_shape(input_shape, self.pads)

    def get_config(self):
        return {**super().get_config(), "pads": self.pads, "mode": self.mode}


class TorchGroupedConvTranspose(keras.layers.Layer):
    """PyTorch ConvTransposeNd with groups > 1, on channels_last tensors.

    Keras' ConvNDTranspose has no groups and TF has no grouped transposed kernel on the CPU, so each group's input
    channels are convolved with that group's slice of the kernel and the outputs are concatenated in group order,
    as PyTorch orders them. kernel: (*kernel_size, filters // groups, in_channels); padding and output_padding
    mean what they mean for keras.layers.ConvNDTranspose.
    """

    def __init__(self, filters, kernel_size, strides, groups, padding="valid", output_padding=None, use_bias=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.groups = int(groups)
        self.padding = padding
        self.output_padding = None if output_padding is None else tuple(int(p) for p in output_padding)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (self.filters // self.groups, in_channels))
        self.bias = self.add_weight(name="bias", shape=(self.filters,)) if self.use_bias else None

    def call(self, x):
        per_group = self.kernel.shape[-1] // self.groups
        outputs = [
            keras.ops.conv_transpose(x[..., g * per_group:(g + 1) * per_group],
                                     self.kernel[..., g * per_group:(g + 1) * per_group], strides=self.strides,
                                     padding=self.padding, output_padding=self.output_padding)
            for g in range(self.groups)
        ]
        y = keras.ops.concatenate(outputs, axis=-1)
        return y + self.bias if self.use_bias else y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "groups": self.groups, "padding": self.padding,
                "output_padding": self.output_padding, "use_bias": self.use_bias}
