// PyTorch pooling front-end: nn.MaxPool1d/2d/3d, nn.AvgPool1d/2d/3d, nn.AdaptiveAvgPool1d/2d/3d,
// nn.AdaptiveMaxPool1d/2d/3d and their torch.nn.functional forms, with PyTorch's own checks:
//   torch/nn/modules/pooling.py (constructor signatures; stride=None means kernel_size),
//   aten/src/ATen/native/Pool.h pool2d_shape_check / pooling_output_shape ("pad should be at most half of
//   effective kernel size", "pad must be non-negative", "Output size is too small"),
//   aten/src/ATen/native/DilatedMaxPool2d.cpp max_pool2d_with_indices ("pad should be smaller than or equal to half
//   of kernel size": the kernel itself, not the dilated extent),
//   aten/src/ATen/native/AveragePool2d.cpp ("divisor must be not zero"),
//   aten/src/ATen/native/AdaptiveAveragePooling.cpp ("elements of output_size must be greater than or equal to 0").
// Messages quote PyTorch's where it has one (measured with torch 2.13).
#include <fmt/format.h>

#include <array>
#include <string>
#include <string_view>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

constexpr std::array<std::string_view, 6> kMaxPoolParameters = {"kernel_size", "stride",         "padding",
                                                                 "dilation",    "return_indices", "ceil_mode"};
constexpr std::array<std::string_view, 5> kAvgPool1dParameters = {"kernel_size", "stride", "padding", "ceil_mode",
                                                                  "count_include_pad"};
constexpr std::array<std::string_view, 6> kAvgPoolParameters = {"kernel_size", "stride",            "padding",
                                                                 "ceil_mode",   "count_include_pad", "divisor_override"};
constexpr std::array<std::string_view, 1> kAdaptiveAvgParameters = {"output_size"};
constexpr std::array<std::string_view, 2> kAdaptiveMaxParameters = {"output_size", "return_indices"};
// torch.nn.functional (torch/nn/functional.py): the input first; max_pool's ceil_mode comes before return_indices.
constexpr std::array<std::string_view, 7> kFunctionalMaxPoolParameters = {
    "input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"};
constexpr std::array<std::string_view, 6> kFunctionalAvgPool1dParameters = {
    "input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"};
constexpr std::array<std::string_view, 7> kFunctionalAvgPoolParameters = {
    "input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"};
constexpr std::array<std::string_view, 2> kFunctionalAdaptiveAvgParameters = {"input", "output_size"};
constexpr std::array<std::string_view, 3> kFunctionalAdaptiveMaxParameters = {"input", "output_size",
                                                                              "return_indices"};

std::string keyword_hint(std::string_view keyword) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kKerasSpellings = {{
      {"pool_size", "kernel_size"},
      {"strides", "stride"},
      {"dilation_rate", "dilation"},
      {"dilations", "dilation"},
      {"keepdims", "output_size"},
  }};
  for (auto [keras, torch] : kKerasSpellings) {
    if (keyword == keras) return fmt::format(" (did you mean '{}'? '{}' is the Keras name)", torch, keras);
  }
  static constexpr std::array<std::string_view, 8> kAll = {"kernel_size", "stride",           "padding",
                                                           "dilation",    "return_indices",   "ceil_mode",
                                                           "count_include_pad", "divisor_override"};
  std::string hint = closest_name_hint(keyword, kAll);
  if (hint.empty()) hint = closest_name_hint(keyword, kAdaptiveMaxParameters);
  return hint;
}

Result<bool> bool_argument(const PyValue& value, std::string_view name, std::string_view function) {
  if (value.kind != PyValue::Kind::boolean) {
    return invalid_argument(fmt::format("{}={} must be True or False (PyTorch: \"{}(): argument '{}' must be bool, "
                                        "not {}\")",
                                        name, value.source, function, name, kind_name(value.kind)));
  }
  return value.boolean;
}

// kernel_size, stride, padding, dilation: an int or `rank` ints, with PyTorch's message for a wrong tuple length.
Result<std::vector<int64_t>> size_argument(const PyValue& value, std::string_view name, int rank,
                                           std::string_view function) {
  if (value.kind == PyValue::Kind::sequence && value.items.size() != static_cast<size_t>(rank) &&
      value.items.size() != 1) {
    return invalid_argument(fmt::format("{}={} has {} entries (PyTorch: \"{}: {} must either be a single int, or a "
                                        "tuple of {} ints\")",
                                        name, value.source, value.items.size(), function, name, rank));
  }
  if (value.kind == PyValue::Kind::sequence && value.items.size() == 1) {
    return int_or_tuple(value.items.front(), name, rank);
  }
  return int_or_tuple(value, name, rank);
}

Status refuse_return_indices(const BoundArguments& bound, std::string_view function) {
  CONVBRIDGE_TRY(const bool indices, bool_argument(bound.get("return_indices", "False"), "return_indices", function));
  if (indices) {
    return make_error(ErrorCode::unsupported,
                      "return_indices=True is not supported: the layer returns (values, indices) and neither Keras "
                      "nor TF pooling layers return PyTorch's flat argmax indices; use return_indices=False");
  }
  return Ok{};
}

Status require_tensor_name(const BoundArguments& bound, std::string_view class_name) {
  const PyValue input = bound.get("input", "None");
  if (input.kind != PyValue::Kind::name) {
    return invalid_argument(fmt::format("{}: input={} must be the input tensor's name (e.g. x)", class_name,
                                        input.source));
  }
  return Ok{};
}

int rank_of_name(std::string_view name) { return name[name.size() - 2] - '0'; }

// Window pooling: MaxPoolNd / AvgPoolNd (and F.max_poolNd / F.avg_poolNd).
Status parse_window_pool(const PyCall& call, OpLayer& layer, PoolKind kind, bool functional,
                         std::span<const std::string_view> parameters, std::string_view signature) {
  const std::string_view name = layer.class_name;
  const int rank = rank_of_name(name);
  const std::string function = fmt::format("{}_pool{}d", kind == PoolKind::max ? "max" : "avg", rank);
  CONVBRIDGE_TRY(const BoundArguments bound, BoundArguments::bind(call, layer.class_name, parameters,
                                                                   functional ? 2 : 1, signature, keyword_hint));
  if (functional) CONVBRIDGE_CHECK(require_tensor_name(bound, layer.class_name));
  PoolOp op;
  op.kind = kind;
  op.rank = rank;
  const PyValue kernel = bound.get("kernel_size", "None");
  CONVBRIDGE_TRY(op.kernel, size_argument(kernel, "kernel_size", rank, function));
  for (const int64_t k : op.kernel) {
    if (k <= 0) {
      return invalid_argument(fmt::format("kernel_size={} must be positive (PyTorch: \"{}: kernel size should be "
                                          "greater than zero\")",
                                          kernel.source, function));
    }
  }
  // stride=None (and PyTorch's stride=[] / ()) means the kernel size (torch/nn/functional.py, Pool.h).
  const PyValue stride = bound.get("stride", "None");
  const bool default_stride =
      stride.kind == PyValue::Kind::none || (stride.kind == PyValue::Kind::sequence && stride.items.empty());
  if (default_stride) {
    op.stride = op.kernel;
  } else {
    CONVBRIDGE_TRY(op.stride, size_argument(stride, "stride", rank, function));
    for (const int64_t s : op.stride) {
      if (s <= 0) {
        return invalid_argument(fmt::format("stride={} must be positive (PyTorch: \"stride should not be zero\")",
                                            stride.source));
      }
    }
  }
  const PyValue padding = bound.get("padding", "0");
  CONVBRIDGE_TRY(std::vector<int64_t> pads, size_argument(padding, "padding", rank, function));
  op.dilation.assign(static_cast<size_t>(rank), 1);
  if (kind == PoolKind::max) {
    const PyValue dilation = bound.get("dilation", "1");
    CONVBRIDGE_TRY(op.dilation, size_argument(dilation, "dilation", rank, function));
    for (const int64_t d : op.dilation) {
      if (d <= 0) {
        return invalid_argument(fmt::format("dilation={} must be positive (PyTorch: \"dilation should be greater "
                                            "than zero\")",
                                            dilation.source));
      }
    }
    CONVBRIDGE_CHECK(refuse_return_indices(bound, function));
  }
  for (size_t a = 0; a < pads.size(); ++a) {
    if (pads[a] < 0) {
      return invalid_argument(fmt::format("padding={} must be non-negative (PyTorch: \"pad must be non-negative, but "
                                          "got pad: {}\")",
                                          padding.source, pads[a]));
    }
    // Pool.h checks pad <= effective kernel / 2 and max_pool additionally pad <= kernel / 2: the kernel bound
    // decides for both (effective >= kernel).
    if (pads[a] > op.kernel[a] / 2) {
      return invalid_argument(fmt::format("padding={} is more than half the kernel size {} (PyTorch: \"pad should be "
                                          "at most half of effective kernel size, but got pad={}, kernel_size={} and "
                                          "dilation={}\")",
                                          padding.source, op.kernel[a], pads[a], op.kernel[a], op.dilation[a]));
    }
    op.pads.push_back(PadPair{pads[a], pads[a]});
  }
  CONVBRIDGE_TRY(op.ceil_mode, bool_argument(bound.get("ceil_mode", "False"), "ceil_mode", function));
  if (kind == PoolKind::average) {
    CONVBRIDGE_TRY(const bool include_pad,
                   bool_argument(bound.get("count_include_pad", "True"), "count_include_pad", function));
    op.divisor = include_pad ? AverageDivisor::window_clipped_to_padding : AverageDivisor::valid_elements;
    const PyValue divisor = bound.get("divisor_override", "None");
    if (divisor.kind != PyValue::Kind::none) {
      if (divisor.kind != PyValue::Kind::integer) {
        return invalid_argument(fmt::format("divisor_override={} must be an int or None, not {}", divisor.source,
                                            kind_name(divisor.kind)));
      }
      if (divisor.integer == 0) {
        return invalid_argument(fmt::format("divisor_override={} must not be zero (PyTorch: \"divisor must be not "
                                            "zero\")",
                                            divisor.source));
      }
      if (divisor.integer > kMaxSizeArgument || divisor.integer < -kMaxSizeArgument) {
        return invalid_argument(fmt::format("divisor_override={} is too large (the limit is {})", divisor.source,
                                            kMaxSizeArgument));
      }
      op.divisor = AverageDivisor::fixed;
      op.divisor_override = divisor.integer;
    }
  }
  op.input_covers_kernel = kind == PoolKind::average && rank == 3;
  layer.op = op;
  return Ok{};
}

// Adaptive pooling: output_size an int, None, or `rank` entries each an int or None (keep that size).
Status parse_adaptive_pool(const PyCall& call, OpLayer& layer, PoolKind kind, bool functional,
                           std::span<const std::string_view> parameters, std::string_view signature) {
  const int rank = rank_of_name(layer.class_name);
  const std::string function = fmt::format("adaptive_{}_pool{}d", kind == PoolKind::max ? "max" : "avg", rank);
  CONVBRIDGE_TRY(const BoundArguments bound, BoundArguments::bind(call, layer.class_name, parameters,
                                                                   functional ? 2 : 1, signature, keyword_hint));
  if (functional) CONVBRIDGE_CHECK(require_tensor_name(bound, layer.class_name));
  if (kind == PoolKind::max) CONVBRIDGE_CHECK(refuse_return_indices(bound, function));
  const PyValue output = bound.get("output_size", "None");
  std::vector<PyValue> entries;
  if (output.kind == PyValue::Kind::sequence) {
    if (output.items.size() != static_cast<size_t>(rank)) {
      return invalid_argument(fmt::format("output_size={} has {} entries (PyTorch: \"{}: output_size must be {}\")",
                                          output.source, output.items.size(), function, rank));
    }
    entries = output.items;
  } else {
    entries.assign(static_cast<size_t>(rank), output);
  }
  AdaptivePoolOp op;
  op.kind = kind;
  op.rank = rank;
  for (const PyValue& entry : entries) {
    if (entry.kind == PyValue::Kind::none) {
      op.output_size.push_back(kUnknownSize);
      continue;
    }
    if (entry.kind != PyValue::Kind::integer) {
      return invalid_argument(fmt::format("output_size={} must be an int, None or a tuple of {} ints or None, not {}",
                                          output.source, rank, kind_name(entry.kind)));
    }
    if (entry.integer < 0) {
      return invalid_argument(fmt::format("output_size={} must not be negative (PyTorch: \"{}: elements of "
                                          "output_size must be greater than or equal to 0\")",
                                          output.source, function));
    }
    if (entry.integer == 0) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("output_size={} gives an empty output (PyTorch allows it); Keras has no "
                                    "empty pooling output: not translated",
                                    output.source));
    }
    if (entry.integer > kMaxSizeArgument) {
      return invalid_argument(fmt::format("output_size={} is too large (the limit is {})", output.source,
                                          kMaxSizeArgument));
    }
    op.output_size.push_back(entry.integer);
  }
  layer.op = op;
  return Ok{};
}

template <int Rank, bool Functional>
Status parse_max(const PyCall& call, OpLayer& layer) {
  return parse_window_pool(call, layer, PoolKind::max, Functional,
                           Functional ? std::span<const std::string_view>(kFunctionalMaxPoolParameters)
                                      : std::span<const std::string_view>(kMaxPoolParameters),
                           Functional ? "input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, "
                                        "return_indices=False"
                                      : "kernel_size, stride=None, padding=0, dilation=1, return_indices=False, "
                                        "ceil_mode=False");
}

template <int Rank, bool Functional>
Status parse_avg(const PyCall& call, OpLayer& layer) {
  std::span<const std::string_view> parameters;
  if (Rank == 1) {
    parameters = Functional ? std::span<const std::string_view>(kFunctionalAvgPool1dParameters)
                            : std::span<const std::string_view>(kAvgPool1dParameters);
  } else {
    parameters = Functional ? std::span<const std::string_view>(kFunctionalAvgPoolParameters)
                            : std::span<const std::string_view>(kAvgPoolParameters);
  }
  return parse_window_pool(call, layer, PoolKind::average, Functional, parameters,
                           Rank == 1 ? "kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True"
                                     : "kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, "
                                       "divisor_override=None");
}

template <PoolKind Kind, bool Functional>
Status parse_adaptive(const PyCall& call, OpLayer& layer) {
  std::span<const std::string_view> parameters;
  if (Kind == PoolKind::max) {
    parameters = Functional ? std::span<const std::string_view>(kFunctionalAdaptiveMaxParameters)
                            : std::span<const std::string_view>(kAdaptiveMaxParameters);
  } else {
    parameters = Functional ? std::span<const std::string_view>(kFunctionalAdaptiveAvgParameters)
                            : std::span<const std::string_view>(kAdaptiveAvgParameters);
  }
  return parse_adaptive_pool(call, layer, Kind, Functional, parameters,
                             Kind == PoolKind::max ? "output_size, return_indices=False" : "output_size");
}

using Span = std::span<const std::string_view>;
// rank_of_name reads the digit before the last character: "MaxPool2d", "max_pool2d", "adaptive_avg_pool3d".
const std::array<LayerClass, 24> kClasses = {{
    {Framework::pytorch, "MaxPool1d", Span(kMaxPoolParameters), parse_max<1, false>},
    {Framework::pytorch, "MaxPool2d", Span(kMaxPoolParameters), parse_max<2, false>},
    {Framework::pytorch, "MaxPool3d", Span(kMaxPoolParameters), parse_max<3, false>},
    {Framework::pytorch, "AvgPool1d", Span(kAvgPool1dParameters), parse_avg<1, false>},
    {Framework::pytorch, "AvgPool2d", Span(kAvgPoolParameters), parse_avg<2, false>},
    {Framework::pytorch, "AvgPool3d", Span(kAvgPoolParameters), parse_avg<3, false>},
    {Framework::pytorch, "AdaptiveAvgPool1d", Span(kAdaptiveAvgParameters), parse_adaptive<PoolKind::average, false>},
    {Framework::pytorch, "AdaptiveAvgPool2d", Span(kAdaptiveAvgParameters), parse_adaptive<PoolKind::average, false>},
    {Framework::pytorch, "AdaptiveAvgPool3d", Span(kAdaptiveAvgParameters), parse_adaptive<PoolKind::average, false>},
    {Framework::pytorch, "AdaptiveMaxPool1d", Span(kAdaptiveMaxParameters), parse_adaptive<PoolKind::max, false>},
    {Framework::pytorch, "AdaptiveMaxPool2d", Span(kAdaptiveMaxParameters), parse_adaptive<PoolKind::max, false>},
    {Framework::pytorch, "AdaptiveMaxPool3d", Span(kAdaptiveMaxParameters), parse_adaptive<PoolKind::max, false>},
    {Framework::pytorch, "max_pool1d", Span(kFunctionalMaxPoolParameters), parse_max<1, true>},
    {Framework::pytorch, "max_pool2d", Span(kFunctionalMaxPoolParameters), parse_max<2, true>},
    {Framework::pytorch, "max_pool3d", Span(kFunctionalMaxPoolParameters), parse_max<3, true>},
    {Framework::pytorch, "avg_pool1d", Span(kFunctionalAvgPool1dParameters), parse_avg<1, true>},
    {Framework::pytorch, "avg_pool2d", Span(kFunctionalAvgPoolParameters), parse_avg<2, true>},
    {Framework::pytorch, "avg_pool3d", Span(kFunctionalAvgPoolParameters), parse_avg<3, true>},
    {Framework::pytorch, "adaptive_avg_pool1d", Span(kFunctionalAdaptiveAvgParameters),
     parse_adaptive<PoolKind::average, true>},
    {Framework::pytorch, "adaptive_avg_pool2d", Span(kFunctionalAdaptiveAvgParameters),
     parse_adaptive<PoolKind::average, true>},
    {Framework::pytorch, "adaptive_avg_pool3d", Span(kFunctionalAdaptiveAvgParameters),
     parse_adaptive<PoolKind::average, true>},
    {Framework::pytorch, "adaptive_max_pool1d", Span(kFunctionalAdaptiveMaxParameters),
     parse_adaptive<PoolKind::max, true>},
    {Framework::pytorch, "adaptive_max_pool2d", Span(kFunctionalAdaptiveMaxParameters),
     parse_adaptive<PoolKind::max, true>},
    {Framework::pytorch, "adaptive_max_pool3d", Span(kFunctionalAdaptiveMaxParameters),
     parse_adaptive<PoolKind::max, true>},
}};

}  // namespace

std::span<const LayerClass> torch_pooling_classes() { return kClasses; }

}  // namespace convbridge::frontends
