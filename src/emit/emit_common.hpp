// Formatting shared by the emitters: Python literals and layout descriptions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "convbridge/plan.hpp"

namespace convbridge::emit {

// (3, 3) / (3,) / ()
std::string py_tuple(std::span<const int64_t> values);
std::string py_tuple(std::span<const int> values);

// Keras ZeroPaddingND argument: (b, a) for rank 1, ((t, b), (l, r)) for rank 2, three pairs for rank 3.
std::string keras_padding_tuple(const std::vector<PadPair>& pads);

// tf.pad / tf.nn.conv2d paddings for a channels_last tensor: [[0, 0], [b, a], ..., [0, 0]].
std::string tf_paddings_list(const std::vector<PadPair>& pads);

// "(N, H, W, 3)" for an input, "(N, H_out, W_out, 16)" for an output.
std::string channels_last_description(int rank, int64_t channels, bool output);

// Lines of Python that validate `weight` and `bias` (PyTorch layout) and raise ValueError naming the mismatch.
// They leave `weight` and `bias` as numpy arrays (np.asarray).
std::string python_weight_checks(const Plan& plan, const std::string& indent);

// The same checks and messages for tf code: `weight` and `bias` become tensors (tf.convert_to_tensor), so numpy
// arrays, tensors and tf.Variables all work and a variable stays on the gradient tape.
std::string python_weight_checks_tf(const Plan& plan, const std::string& indent);

// Python expression turning the PyTorch `weight` array into `change.to_shape`, e.g.
// np.transpose(weight, (2, 3, 1, 0)), ignoring zero insertion (see python_kernel_lines).
std::string python_layout_expression(const WeightLayoutChange& change, std::string_view source_name = "weight");

// Python lines that assign `kernel` (a numpy array in change.to_shape) from `weight`, with the zero insertion of
// a dilated transposed kernel when the change has one.
std::string python_kernel_lines(const WeightLayoutChange& change, const std::string& indent);

// The named sections of an embedded Python source (each starts at a "# convbridge-section: NAME" line and runs to
// the next), in the file's order, with the text before the first section: emitted code carries only the helpers
// it uses. A name the source lacks is a build mistake and aborts.
std::string python_sections(std::string_view source, const std::vector<std::string>& names);

// nn.LeakyReLU(negative_slope=0.2), nn.Softmax(dim=1), nn.ReLU(): the module of an activation step.
std::string torch_activation_constructor(const TorchActivationStep& step);

// The tf variants: tf.transpose / tf.reshape instead of numpy, e.g. tf.transpose(weight, (2, 3, 1, 0)), and the
// zero insertion as calls of spread_taps (python_spread_taps_tf, which the code must define), so the kernel is a
// differentiable function of a tensor or tf.Variable `weight`.
std::string python_layout_expression_tf(const WeightLayoutChange& change, std::string_view source_name = "weight");
std::string python_kernel_lines_tf(const WeightLayoutChange& change, const std::string& indent);
std::string_view python_spread_taps_tf();

// The Keras layer of a conv step: keras.layers.Conv2D(16, (3, 3), strides=..., use_bias=True) (DepthwiseConvND for
// the depthwise kind; ConvNDTranspose, or TorchGroupedConvTranspose for groups > 1), or TfConv(...) for a tf_conv
// step (keras_layers.py sections kTfConvSections, which the code must embed). prefix replaces "keras.layers.";
// extra is appended to the arguments (", name=..."). An explicitly padded step expects input the caller has
// zero-padded, unless fold_explicit_pads and the layer takes the pads itself (conv_pads_folded).
std::string keras_conv_constructor(const ConvStep& conv, std::string_view prefix = "keras.layers.",
                                   std::string_view extra = "", bool fold_explicit_pads = false);
bool conv_pads_folded(const ConvStep& conv, bool fold_explicit_pads);
inline const std::vector<std::string> kTfConvSections{"tf_conv", "TfConv"};
std::string keras_transposed_constructor(const TransposedConvStep& conv, std::string_view prefix = "keras.layers.",
                                         std::string_view extra = "");

// The plan's transposed step, or nullptr for a forward plan.
const TransposedConvStep* transposed_step(const Plan& plan);

// User text made safe for a one-line Python comment: ASCII, no line breaks.
std::string comment_safe(std::string_view text);

// The comment block at the top of generated code: source layer and input-size validity.
std::string python_header(const Plan& plan, const std::string& target);

const ConvStep& conv_step(const Plan& plan);

// How generated code and explanations name a TensorFlow source: "Keras" or "TensorFlow" (a tf.nn call), and
// "Keras layer" or "tf.nn call".
std::string_view source_framework(const KerasConvLayer& source);
std::string_view source_noun(const KerasConvLayer& source);

// (1, 3, 224, 224); sizes that vary with the input (kUnknownSize) are None.
std::string shape_text(const std::vector<int64_t>& shape);
// A Python string literal for any UTF-8 text, ASCII only: quotes and backslashes escaped, other code points by number.
std::string python_string(const std::string& text);
// A model's outputs as Python: the graph's output_structure ({"ref"}, {"list"}, {"tuple"}, {"dict"}) over the output
// variables in order (`next` counts the ones used).
std::string outputs_expression(const nlohmann::json& value, const std::vector<std::string>& variables, size_t& next);

}  // namespace convbridge::emit
