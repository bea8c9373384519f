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
