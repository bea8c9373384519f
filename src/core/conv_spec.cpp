#include "convbridge/conv_spec.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "convbridge/shape_math.hpp"

namespace convbridge {

std::string_view padding_fill_name(PaddingFill fill) {
  switch (fill) {
    case PaddingFill::zeros: return "zeros";
    case PaddingFill::reflect: return "reflect";
    case PaddingFill::replicate: return "replicate";
    case PaddingFill::circular: return "circular";
  }
  return "?";
}

std::string_view spatial_letters(int rank) {
  switch (rank) {
    case 1: return "W";
    case 2: return "HW";
    case 3: return "DHW";
    default: return "";
  }
}

std::string describe_padding(const std::vector<PadPair>& pads, int rank) {
  std::string out;
  const std::string_view letters = spatial_letters(rank);
  for (size_t i = 0; i < pads.size() && i < letters.size(); ++i) {
    out += fmt::format("{}{} ({}, {})", i ? ", " : "", letters[i], pads[i].before, pads[i].after);
  }
  return out;
}

Status validate(const ConvSpec& spec) {
  auto invalid = [](std::string message) { return make_error(ErrorCode::invalid_argument, std::move(message)); };
  if (spec.rank < 1 || spec.rank > kMaxSpatialRank) return invalid(fmt::format("rank={} must be 1, 2 or 3", spec.rank));
  const auto rank = static_cast<size_t>(spec.rank);
  if (spec.kernel.size() != rank || spec.stride.size() != rank || spec.dilation.size() != rank ||
      spec.padding.size() != rank) {
    return invalid(fmt::format("kernel, stride, dilation and padding must each have {} entries", rank));
  }
  if (spec.in_channels <= 0) return invalid(fmt::format("in_channels={} must be positive", spec.in_channels));
  if (spec.out_channels <= 0) return invalid(fmt::format("out_channels={} must be positive", spec.out_channels));
  if (spec.groups <= 0) return invalid(fmt::format("groups={} must be a positive integer", spec.groups));
  if (spec.in_channels % spec.groups != 0) {
    return invalid(fmt::format("in_channels={} must be divisible by groups={}", spec.in_channels, spec.groups));
  }
  if (spec.out_channels % spec.groups != 0) {
    return invalid(fmt::format("out_channels={} must be divisible by groups={}", spec.out_channels, spec.groups));
  }
  for (size_t i = 0; i < rank; ++i) {
    if (spec.kernel[i] <= 0) return invalid(fmt::format("kernel_size={} must be positive", spec.kernel[i]));
    if (spec.stride[i] <= 0) return invalid(fmt::format("stride={} must be positive", spec.stride[i]));
    if (spec.dilation[i] <= 0) return invalid(fmt::format("dilation={} must be positive", spec.dilation[i]));
    if (spec.padding[i].before < 0 || spec.padding[i].after < 0) {
      return invalid(fmt::format("padding=({}, {}) must not be negative", spec.padding[i].before, spec.padding[i].after));
    }
    CONVBRIDGE_CHECK(effective_kernel_size(spec.kernel[i], spec.dilation[i]));
  }
  if (!spec.transposed) {
    if (!spec.output_padding.empty()) return invalid("output_padding is only for transposed convolutions");
    return Ok{};
  }
  if (spec.fill != PaddingFill::zeros) {
    return invalid(fmt::format("padding_mode='{}': only 'zeros' padding mode is supported for {}",
                               padding_fill_name(spec.fill), torch_class_name(spec)));
  }
  if (spec.output_padding.size() != rank) return invalid(fmt::format("output_padding must have {} entries", rank));
  for (size_t i = 0; i < rank; ++i) {
    if (!(spec.padding[i] == PadPair{spec.padding[i].before, spec.padding[i].before})) {
      return invalid("transposed convolutions pad symmetrically");
    }
    const int64_t op = spec.output_padding[i];
    if (op < 0) return invalid(fmt::format("output_padding={} must not be negative", op));
    if (op >= std::max(spec.stride[i], spec.dilation[i])) {
      return invalid(fmt::format("output_padding={} must be smaller than either stride={} or dilation={} "
                                 "(PyTorch: \"output padding must be smaller than either stride or dilation\")",
                                 op, spec.stride[i], spec.dilation[i]));
    }
  }
  return Ok{};
}

std::vector<int64_t> torch_weight_shape(const ConvSpec& spec) {
  std::vector<int64_t> shape;
  shape.reserve(spec.kernel.size() + 2);
  shape.push_back(spec.transposed ? spec.in_channels : spec.out_channels);
  shape.push_back(spec.transposed ? spec.out_channels / spec.groups : spec.in_channels / spec.groups);
  for (int64_t k : spec.kernel) shape.push_back(k);
  return shape;
}

std::string torch_class_name(const ConvSpec& spec) {
  return fmt::format("Conv{}{}d", spec.transposed ? "Transpose" : "", spec.rank);
}

bool is_depthwise(const ConvSpec& spec) { return spec.groups > 1 && spec.groups == spec.in_channels; }

}  // namespace convbridge
