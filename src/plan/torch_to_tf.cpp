// PyTorch -> TensorFlow/Keras planner. Facts relied on (see docs/semantics.md for sources and tests):
// - TF 'SAME' pads need = max(0, (ceil(in/s)-1)*s + eff - in), before = need/2 (kernel_shape_util.cc); at stride 1
//   that is (eff-1)/2 before and the rest after, which is exactly PyTorch's padding='same' split (conv.py).
// - Keras ConvND and tf.nn.convolution reject strides > 1 together with dilation_rate > 1 (keras base_conv.py); the
//   raw tf.nn.conv2d/conv3d ops take both (TF's Conv2D op attributes), and oneDNN computes them in one call.
// - tf.pad has CONSTANT, REFLECT and SYMMETRIC only; SYMMETRIC repeats the edge and is not PyTorch's replicate.
// - Keras has DepthwiseConv1D/2D (kernel (*k, C, M), output channel c*M+m, as PyTorch) but no DepthwiseConv3D.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "convbridge/checked_math.hpp"
#include "convbridge/planner.hpp"

namespace convbridge {
namespace {

std::string emit_tuple(const std::vector<int64_t>& values) { return fmt::format("({})", fmt::join(values, ", ")); }

bool any_greater_than_one(const std::vector<int64_t>& values) {
  return std::any_of(values.begin(), values.end(), [](int64_t v) { return v > 1; });
}

bool any_padding(const std::vector<PadPair>& pads) {
  return std::any_of(pads.begin(), pads.end(), [](PadPair p) { return p.before != 0 || p.after != 0; });
}

// TF 'same' at the conv step's stride equals PyTorch's padding for every input size.
Result<bool> same_matches_every_size(const ConvSpec& spec, const std::vector<int64_t>& conv_strides) {
  for (size_t i = 0; i < static_cast<size_t>(spec.rank); ++i) {
    if (conv_strides[i] != 1) return false;
    CONVBRIDGE_TRY(PadPair same, torch_same_padding(spec.kernel[i], spec.dilation[i]));
    if (!(same == spec.padding[i])) return false;
  }
  return true;
}

// TF 'same' gives the same outputs as PyTorch's explicit padding for this input size: both start the first window
// at the same offset (equal `before`) and produce the same number of outputs (so no window reads a pad that only
// one side has).
struct SameComparison {
  bool identical = true;
  std::string detail;
};

Result<SameComparison> compare_same_at_size(const ConvSpec& spec, const std::vector<int64_t>& conv_strides,
                                            const std::vector<int64_t>& input_shape) {
  SameComparison result;
  const std::string_view letters = spatial_letters(spec.rank);
  for (size_t i = 0; i < static_cast<size_t>(spec.rank); ++i) {
    const int64_t in = input_shape[i + 2];
    CONVBRIDGE_TRY(PadPair tf_pad, tf_same_padding(in, spec.kernel[i], conv_strides[i], spec.dilation[i]));
    CONVBRIDGE_TRY(int64_t tf_out, tf_conv_output_size(in, spec.kernel[i], conv_strides[i], spec.dilation[i],
                                                       TfPadding::same));
    CONVBRIDGE_TRY(int64_t torch_out, torch_conv_output_size(in, spec.padding[i], spec.kernel[i], conv_strides[i],
                                                             spec.dilation[i]));
    const bool same_here = tf_pad.before == spec.padding[i].before && tf_out == torch_out;
    result.identical = result.identical && same_here;
    result.detail += fmt::format("{}{}={}: TF 'same' pads ({}, {}) -> {} outputs, PyTorch pads ({}, {}) -> {} outputs{}",
                                 i ? "; " : "", letters[i], in, tf_pad.before, tf_pad.after, tf_out,
                                 spec.padding[i].before, spec.padding[i].after, torch_out,
                                 same_here ? "" : (tf_out != torch_out ? " (different shape)"
                                                                       : " (windows shifted by one)"));
  }
  return result;
}

std::string fill_reason(PaddingFill fill) {
  switch (fill) {
    case PaddingFill::reflect:
      return "padding_mode='reflect' mirrors without repeating the edge: tf.pad(mode='REFLECT') is the same "
             "operation, then the convolution runs unpadded ('valid')";
    case PaddingFill::replicate:
      return "padding_mode='replicate' repeats the edge value; tf.pad has no such mode and its SYMMETRIC mode is "
             "different ([1,2,3,4] pad 2: replicate [1,1,1,2,3,4,4,4], SYMMETRIC [2,1,1,2,3,4,4,3]), so the edge "
             "slice is repeated explicitly, then the convolution runs unpadded ('valid')";
    case PaddingFill::circular:
      return "padding_mode='circular' wraps around; tf.pad has no such mode, so the pad is built by concatenating "
             "the opposite edge slices, then the convolution runs unpadded ('valid')";
    case PaddingFill::zeros: break;
  }
  return "";
}


// Forward convolutions: optional pad step, one conv step, optional subsample step.
Status plan_forward(Plan& plan) {
  const ConvSpec& spec = plan.source;
  const std::optional<std::vector<int64_t>>& input_shape = plan.input_shape;
  const auto rank = static_cast<size_t>(spec.rank);

  const bool depthwise_op = is_depthwise(spec) && spec.rank <= 2;
  const int64_t in_per_group = spec.in_channels / spec.groups;
  const bool dilated = any_greater_than_one(spec.dilation);
  // Which computation, by rule (times: bench/tf_plans_vs_handwritten.py, TF 2.21 oneDNN CPU kernels):
  // - groups > 1 (not depthwise) or dilation > 1: tf_conv, one raw tf.nn op. Keras' ConvND runs a grouped conv
  //   through XLA on the CPU (keras/src/backend/tensorflow/nn.py, conv: "grouped convolutions are broken on CPU
  //   without XLA"), 4-11x slower than conv2d with the grouped kernel, 37x for Conv3D; and a dilated one through
  //   tf.nn.convolution's space_to_batch, slower than conv2d's own dilations.
  // - Depthwise convs stay Keras' DepthwiseConvND (tf.nn.depthwise_conv2d): measured as fast as any other form.
  const bool use_tf_conv = !depthwise_op && (spec.groups > 1 || dilated);
  // Stride together with dilation: one op does both (TF's Conv2D/Conv3D take both; Keras refuses them together),
  // except where that op is wrong: tf.nn.depthwise_conv2d silently ignores such strides, and with one input
  // channel per group TF 2.21's oneDNN kernels have a wrong path at stride > 1 (tests/python/test_traps.py). There,
  // convolve at stride 1 and keep every s-th output.
  const bool strided_and_dilated = any_greater_than_one(spec.stride) && dilated;
  const bool split_stride = strided_and_dilated && (depthwise_op || in_per_group == 1);
  // TF 2.21's default (oneDNN) CPU Conv2D/Conv3D kernels return garbage for one input channel per group, stride > 1
  // on the last spatial axis, an output of width 1 and a batch > 1 (tests/python/test_traps.py,
  // test_exact_despite_tf_onednn_width1_bug). Convolving that axis at stride 1 and keeping every s-th column is
  // exact and never takes that path; the extra work is confined to single-channel convolutions.
  const bool onednn_guard = !split_stride && spec.rank >= 2 && !depthwise_op && in_per_group == 1 &&
                            spec.stride.back() > 1;
  std::vector<int64_t> conv_strides = split_stride ? std::vector<int64_t>(rank, 1) : spec.stride;
  std::vector<int64_t> subsample_strides = split_stride ? spec.stride : std::vector<int64_t>(rank, 1);
  if (onednn_guard) {
    conv_strides.back() = 1;
    subsample_strides.back() = spec.stride.back();
  }

  ConvStep conv;
  conv.rank = spec.rank;
  conv.in_channels = spec.in_channels;
  conv.out_channels = spec.out_channels;
  conv.kernel = spec.kernel;
  conv.strides = conv_strides;
  conv.dilation = spec.dilation;
  conv.use_bias = spec.bias;
  std::string conv_why;
  if (depthwise_op) {
    conv.kind = TfConvKind::depthwise;
    conv.depth_multiplier = spec.out_channels / spec.in_channels;
    plan.kernel_layout = torch_conv_weight_to_tf_depthwise(spec);
    conv_why = fmt::format("groups == in_channels == {} is a depthwise convolution: DepthwiseConv{}D with "
                           "depth_multiplier={} keeps PyTorch's output-channel order c*{}+m",
                           spec.in_channels, spec.rank, conv.depth_multiplier, conv.depth_multiplier);
  } else {
    conv.kind = TfConvKind::conv;
    conv.groups = spec.groups;
    plan.kernel_layout = torch_conv_weight_to_tf_conv(spec);
    if (spec.groups == 1) {
      conv_why = fmt::format("a plain Conv{}D with the same kernel, dilation and channels", spec.rank);
    } else if (is_depthwise(spec)) {
      conv_why = fmt::format("groups == in_channels is depthwise, but Keras has no DepthwiseConv3D: a grouped conv "
                             "with {} groups of one input channel computes the same thing",
                             spec.groups);
    } else {
      conv_why = fmt::format("groups={}: the grouped kernel reads input channels [g*{}, (g+1)*{}) for output "
                             "group g, as PyTorch does",
                             spec.groups, in_per_group, in_per_group);
    }
  }
  if (use_tf_conv) {
    conv.implementation = ConvImplementation::tf_conv;
    std::vector<std::string> reasons;
    if (spec.groups > 1 && spec.rank <= 2) {
      reasons.push_back(fmt::format("one tf.nn.conv2d with the grouped kernel, where Keras' Conv{}D(groups={}) "
                                    "runs through XLA on the CPU (measured 4-11x slower)",
                                    spec.rank, spec.groups));
    } else if (spec.groups > 1) {
      reasons.push_back(fmt::format("TF has no grouped Conv3D CPU kernel, so one conv3d per group, concatenated; "
                                    "Keras' Conv3D(groups={}) runs through XLA on the CPU (measured 37x slower)",
                                    spec.groups));
    }
    if (strided_and_dilated && !split_stride) {
      reasons.push_back(fmt::format("strides {} and dilation {} in the one conv{}d call (Keras' ConvND refuses them "
                                    "together; a stride-1 conv sampled at x[::s] would compute {}x the outputs)",
                                    emit_tuple(spec.stride), emit_tuple(spec.dilation), spec.rank == 1 ? 2 : spec.rank,
                                    checked_product(spec.stride).value_or(0)));
    } else if (dilated) {
      reasons.push_back(fmt::format("dilation {} as conv{}d's own dilations, where Keras' Conv{}D wraps an undilated "
                                    "conv in space_to_batch/batch_to_space",
                                    emit_tuple(spec.dilation), spec.rank == 1 ? 2 : spec.rank, spec.rank));
    }
    conv_why += fmt::format(". Runs as tf_conv (the TfConv layer in Keras outputs): {}; its gradient comes from the "
                            "per-group, space-to-batch form, because TF's CPU kernels have none for a grouped or a "
                            "dilated explicitly padded conv",
                            fmt::join(reasons, "; "));
  }

  if (!any_padding(spec.padding)) {
    conv.padding = TfPadding::valid;
    conv_why += "; PyTorch pads nothing, which is TF 'valid'";
  } else if (spec.fill != PaddingFill::zeros) {
    plan.steps.push_back({PadStep{spec.fill, spec.padding},
                          fmt::format("pad {} with {}. {}", describe_padding(spec.padding, spec.rank),
                                      padding_fill_name(spec.fill), fill_reason(spec.fill))});
    conv.padding = TfPadding::valid;
  } else if (use_tf_conv) {
    // Pad folding: PyTorch's pads are the op's explicit padding (tf.pad first in 3-D), exact for every size; for a
    // grouped kernel conv2d with explicit pads measured 2-3x faster than with 'SAME'.
    conv.padding = TfPadding::explicit_pads;
    conv.explicit_pads = spec.padding;
    conv_why += fmt::format("; PyTorch pads {} with zeros, folded into the convolution as explicit padding (exact "
                            "for every input size)",
                            describe_padding(spec.padding, spec.rank));
  } else {
    CONVBRIDGE_TRY(const bool same_everywhere, same_matches_every_size(spec, conv_strides));
    if (same_everywhere) {
      conv.padding = TfPadding::same;
      conv_why += fmt::format("; PyTorch pads {}, and TF 'same' at stride 1 pads (eff-1)//2 before and the rest "
                              "after: the same split for every input size",
                              describe_padding(spec.padding, spec.rank));
    } else {
      SameComparison comparison{false, ""};
      if (input_shape) {
        CONVBRIDGE_TRY(comparison, compare_same_at_size(spec, conv_strides, *input_shape));
      }
      if (comparison.identical) {
        conv.padding = TfPadding::same;
        plan.exact_for_every_input_size = false;
        conv_why += fmt::format("; at this input size TF 'same' reads exactly PyTorch's windows ({}), so no "
                                "padding op is needed. TF 'same' depends on the input size at stride > 1: this "
                                "plan is exact only for this size",
                                comparison.detail);
      } else {
        conv.padding = TfPadding::explicit_pads;
        conv.explicit_pads = spec.padding;
        conv_why += fmt::format("; PyTorch pads {} with zeros, kept as explicit padding", describe_padding(spec.padding,
                                                                                                    spec.rank));
        if (input_shape) {
          conv_why += fmt::format(" because TF 'same' would differ ({})", comparison.detail);
        } else if (any_greater_than_one(conv_strides)) {
          // An example with this layer's own kernel and stride: the first of these sizes where TF 'same' differs.
          std::string example;
          for (int64_t size : {224, 225, 226, 227}) {
            std::vector<int64_t> shape{1, spec.in_channels};
            shape.resize(static_cast<size_t>(spec.rank) + 2, size);
            auto at_size = compare_same_at_size(spec, conv_strides, shape);
            if (at_size && !at_size->identical) {
              example = fmt::format(" (for example at input size {}: {})", size, at_size->detail);
              break;
            }
          }
          conv_why += " because TF 'same' at stride > 1 depends on the input size" + example;
        } else {
          conv_why += " because TF 'same' would pad differently (it splits d*(k-1) as before=total//2, "
                      "after=total-before)";
        }
        if (depthwise_op) {
          // Pad folding for depthwise convs: tf.nn.depthwise_conv2d takes the pads itself, measured 1.6-1.9x
          // faster than ZeroPadding2D + DepthwiseConv2D('valid') at stride 2 (bench/tf_plans_vs_handwritten.py).
          conv.implementation = ConvImplementation::tf_conv;
          conv_why += "; the pads are folded into tf.nn.depthwise_conv2d (the TfDepthwiseConv layer in Keras "
                      "outputs), measured 1.6-1.9x faster than ZeroPadding2D + DepthwiseConv2D('valid')";
        }
      }
    }
  }
  plan.steps.push_back({conv, conv_why});

  if (split_stride) {
    plan.steps.push_back(
        {SubsampleStep{subsample_strides},
         fmt::format("keep every ({})-th output: {}, so the convolution runs at stride 1 and x[::s] keeps exactly "
                     "the strided outputs; it costs about {}x the work of the strided convolution, since it "
                     "computes every output it then drops",
                     fmt::join(subsample_strides, ", "),
                     depthwise_op ? "tf.nn.depthwise_conv2d is wrong with strides and dilations together (and Keras "
                                    "refuses them)"
                                  : "with one input channel per group a strided dilated conv would take TF 2.21's "
                                    "wrong oneDNN path (and Keras refuses strides with dilations)",
                     checked_product(subsample_strides).value_or(0))});
  } else if (onednn_guard) {
    plan.steps.push_back(
        {SubsampleStep{subsample_strides},
         fmt::format("keep every {}-th column: with a single input channel per group, TF 2.21's default oneDNN CPU "
                     "kernel returns wrong values for stride {} on the last axis when that output is 1 wide and the "
                     "batch is larger than 1, so that axis is convolved at stride 1 and sampled at x[::{}] instead",
                     spec.stride.back(), spec.stride.back(), spec.stride.back())});
  }

  if (use_tf_conv) {
    plan.notes.push_back("tf_conv (a function; TfConv, the Keras layer around it) is embedded in the generated code "
                         "and registered for keras.models.load_model: its forward pass is one tf.nn op, its "
                         "gradient that of the per-group / space-to-batch form of the same convolution (TF's CPU "
                         "kernels have no gradient for grouped convs, nor for dilated ones outside float32 "
                         "'SAME'/'VALID'), so the layer trains like Keras' own.");
  }
  return Ok{};
}

// Transposed convolutions: one transposed conv step, exact for every input size (TF's transposed padding does not
// depend on the input size, unlike forward 'same').
Status plan_transposed(Plan& plan) {
  const ConvSpec& spec = plan.source;
  const auto rank = static_cast<size_t>(spec.rank);
  TransposedConvStep step;
  step.rank = spec.rank;
  step.in_channels = spec.in_channels;
  step.out_channels = spec.out_channels;
  step.groups = spec.groups;
  step.strides = spec.stride;
  step.use_bias = spec.bias;

  // Keras padding='same' (no output_padding) gives in*s outputs starting at floor(max(D, 0) / 2), D = k_eff - s,
  // for every input size. PyTorch gives in*s + D - 2p + op outputs starting at p: the same when D is even with
  // p = D/2 and op = 0, or when D < 0 with p = 0 and op = -D (the outputs past L are zeros plus bias in both).
  std::vector<int64_t> extents(rank);
  bool same_everywhere = true;
  for (size_t i = 0; i < rank; ++i) {
    CONVBRIDGE_TRY(extents[i], effective_kernel_size(spec.kernel[i], spec.dilation[i]));
    const int64_t d = extents[i] - spec.stride[i];
    const int64_t p = spec.padding[i].before, op = spec.output_padding[i];
    same_everywhere = same_everywhere && (d >= 0 ? (d % 2 == 0 && p == d / 2 && op == 0) : (p == 0 && op == -d));
  }

  std::vector<int64_t> append_zeros(rank, 0);
  std::string why;
  if (same_everywhere) {
    step.padding = TfPadding::same;
    why = "Keras padding='same' produces in*stride outputs starting at floor((k_eff - stride) / 2), which is "
          "exactly PyTorch's padding and output_padding here, for every input size";
  } else {
    step.padding = TfPadding::explicit_pads;
    // y[x] = z[x + p] with out = L - 2p + op: crop p before; the remaining difference p - op is cropped after,
    // or, when op > p, supplied as TF's extra outputs past L (limited to < stride; any more come from zero taps
    // appended to the kernel, so the bias still covers them as PyTorch's does).
    std::vector<std::string> axes;
    for (size_t i = 0; i < rank; ++i) {
      const int64_t p = spec.padding[i].before, op = spec.output_padding[i], s = spec.stride[i];
      int64_t after = 0, extra = 0;
      if (op <= p) {
        after = p - op;
      } else {
        extra = op - p;
      }
      if (extra > s - 1) {
        append_zeros[i] = extra - (s - 1);
        extra = s - 1;
      }
      step.pads.push_back(PadPair{p, after});
      step.extra.push_back(extra);
      axes.push_back(fmt::format("{} crop ({}, {}) + {} extra", spatial_letters(spec.rank)[i], p, after, extra));
    }
    why = fmt::format("PyTorch's y[x] = z[x + padding] with output_padding extra outputs: {}. Keras padding='same' "
                      "would start at floor((k_eff - stride) / 2) and give in*stride outputs, which differs here (a "
                      "one-pixel shift when padding and output_padding are both positive); output_padding is passed "
                      "explicitly because Keras' default for 'valid' gives in*stride outputs when stride > k_eff",
                      fmt::join(axes, ", "));
  }
  plan.kernel_layout = torch_conv_transpose_weight_to_tf(spec, append_zeros);
  for (size_t i = 0; i < rank; ++i) step.kernel.push_back(plan.kernel_layout.to_shape[i]);
  if (any_greater_than_one(spec.dilation)) {
    why += fmt::format("; dilation {} becomes zeros between the kernel taps (TF's CPU transposed conv rejects "
                       "dilation > 1), kernel extent {}",
                       emit_tuple(spec.dilation), emit_tuple(step.kernel));
  }
  if (std::any_of(append_zeros.begin(), append_zeros.end(), [](int64_t z) { return z > 0; })) {
    why += fmt::format("; output_padding beyond stride-1 (allowed by PyTorch when dilation > output_padding) comes "
                       "from {} zero taps appended to the kernel, so those outputs get the bias as in PyTorch",
                       emit_tuple(append_zeros));
  }
  if (spec.groups > 1) {
    why += fmt::format("; groups={}: TF has no grouped transposed conv on the CPU, so each group of {} input "
                       "channels is convolved on its own and the outputs are concatenated in group order",
                       spec.groups, spec.in_channels / spec.groups);
  }
  plan.steps.push_back({step, why});
  return Ok{};
}

}  // namespace

Result<Plan> plan_torch_to_tf(const TorchConvLayer& layer, const std::optional<std::vector<int64_t>>& input_shape) {
  const ConvSpec& spec = layer.spec;
  CONVBRIDGE_CHECK(validate(spec));
  Plan plan;
  plan.source = spec;
  plan.source_text = layer.text;
  plan.input_shape = input_shape;
  std::vector<int64_t> torch_output_shape;
  if (input_shape) {
    CONVBRIDGE_TRY(torch_output_shape, torch_conv_output_shape(spec, *input_shape));
  }
  CONVBRIDGE_CHECK(spec.transposed ? plan_transposed(plan) : plan_forward(plan));

  plan.notes.push_back(fmt::format(
      "Tensors are channels_last (N, {}, C): TF's CPU convolutions support only NHWC. Move PyTorch tensors with "
      "x.permute({}) and back with y.permute({}); a Flatten after this layer orders features ({}, C) instead of "
      "PyTorch's (C, {}), so the next Dense layer's weights need the same permutation.",
      fmt::join(spatial_letters(spec.rank), ", "),
      spec.rank == 1 ? "0, 2, 1" : spec.rank == 2 ? "0, 2, 3, 1" : "0, 2, 3, 4, 1",
      spec.rank == 1 ? "0, 2, 1" : spec.rank == 2 ? "0, 3, 1, 2" : "0, 4, 1, 2, 3",
      fmt::join(spatial_letters(spec.rank), ", "), fmt::join(spatial_letters(spec.rank), ", ")));
  if (input_shape) {
    // Internal invariant: the planned TF computation has PyTorch's output shape.
    std::vector<int64_t> channels_last{(*input_shape)[0]};
    channels_last.insert(channels_last.end(), input_shape->begin() + 2, input_shape->end());
    channels_last.push_back((*input_shape)[1]);
    CONVBRIDGE_TRY(std::vector<int64_t> planned, plan_output_shape(plan, channels_last));
    std::vector<int64_t> expected{torch_output_shape[0]};
    expected.insert(expected.end(), torch_output_shape.begin() + 2, torch_output_shape.end());
    expected.push_back(torch_output_shape[1]);
    if (planned != expected) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("internal error: the plan computes shape ({}) but PyTorch gives ({}); please "
                                    "report this layer",
                                    fmt::join(planned, ","), fmt::join(expected, ",")));
    }
  }
  return plan;
}

}  // namespace convbridge
