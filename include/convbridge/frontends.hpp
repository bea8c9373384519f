// Front-ends: turn what users write into the neutral description. They validate and parse; they plan nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/activation.hpp"
#include "convbridge/conv_spec.hpp"
#include "convbridge/result.hpp"

namespace convbridge {

// Largest value accepted for any size argument: far beyond any real layer, small enough that the shape math
// of rank-3 convs stays far from 64-bit overflow.
inline constexpr int64_t kMaxSizeArgument = int64_t{1} << 31;

struct TorchConvLayer {
  ConvSpec spec;
  std::string class_name;       // "Conv1d", "Conv2d" or "Conv3d"
  std::string text;             // the constructor exactly as the user wrote it
  std::string padding_as_written;  // "'same'", "1", "(1, 2)": padding= as written, "0" when defaulted
};

// Parses a torch.nn.Conv1d/2d/3d constructor call, e.g. "nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)".
// Accepts every argument PyTorch accepts, positionally or by keyword; rejects what PyTorch rejects (at
// construction, or at the first forward for errors such as stride=0) with a message naming the argument.
Result<TorchConvLayer> parse_pytorch_layer(std::string_view text);

// Parses an input shape such as "1,3,32,32" or "(1, 3, 32, 32)" into positive sizes. With allow_unknown, None
// entries (Keras' unknown sizes, e.g. "None,None,None,3") are accepted and returned as kUnknownSize.
inline constexpr int64_t kUnknownSize = -1;
Result<std::vector<int64_t>> parse_input_shape(std::string_view text, bool allow_unknown = false);

enum class KerasLayerKind {
  conv,            // keras.layers.Conv1D/2D/3D
  depthwise,       // DepthwiseConv1D/2D
  separable,       // SeparableConv1D/2D: depthwise (no bias) then a 1x1 conv with bias
  conv_transpose,  // Conv1DTranspose/2DTranspose/3DTranspose
};
enum class KerasPadding {
  valid,
  same,
  causal,         // Keras Conv1D only
  explicit_pads,  // tf.nn.conv2d / depthwise_conv2d with a padding list: KerasConvLayer::explicit_padding
};

// A TensorFlow convolution source (channels_last): a Keras 3 layer as constructed, or a tf.nn.conv1d/2d/3d,
// depthwise_conv2d or convolution call with the shape of its filters. Its input channel count is not part of the
// text; planners take it from the input shape or the built layer (for tf.nn, else the filters' depth).
struct KerasConvLayer {
  KerasLayerKind kind = KerasLayerKind::conv;
  int rank = 2;
  std::string class_name;  // "Conv2D", "DepthwiseConv2D", ..., or the function: "tf.nn.conv2d", ...
  std::string text;        // as the user wrote it
  int64_t filters = 0;     // conv, separable, conv_transpose
  std::vector<int64_t> kernel, strides, dilation;  // [rank]
  KerasPadding padding = KerasPadding::valid;
  int64_t groups = 1;            // conv only
  int64_t depth_multiplier = 1;  // depthwise, separable
  bool has_output_padding = false;       // conv_transpose: output_padding given (not None)
  std::vector<int64_t> output_padding;   // [rank] when given
  bool use_bias = true;
  std::optional<Activation> activation;  // Keras' activation= (after the bias); none for None/'linear'
  std::string activation_text;            // as written, e.g. "'relu'", for explanations
  std::vector<PadPair> explicit_padding;  // [rank] when padding is explicit_pads
  // tf.nn calls: the filters' input depth (their shape's second-to-last entry). groups is then the input channel
  // count divided by it, known only at planning time (tf.nn.conv2d infers grouped convolution from the shapes).
  bool is_tf_nn = false;
  int64_t filters_in_depth = 0;
  // tf.nn conv*_transpose: the output_shape written in the call, (N, *spatial, C); N is kUnknownSize when the
  // call computes it. It fixes the output size, and so the input size the call accepts.
  std::vector<int64_t> output_shape;
  // Keras layers: input_shape=(H, W, C) written in the constructor (kUnknownSize for None), else empty.
  std::vector<int64_t> declared_input_shape;
};

// Keras 3's activation names (keras.activations.get: "relu", "leaky_relu", the aliases "swish" and "hard_swish",
// ...) with Keras' default parameters (leaky_relu's slope 0.2, elu's alpha 1). `known`: Keras defines the name;
// `activation` is empty for "linear" and for Keras activations convbridge does not translate yet.
struct KerasActivationLookup {
  bool known = false;
  bool identity = false;  // "linear"
  std::optional<Activation> activation;
};
KerasActivationLookup keras_activation(std::string_view name);
std::string supported_keras_activations();  // for messages: "'relu', 'relu6', ..."

// Parses a Keras layer constructor such as "keras.layers.Conv2D(16, 3, strides=2, padding='same')" (also
// layers.Conv2D, tf.keras.layers.Conv2D, Conv2D), with Keras' own argument checks. Arguments that do not change
// the computation (initializers, regularizers, constraints, name, trainable, dtype float32) are accepted and
// ignored; activation= is kept (see keras_activation); data_format='channels_first' is refused. A layer's own
// input_shape= argument (Keras: the shape without the batch) is kept in `declared_input_shape`.
Result<KerasConvLayer> parse_keras_layer(std::string_view text);

// Whether the text names a Keras layer (so the CLI plans Keras -> PyTorch).
bool names_keras_layer(std::string_view text);

// Parses a TensorFlow 2 function call such as "tf.nn.conv2d(x, w, strides=2, padding='SAME')" (also
// tf.nn.conv1d, conv3d, depthwise_conv2d, convolution; prefix tf.nn., nn. or none), with TensorFlow's own
// argument checks. The text names the input and the filters but cannot say the filters' shape, so it is given:
// (*kernel, in_depth, out_channels) for conv*, (kernel_h, kernel_w, in_channels, channel_multiplier) for
// depthwise_conv2d, as tf.nn takes them. The result has use_bias false (tf.nn convolutions add no bias) and, for
// depthwise_conv2d, kind depthwise.
Result<KerasConvLayer> parse_tf_nn_call(std::string_view text, const std::vector<int64_t>& filters_shape);

// Whether the text is a tf.nn.* call (so the CLI plans TensorFlow -> PyTorch and needs --filters-shape);
// parse_tf_nn_call says which tf.nn functions are supported.
bool names_tf_nn_call(std::string_view text);

// The error for a tf.nn call given without its filters' shape: the text's own fault if it has one (syntax,
// unknown function or argument), else a request for the shape.
Error tf_nn_call_needs_filters_shape(std::string_view text);

// Parses the filters shape of a tf.nn call ("3,3,16,32" or "(3, 3, 16, 32)") as parse_input_shape does, with
// messages naming --filters-shape.
Result<std::vector<int64_t>> parse_filters_shape(std::string_view text);

}  // namespace convbridge
