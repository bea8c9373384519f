// A translation plan: the sequence of TensorFlow/Keras operations that computes exactly what the source layer
// computes, on channels_last tensors (N, *spatial, C) as TF's CPU kernels require. Each step records why it was
// chosen. Emitters render a plan as Keras or tf.nn source; the reference engine executes it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "convbridge/conv_spec.hpp"
#include "convbridge/frontends.hpp"
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

// What computes a conv step. Both compute the same sums; the planner picks the faster on TF's CPU kernels and
// says why in the step's `why`.
enum class ConvImplementation {
  keras_layer,  // keras.layers.ConvND / DepthwiseConvND; in tf code tf.nn.convNd / depthwise_conv2d
  tf_conv,      // convbridge's tf_conv (python/convbridge/keras_layers.py; the TfConv layer in Keras outputs): one
                // raw tf.nn op with the grouped kernel, strides with dilations and the pads folded in, its gradient
                // from a portable form; for groups in 3-D (no grouped Conv3D CPU kernel) one conv per group
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
  int weight = 0;  // which kernel the step reads, when a layer has several (SeparableConv: 0 depthwise, 1 pointwise)
  ConvImplementation implementation = ConvImplementation::keras_layer;
};

// Keeps every s-th element along each spatial dim, starting at 0: x[:, ::s0, ::s1, :]. Used to split a conv with
// stride > 1 and dilation > 1 into a stride-1 dilated conv and this exact selection where no single TF op is right
// for it (depthwise, one input channel per group), and to keep TF's oneDNN kernels off their wrong path.
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
  int weight = 0;
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

// Channels_last output shape (N, *spatial, C) of TF steps for a channels_last input, with TF's shape rules.
Result<std::vector<int64_t>> tf_steps_output_shape(std::span<const PlanStep> steps,
                                                   std::span<const int64_t> input_shape_channels_last);
Result<std::vector<int64_t>> plan_output_shape(const Plan& plan, std::span<const int64_t> input_shape_channels_last);

// ---- TF/Keras -> PyTorch ----------------------------------------------------------------------------------------

// Zero padding before a PyTorch module: fixed per-side pads, or TF's 'same' padding computed from the input size
// at run time (it depends on the size when stride > 1, so no fixed nn.Conv padding reproduces it).
struct TorchPadStep {
  bool tf_same_at_runtime = false;
  std::vector<PadPair> pads;              // [rank], fixed pads
  std::vector<int64_t> kernel_extent;     // [rank], runtime 'same': (k-1)*d+1
  std::vector<int64_t> strides;           // [rank], runtime 'same'
};

// One PyTorch module: nn.ConvNd or nn.ConvTransposeNd as `spec` describes it (spec.padding is symmetric, or the
// 'same' split when padding_same is set), with the Keras weight it takes.
struct TorchConvStep {
  ConvSpec spec;
  bool padding_same = false;  // write padding='same' (PyTorch's split equals TF's at stride 1)
  int weight = 0;             // index into TorchPlan::weight_names
  WeightLayoutChange layout;  // Keras weight -> PyTorch weight
  bool takes_bias = false;    // the Keras bias is this module's bias
};

// Drops the last elements of each spatial axis (a Keras transposed output one shorter than any PyTorch
// padding/output_padding pair gives).
struct TorchCropStep {
  std::vector<int64_t> crop_end;  // [rank]
};

// The Keras layer's activation= as a PyTorch module (nn.ReLU(), nn.LeakyReLU(negative_slope=0.2), nn.Softmax(dim=1),
// ...), after the convolution and its bias as Keras applies it.
struct TorchActivationStep {
  Activation activation;
  std::string module;  // nn class name, e.g. "LeakyReLU"
  std::vector<std::pair<std::string, double>> float_arguments;  // e.g. {"negative_slope", 0.2}
  std::optional<int> dim;  // softmax kinds: the channel axis, 1 in channels_first
};

struct TorchPlanStep {
  std::variant<TorchPadStep, TorchConvStep, TorchCropStep, TorchActivationStep> op;
  std::string why;
};

struct TorchPlan {
  KerasConvLayer source;
  int64_t in_channels = 1;
  std::optional<std::vector<int64_t>> input_shape;  // channels_last, as the Keras layer sees it; sizes known
  std::vector<PlanStep> source_steps;               // the Keras layer in TF semantics (for the reference engine)
  std::vector<std::string> weight_names;            // Keras weight names, in make_module's argument order
  std::vector<std::vector<int64_t>> weight_shapes;  // Keras layouts
  std::vector<WeightLayoutChange> source_kernels;   // Keras weight -> the kernel its TF step reads
  bool exact_for_every_input_size = true;
  std::vector<TorchPlanStep> steps;
  std::vector<std::string> notes;
  std::vector<std::string> warnings;  // likely mistakes in what was given (the CLI prints them on stderr)
};

}  // namespace convbridge
