"""Keras layers for what Keras has no layer for: PyTorch's padding modes, grouped transposed convolutions, and the
input-size guard of plans that are exact for one input size only.

Importing this module registers every class with Keras' serialization (package "convbridge"), so
keras.models.load_model finds them in saved models; `import convbridge` does that as soon as keras is imported.
The text below the embed marker is copied into the code `convbridge translate --emit keras` prints, one
`# convbridge-section:` at a time (only the sections a plan uses), so both run the same lines and a model built from
emitted code saves and reloads the same way.
"""

import keras

from convbridge.torch_padding import torch_edge_pad

# convbridge-embed-begin
# convbridge-section: padded_shape


def _padded_shape(input_shape, pads):
    shape = list(input_shape)
    for axis, (before, after) in enumerate(pads, start=1):
        if shape[axis] is not None:
            shape[axis] += before + after
    return tuple(shape)


# convbridge-section: TorchReflectPad


@keras.saving.register_keras_serializable(package="convbridge")
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


# convbridge-section: TorchEdgePad


@keras.saving.register_keras_serializable(package="convbridge")
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


# convbridge-section: TorchGroupedConvTranspose


@keras.saving.register_keras_serializable(package="convbridge")
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


# convbridge-section: ExpectInputSize


@keras.saving.register_keras_serializable(package="convbridge")
class ExpectInputSize(keras.layers.Layer):
    """Passes a channels_last tensor through unchanged if its spatial size is `spatial_size`, else raises ValueError.

    A plan made for one input size (TF 'same' padding depends on the size when the stride is above 1) computes
    something else at any other size without an error; this layer turns that silent difference into one. Sizes
    unknown while tracing a graph are checked when they are known.
    """

    def __init__(self, spatial_size, **kwargs):
        super().__init__(**kwargs)
        self.spatial_size = tuple(int(v) for v in spatial_size)

    def _check(self, shape):
        got = tuple(shape[1:-1])
        if len(got) != len(self.spatial_size) or any(
                size is not None and size != expected for size, expected in zip(got, self.spatial_size)):
            raise ValueError(
                f"this layer was translated for inputs of spatial size {self.spatial_size} and is exact only there; "
                f"got an input of shape {tuple(shape)}: translate it without input_shape (or with None sizes) for a "
                f"layer exact at every size")

    def call(self, x):
        self._check(x.shape)
        return x

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return input_shape

    def get_config(self):
        return {**super().get_config(), "spatial_size": self.spatial_size}


# ---- normalization family ----


# convbridge-section: BatchStatisticsNormalization


@keras.saving.register_keras_serializable(package="convbridge")
class BatchStatisticsNormalization(keras.layers.Layer):
    """Batch normalization with the batch's own statistics at every call, on channels_last tensors.

    PyTorch's BatchNorm with track_running_stats=False does this in eval mode too (torch/nn/modules/batchnorm.py,
    _BatchNorm.forward: no running buffers, so bn_training is True); Keras' BatchNormalization only does it when
    called with training=True, which also moves its moving statistics. Mean and biased variance over every axis but
    the last, then (x - mean) / sqrt(var + epsilon) * gamma + beta; gamma/beta exist with scale/center.
    """

    def __init__(self, epsilon=1e-5, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("BatchStatisticsNormalization needs the channel count (the last axis) at build time")
        self.gamma = self.add_weight(shape=(channels,), name="gamma", initializer="ones") if self.scale else None
        self.beta = self.add_weight(shape=(channels,), name="beta", initializer="zeros") if self.center else None

    def call(self, x):
        axes = list(range(len(x.shape) - 1))
        mean, variance = keras.ops.moments(x, axes=axes)
        return keras.ops.batch_normalization(x, mean, variance, axis=-1, offset=self.beta, scale=self.gamma,
                                             epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
