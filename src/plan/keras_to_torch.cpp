// TensorFlow/Keras -> PyTorch planner. Facts relied on (docs/semantics.md):
// - TF 'same' (kernel_shape_util.cc): need = max(0, (ceil(in/s)-1)*s + eff - in), before = need/2. At stride 1
//   that is PyTorch's padding='same' split; at stride > 1 it depends on the input size.
// - Keras 'causal' (Conv1D) pads d*(k-1) on the left only.
// - Keras transposed output (keras/src/ops/operation_utils.py compute_conv_transpose_output_shape, then
//   tf.nn.conv_transpose): 'valid' -> L + max(s - eff, 0) (output_padding None) or L + op; 'same' -> in*s
//   (None) or L - 2*(eff//2) + op, starting at z[max(L - out, 0) / 2]; L = (in-1)*s + eff.
// - SeparableConv has no depthwise bias: depthwise (bias=False) then a 1x1 conv with the bias (trap 7).
// - tf.nn.conv2d with filters of input depth d < C is a grouped convolution with C/d groups ("input depth must be
//   evenly divisible by filter depth", "output depth must be evenly divisible by number of groups"); explicit
//   padding pads zeros, then the convolution is 'VALID' (tf.nn.conv2d's padding list, nn_ops.py convert_padding).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "convbridge/planner.hpp"

namespace convbridge {
namespace {

std::string tuple_text(const std::vector<int64_t>& values) { return fmt::format("({})", fmt::join(values, ", ")); }

// (None, 8, 8, 4): a shape with unknown sizes as Python writes them.
std::string sizes_text(const std::vector<int64_t>& values) {
  std::vector<std::string> sizes;
  for (int64_t v : values) sizes.push_back(v == kUnknownSize ? "None" : std::to_string(v));
  return fmt::format("({})", fmt::join(sizes, ", "));
}

bool all_known(const std::optional<std::vector<int64_t>>& shape) {
  return shape && std::all_of(shape->begin() + 1, shape->end() - 1, [](int64_t v) { return v != kUnknownSize; });
}

// tf.nn's explicit padding list: zeros first, then the convolution without padding.
void add_explicit_padding(TorchPlan& plan, ConvStep& conv) {
  if (plan.source.padding != KerasPadding::explicit_pads) return;
  plan.source_steps.push_back({PadStep{PaddingFill::zeros, plan.source.explicit_padding}, "explicit padding"});
  conv.padding = TfPadding::valid;
}

// A tf.nn call's grouping, which follows from the input channel count and the filters' shape.
Status resolve_tf_nn_groups(KerasConvLayer& k, int64_t in_channels) {
  if (!k.is_tf_nn || k.kind == KerasLayerKind::conv_transpose) return Ok{};  // transposed: set by output_shape
  if (k.kind == KerasLayerKind::depthwise) {
    if (in_channels != k.filters_in_depth) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("the input has {} channels but the {} filter has in_channels {} (its shape's "
                                    "third entry must equal the input's channel count)",
                                    in_channels, k.class_name, k.filters_in_depth));
    }
    return Ok{};
  }
  if (in_channels % k.filters_in_depth != 0) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("the input has {} channels, not a multiple of the filters' input depth {} "
                                  "(TensorFlow: \"input depth must be evenly divisible by filter depth: {} vs {}\")",
                                  in_channels, k.filters_in_depth, in_channels, k.filters_in_depth));
  }
  k.groups = in_channels / k.filters_in_depth;
  if (k.filters % k.groups != 0) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("{} input channels over filters of input depth {} make {} groups, which do not "
                                  "divide the {} output channels (TensorFlow: \"output depth must be evenly "
                                  "divisible by number of groups: {} vs {}\")",
                                  in_channels, k.filters_in_depth, k.groups, k.filters, k.filters, k.groups));
  }
  return Ok{};
}

// The padding tf.nn.conv*_transpose's output_shape implies per axis: the forward convolution of the output (with the
// call's padding) must give the input (Conv2DBackpropInput: "Size of out_backprop doesn't match computed").
Result<std::vector<PadPair>> tf_nn_transpose_pads(const KerasConvLayer& k) {
  std::vector<PadPair> pads;
  for (size_t i = 0; i < static_cast<size_t>(k.rank); ++i) {
    const int64_t out = k.output_shape[i + 1];
    if (k.padding == KerasPadding::same) {
      CONVBRIDGE_TRY(PadPair pair, tf_same_padding(out, k.kernel[i], k.strides[i], k.dilation[i]));
      pads.push_back(pair);
    } else {
      pads.push_back(k.padding == KerasPadding::explicit_pads ? k.explicit_padding[i] : PadPair{});
    }
  }
  return pads;
}

}  // namespace

Result<std::vector<int64_t>> tf_nn_transpose_input_shape(const KerasConvLayer& k) {
  if (!k.is_tf_nn || k.kind != KerasLayerKind::conv_transpose || k.output_shape.size() != static_cast<size_t>(k.rank) + 2) {
    return make_error(ErrorCode::unsupported, fmt::format("{} is not a tf.nn conv*_transpose call", k.class_name));
  }
  CONVBRIDGE_TRY(const std::vector<PadPair> pads, tf_nn_transpose_pads(k));
  std::vector<int64_t> shape{k.output_shape.front()};
  for (size_t i = 0; i < static_cast<size_t>(k.rank); ++i) {
    CONVBRIDGE_TRY(const int64_t eff, effective_kernel_size(k.kernel[i], k.dilation[i]));
    const int64_t padded = k.output_shape[i + 1] + pads[i].before + pads[i].after;
    if (padded < eff) {
      return make_error(ErrorCode::invalid_argument,
                        fmt::format("output_shape {} is smaller than the kernel extent {} on axis {} (with the "
                                    "padding): no input gives that output",
                                    sizes_text(k.output_shape), eff, spatial_letters(k.rank)[i]));
    }
    shape.push_back((padded - eff) / k.strides[i] + 1);
  }
  shape.push_back(k.filters_in_depth);
  return shape;
}

namespace {

// tf.nn.conv*_transpose as a TransposedConvStep: output z[before : before + out] of the full transposed output
// (length L = (in-1)*s + eff), whose last `extra` positions lie past L when (out + before + after - eff) % s != 0.
Status add_tf_nn_transpose_window(TorchPlan& plan, TransposedConvStep& step) {
  const KerasConvLayer& k = plan.source;
  CONVBRIDGE_TRY(const std::vector<PadPair> pads, tf_nn_transpose_pads(k));
  for (size_t i = 0; i < static_cast<size_t>(k.rank); ++i) {
    CONVBRIDGE_TRY(const int64_t eff, effective_kernel_size(k.kernel[i], k.dilation[i]));
    step.kernel.push_back(eff);
    const int64_t in = (*plan.input_shape)[i + 1];
    const int64_t full = (in - 1) * k.strides[i] + eff;
    step.pads.push_back(pads[i]);
    step.extra.push_back(k.output_shape[i + 1] - (full - pads[i].before - pads[i].after));
  }
  return Ok{};
}

// The Keras layer as TF steps, for the reference engine and for TF's output shape.
Status add_source_steps(TorchPlan& plan) {
  const KerasConvLayer& k = plan.source;
  const auto rank = static_cast<size_t>(k.rank);
  const std::string spatial(spatial_letters(k.rank));
  ConvStep conv;
  conv.rank = k.rank;
  conv.in_channels = plan.in_channels;
  conv.kernel = k.kernel;
  conv.strides = k.strides;
  conv.dilation = k.dilation;
  conv.padding = k.padding == KerasPadding::same ? TfPadding::same : TfPadding::valid;
  conv.use_bias = k.use_bias;
  std::vector<int64_t> kernel_shape = k.kernel;
  switch (k.kind) {
    case KerasLayerKind::conv: {
      if (plan.in_channels % k.groups != 0) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("the input has {} channels, not divisible by groups={} (Keras: \"The number "
                                      "of input channels must be evenly divisible by the number of groups\")",
                                      plan.in_channels, k.groups));
      }
      conv.out_channels = k.filters;
      conv.groups = k.groups;
      kernel_shape.push_back(plan.in_channels / k.groups);
      kernel_shape.push_back(k.filters);
      plan.weight_names = {k.is_tf_nn ? "filters" : "kernel"};
      plan.weight_shapes = {kernel_shape};
      plan.source_kernels = {keras_kernel_identity(kernel_shape, {}, spatial + "IO")};
      if (k.padding == KerasPadding::causal) {
        CONVBRIDGE_TRY(const int64_t eff, effective_kernel_size(k.kernel[0], k.dilation[0]));
        plan.source_steps.push_back({PadStep{PaddingFill::zeros, {PadPair{eff - 1, 0}}}, "causal: left pad"});
      }
      add_explicit_padding(plan, conv);
      plan.source_steps.push_back({conv, k.is_tf_nn ? "the tf.nn convolution" : "the Keras convolution"});
      return Ok{};
    }
    case KerasLayerKind::depthwise:
    case KerasLayerKind::separable: {
      conv.kind = k.rank <= 2 ? TfConvKind::depthwise : TfConvKind::conv;
      conv.depth_multiplier = k.depth_multiplier;
      conv.out_channels = plan.in_channels * k.depth_multiplier;
      kernel_shape.push_back(plan.in_channels);
      kernel_shape.push_back(k.depth_multiplier);
      const bool separable = k.kind == KerasLayerKind::separable;
      conv.use_bias = !separable && k.use_bias;
      plan.weight_names = {separable ? "depthwise_kernel" : k.is_tf_nn ? "filter" : "kernel"};
      plan.weight_shapes = {kernel_shape};
      plan.source_kernels = {keras_kernel_identity(kernel_shape, {}, spatial + "CM")};
      add_explicit_padding(plan, conv);
      plan.source_steps.push_back(
          {conv, k.is_tf_nn ? "the tf.nn depthwise convolution" : "the Keras depthwise convolution"});
      if (separable) {
        ConvStep pointwise;
        pointwise.rank = k.rank;
        pointwise.in_channels = conv.out_channels;
        pointwise.out_channels = k.filters;
        pointwise.kernel.assign(rank, 1);
        pointwise.strides.assign(rank, 1);
        pointwise.dilation.assign(rank, 1);
        pointwise.use_bias = k.use_bias;
        pointwise.weight = 1;
        std::vector<int64_t> pointwise_shape(rank, 1);
        pointwise_shape.push_back(conv.out_channels);
        pointwise_shape.push_back(k.filters);
        plan.weight_names.push_back("pointwise_kernel");
        plan.weight_shapes.push_back(pointwise_shape);
        plan.source_kernels.push_back(keras_kernel_identity(pointwise_shape, {}, spatial + "IO"));
        plan.source_steps.push_back({pointwise, "the Keras pointwise convolution"});
      }
      return Ok{};
    }
    case KerasLayerKind::conv_transpose: {
      TransposedConvStep step;
      step.rank = k.rank;
      step.in_channels = plan.in_channels;
      step.out_channels = k.filters;
      step.groups = k.groups;  // 1 for Keras; a tf.nn call's filters may be grouped
      step.strides = k.strides;
      step.use_bias = k.use_bias;
      kernel_shape.push_back(k.filters / k.groups);
      kernel_shape.push_back(plan.in_channels);
      plan.weight_names = {k.is_tf_nn ? "filters" : "kernel"};
      plan.weight_shapes = {kernel_shape};
      plan.source_kernels = {keras_kernel_identity(kernel_shape, k.dilation, spatial + "OI")};
      step.padding = TfPadding::explicit_pads;
      if (k.is_tf_nn) {
        CONVBRIDGE_CHECK(add_tf_nn_transpose_window(plan, step));
        plan.source_steps.push_back({step, fmt::format("the {} call", k.class_name)});
        return Ok{};
      }
      for (size_t i = 0; i < rank; ++i) {
        CONVBRIDGE_TRY(const int64_t eff, effective_kernel_size(k.kernel[i], k.dilation[i]));
        step.kernel.push_back(eff);
        // Keras' output length relative to L, and where it starts in z (both independent of the input size).
        const int64_t s = k.strides[i];
        if (k.padding == KerasPadding::same && k.has_output_padding && eff % 2 == 0 && k.output_padding[i] == 0) {
          // out = (in-1)*s + eff%2 + op = (in-1)*s, but TF's conv_transpose needs ceil(out/s) == in
          // (conv_grad_input_ops.h "Size of out_backprop doesn't match computed"): rejected at every size.
          return make_error(ErrorCode::invalid_argument,
                            fmt::format("{} with padding='same', output_padding=0 and an even kernel extent {} on "
                                        "axis {} is rejected by TensorFlow at run time (its output (in-1)*{} is one "
                                        "stride too short: \"Size of out_backprop doesn't match computed\"); use "
                                        "output_padding=None or >= 1",
                                        k.class_name, eff, spatial[i], s));
        }
        int64_t delta = 0;  // out - L
        if (k.padding == KerasPadding::valid) {
          delta = k.has_output_padding ? k.output_padding[i] : std::max<int64_t>(s - eff, 0);
        } else {
          delta = k.has_output_padding ? k.output_padding[i] - 2 * (eff / 2) : s - eff;
        }
        const int64_t crop = k.padding == KerasPadding::same ? std::max<int64_t>(-delta, 0) / 2 : 0;
        // out = L - crop - after + extra with 0 <= extra < s.
        const int64_t after = std::max<int64_t>(-delta - crop, 0);
        const int64_t extra = std::max<int64_t>(delta, 0);
        step.pads.push_back(PadPair{crop, after});
        step.extra.push_back(extra);
      }
      plan.source_steps.push_back({step, "the Keras transposed convolution"});
      return Ok{};
    }
  }
  return Ok{};
}

ConvSpec torch_conv_spec(const KerasConvLayer& k, int64_t in_channels, int64_t out_channels, int64_t groups) {
  ConvSpec spec;
  spec.rank = k.rank;
  spec.in_channels = in_channels;
  spec.out_channels = out_channels;
  spec.groups = groups;
  spec.kernel = k.kernel;
  spec.stride = k.strides;
  spec.dilation = k.dilation;
  spec.padding.assign(static_cast<size_t>(k.rank), PadPair{});
  spec.bias = k.use_bias;
  return spec;
}

// Forward convolutions (conv, depthwise, separable): padding first, then the module(s).
Status plan_forward(TorchPlan& plan) {
  const KerasConvLayer& k = plan.source;
  const auto rank = static_cast<size_t>(k.rank);
  const bool depthwise_like = k.kind != KerasLayerKind::conv;
  const int64_t out_first = depthwise_like ? plan.in_channels * k.depth_multiplier : k.filters;
  TorchConvStep conv;
  conv.spec = torch_conv_spec(k, plan.in_channels, out_first, depthwise_like ? plan.in_channels : k.groups);
  conv.spec.bias = k.kind != KerasLayerKind::separable && k.use_bias;
  conv.takes_bias = conv.spec.bias;
  conv.layout = depthwise_like ? keras_depthwise_kernel_to_torch(k.rank, plan.weight_shapes[0])
                               : keras_kernel_to_torch(k.rank, plan.weight_shapes[0],
                                                       std::string(spatial_letters(k.rank)) + "IO",
                                                       "OI" + std::string(spatial_letters(k.rank)));
  std::string conv_why =
      depthwise_like
          ? fmt::format("the depthwise convolution: nn.Conv{}d(groups={}, out={}) keeps TensorFlow's channel order c*{}+m",
                        k.rank, plan.in_channels, out_first, k.depth_multiplier)
          : fmt::format("nn.Conv{}d with the same kernel, strides, dilation and groups", k.rank);

  std::vector<PadPair> pads(rank);
  bool runtime_same = false;
  std::vector<int64_t> extents(rank);
  for (size_t i = 0; i < rank; ++i) {
    CONVBRIDGE_TRY(extents[i], effective_kernel_size(k.kernel[i], k.dilation[i]));
  }
  const bool any_stride = std::any_of(k.strides.begin(), k.strides.end(), [](int64_t s) { return s > 1; });
  if (k.padding == KerasPadding::causal) {
    pads[0] = PadPair{extents[0] - 1, 0};
  } else if (k.padding == KerasPadding::explicit_pads) {
    pads = k.explicit_padding;
  } else if (k.padding == KerasPadding::same) {
    for (size_t i = 0; i < rank; ++i) {
      if (k.strides[i] == 1) {
        pads[i] = PadPair{(extents[i] - 1) / 2, extents[i] - 1 - (extents[i] - 1) / 2};
      } else if (all_known(plan.input_shape)) {
        CONVBRIDGE_TRY(pads[i], tf_same_padding((*plan.input_shape)[i + 1], k.kernel[i], k.strides[i], k.dilation[i]));
      } else {
        runtime_same = true;
      }
    }
    if (any_stride && all_known(plan.input_shape)) plan.exact_for_every_input_size = false;
  }

  const bool symmetric = std::all_of(pads.begin(), pads.end(), [](PadPair p) { return p.before == p.after; });
  if (runtime_same) {
    plan.steps.push_back(
        {TorchPadStep{true, {}, extents, k.strides},
         fmt::format("TF 'same' at strides {} pads need = max(0, (ceil(in/s)-1)*s + eff - in) split before = need//2, "
                     "which depends on the input size: TFSamePad computes it from each input at run time (no fixed "
                     "nn.Conv padding can)",
                     tuple_text(k.strides))});
  } else if (k.padding == KerasPadding::same && !any_stride && !symmetric) {
    conv.padding_same = true;
    conv.spec.padding = pads;
    conv_why += fmt::format("; TF 'same' at stride 1 pads {} (the odd unit after), exactly PyTorch's padding='same'",
                            describe_padding(pads, k.rank));
  } else if (symmetric) {
    conv.spec.padding = pads;
    if (k.padding == KerasPadding::explicit_pads) {
      conv_why += fmt::format("; the padding list pads {}, symmetric, so nn.Conv{}d's own padding does it",
                              describe_padding(pads, k.rank), k.rank);
    } else if (k.padding != KerasPadding::valid) {
      conv_why += fmt::format("; TF pads {} here, symmetric, so nn.Conv{}d's own padding does it",
                              describe_padding(pads, k.rank),
                              k.rank);
      if (any_stride) conv_why += " (at this input size only: TF 'same' depends on it at stride > 1)";
    }
  } else {
    plan.steps.push_back(
        {TorchPadStep{false, pads, {}, {}},
         k.padding == KerasPadding::causal
             ? fmt::format("'causal' pads {} on the left only; PyTorch convolutions pad symmetrically",
                           pads[0].before)
         : k.padding == KerasPadding::explicit_pads
             ? fmt::format("the padding list pads {}, asymmetrically (PyTorch convolutions pad symmetrically), so "
                           "an nn.ConstantPad{}d does it first",
                           describe_padding(pads, k.rank), k.rank)
             : fmt::format("TF 'same' pads {} at this input size, asymmetrically (PyTorch convolutions pad "
                           "symmetrically), so an nn.ConstantPad{}d does it first",
                           describe_padding(pads, k.rank),
                           k.rank)});
  }
  plan.steps.push_back({conv, conv_why});

  if (k.kind == KerasLayerKind::separable) {
    TorchConvStep pointwise;
    pointwise.spec = torch_conv_spec(k, out_first, k.filters, 1);
    pointwise.spec.kernel.assign(rank, 1);
    pointwise.spec.stride.assign(rank, 1);
    pointwise.spec.dilation.assign(rank, 1);
    pointwise.weight = 1;
    pointwise.takes_bias = k.use_bias;
    pointwise.layout = keras_kernel_to_torch(k.rank, plan.weight_shapes[1], std::string(spatial_letters(k.rank)) + "IO",
                                             "OI" + std::string(spatial_letters(k.rank)));
    plan.steps.push_back({pointwise, "the pointwise 1x1 convolution; SeparableConv has no depthwise bias, so the "
                                     "depthwise module has bias=False and the bias belongs here"});
  }
  return Ok{};
}

Status plan_transposed(TorchPlan& plan) {
  const KerasConvLayer& k = plan.source;
  const auto rank = static_cast<size_t>(k.rank);
  const auto& source = std::get<TransposedConvStep>(plan.source_steps.back().op);
  TorchConvStep conv;
  conv.spec = torch_conv_spec(k, plan.in_channels, k.filters, k.groups);
  conv.spec.transposed = true;
  conv.takes_bias = k.use_bias;
  const std::string spatial(spatial_letters(k.rank));
  conv.layout = keras_kernel_to_torch(k.rank, plan.weight_shapes[0], spatial + "OI", "IO" + spatial);
  std::vector<int64_t> crop_end(rank, 0);
  bool any_crop = false;
  std::vector<std::string> axes;
  for (size_t i = 0; i < rank; ++i) {
    // Keras: out = L - crop - after + extra starting at z[crop]. PyTorch: out = L - 2p + op starting at z[p].
    const int64_t p = source.pads[i].before;
    int64_t op = source.extra[i] - source.pads[i].after + p;
    if (op < 0) {  // one output shorter than PyTorch's padding can make it: crop the end
      crop_end[i] = -op;
      any_crop = true;
      op = 0;
    }
    if (op >= std::max(k.strides[i], k.dilation[i])) {
      // Only a tf.nn padding list can start the output this far past an even split.
      return make_error(ErrorCode::unsupported,
                        fmt::format("{} pads {} before and {} after on axis {}: PyTorch's ConvTranspose{}d would need "
                                    "output_padding {}, not below the stride {}; not supported yet",
                                    k.class_name, source.pads[i].before, source.pads[i].after, spatial[i], k.rank, op,
                                    k.strides[i]));
    }
    conv.spec.padding[i] = PadPair{p, p};
    conv.spec.output_padding.push_back(op);
    axes.push_back(fmt::format("{} padding {} output_padding {}{}", spatial[i], p, op,
                               crop_end[i] ? fmt::format(" then drop the last {}", crop_end[i]) : ""));
  }
  CONVBRIDGE_CHECK(validate(conv.spec));
  plan.steps.push_back(
      {conv, k.is_tf_nn
                 ? fmt::format("{}'s output is z[before : before + out] of the full transposed output z (length L = "
                               "(in-1)*s + eff), with before/after the padding its output_shape implies (the forward "
                               "conv of the output must give the input); nn.ConvTranspose{}d reproduces it with {}",
                               k.class_name, k.rank, fmt::join(axes, ", "))
                 : fmt::format("Keras' transposed output starts at z[floor(max(L - out, 0)/2)] for 'same' (z[0] for "
                               "'valid') and its length does not depend on the input size; nn.ConvTranspose{}d "
                               "reproduces it with {}",
                               k.rank, fmt::join(axes, ", "))});
  if (any_crop) {
    plan.steps.push_back(
        {TorchCropStep{crop_end},
         k.is_tf_nn ? std::string("the output ends before any PyTorch padding/output_padding pair that starts it "
                                  "at z[before] can end it: the last outputs are dropped")
                    : std::string("Keras 'same' with an even effective kernel extent past the stride ends one output "
                                  "earlier than any PyTorch padding/output_padding pair: the last output is dropped")});
  }
  return Ok{};
}

// Keras applies activation= after the bias (BaseConv.call), so its module comes last. The nn class with the
// arguments that give Keras' defaults: nn.LeakyReLU's default slope is 0.01 where Keras' leaky_relu has 0.2; ELU
// and CELU alpha 1 and GELU's exact form are both frameworks' defaults; Keras' softmax runs over axis -1, the
// channels, which PyTorch holds at dim 1. nn.Softplus switches to x above 20, where log(1 + exp(x)) - x < 3e-9.
TorchActivationStep torch_activation(const Activation& a) {
  TorchActivationStep step{a, "", {}, std::nullopt};
  switch (a.kind) {
    case ActivationKind::relu: step.module = "ReLU"; break;
    case ActivationKind::relu6: step.module = "ReLU6"; break;
    case ActivationKind::leaky_relu: step.module = "LeakyReLU"; step.float_arguments = {{"negative_slope", a.alpha}}; break;
    case ActivationKind::elu: step.module = "ELU"; step.float_arguments = {{"alpha", a.alpha}}; break;
    case ActivationKind::selu: step.module = "SELU"; break;
    case ActivationKind::celu: step.module = "CELU"; step.float_arguments = {{"alpha", a.alpha}}; break;
    case ActivationKind::sigmoid: step.module = "Sigmoid"; break;
    case ActivationKind::tanh: step.module = "Tanh"; break;
    case ActivationKind::softplus: step.module = "Softplus"; break;
    case ActivationKind::softsign: step.module = "Softsign"; break;
    case ActivationKind::silu: step.module = "SiLU"; break;
    case ActivationKind::gelu: step.module = "GELU"; break;
    case ActivationKind::gelu_tanh: step.module = "GELU"; break;  // approximate='tanh', written by the emitters
    case ActivationKind::hard_sigmoid: step.module = "Hardsigmoid"; break;
    case ActivationKind::hard_silu: step.module = "Hardswish"; break;
    case ActivationKind::hard_tanh: step.module = "Hardtanh"; break;
    case ActivationKind::mish: step.module = "Mish"; break;
    case ActivationKind::log_sigmoid: step.module = "LogSigmoid"; break;
    case ActivationKind::tanh_shrink: step.module = "Tanhshrink"; break;
    case ActivationKind::hard_shrink: step.module = "Hardshrink"; step.float_arguments = {{"lambd", a.alpha}}; break;
    case ActivationKind::soft_shrink: step.module = "Softshrink"; step.float_arguments = {{"lambd", a.alpha}}; break;
    case ActivationKind::softmax: step.module = "Softmax"; step.dim = 1; break;
    case ActivationKind::log_softmax: step.module = "LogSoftmax"; step.dim = 1; break;
  }
  return step;
}

void add_activation(TorchPlan& plan) {
  if (!plan.source.activation) return;
  const Activation& a = *plan.source.activation;
  TorchActivationStep step = torch_activation(a);
  std::string why = fmt::format("Keras' activation={} ({}) after the bias", plan.source.activation_text,
                                describe_activation(a));
  if (a.kind == ActivationKind::leaky_relu) why += "; Keras' slope is 0.2, PyTorch's LeakyReLU default is 0.01, so it is passed";
  if (step.dim) why += "; Keras takes it over the last axis, the channels, which PyTorch holds at dim 1";
  plan.steps.push_back({std::move(step), std::move(why)});
}

// A Keras input shape that reads more naturally as PyTorch's (N, C, *spatial): a first spatial size of 1 to 4
// (an image's channel count) while the "channels" and every other spatial size are 16 or more, as in
// (1, 3, 224, 224). Only a warning: such a Keras input is legal, just unlikely.
bool looks_channels_first(const std::vector<int64_t>& shape) {
  constexpr int64_t kImageLike = 16;
  if (shape.size() < 4) return false;
  const int64_t first = shape[1];
  if (first == kUnknownSize || first > 4) return false;
  for (size_t i = 2; i < shape.size(); ++i) {
    if (shape[i] != kUnknownSize && shape[i] < kImageLike) return false;
  }
  return shape.back() != kUnknownSize;
}

// A Keras layer's own input_shape=(H, W, C) against the shape given beside the text: the channels must agree and
// so must every size both know (a contradiction is the user's mistake, not something to pick a winner in).
Result<std::optional<std::vector<int64_t>>> reconcile_declared_input_shape(
    const KerasConvLayer& layer, int64_t in_channels, const std::optional<std::vector<int64_t>>& input_shape) {
  const std::vector<int64_t>& declared = layer.declared_input_shape;
  if (declared.empty()) return input_shape;
  std::vector<int64_t> merged{kUnknownSize};
  merged.insert(merged.end(), declared.begin(), declared.end());
  if (declared.back() != in_channels) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("the layer's input_shape={} gives {} channels but the input has {}",
                                  sizes_text(declared), declared.back(), in_channels));
  }
  if (!input_shape) return std::optional<std::vector<int64_t>>(merged);
  if (input_shape->size() != merged.size()) return input_shape;  // the rank error comes from the caller's check
  for (size_t i = 1; i < merged.size(); ++i) {
    const int64_t given = (*input_shape)[i];
    if (given != kUnknownSize && merged[i] != kUnknownSize && given != merged[i]) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("the input shape {} contradicts the layer's own input_shape={} (it has no batch "
                                    "entry): give one or make them agree",
                                    sizes_text(*input_shape), sizes_text(declared)));
    }
    if (merged[i] == kUnknownSize) merged[i] = given;
  }
  merged[0] = input_shape->front();
  return std::optional<std::vector<int64_t>>(merged);
}

}  // namespace

Result<TorchPlan> plan_keras_to_torch(const KerasConvLayer& layer, int64_t in_channels,
                                      const std::optional<std::vector<int64_t>>& given_input_shape) {
  if (in_channels <= 0 || in_channels > kMaxSizeArgument) {
    return make_error(ErrorCode::input_shape, fmt::format("the input channel count {} must be positive", in_channels));
  }
  CONVBRIDGE_TRY(const std::optional<std::vector<int64_t>> input_shape,
                 reconcile_declared_input_shape(layer, in_channels, given_input_shape));
  TorchPlan plan;
  plan.source = layer;
  plan.in_channels = in_channels;
  if (input_shape) {
    if (input_shape->size() != static_cast<size_t>(layer.rank) + 2) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("--input-shape has {} dimensions; {} expects {}: N,{},C (channels_last), not {}",
                                    input_shape->size(), layer.class_name, layer.rank + 2,
                                    fmt::join(spatial_letters(layer.rank), ","), sizes_text(*input_shape)));
    }
    if (input_shape->back() != in_channels) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("the input shape has {} channels but the layer has {}", input_shape->back(),
                                    in_channels));
    }
    if (all_known(input_shape)) plan.input_shape = input_shape;
  }
  CONVBRIDGE_CHECK(resolve_tf_nn_groups(plan.source, in_channels));
  CONVBRIDGE_CHECK(add_source_steps(plan));
  if (input_shape) {
    // Every known size must give a non-empty output (Keras: "Computed output size would be zero or negative");
    // unknown sizes stand in as a size every kernel fits, so only the known axes can fail.
    std::vector<int64_t> shape = *input_shape;
    shape[0] = 1;
    for (size_t i = 1; i + 1 < shape.size(); ++i) {
      if (shape[i] == kUnknownSize) shape[i] = kMaxSizeArgument;
    }
    auto out = tf_steps_output_shape(plan.source_steps, shape);
    const auto known = [&](size_t i) { return (*input_shape)[i] != kUnknownSize; };
    for (size_t i = 1; out && i + 1 < out->size(); ++i) {
      if (known(i) && (*out)[i] <= 0) out = make_error(ErrorCode::input_shape, "");
    }
    if (!out) {
      std::vector<std::string> sizes;
      for (int64_t v : *input_shape) sizes.push_back(v == kUnknownSize ? "None" : std::to_string(v));
      return make_error(ErrorCode::input_shape,
                        layer.is_tf_nn
                            ? fmt::format("{} gives an empty output for input shape ({}): the (padded) input is "
                                          "smaller than the kernel",
                                          layer.class_name, fmt::join(sizes, ","))
                            : fmt::format("Keras gives an empty output for input shape ({}): the input is smaller "
                                          "than the kernel (Keras: \"Computed output size would be zero or "
                                          "negative\")",
                                          fmt::join(sizes, ",")));
    }
  }
  CONVBRIDGE_CHECK(layer.kind == KerasLayerKind::conv_transpose ? plan_transposed(plan) : plan_forward(plan));
  add_activation(plan);
  if (input_shape && !layer.is_tf_nn && looks_channels_first(*input_shape)) {
    const std::vector<int64_t>& s = *input_shape;
    std::vector<int64_t> swapped{s.front()};
    swapped.insert(swapped.end(), s.begin() + 2, s.end());
    swapped.push_back(s[1]);
    plan.warnings.push_back(fmt::format(
        "the input shape {} is read as Keras' channels_last (N, {}, C): {} input channels and {} {}; if it is "
        "PyTorch's (N, C, {}), give {} instead",
        sizes_text(s), fmt::join(spatial_letters(layer.rank), ", "), s.back(), spatial_letters(layer.rank)[0], s[1],
        fmt::join(spatial_letters(layer.rank), ", "), sizes_text(swapped)));
  }
  plan.notes.push_back(fmt::format(
      "The PyTorch module takes channels_first tensors (N, C, {}): move {} tensors with np.transpose(x, ({})) "
      "and back with ({}).",
      fmt::join(spatial_letters(layer.rank), ", "), layer.is_tf_nn ? "TensorFlow" : "Keras",
      layer.rank == 1 ? "0, 2, 1" : layer.rank == 2 ? "0, 3, 1, 2" : "0, 4, 1, 2, 3",
      layer.rank == 1 ? "0, 2, 1" : layer.rank == 2 ? "0, 2, 3, 1" : "0, 2, 3, 4, 1"));
  return plan;
}

Result<TorchPlan> plan_tf_nn_to_torch(const KerasConvLayer& call,
                                      const std::optional<std::vector<int64_t>>& input_shape) {
  if (!call.is_tf_nn) {
    return make_error(ErrorCode::unsupported, fmt::format("{} is not a tf.nn call", call.class_name));
  }
  if (call.kind == KerasLayerKind::conv_transpose) {
    // output_shape fixes every size: the input must be the one it implies.
    CONVBRIDGE_TRY(std::vector<int64_t> implied, tf_nn_transpose_input_shape(call));
    if (input_shape) {
      const std::vector<int64_t>& given = *input_shape;
      bool matches = given.size() == implied.size();
      for (size_t i = 0; matches && i < given.size(); ++i) {
        matches = given[i] == kUnknownSize || implied[i] == kUnknownSize || given[i] == implied[i];
      }
      if (!matches) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("the input shape {} does not fit output_shape {}: {} takes inputs of shape {} "
                                      "(the forward convolution of its output; TensorFlow: \"Size of out_backprop "
                                      "doesn't match computed\")",
                                      sizes_text(given), sizes_text(call.output_shape), call.class_name,
                                      sizes_text(implied)));
      }
      if (implied.front() == kUnknownSize) implied.front() = given.front();
    }
    CONVBRIDGE_TRY(TorchPlan plan, plan_keras_to_torch(call, call.filters_in_depth, implied));
    plan.exact_for_every_input_size = false;
    plan.notes.push_back(fmt::format("{}'s output_shape {} fixes its input to {}: the module is for that size.",
                                     call.class_name, sizes_text(call.output_shape), sizes_text(implied)));
    return plan;
  }
  int64_t in_channels = call.filters_in_depth;
  std::optional<std::vector<int64_t>> shape = input_shape;
  if (shape && !shape->empty()) {
    if (shape->back() == kUnknownSize) {
      shape->back() = in_channels;
    } else {
      in_channels = shape->back();
    }
  }
  return plan_keras_to_torch(call, in_channels, shape);
}

}  // namespace convbridge
