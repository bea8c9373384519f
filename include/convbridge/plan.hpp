// A translation plan: the sequence of TensorFlow/Keras operations that computes exactly what the source layer
// computes, on channels_last tensors (N, *spatial, C) as TF's CPU kernels require. Each step records why it was
// chosen. Emitters render a plan as Keras or tf.nn source; the reference engine executes it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "convbridge/conv_spec.hpp"
#include "convbridge/shape_math.hpp"
#include "convbridge/weight_layout.hpp"

namespace convbridge {

// Pads the spatial dims of a channels_last tensor with `fill` (tf.pad / ZeroPaddingND / an emulation).
struct PadStep {
  PaddingFill fill = PaddingFill::zeros;
  std::vector<PadPair> pads;  // [rank]
};

enum class TfConvKind {
  conv,       // keras.layers.ConvND(groups=G) / tf.nn.convNd; kernel (*k, C_in/G, C_out)
  depthwise,  // keras.layers.DepthwiseConvND(depth_multiplier=M) / tf.nn.depthwise_conv2d; kernel (*k, C_in, M)
};

// One TensorFlow convolution with TF padding semantics (SAME is resolved from the input size at run time).
struct ConvStep {
  TfConvKind kind = TfConvKind::conv;
  int rank = 2;
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t groups = 1;            // conv kind only
  int64_t depth_multiplier = 1;  // depthwise kind only
  std::vector<int64_t> kernel, strides, dilation;  // [rank]
  TfPadding padding = TfPadding::valid;
  std::vector<PadPair> explicit_pads;  // [rank], for TfPadding::explicit_pads
  bool use_bias = true;
};

// Keeps every s-th element along each spatial dim, starting at 0: x[:, ::s0, ::s1, :]. Used to split a conv with
// stride > 1 and dilation > 1 (which Keras layers refuse) into a stride-1 dilated conv and this exact selection.
struct SubsampleStep {
  std::vector<int64_t> strides;  // [rank]
};

// A TF transposed convolution (keras ConvNDTranspose / tf.nn.convNd_transpose), TF semantics. Its kernel is
// (*k_eff, C_out/G, C_in): PyTorch's dilation is applied by inserting zeros between the taps (TF's CPU kernels
// reject dilation > 1) and groups run one by one (TF has no grouped transposed conv on CPU). With z the full
// transposed result of length L = (in-1)*s + k_eff along an axis:
//   same:          out = in*s,                           y[x] = z[x + floor(max(L - out, 0) / 2)]   (Keras 'same')
//   explicit_pads: out = L - before - after + extra,     y[x] = z[x + before]
// and positions past L hold 0; the bias is added to every output. 0 <= extra < stride (TF and Keras require it).
struct TransposedConvStep {
  int rank = 2;
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t groups = 1;
  std::vector<int64_t> kernel;   // [rank] extent of the (zero-dilated) kernel
  std::vector<int64_t> strides;  // [rank]
  TfPadding padding = TfPadding::explicit_pads;
  std::vector<PadPair> pads;     // [rank], explicit_pads only
  std::vector<int64_t> extra;    // [rank], explicit_pads only
  bool use_bias = true;
};

struct PlanStep {
  std::variant<PadStep, ConvStep, SubsampleStep, TransposedConvStep> op;
  std::string why;  // one or two sentences for `explain`
};

struct Plan {
  ConvSpec source;                               // the PyTorch layer
  std::string source_text;                       // as the user wrote it, for comments in emitted code
  std::optional<std::vector<int64_t>> input_shape;  // PyTorch input (N, C, *spatial) if known
  bool exact_for_every_input_size = true;        // false: exact only for input_shape
  std::vector<PlanStep> steps;
  WeightLayoutChange kernel_layout;              // PyTorch weight -> the kernel the conv step reads
  std::vector<std::string> notes;                // facts the user should know that are not a step
};

// Channels_last output shape (N, *spatial, C) of a plan for a channels_last input, with TF's shape rules.
Result<std::vector<int64_t>> plan_output_shape(const Plan& plan, std::span<const int64_t> input_shape_channels_last);

}  // namespace convbridge
