"""Small hand-built Keras models, each covering a few layer kinds or layout-sensitive ops, at odd and even sizes.

Each builder returns a keras.Model (Functional unless it says Sequential). SMALL maps a case name to a KerasCase
(keras_zoo.KerasCase): "-odd"/"-even" cases are built for one known input size each; "-dynamic" cases are built
with None spatial sizes and evaluated at an odd and an even size (mixed per axis where the model allows it), so
that TF's 'same' padding at stride 2, which depends on the input size, is met both ways. Layer names are given
wherever the layer has weights, so that the generated nn.Module's attribute names can be checked against them.

The inputs are in Keras's layout (N, *spatial, C); batch 2 in the first evaluation of every case (TF's oneDNN
bugs need batch > 1), batch 1 in the second.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers as L

from . import KerasCase

# ---- convolutions --------------------------------------------------------------------------------------------


def conv1d(size=(None,)):
    """Conv1D: 'same' at stride 2, dilation, groups, 'causal'; Conv1DTranspose; ZeroPadding1D, UpSampling1D,
    Max/AveragePooling1D, GlobalAveragePooling1D; Dense on a rank-3 tensor (acts on the channels)."""
    x = inputs = keras.Input((*size, 4), name="signal")
    x = L.Conv1D(8, 5, strides=2, padding="same", name="conv_s2_same")(x)
    x = L.Conv1D(8, 3, dilation_rate=2, padding="same", activation="relu", name="conv_dilated")(x)
    x = L.Conv1D(8, 3, groups=4, padding="valid", name="conv_grouped")(x)
    x = L.Conv1D(6, 4, padding="causal", name="conv_causal")(x)
    x = L.ZeroPadding1D((2, 1))(x)
    x = L.MaxPooling1D(3, strides=2, padding="same")(x)
    up = L.Conv1DTranspose(4, 3, strides=2, padding="same", name="deconv_s2")(x)
    up = L.UpSampling1D(2)(up)
    pooled = L.AveragePooling1D(2)(x)
    dense = L.Dense(5, name="dense_on_rank3")(pooled)
    return keras.Model(inputs, [up, dense, L.GlobalAveragePooling1D()(x)], name="conv1d_net")


def conv2d(size=(None, None)):
    """Conv2D: 'same' at stride 2 with an odd and an even kernel, dilation, groups, a rectangular kernel with
    unequal strides, no bias, activation inside the layer."""
    x = inputs = keras.Input((*size, 3), name="image")
    a = L.Conv2D(8, 3, strides=2, padding="same", name="conv_k3_s2_same")(x)
    b = L.Conv2D(8, 4, strides=2, padding="same", activation="swish", name="conv_k4_s2_same")(x)
    x = L.Add()([a, b])
    x = L.Conv2D(8, 3, dilation_rate=2, padding="same", activation="relu", name="conv_dilated")(x)
    x = L.Conv2D(8, 3, groups=4, padding="same", name="conv_grouped")(x)
    x = L.Conv2D(6, (3, 2), strides=(2, 1), padding="valid", name="conv_k32_s21_valid")(x)
    x = L.Conv2D(6, (1, 3), strides=(1, 2), padding="same", name="conv_k13_s12_same")(x)
    x = L.Conv2D(5, 1, use_bias=False, name="conv_1x1_no_bias")(x)
    return keras.Model(inputs, x, name="conv2d_net")


def conv3d(size=(None, None, None)):
    """Conv3D: 'same' at stride 2, dilation, groups; Conv3DTranspose; MaxPooling3D, GlobalAveragePooling3D."""
    x = inputs = keras.Input((*size, 2), name="volume")
    x = L.Conv3D(4, 3, strides=2, padding="same", name="conv_s2_same")(x)
    x = L.Conv3D(4, (1, 3, 3), dilation_rate=(1, 2, 2), padding="same", activation="relu", name="conv_dilated")(x)
    y = L.Conv3D(4, 3, groups=2, padding="valid", name="conv_grouped")(x)
    up = L.Conv3DTranspose(3, 2, strides=2, padding="valid", name="deconv_s2")(y)
    pooled = L.MaxPooling3D(2, strides=1, padding="same")(x)
    return keras.Model(inputs, [up, L.GlobalAveragePooling3D()(pooled)], name="conv3d_net")


def depthwise_separable(size=(None, None)):
    """DepthwiseConv2D ('same' at stride 2 with depth_multiplier 2, 'valid'), SeparableConv2D (dilated 'same',
    strided 'valid'). One input channel per group with stride > 1: the tests compare against XLA here."""
    x = inputs = keras.Input((*size, 3), name="image")
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="dw_s2_same_m2")(x)
    x = L.SeparableConv2D(8, 3, padding="same", dilation_rate=2, name="sep_dilated")(x)
    x = L.DepthwiseConv2D(3, padding="valid", activation="relu6", name="dw_valid")(x)
    x = L.SeparableConv2D(6, 3, strides=2, padding="valid", depth_multiplier=2, name="sep_s2_valid")(x)
    return keras.Model(inputs, x, name="depthwise_net")


def conv_transpose(size=(None, None)):
    """Conv2DTranspose: 'same' and 'valid' at stride 2, output_padding, unequal strides, dilation."""
    x = inputs = keras.Input((*size, 4), name="features")
    a = L.Conv2DTranspose(6, 3, strides=2, padding="same", name="deconv_k3_s2_same")(x)
    b = L.Conv2DTranspose(4, 4, strides=2, padding="valid", activation="relu", name="deconv_k4_s2_valid")(x)
    c = L.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=0, name="deconv_k3_s2_op0")(x)
    d = L.Conv2DTranspose(3, (3, 2), strides=(1, 2), padding="valid", name="deconv_k32_s12")(x)
    e = L.Conv2DTranspose(3, 3, dilation_rate=2, padding="same", name="deconv_dilated")(x)
    f = L.Conv2DTranspose(3, 3, strides=2, padding="valid", output_padding=1, name="deconv_k3_s2_op1")(x)
    return keras.Model(inputs, [a, b, c, d, e, f], name="deconv_net")


# ---- dense, flatten, reshape, permute ------------------------------------------------------------------------


def mlp_sequential():
    """Sequential on rank-2 tensors: Dense, BatchNormalization, Dropout, Softmax."""
    return keras.Sequential([
        keras.Input((12,), name="features"),
        L.Dense(16, activation="relu", name="fc1"),
        L.BatchNormalization(name="bn1"),
        L.Dropout(0.5),
        L.Dense(8, activation="tanh", name="fc2"),
        L.Dense(4, name="fc3"),
        L.Softmax(),
    ], name="mlp")


def dense_on_rank4(size=(None, None)):
    """Dense on a rank-4 tensor acts on the channel axis (a 1x1 convolution), as in ConvNeXt."""
    x = inputs = keras.Input((*size, 5), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv")(x)
    x = L.Dense(6, activation="gelu", name="pointwise_1")(x)
    x = L.Dense(3, name="pointwise_2")(x)
    return keras.Model(inputs, x, name="dense_rank4_net")


def flatten_dense(size):
    """Sequential: Conv2D -> MaxPooling2D -> Flatten -> Dense on a non-square map: Keras flattens (h, w, c), an NCHW
    module (c, h, w), so the Dense kernel must be permuted (or the activation transposed)."""
    return keras.Sequential([
        keras.Input((*size, 3), name="image"),
        L.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
        L.MaxPooling2D(2),
        L.Flatten(),
        L.Dense(10, activation="relu", name="fc1"),
        L.Dense(3, name="fc2"),
    ], name="flatten_dense_net")


def flatten_dense_1d(size):
    """Conv1D -> Flatten -> Dense: the (l, c) flatten order against PyTorch's (c, l)."""
    x = inputs = keras.Input((*size, 3), name="signal")
    x = L.Conv1D(4, 3, name="conv")(x)
    x = L.Flatten()(x)
    return keras.Model(inputs, L.Dense(5, name="fc")(x), name="flatten_dense_1d_net")


def reshape_permute():
    """Permute moving the channels into a spatial axis, a convolution over the permuted tensor, Reshape to rank 3
    and back to rank 4, Permute of the two spatial axes, Reshape to rank 2 (fixed size 6x5x4)."""
    x = inputs = keras.Input((6, 5, 4), name="image")
    c = L.Conv2D(4, 3, padding="same", name="conv_in")(x)  # (6, 5, 4)
    p = L.Permute((3, 1, 2))(c)  # (4, 6, 5): channels first
    q = L.Conv2D(3, 1, name="conv_permuted")(p)  # (4, 6, 3): mixes the former W positions
    r = L.Reshape((24, 3))(q)  # rank 3
    d = L.Dense(2, name="dense_rank3")(r)  # (24, 2)
    s = L.Reshape((4, 6, 2))(d)
    t = L.Permute((2, 1, 3))(s)  # (6, 4, 2): H and W swapped
    u = L.Conv2D(2, (3, 2), name="conv_after_permute")(t)
    flat = L.Reshape((-1,))(c)
    return keras.Model(inputs, [r, u, L.Dense(3, name="fc_from_reshape")(flat)], name="reshape_permute_net")


def reshape_dynamic():
    """Reshape((-1, C)) with None spatial sizes: (N, H, W, C) -> (N, H*W, C), Dense on it, GlobalMaxPooling1D."""
    x = inputs = keras.Input((None, None, 4), name="image")
    x = L.Conv2D(6, 3, strides=2, padding="same", name="conv")(x)
    x = L.Reshape((-1, 6))(x)
    x = L.Dense(3, name="dense_rank3")(x)
    return keras.Model(inputs, [x, L.GlobalMaxPooling1D()(x)], name="reshape_dynamic_net")


# ---- merging -------------------------------------------------------------------------------------------------


def concatenate(size=(None, None)):
    """Concatenate along the channels (axis -1 and 3) and along the spatial axes (1, 2, -2, -3)."""
    x = inputs = keras.Input((*size, 3), name="image")
    a = L.Conv2D(4, 3, padding="same", name="conv_a")(x)
    b = L.Conv2D(5, 1, name="conv_b")(x)
    c = L.Conv2D(4, 1, name="conv_c")(x)
    channels = L.Concatenate(axis=-1)([a, b])
    channels3 = L.Concatenate(axis=3)([b, a, c])
    height = L.Concatenate(axis=1)([a, c])
    width = L.Concatenate(axis=2)([a, c, a])
    width_neg = L.Concatenate(axis=-2)([c, a])
    height_neg = L.Concatenate(axis=-3)([c, a])
    mixed = L.Conv2D(3, 3, padding="same", name="conv_after_height_cat")(height)
    return keras.Model(inputs, [channels, channels3, mixed, width, width_neg, height_neg], name="concat_net")


def merge(size=(None, None)):
    """Add (three inputs), Subtract, Multiply, Average, Maximum, Minimum, and a squeeze-excite gate: Multiply
    broadcasting (N, 1, 1, C) over (N, H, W, C)."""
    x = inputs = keras.Input((*size, 3), name="image")
    a = L.Conv2D(6, 3, padding="same", name="conv_a")(x)
    b = L.Conv2D(6, 3, padding="same", name="conv_b")(x)
    c = L.Conv2D(6, 1, name="conv_c")(x)
    outs = [
        L.Add()([a, b, c]),
        L.Subtract()([a, b]),
        L.Multiply()([a, b]),
        L.Average()([a, b, c]),
        L.Maximum()([a, c]),
        L.Minimum()([b, c]),
    ]
    gate = L.GlobalAveragePooling2D(keepdims=True)(a)  # (N, 1, 1, 6)
    gate = L.Conv2D(6, 1, activation="sigmoid", name="se_gate")(gate)
    outs.append(L.Multiply()([b, gate]))
    return keras.Model(inputs, outs, name="merge_net")


# ---- pooling -------------------------------------------------------------------------------------------------


def pooling(size=(None, None)):
    """Max/AveragePooling2D 'valid' and 'same' (TF's 'same' average excludes the padding), an InceptionV3-style
    'same' average at stride 1, a rectangular pool with unequal strides, and the four global poolings."""
    x = inputs = keras.Input((*size, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="conv")(x)  # negative values: max pooling's padding must be -inf
    return keras.Model(inputs, [
        L.MaxPooling2D(2)(x),
        L.MaxPooling2D(3, strides=2, padding="same")(x),
        L.AveragePooling2D(3, strides=2, padding="same")(x),
        L.AveragePooling2D(2, padding="valid")(x),
        L.AveragePooling2D(3, strides=1, padding="same")(x),
        L.MaxPooling2D((3, 2), strides=(2, 1), padding="valid")(x),
        L.GlobalAveragePooling2D()(x),
        L.GlobalAveragePooling2D(keepdims=True)(x),
        L.GlobalMaxPooling2D()(x),
        L.GlobalMaxPooling2D(keepdims=True)(x),
    ], name="pooling_net")


# ---- normalization, rescaling --------------------------------------------------------------------------------


def norms(size=(None, None)):
    """BatchNormalization (default, eps 0.1, no center/scale), LayerNormalization over the channels (default, and
    eps 1e-2 without center)."""
    x = inputs = keras.Input((*size, 3), name="image")
    x = L.Conv2D(6, 3, padding="same", name="conv1")(x)
    x = L.BatchNormalization(name="bn_default")(x)
    x = L.BatchNormalization(epsilon=0.1, name="bn_eps")(x)
    x = L.BatchNormalization(center=False, scale=False, name="bn_plain")(x)
    x = L.Conv2D(6, 3, padding="same", name="conv2")(x)
    x = L.LayerNormalization(name="ln_default")(x)
    x = L.LayerNormalization(epsilon=1e-2, center=False, name="ln_eps_no_center")(x)
    return keras.Model(inputs, L.Conv2D(4, 1, name="conv3")(x), name="norm_net")


def layer_norm_all_axes(size):
    """LayerNormalization(axis=(1, 2, 3)) normalizes each sample over H, W and C, with gamma and beta of shape
    (H, W, C): in NCHW they are (C, H, W)."""
    x = inputs = keras.Input((*size, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="conv")(x)
    x = L.LayerNormalization(axis=(1, 2, 3), name="ln_all")(x)
    return keras.Model(inputs, L.Conv2D(3, 1, name="conv_out")(x), name="layer_norm_all_net")


def rescale_normalize(size=(None, None)):
    """Rescaling (scalar scale and offset, per-channel scale), Normalization with mean/variance given in the
    constructor (per channel and scalar), one adapted on data (randomize keeps adapted statistics) and one with
    weights (which randomize draws)."""
    x = inputs = keras.Input((*size, 3), name="image")
    x = L.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale_scalar")(x)
    x = L.Rescaling([0.5, 1.0, 2.0], name="rescale_per_channel")(x)
    x = L.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.5, 1.5, 2.0], name="norm_constant")(x)
    x = L.Normalization(mean=0.25, variance=4.0, axis=None, name="norm_scalar")(x)
    adapted = L.Normalization(axis=-1, name="norm_adapted")
    rng = np.random.default_rng(7)
    adapted.adapt(rng.normal([0.5, -1.0, 2.0], [1.0, 0.5, 3.0], size=(64, 5, 5, 3)).astype(np.float32))
    x = adapted(x)
    x = L.Normalization(axis=-1, name="norm_weights")(x)
    return keras.Model(inputs, L.Conv2D(4, 3, padding="same", name="conv")(x), name="rescale_norm_net")


def normalization_variance_below_epsilon():
    """Keras's Normalization divides by max(sqrt(variance), 1e-7), not sqrt(variance + eps): with variance 1e-15 the
    divisor is 1e-7 (sqrt would give 3.2e-8, sqrt(var + 1e-7) 3.2e-4)."""
    x = inputs = keras.Input((5, 4, 1), name="image")
    x = L.Normalization(mean=[0.5], variance=[1e-15], name="norm_tiny")(x)
    return keras.Model(inputs, x, name="norm_tiny_net")


# ---- padding, cropping, resizing -----------------------------------------------------------------------------


def pad_crop_upsample(size=(None, None)):
    """ZeroPadding2D (asymmetric, symmetric), Cropping2D (asymmetric), UpSampling2D nearest and bilinear."""
    x = inputs = keras.Input((*size, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="conv1")(x)
    a = L.ZeroPadding2D(((1, 2), (0, 3)))(x)
    a = L.Cropping2D(((1, 0), (2, 1)))(a)
    a = L.UpSampling2D(2)(a)
    a = L.Conv2D(3, 3, name="conv2")(a)
    b = L.ZeroPadding2D(1)(x)
    b = L.UpSampling2D((2, 3), interpolation="bilinear")(b)
    c = L.Cropping2D(1)(L.UpSampling2D(2, interpolation="nearest")(x))
    return keras.Model(inputs, [a, b, c], name="pad_crop_up_net")


# ---- activations, dropout ------------------------------------------------------------------------------------

# Grouped into three models (one conversion each, to keep CI fast); each model's outputs are a dict keyed by the
# activation, so a failure names it.
ACTIVATION_GROUPS = {
    "layers": {
        "relu_max6": lambda: L.ReLU(max_value=6.0),
        "leaky_relu_default": lambda: L.LeakyReLU(),  # slope 0.3, not PyTorch's 0.01
        "leaky_relu_0.1": lambda: L.LeakyReLU(negative_slope=0.1),
        "elu_alpha": lambda: L.ELU(alpha=0.5),
        "prelu_shared": lambda: L.PReLU(shared_axes=[1, 2]),  # alpha (1, 1, C)
        "softmax_channels": lambda: L.Softmax(),
        "softmax_axis1": lambda: L.Softmax(axis=1),  # over H
    },
    "common": {name: (lambda name=name: L.Activation(name)) for name in (
        "relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "softmax", "silu", "hard_silu", "gelu", "linear")},
    "more": {name: (lambda name=name: L.Activation(name)) for name in (
        "elu", "selu", "softplus", "softsign", "leaky_relu", "mish")},
}


def activations(group: str):
    """Conv2D (x4) -> each activation of the group -> its own Conv2D, outputs {activation: tensor}; fixed size 7x6
    (PReLU's full alpha needs it)."""
    x = inputs = keras.Input((7, 6, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="conv_in")(x)
    x = L.Rescaling(4.0)(x)  # values beyond 6 and 3, where relu6, ReLU(max_value=6) and hard_sigmoid clip
    outputs = {}
    for i, (kind, make) in enumerate(ACTIVATION_GROUPS[group].items()):
        outputs[kind] = L.Conv2D(3, 1, name=f"conv_out_{i}")(make()(x))
    return keras.Model(inputs, outputs, name=f"activations_{group}")


def prelu_per_element():
    """PReLU() learns one slope per element, alpha (H, W, C); nn.PReLU has one per channel at most."""
    x = inputs = keras.Input((7, 6, 3), name="image")
    return keras.Model(inputs, L.PReLU(name="prelu_full")(L.Conv2D(4, 3, padding="same", name="conv")(x)),
                       name="prelu_full_net")


# Models with a layer the op set refuses (a known gap, each refused with a message naming the layer): builder, the
# layer's name, a phrase of the message.
REFUSED = {
    "layer_norm_all_axes": (lambda: layer_norm_all_axes((5, 7)), "ln_all", "normalizes over several axes"),
    "prelu_per_element": (prelu_per_element, "prelu_full", "one slope per element"),
    "relu_slope_and_threshold": (lambda: keras.Sequential([keras.Input((5, 5, 2)), L.ReLU(
        negative_slope=0.2, threshold=0.3, name="relu_threshold")]), "relu_threshold", "has no PyTorch module"),
}


def dropouts(size=(None, None)):
    """Dropout and SpatialDropout2D: the identity at inference."""
    x = inputs = keras.Input((*size, 3), name="image")
    x = L.Conv2D(6, 3, padding="same", name="conv1")(x)
    x = L.Dropout(0.5)(x)
    x = L.SpatialDropout2D(0.3)(x)
    x = L.Conv2D(4, 3, padding="same", name="conv2")(x)
    return keras.Model(inputs, L.Dropout(0.2, noise_shape=(None, 1, 1, 4))(x), name="dropout_net")


# ---- model structure -----------------------------------------------------------------------------------------


def nested(size=(None, None)):
    """A Sequential and a Functional model used as layers inside a Functional model; the Sequential is called
    twice (shared weights), and a plain layer is shared too."""
    block = keras.Sequential([
        L.Conv2D(6, 3, padding="same", name="block_conv"),
        L.BatchNormalization(name="block_bn"),
        L.ReLU(name="block_relu"),
    ], name="inner_block")
    sub_in = keras.Input((None, None, 6), name="sub_in")
    sub_out = L.Conv2D(6, 1, name="sub_conv")(sub_in)
    sub = keras.Model(sub_in, L.Add()([sub_in, sub_out]), name="inner_functional")
    shared = L.Conv2D(6, 3, strides=2, padding="same", name="shared_conv")

    x = inputs = keras.Input((*size, 3), name="image")
    x = L.Conv2D(6, 3, padding="same", name="stem")(x)
    x = block(x)
    x = sub(x)
    x = block(x)  # second call: the same weights
    y = shared(x)
    z = shared(L.Conv2D(6, 1, name="side")(x))
    return keras.Model(inputs, L.Subtract()([y, z]), name="nested_net")


def sequential_cnn(size=(None, None)):
    """A plain Sequential classifier."""
    return keras.Sequential([
        keras.Input((*size, 3), name="image"),
        L.Conv2D(8, 3, strides=2, padding="same", name="conv1"),
        L.BatchNormalization(name="bn1"),
        L.ReLU(),
        L.MaxPooling2D(3, strides=2, padding="same"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        L.GlobalAveragePooling2D(),
        L.Dense(10, name="fc"),
        L.Softmax(),
    ], name="sequential_cnn")


def two_inputs_two_outputs():
    """Inputs [image (9, 8, 3), meta (5,)], outputs [a map (N, 9, 8, 2), logits (N, 3)]: the rank-2 input and output
    stay as they are; the meta vector is broadcast over the image's positions."""
    image = keras.Input((9, 8, 3), name="image")
    meta = keras.Input((5,), name="meta")
    f = L.Conv2D(8, 3, padding="same", name="conv")(image)
    m = L.Reshape((1, 1, 8))(L.Dense(8, name="meta_fc")(meta))
    g = L.Add()([f, m])
    out_map = L.Conv2D(2, 1, name="map_head")(g)
    pooled = L.Concatenate()([L.GlobalAveragePooling2D()(g), meta])
    logits = L.Dense(3, name="logits")(pooled)
    return keras.Model([image, meta], [out_map, logits], name="two_in_two_out")


def dict_output(size=(None, None)):
    """Outputs as a dict {"score": (N, 3), "mask": (N, H, W, 1)}."""
    x = inputs = keras.Input((*size, 3), name="image")
    f = L.Conv2D(6, 3, padding="same", activation="relu", name="conv")(x)
    score = L.Dense(3, name="score_fc")(L.GlobalAveragePooling2D()(f))
    mask = L.Conv2D(1, 1, activation="sigmoid", name="mask_head")(f)
    return keras.Model(inputs, {"score": score, "mask": mask}, name="dict_out")


def one_channel_strided(size):
    """A 1-channel input into Conv2D (4, 5) at stride (1, 2), 1-wide output: PyTorch 2.13's CPU conv is wrong when
    the input is x_nhwc.permute(0, 3, 1, 2) (strides that also read as channels_last), and TF 2.21's eager oneDNN
    kernel is wrong at batch > 1 (both measured); the tests compare against XLA."""
    x = inputs = keras.Input((*size, 1), name="image")
    return keras.Model(inputs, L.Conv2D(3, (4, 5), strides=(1, 2), name="conv")(x), name="one_channel_net")


def keras_ops_basic(size=(None, None)):
    """keras.ops in a functional model (operations, not layers): x + y, keras.ops.add, x * y, keras.ops.multiply,
    scalars on either side."""
    x = inputs = keras.Input((*size, 3), name="image")
    a = L.Conv2D(4, 3, padding="same", name="conv_a")(x)
    b = L.Conv2D(4, 3, padding="same", name="conv_b")(x)
    y = a + b
    y = keras.ops.add(y, a)
    y = y * b
    y = keras.ops.multiply(y, 0.5)
    y = 2.0 - y
    return keras.Model(inputs, L.Conv2D(3, 1, name="conv_out")(y), name="ops_basic")


def keras_ops_more(size=(None, None)):
    """More keras.ops: subtract, maximum, sigmoid/relu, mean over the spatial axes (keepdims), concatenate on the
    channel axis."""
    x = inputs = keras.Input((*size, 3), name="image")
    a = L.Conv2D(4, 3, padding="same", name="conv_a")(x)
    b = L.Conv2D(4, 1, name="conv_b")(x)
    y = keras.ops.subtract(a, b)
    y = keras.ops.maximum(y, b)
    gate = keras.ops.sigmoid(keras.ops.mean(a, axis=(1, 2), keepdims=True))
    y = keras.ops.relu(y) * gate
    y = keras.ops.concatenate([y, a], axis=-1)
    return keras.Model(inputs, L.Conv2D(3, 1, name="conv_out")(y), name="ops_more")


def sanitized_names():
    """Layer names that are no Python identifiers (Keras accepts them): the module's attributes must still be
    derived from them."""
    x = inputs = keras.Input((6, 5, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", name="stem.conv-1")(x)
    x = L.BatchNormalization(name="stem.bn-2")(x)
    x = L.Conv2D(4, 3, padding="same", name="class")(x)
    return keras.Model(inputs, L.Conv2D(2, 1, name="1x1")(x), name="odd_names")


# ---- the cases -----------------------------------------------------------------------------------------------


def _shapes(*per_input):
    return tuple(tuple(shape) for shape in per_input)


def _fixed_pair(name, builder, odd, even, channels, **kwargs):
    """Two cases, '<name>-odd' and '<name>-even', each built at its own known spatial size."""
    return [
        KerasCase(f"{name}-odd", lambda: builder(odd), (_shapes((2, *odd, channels)),), **kwargs),
        KerasCase(f"{name}-even", lambda: builder(even), (_shapes((1, *even, channels)),), **kwargs),
    ]


def _dynamic(name, builder, sizes, channels, **kwargs):
    """One case '<name>-dynamic' with None sizes, evaluated at each size (batch 2, then 1)."""
    evaluations = tuple(_shapes((2 if i == 0 else 1, *size, channels)) for i, size in enumerate(sizes))
    return [KerasCase(f"{name}-dynamic", builder, evaluations, **kwargs)]


def _cases():
    odd, even = (13, 11), (12, 10)
    mixed = [(13, 10), (12, 11)]
    cases = [
        *_fixed_pair("conv1d", conv1d, (31,), (32,), 4),
        *_dynamic("conv1d", conv1d, [(31,), (32,)], 4),
        *_fixed_pair("conv2d", conv2d, odd, even, 3),
        *_dynamic("conv2d", conv2d, mixed, 3),
        *_fixed_pair("conv3d", conv3d, (7, 9, 8), (6, 8, 10), 2),
        *_dynamic("conv3d", conv3d, [(7, 9, 8), (6, 8, 10)], 2, example_shape=(1, 7, 9, 8, 2)),
        *_fixed_pair("depthwise_separable", depthwise_separable, (15, 13), (14, 16), 3),
        *_dynamic("depthwise_separable", depthwise_separable, [(15, 16), (14, 13)], 3),
        *_fixed_pair("conv_transpose", conv_transpose, (7, 5), (6, 8), 4),
        *_dynamic("conv_transpose", conv_transpose, [(7, 8), (6, 5)], 4),
        KerasCase("mlp_sequential", mlp_sequential, (_shapes((2, 12)), _shapes((1, 12)))),
        *_fixed_pair("dense_on_rank4", dense_on_rank4, (7, 5), (6, 8), 5),
        *_dynamic("dense_on_rank4", dense_on_rank4, [(7, 8), (6, 5)], 5),
        *_fixed_pair("flatten_dense", flatten_dense, (7, 5), (6, 8), 3),
        *_fixed_pair("flatten_dense_1d", flatten_dense_1d, (9,), (10,), 3),
        KerasCase("reshape_permute", reshape_permute, (_shapes((2, 6, 5, 4)),), moves_channels=True),
        *_dynamic("reshape_dynamic", reshape_dynamic, [(7, 6), (6, 9)], 4, moves_channels=True),
        *_fixed_pair("concatenate", concatenate, (9, 7), (8, 10), 3),
        *_dynamic("concatenate", concatenate, [(9, 10), (8, 7)], 3),
        *_fixed_pair("merge", merge, (9, 7), (8, 10), 3),
        *_dynamic("merge", merge, [(9, 10), (8, 7)], 3),
        *_fixed_pair("pooling", pooling, (11, 9), (10, 12), 3),
        *_dynamic("pooling", pooling, [(11, 12), (10, 9)], 3),
        *_fixed_pair("norms", norms, (9, 7), (8, 10), 3),
        *_dynamic("norms", norms, [(9, 10), (8, 7)], 3),
        *_fixed_pair("rescale_normalize", rescale_normalize, (9, 7), (8, 10), 3, input_kind="image"),
        *_dynamic("rescale_normalize", rescale_normalize, [(9, 10), (8, 7)], 3, input_kind="image"),
        KerasCase("normalization_variance_below_epsilon", normalization_variance_below_epsilon,
                  (_shapes((2, 5, 4, 1)),)),
        *_fixed_pair("pad_crop_upsample", pad_crop_upsample, (7, 5), (6, 8), 3),
        *_dynamic("pad_crop_upsample", pad_crop_upsample, [(7, 8), (6, 5)], 3),
        *[KerasCase(f"activations-{group}", (lambda group=group: activations(group)), (_shapes((2, 7, 6, 3)),))
          for group in ACTIVATION_GROUPS],
        *_dynamic("dropouts", dropouts, [(9, 10), (8, 7)], 3),
        *_fixed_pair("nested", nested, (9, 7), (8, 10), 3),
        *_dynamic("nested", nested, [(9, 10), (8, 7)], 3),
        *_fixed_pair("sequential_cnn", sequential_cnn, (13, 11), (12, 10), 3),
        *_dynamic("sequential_cnn", sequential_cnn, [(13, 10), (12, 11)], 3),
        KerasCase("two_inputs_two_outputs", two_inputs_two_outputs,
                  (_shapes((2, 9, 8, 3), (2, 5)), _shapes((1, 9, 8, 3), (1, 5)))),
        *_dynamic("dict_output", dict_output, [(9, 10), (8, 7)], 3),
        KerasCase("one_channel_strided-w5", lambda: one_channel_strided((12, 5)), (_shapes((2, 12, 5, 1)),)),
        KerasCase("one_channel_strided-w6", lambda: one_channel_strided((12, 6)), (_shapes((2, 12, 6, 1)),)),
        *_dynamic("keras_ops_basic", keras_ops_basic, [(9, 10), (8, 7)], 3),
        *_dynamic("keras_ops_more", keras_ops_more, [(9, 10), (8, 7)], 3),
        KerasCase("sanitized_names", sanitized_names, (_shapes((2, 6, 5, 3)),)),
    ]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return {case.name: case for case in cases}


SMALL: dict[str, KerasCase] = _cases()
