#include "convbridge/plan.hpp"

#include <fmt/format.h>

#include "convbridge/checked_math.hpp"

namespace convbridge {
namespace {

struct ShapeVisitor {
  std::vector<int64_t>& spatial;  // sizes between N and C of a channels_last tensor
  int64_t& channels;

  Status operator()(const PadStep& step) const {
    for (size_t i = 0; i < spatial.size(); ++i) {
      const PadPair pad = step.pads[i];
      // tf.pad(REFLECT) needs pad < size (MirrorPad); the circular emulation wraps at most once (pad <= size).
      if (step.fill == PaddingFill::reflect && (pad.before >= spatial[i] || pad.after >= spatial[i])) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("reflect padding ({}, {}) needs a size larger than {}", pad.before, pad.after,
                                      spatial[i]));
      }
      if (step.fill == PaddingFill::circular && (pad.before > spatial[i] || pad.after > spatial[i])) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("circular padding ({}, {}) needs a size of at least the padding, got {}",
                                      pad.before, pad.after, spatial[i]));
      }
      auto size = checked_add(spatial[i], pad.before);
      if (size) size = checked_add(*size, pad.after);
      if (!size) return make_error(ErrorCode::overflow, "the padded size does not fit in 64 bits");
      spatial[i] = *size;
    }
    return Ok{};
  }

  Status operator()(const ConvStep& step) const {
    if (channels != step.in_channels) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("the input has {} channels; the convolution expects {}", channels, step.in_channels));
    }
    for (size_t i = 0; i < spatial.size(); ++i) {
      const PadPair pad = step.padding == TfPadding::explicit_pads ? step.explicit_pads[i] : PadPair{};
      CONVBRIDGE_TRY(spatial[i], tf_conv_output_size(spatial[i], step.kernel[i], step.strides[i], step.dilation[i],
                                                     step.padding, pad));
    }
    channels = step.out_channels;
    return Ok{};
  }

  Status operator()(const TransposedConvStep& step) const {
    if (channels != step.in_channels) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("the input has {} channels; the convolution expects {}", channels, step.in_channels));
    }
    for (size_t i = 0; i < spatial.size(); ++i) {
      const bool explicit_pads = step.padding == TfPadding::explicit_pads;
      CONVBRIDGE_TRY(TransposedWindow window,
                     tf_conv_transpose_window(spatial[i], step.kernel[i], step.strides[i], step.padding,
                                              explicit_pads ? step.pads[i] : PadPair{},
                                              explicit_pads ? step.extra[i] : 0));
      spatial[i] = window.size;
    }
    channels = step.out_channels;
    return Ok{};
  }

  Status operator()(const SubsampleStep& step) const {
    for (size_t i = 0; i < spatial.size(); ++i) spatial[i] = subsample_size(spatial[i], step.strides[i]);
    return Ok{};
  }
};

}  // namespace

Result<std::vector<int64_t>> plan_output_shape(const Plan& plan, std::span<const int64_t> input_shape_channels_last) {
  if (input_shape_channels_last.size() != static_cast<size_t>(plan.source.rank) + 2) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("a channels_last input of rank {} is needed", plan.source.rank + 2));
  }
  return tf_steps_output_shape(plan.steps, input_shape_channels_last);
}

Result<std::vector<int64_t>> tf_steps_output_shape(std::span<const PlanStep> steps,
                                                   std::span<const int64_t> input_shape_channels_last) {
  if (input_shape_channels_last.size() < 3) {
    return make_error(ErrorCode::input_shape, "a channels_last input (N, *spatial, C) is needed");
  }
  std::vector<int64_t> spatial(input_shape_channels_last.begin() + 1, input_shape_channels_last.end() - 1);
  int64_t channels = input_shape_channels_last.back();
  for (const PlanStep& step : steps) {
    CONVBRIDGE_CHECK(std::visit(ShapeVisitor{spatial, channels}, step.op));
  }
  std::vector<int64_t> out{input_shape_channels_last.front()};
  out.insert(out.end(), spatial.begin(), spatial.end());
  out.push_back(channels);
  return out;
}

}  // namespace convbridge
