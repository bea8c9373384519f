"""Keras layers for what Keras has no layer for: PyTorch's padding modes, grouped transposed convolutions, the
input-size guard of plans that are exact for one input size only, and convolutions as one raw tf.nn op where Keras'
own layers are slower or refuse the arguments (tf_conv, TfConv, TfDepthwiseConv).

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


# convbridge-section: tf_conv


def tf_conv(x, kernel, strides, dilations, padding, groups):
    """One convolution step of a convbridge plan on a channels_last tensor x, with TF semantics.

    kernel: (*k, C_in / groups, C_out), output group g reading input channels [g*C_in/G, (g+1)*C_in/G) as PyTorch
    does; strides, dilations: one int per spatial axis (both may exceed 1 at once); padding: "SAME", "VALID" or one
    (before, after) pair of zeros per spatial axis.

    The forward pass is one TF op where TF's CPU kernels have one, measured fastest on TF 2.21's oneDNN CPU kernels
    (bench/tf_plans_vs_handwritten.py): the grouped kernel in a single conv2d (Keras' ConvND runs groups through XLA
    on CPU, 4-11x slower), strides and dilations in one call (instead of a stride-1 conv sampled at x[::s], which
    computes s**rank times the outputs), explicit pads inside conv2d. Those ops have CPU gradients only in some cases
    ("Gradients for grouped convolutions are not supported on CPU"; dilated Conv2DBackpropInput only in float32 with
    'SAME'/'VALID'), so the gradient is always taken from the portable form: the same convolution as one undilated
    or space-to-batch (tf.nn.convolution) conv per group, then x[::s], which has CPU kernels and gradients in every
    float dtype. Both forms compute the same sums. The portable form also runs the forward pass where the single op
    has no CPU kernel: a grouped Conv3D, or a dilated Conv3D outside float32 ("CPU implementation of Conv3D
    currently only supports dilated rates of 1").
    """
    import tensorflow as tf

    rank = len(strides)
    strides, dilations = [int(s) for s in strides], [int(d) for d in dilations]
    explicit = not isinstance(padding, str)
    pads = [[0, 0]] + [[int(b), int(a)] for b, a in padding] + [[0, 0]] if explicit else None
    strided_and_dilated = max(strides) > 1 and max(dilations) > 1
    if strided_and_dilated and not explicit and padding.upper() == "SAME":
        raise ValueError("tf_conv: 'SAME' with strides and dilations together is not a convbridge plan step")

    def single_op(x, kernel):
        if rank == 3:  # conv3d takes no explicit pads
            x = tf.pad(x, pads) if explicit else x
            return tf.nn.conv3d(x, kernel, [1] + strides + [1], "VALID" if explicit else padding.upper(),
                                dilations=[1] + dilations + [1])
        if rank == 1:  # a height-1 conv2d, as tf.nn.conv1d is, but with explicit pads
            x, kernel = tf.expand_dims(x, 1), tf.expand_dims(kernel, 0)
            if explicit:
                pads_2d = [[0, 0], [0, 0]] + pads[1:]
            y = tf.nn.conv2d(x, kernel, [1, 1, strides[0], 1], pads_2d if explicit else padding.upper(),
                             dilations=[1, 1, dilations[0], 1])
            return tf.squeeze(y, 1)
        return tf.nn.conv2d(x, kernel, [1] + strides + [1], pads if explicit else padding.upper(),
                            dilations=[1] + dilations + [1])

    def portable(x, kernel):
        if explicit:
            x = tf.pad(x, pads)
        conv_strides = [1] * rank if strided_and_dilated else strides

        conv_padding = "VALID" if explicit else padding.upper()

        def one_group(xg, kg):
            if max(dilations) > 1:  # space_to_batch around an undilated conv
                return tf.nn.convolution(xg, kg, strides=conv_strides, padding=conv_padding, dilations=dilations)
            # tf.nn.convolution's undilated Conv3D has no eager gradient (its data_format attribute is unset)
            if rank == 1:
                return tf.nn.conv1d(xg, kg, conv_strides[0], conv_padding)
            conv = tf.nn.conv2d if rank == 2 else tf.nn.conv3d
            return conv(xg, kg, [1] + conv_strides + [1], conv_padding)

        if groups == 1:
            y = one_group(x, kernel)
        else:
            y = tf.concat([one_group(xg, kg) for xg, kg in zip(tf.split(x, groups, axis=-1),
                                                               tf.split(kernel, groups, axis=-1))], axis=-1)
        if strided_and_dilated:
            y = y[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
        return y

    x = tf.convert_to_tensor(x)
    kernel = tf.cast(tf.convert_to_tensor(kernel), x.dtype)
    has_single_op = x.dtype == tf.float32 or (x.dtype == tf.float64 and rank < 3)
    if (rank == 3 and groups > 1) or not has_single_op:
        return portable(x, kernel)

    @tf.custom_gradient
    def fast_forward_portable_gradient(x, kernel):
        def gradient(dy):
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                y = portable(x, kernel)
            return tape.gradient(y, [x, kernel], output_gradients=dy)

        return single_op(x, kernel), gradient

    return fast_forward_portable_gradient(x, kernel)


# convbridge-section: TfConv


def _conv_output_shape(input_shape, kernel_size, strides, dilation_rate, padding, channels):
    """TF's output shape of a conv on channels_last input_shape (None sizes stay None); padding "same", "valid" or
    one (before, after) pair per spatial axis."""
    spatial = []
    for axis, (size, k, s, d) in enumerate(zip(input_shape[1:-1], kernel_size, strides, dilation_rate)):
        if size is not None and isinstance(padding, str) and padding.upper() == "SAME":
            size = -(-size // s)
        elif size is not None:
            before, after = (0, 0) if isinstance(padding, str) else padding[axis]
            size = (size + before + after - (k - 1) * d - 1) // s + 1
        spatial.append(size)
    return (input_shape[0], *spatial, channels)


@keras.saving.register_keras_serializable(package="convbridge")
class TfConv(keras.layers.Layer):
    """A convolution on channels_last tensors computed by tf_conv (one raw tf.nn op, gradient from the portable
    form), where Keras' ConvND is slower (groups > 1: XLA on CPU; dilation: space-to-batch around the conv) or
    refuses the arguments (strides > 1 with dilation_rate > 1).

    Weights as Keras' ConvND: kernel (*kernel_size, C_in / groups, filters), then bias (filters,). padding: "same",
    "valid", or one (before, after) pair of zeros per spatial axis (PyTorch's padding folded into the conv).
    """

    def __init__(self, filters, kernel_size, strides, dilation_rate, padding="valid", groups=1, use_bias=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.dilation_rate = tuple(int(d) for d in dilation_rate)
        self.padding = padding if isinstance(padding, str) else tuple(tuple(int(v) for v in p) for p in padding)
        self.groups = int(groups)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (in_channels // self.groups,
                                                                               self.filters))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def call(self, x):
        import tensorflow as tf

        y = tf_conv(x, self.kernel, self.strides, self.dilation_rate, self.padding, self.groups)
        return tf.nn.bias_add(y, tf.cast(self.bias, y.dtype)) if self.use_bias else y

    def compute_output_shape(self, input_shape):
        return _conv_output_shape(input_shape, self.kernel_size, self.strides, self.dilation_rate, self.padding,
                                  self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "dilation_rate": self.dilation_rate, "padding": self.padding,
                "groups": self.groups, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="convbridge")
class TfDepthwiseConv(keras.layers.Layer):
    """A 1-D or 2-D depthwise convolution on channels_last tensors as one tf.nn.depthwise_conv2d with PyTorch's zero
    pads folded in as its explicit padding: measured 1.6-1.9x faster than ZeroPadding2D + DepthwiseConv2D('valid')
    at stride 2 (bench/tf_plans_vs_handwritten.py). Its gradient is TF's own (depthwise_conv2d has CPU gradients).

    Weights as Keras' DepthwiseConvND: kernel (*kernel_size, C, depth_multiplier), output channel c*M + m (PyTorch's
    order), then bias (C*M,). padding: one (before, after) pair per spatial axis, or "same" / "valid". A 1-D conv
    runs as a height-1 2-D one, as Keras' DepthwiseConv1D does.
    """

    def __init__(self, kernel_size, strides, dilation_rate, padding="valid", depth_multiplier=1, use_bias=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.dilation_rate = tuple(int(d) for d in dilation_rate)
        self.padding = padding if isinstance(padding, str) else tuple(tuple(int(v) for v in p) for p in padding)
        self.depth_multiplier = int(depth_multiplier)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (channels, self.depth_multiplier))
        self.bias = (self.add_weight(name="bias", shape=(channels * self.depth_multiplier,), initializer="zeros")
                     if self.use_bias else None)

    def call(self, x):
        import tensorflow as tf

        kernel = tf.cast(self.kernel, x.dtype)
        one_d = len(self.kernel_size) == 1
        strides, dilations = self.strides, self.dilation_rate
        pads = None if isinstance(self.padding, str) else [list(p) for p in self.padding]
        if one_d:
            x, kernel = tf.expand_dims(x, 1), tf.expand_dims(kernel, 0)
            strides, dilations = (1,) + strides, (1,) + dilations
            pads = None if pads is None else [[0, 0]] + pads
        padding = self.padding.upper() if pads is None else [[0, 0]] + pads + [[0, 0]]
        y = tf.nn.depthwise_conv2d(x, kernel, (1,) + strides + (1,), padding, dilations=dilations)
        if one_d:
            y = tf.squeeze(y, 1)
        return tf.nn.bias_add(y, tf.cast(self.bias, y.dtype)) if self.use_bias else y

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] * self.depth_multiplier
        return _conv_output_shape(input_shape, self.kernel_size, self.strides, self.dilation_rate, self.padding,
                                  channels)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides,
                "dilation_rate": self.dilation_rate, "padding": self.padding,
                "depth_multiplier": self.depth_multiplier, "use_bias": self.use_bias}


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


# ---- pooling family ----
# convbridge-section: NegInfPadding


@keras.saving.register_keras_serializable(package="convbridge")
class NegInfPadding(keras.layers.Layer):
    """Pads the spatial axes of a channels_last tensor with -inf, the padding of PyTorch's max pooling.

    PyTorch's max pooling never lets its padding win (aten/src/ATen/native/cpu/MaxPoolKernel.cpp skips it); a
    zero padding would, wherever a window holds only negative inputs. A 'valid' max pool follows this layer.
    """

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(v) for v in p) for p in padding)

    def call(self, x):
        return keras.ops.pad(x, ((0, 0),) + self.padding + ((0, 0),), constant_values=float("-inf"))

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, (before, after) in enumerate(self.padding, start=1):
            if shape[axis] is not None:
                shape[axis] += before + after
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


# convbridge-section: DilatedMaxPool


@keras.saving.register_keras_serializable(package="convbridge")
class DilatedMaxPool(keras.layers.Layer):
    """PyTorch's dilated max pooling without padding, on a channels_last tensor (TensorFlow backend).

    tf.nn.pool(pooling_type='MAX', dilations=, padding='VALID') reads the same dilated windows as PyTorch. TF accepts
    dilations above 1 only at stride 1 (tensorflow/python/ops/nn_ops.py pool), so this pools at stride 1 and keeps
    every stride-th window, which is the strided pooling's windows exactly.
    """

    def __init__(self, pool_size, strides, dilation_rate, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(int(v) for v in pool_size)
        self.strides = tuple(int(v) for v in strides)
        self.dilation_rate = tuple(int(v) for v in dilation_rate)

    def call(self, x):
        import tensorflow as tf

        ones = (1,) * len(self.pool_size)
        y = tf.nn.pool(x, self.pool_size, "MAX", strides=ones, padding="VALID", dilations=self.dilation_rate)
        # A dilated window can miss the input and read only -inf padding: PyTorch gives -inf there, TF's MaxPool
        # the lowest float (its running max starts there). Windows without an element above -inf get -inf.
        above = tf.nn.pool(tf.cast(x > float("-inf"), x.dtype), self.pool_size, "MAX", strides=ones, padding="VALID",
                           dilations=self.dilation_rate)
        y = tf.where(above > 0, y, tf.constant(float("-inf"), x.dtype))
        if any(s > 1 for s in self.strides):
            y = y[(slice(None),) + tuple(slice(None, None, s) for s in self.strides) + (slice(None),)]
        return y

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for i, (k, s, d) in enumerate(zip(self.pool_size, self.strides, self.dilation_rate)):
            if shape[1 + i] is not None:
                shape[1 + i] = (shape[1 + i] - (k - 1) * d - 1) // s + 1
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "dilation_rate": self.dilation_rate}


# convbridge-section: TorchPool


@keras.saving.register_keras_serializable(package="convbridge")
class TorchPool(keras.layers.Layer):
    """PyTorch's nn.MaxPoolNd / nn.AvgPoolNd on a channels_last tensor, exact at every input size (TF backend).

    Per spatial axis, from the run-time size n (tf.shape, so None sizes work):
      out = floor((n + before + after - extent + (stride - 1 if ceil_mode)) / stride) + 1, minus one with ceil_mode
      when the last window would start at or past n + before (aten/src/ATen/native/Pool.h
      pooling_output_shape_pad_lr), extent = (kernel - 1) * dilation + 1;
      the input is padded (-inf for max, 0 for average) to exactly (out - 1) * stride + extent elements, so a
      'VALID' pool gives those `out` windows: the ceil_mode tail gets its overhang, a shorter span is cropped.
    Averages divide each window's sum per axis by (AvgPoolKernel.cpp): count_include_pad=True the window clipped to
    n + after (the ceil overhang never counts), False the input elements in it, or divisor_override.
    """

    def __init__(self, kind, pool_size, strides, padding, dilation_rate, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, **kwargs):
        super().__init__(**kwargs)
        self.kind = str(kind)
        self.pool_size = tuple(int(v) for v in pool_size)
        self.strides = tuple(int(v) for v in strides)
        self.padding = tuple(tuple(int(v) for v in p) for p in padding)
        self.dilation_rate = tuple(int(v) for v in dilation_rate)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def _output_size(self, n, i):
        # Works on ints (static shapes) and int32 tensors (tf.shape) alike.
        k, s, d = self.pool_size[i], self.strides[i], self.dilation_rate[i]
        before, after = self.padding[i]
        extent = (k - 1) * d + 1
        out = (n + before + after - extent + (s - 1 if self.ceil_mode else 0)) // s + 1
        if self.ceil_mode:
            if isinstance(n, int):
                out -= int((out - 1) * s >= n + before)
            else:
                import tensorflow as tf

                out -= tf.cast((out - 1) * s >= n + before, out.dtype)
        return out

    def call(self, x):
        import tensorflow as tf

        rank = len(self.pool_size)
        shape = tf.shape(x)
        maximum = self.kind == "max"
        fill = float("-inf") if maximum else 0.0
        pads, spans, outs = [[0, 0]], [], []
        for i in range(rank):
            n = shape[1 + i]
            before = self.padding[i][0]
            out = self._output_size(n, i)
            span = (out - 1) * self.strides[i] + (self.pool_size[i] - 1) * self.dilation_rate[i] + 1
            pads.append([before, tf.maximum(span - n - before, 0)])
            spans.append(span)
            outs.append(out)
        pads.append([0, 0])
        padded = tf.pad(x, tf.stack([tf.stack([tf.cast(b, tf.int32), tf.cast(a, tf.int32)]) for b, a in pads]),
                        constant_values=fill)
        begin = [0] * (rank + 2)
        size = tf.stack([-1] + [tf.cast(s, tf.int32) for s in spans] + [-1])
        padded = tf.slice(padded, begin, size)
        if maximum:
            dilated = any(d > 1 for d in self.dilation_rate)
            if not dilated:  # tf.nn.max_pool takes strides above the window (tf.nn.pool refuses them)
                return tf.nn.max_pool(padded, self.pool_size, self.strides, "VALID")
            # TF dilates only at stride 1: pool there, then keep every stride-th window.
            y = tf.nn.pool(padded, self.pool_size, "MAX", strides=(1,) * rank, padding="VALID",
                           dilations=self.dilation_rate)
            # A dilated window that reads only padding is -inf in PyTorch, the lowest float in TF's MaxPool.
            above = tf.nn.pool(tf.cast(padded > float("-inf"), x.dtype), self.pool_size, "MAX", strides=(1,) * rank,
                               padding="VALID", dilations=self.dilation_rate)
            y = tf.where(above > 0, y, tf.constant(float("-inf"), x.dtype))
            return y[(slice(None),) + tuple(slice(None, None, s) for s in self.strides) + (slice(None),)]
        window = 1
        for k in self.pool_size:
            window *= k
        sums = tf.nn.avg_pool(padded, self.pool_size, self.strides, "VALID") * float(window)
        if self.divisor_override is not None:
            return sums / float(self.divisor_override)
        divisor = None
        for i in range(rank):
            n = shape[1 + i]
            before, after = self.padding[i]
            start = tf.range(outs[i]) * self.strides[i] - before
            end = start + self.pool_size[i]
            if self.count_include_pad:
                count = tf.minimum(end, n + after) - start
            else:
                count = tf.minimum(end, n) - tf.maximum(start, 0)
            count = tf.reshape(tf.cast(count, x.dtype), [-1 if j == i else 1 for j in range(rank)] + [1])
            divisor = count if divisor is None else divisor * count
        return sums / divisor

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for i in range(len(self.pool_size)):
            if shape[1 + i] is not None:
                shape[1 + i] = self._output_size(int(shape[1 + i]), i)
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "dilation_rate": self.dilation_rate, "ceil_mode": self.ceil_mode,
                "count_include_pad": self.count_include_pad, "divisor_override": self.divisor_override}


# convbridge-section: TorchAdaptivePool


@keras.saving.register_keras_serializable(package="convbridge")
class TorchAdaptivePool(keras.layers.Layer):
    """PyTorch's nn.AdaptiveAvgPoolNd / nn.AdaptiveMaxPoolNd on a channels_last tensor, at every input size.

    Output i of an axis of size n reduces [floor(i * n / out), ceil((i + 1) * n / out)) (aten/src/ATen/native/
    AdaptivePooling.h start_index / end_index), windows overlapping when out does not divide n; an output size None
    keeps that axis. The windows are products of per-axis intervals, so reducing one axis after another gives the
    same mean (each row of a window has the same length) and the same max. n comes from tf.shape: None sizes work.
    """

    def __init__(self, kind, output_size, **kwargs):
        super().__init__(**kwargs)
        self.kind = str(kind)
        self.output_size = tuple(None if v is None else int(v) for v in output_size)

    def call(self, x):
        import tensorflow as tf

        reduce = tf.reduce_max if self.kind == "max" else tf.reduce_mean
        for i, out in enumerate(self.output_size):
            if out is None:
                continue
            axis = 1 + i
            n = tf.shape(x)[axis]
            pieces = []
            for j in range(out):
                start = (j * n) // out
                end = ((j + 1) * n + out - 1) // out
                pieces.append(reduce(tf.gather(x, tf.range(start, end), axis=axis), axis=axis, keepdims=True))
            x = tf.concat(pieces, axis=axis)
        return x

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for i, out in enumerate(self.output_size):
            if out is not None:
                shape[1 + i] = out
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "output_size": self.output_size}


# ---- resizing family ----
# convbridge-section: SeparableResize


def _keys_cubic(distance, a):
    """Keys' cubic convolution weight of a tap at `distance` (torch cubic_convolution1/2, TF's bicubic table)."""
    import tensorflow as tf

    d = tf.abs(distance)
    near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    far = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    return tf.where(d <= 1.0, near, tf.where(d < 2.0, far, tf.zeros_like(d)))


def _resize_axis_matrix(in_size, out_size, scale_factor, mode, coordinates, rounding, cubic_a, cubic_edges,
                        cubic_table_steps, antialias, use_given_scale):
    """The (out, in) float64 interpolation matrix of one axis, built from the (dynamic) sizes.

    The same construction as resize_axis_matrix in convbridge's C++ core (src/ops/resizing.cpp); each branch
    follows the framework kernel named there.
    """
    import numpy as np
    import tensorflow as tf

    in_size = tf.cast(in_size, tf.int64)
    out_size = tf.cast(out_size, tf.int64)
    in_f = tf.cast(in_size, tf.float64)
    out_f = tf.cast(out_size, tf.float64)
    if mode == "nearest":
        # float32 positions, as torch's nearest kernels and TF's resize_nearest_neighbor compute them.
        if use_given_scale:
            scale32 = tf.constant(np.float32(1.0 / scale_factor))
        else:
            scale32 = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
        x32 = tf.range(out_size, dtype=tf.int64)
        xf = tf.cast(x32, tf.float32)
        if rounding == "floor":
            index = tf.cast(tf.floor(xf * scale32), tf.int64)
            index = tf.where(tf.equal(out_size, in_size), x32,
                             tf.where(tf.equal(out_size, 2 * in_size), x32 // 2, index))
        else:
            index = tf.cast(tf.floor((xf + 0.5) * scale32), tf.int64)
        index = tf.clip_by_value(index, 0, in_size - 1)
        return tf.one_hot(index, tf.cast(in_size, tf.int32), dtype=tf.float64)
    x = tf.range(out_f, dtype=tf.float64)
    scale = tf.constant(1.0 / scale_factor, tf.float64) if use_given_scale else in_f / out_f
    if antialias:
        half_width = 2.0 if mode == "cubic" else 1.0
        support = tf.where(scale >= 1.0, half_width * scale, half_width)
        inverse = tf.where(scale >= 1.0, 1.0 / scale, tf.constant(1.0, tf.float64))
        center = scale * (x + 0.5)
        # int64 casts truncate toward zero, as the C++ int64_t(...) casts do.
        low = tf.maximum(tf.cast(center - support + 0.5, tf.int64), 0)
        high = tf.minimum(tf.cast(center + support + 0.5, tf.int64), in_size)
        taps = tf.range(in_size, dtype=tf.int64)[None, :]
        distance = (tf.cast(taps, tf.float64) - center[:, None] + 0.5) * inverse
        if mode == "cubic":
            weights = _keys_cubic(distance, cubic_a)
        else:
            weights = tf.maximum(1.0 - tf.abs(distance), 0.0)
        inside = tf.logical_and(taps >= low[:, None], taps < high[:, None])
        weights = tf.where(inside, weights, tf.zeros_like(weights))
        total = tf.reduce_sum(weights, axis=1, keepdims=True)
        return tf.where(tf.not_equal(total, 0.0), weights / tf.where(tf.equal(total, 0.0), 1.0, total), weights)
    if coordinates == "align_corners":
        source = tf.where(out_f > 1.0, x * (in_f - 1.0) / tf.maximum(out_f - 1.0, 1.0), tf.zeros_like(x))
    elif coordinates == "asymmetric":
        source = x * scale
    else:
        source = (x + 0.5) * scale - 0.5
    depth = tf.cast(in_size, tf.int32)
    if mode == "linear":
        source = tf.maximum(source, 0.0)
        low = tf.minimum(tf.cast(tf.floor(source), tf.int64), in_size - 1)
        high = tf.minimum(low + 1, in_size - 1)
        lam = (source - tf.cast(low, tf.float64))[:, None]
        return (tf.one_hot(low, depth, dtype=tf.float64) * (1.0 - lam)
                + tf.one_hot(high, depth, dtype=tf.float64) * lam)
    base = tf.floor(source)
    t = source - base
    if cubic_table_steps > 0:
        # TF's resize_bicubic reads a table of cubic_table_steps entries per unit: lrintf(t * steps), half to even
        # (tf.round rounds half to even too).
        t = tf.round(t * cubic_table_steps) / cubic_table_steps
    first = tf.cast(base, tf.int64) - 1
    weights = [_keys_cubic(1.0 + t, cubic_a), _keys_cubic(t, cubic_a), _keys_cubic(1.0 - t, cubic_a),
               _keys_cubic(2.0 - t, cubic_a)]
    indices = [first + k for k in range(4)]
    if cubic_edges == "renormalize":
        weights = [tf.where(tf.logical_and(i >= 0, i <= in_size - 1), w, tf.zeros_like(w))
                   for i, w in zip(indices, weights)]
        total = tf.add_n(weights)
        usable = tf.abs(total) >= 1000.0 * 1.1920929e-7
        weights = [tf.where(usable, w / tf.where(usable, total, 1.0), w) for w in weights]
    matrix = 0.0
    for i, w in zip(indices, weights):
        matrix += tf.one_hot(tf.clip_by_value(i, 0, in_size - 1), depth, dtype=tf.float64) * w[:, None]
    return matrix


@keras.saving.register_keras_serializable(package="convbridge")
class SeparableResize(keras.layers.Layer):
    """Resizes the spatial axes of a channels_last tensor with PyTorch's (or TF's) interpolation conventions.

    Every mode here is separable: each spatial axis is multiplied by an (out, in) interpolation matrix built from
    the input size at run time (so None sizes work), then applied with tf.einsum. The conventions are data, as in
    convbridge's ResizeOp: mode 'nearest' | 'linear' | 'cubic'; coordinates 'half_pixel' ((x + 0.5) * s - 0.5),
    'align_corners' (x * (in - 1) / (out - 1)) or 'asymmetric' (x * s); nearest rounding 'floor' (torch 'nearest')
    or 'half_pixel_floor' (torch 'nearest-exact', TF nearest); cubic_a (-0.75 torch, -0.5 TF); cubic_edges 'clamp'
    (torch) or 'renormalize' (TF); cubic_table_steps (TF's 1024-entry bicubic table, 0 for exact offsets);
    antialias (the filter stretched by in / out when downscaling). The output is `size`, or floor(in *
    scale_factor); s is 1 / scale_factor when use_given_scale, else in / out.
    """

    def __init__(self, mode="linear", coordinates="half_pixel", rounding="floor", cubic_a=-0.75,
                 cubic_edges="clamp", cubic_table_steps=0, antialias=False, size=None, scale_factor=None,
                 use_given_scale=False, **kwargs):
        super().__init__(**kwargs)
        if (size is None) == (scale_factor is None):
            raise ValueError("SeparableResize needs exactly one of size and scale_factor")
        self.mode = mode
        self.coordinates = coordinates
        self.rounding = rounding
        self.cubic_a = float(cubic_a)
        self.cubic_edges = cubic_edges
        self.cubic_table_steps = int(cubic_table_steps)
        self.antialias = bool(antialias)
        self.size = None if size is None else tuple(int(v) for v in size)
        self.scale_factor = None if scale_factor is None else tuple(float(v) for v in scale_factor)
        self.use_given_scale = bool(use_given_scale)

    def _rank(self):
        return len(self.size if self.size is not None else self.scale_factor)

    def _out_size(self, axis, in_size):
        import tensorflow as tf

        if self.size is not None:
            return tf.constant(self.size[axis], tf.int64)
        # torch upsample_compute_output_size: int64(in * scale) in double.
        return tf.cast(tf.floor(tf.cast(in_size, tf.float64) * self.scale_factor[axis]), tf.int64)

    def call(self, x):
        import tensorflow as tf

        rank = self._rank()
        letters = "dhw"[3 - rank:]
        for axis in range(rank):
            in_size = tf.shape(x, out_type=tf.int64)[1 + axis]
            out_size = self._out_size(axis, in_size)
            scale = self.scale_factor[axis] if self.scale_factor is not None else 1.0
            matrix = _resize_axis_matrix(in_size, out_size, scale, self.mode, self.coordinates, self.rounding,
                                         self.cubic_a, self.cubic_edges, self.cubic_table_steps, self.antialias,
                                         self.use_given_scale)
            source = "n" + letters + "c"
            target = source.replace(letters[axis], "o")
            x = tf.einsum(f"o{letters[axis]},{source}->{target}", tf.cast(matrix, x.dtype), x)
        return x

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in range(self._rank()):
            if self.size is not None:
                shape[1 + axis] = self.size[axis]
            elif shape[1 + axis] is not None:
                shape[1 + axis] = int(shape[1 + axis] * self.scale_factor[axis] // 1)
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "coordinates": self.coordinates,
                "rounding": self.rounding, "cubic_a": self.cubic_a, "cubic_edges": self.cubic_edges,
                "cubic_table_steps": self.cubic_table_steps, "antialias": self.antialias, "size": self.size,
                "scale_factor": self.scale_factor, "use_given_scale": self.use_given_scale}


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


# ---- padding family ----
# convbridge-section: TorchConstantPad


@keras.saving.register_keras_serializable(package="convbridge")
class TorchConstantPad(keras.layers.Layer):
    """torch.nn.ConstantPadNd / F.pad(mode='constant', value=v) on the spatial axes of a channels_last tensor.

    Keras' ZeroPaddingND pads with zeros only; keras.ops.pad (tf.pad on TensorFlow) takes the constant.
    """

    def __init__(self, pads, value, **kwargs):
        super().__init__(**kwargs)
        self.pads = tuple(tuple(int(v) for v in p) for p in pads)
        self.value = float(value)

    def call(self, x):
        return keras.ops.pad(x, ((0, 0),) + self.pads + ((0, 0),), mode="constant", constant_values=self.value)

    def compute_output_shape(self, input_shape):
        return _padded_shape(input_shape, self.pads)

    def get_config(self):
        return {**super().get_config(), "pads": self.pads, "value": self.value}


# convbridge-section: TorchPixelShuffle


@keras.saving.register_keras_serializable(package="convbridge")
class TorchPixelShuffle(keras.layers.Layer):
    """torch.nn.PixelShuffle(upscale_factor) on a channels_last tensor: (N, H, W, C*r*r) -> (N, H*r, W*r, C).

    PyTorch reads output channel c at block offset (i, j) from input channel c*r*r + i*r + j (the block offset in
    the low-order bits, ONNX "CRD"); tf.nn.depth_to_space reads (i*r + j)*C + c ("DCR"), so it is no substitute.
    H and W may be unknown (None): they are read from the tensor at run time.
    """

    def __init__(self, upscale_factor, **kwargs):
        super().__init__(**kwargs)
        self.upscale_factor = int(upscale_factor)

    def call(self, x):
        r = self.upscale_factor
        shape = keras.ops.shape(x)
        channels = x.shape[-1] // (r * r)
        x = keras.ops.reshape(x, (-1, shape[1], shape[2], channels, r, r))  # channel index c*r*r + i*r + j
        x = keras.ops.transpose(x, (0, 1, 4, 2, 5, 3))                      # (N, H, i, W, j, C)
        return keras.ops.reshape(x, (-1, shape[1] * r, shape[2] * r, channels))

    def compute_output_shape(self, input_shape):
        r = self.upscale_factor
        n, h, w, c = input_shape
        return (n, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "upscale_factor": self.upscale_factor}


# convbridge-section: TorchPixelUnshuffle


@keras.saving.register_keras_serializable(package="convbridge")
class TorchPixelUnshuffle(keras.layers.Layer):
    """torch.nn.PixelUnshuffle(downscale_factor) on a channels_last tensor: (N, H*r, W*r, C) -> (N, H, W, C*r*r),
    output channel c*r*r + i*r + j holding block offset (i, j) of input channel c (PyTorch's CRD order)."""

    def __init__(self, downscale_factor, **kwargs):
        super().__init__(**kwargs)
        self.downscale_factor = int(downscale_factor)

    def call(self, x):
        r = self.downscale_factor
        shape = keras.ops.shape(x)
        channels = x.shape[-1]
        x = keras.ops.reshape(x, (-1, shape[1] // r, r, shape[2] // r, r, channels))  # (N, H, i, W, j, C)
        x = keras.ops.transpose(x, (0, 1, 3, 5, 2, 4))                               # (N, H, W, C, i, j)
        return keras.ops.reshape(x, (-1, shape[1] // r, shape[2] // r, channels * r * r))

    def compute_output_shape(self, input_shape):
        r = self.downscale_factor
        n, h, w, c = input_shape
        return (n, None if h is None else h // r, None if w is None else w // r, c * r * r)

    def get_config(self):
        return {**super().get_config(), "downscale_factor": self.downscale_factor}


# convbridge-section: TanhGelu


@keras.saving.register_keras_serializable(package="convbridge")
class TanhGelu(keras.layers.Layer):
    """torch.nn.GELU(approximate='tanh'): Keras' 'gelu' activation string is the exact erf form, and Activation's
    config cannot carry approximate=True, so this layer calls keras.activations.gelu(x, approximate=True)."""

    def call(self, x):
        return keras.activations.gelu(x, approximate=True)

    def compute_output_shape(self, input_shape):
        return input_shape


# ---- model family ----
# convbridge-section: ElementwiseWeight


@keras.saving.register_keras_serializable(package="convbridge")
class ElementwiseWeight(keras.layers.Layer):
    """x (op) w for a PyTorch parameter w used in arithmetic (a layer scale, a learned offset), held as this layer's
    trainable weight in the target layout; `operation` is a keras.ops name ("add", "subtract", "multiply",
    "divide"), weight_first puts w on the left (w - x, w / x)."""

    def __init__(self, shape, operation, weight_first=False, **kwargs):
        super().__init__(**kwargs)
        self.weight_shape = tuple(int(v) for v in shape)
        self.operation = operation
        self.weight_first = bool(weight_first)

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=self.weight_shape, initializer="ones")

    def call(self, x):
        function = getattr(keras.ops, self.operation)
        return function(self.w, x) if self.weight_first else function(x, self.w)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "shape": self.weight_shape, "operation": self.operation,
                "weight_first": self.weight_first}


# convbridge-section: ReshapeKeepingSizes


@keras.saving.register_keras_serializable(package="convbridge")
class ReshapeKeepingSizes(keras.layers.Layer):
    """keras.layers.Reshape for targets with several sizes that vary with the input (Reshape infers only one):
    each entry of target_shape is an int, or "axis k" for the size of input axis k; the batch axis is kept."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)

    def _sizes(self, shape):
        return tuple(shape[int(entry[len("axis "):])] if isinstance(entry, str) else entry
                     for entry in self.target_shape)

    def call(self, x):
        return keras.ops.reshape(x, (keras.ops.shape(x)[0],) + self._sizes(keras.ops.shape(x)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._sizes(input_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}
