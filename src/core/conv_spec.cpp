#include "convbridge/conv_spec.hpp"

#include <fmt/format.h>

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
  return Ok{};
}

bool is_depthwise(const ConvSpec& spec) { return spec.groups > 1 && spec.groups == spec.in_channels; }

}  // namespace convbridge
