// tf.nn front-end: a TensorFlow 2 convolution call (tf.nn.conv1d/conv2d/conv3d/depthwise_conv2d/convolution) and the
// shape of its filters -> KerasConvLayer. The checks are TensorFlow 2.21's:
// - tensorflow/python/ops/nn_ops.py: conv1d (stride of length 1 or 3, padding 'SAME'/'VALID' only), conv2d
//   (_get_sequence: an int or a list of length 1, 2 or 4; convert_padding: a list of 4 [before, after] pairs),
//   conv3d_v2 (strides and dilations are lists of 5), convolution_internal (no strides > 1 with dilations > 1);
// - tensorflow/python/ops/nn_impl.py depthwise_conv2d_v2 (strides a list of 4, dilations a list of 2, "When
//   dilation rate is greater than 1, then all values of strides must be 1");
// - the Conv2D/Conv3D/DepthwiseConv2dNative kernels: padding one of "SAME", "VALID", "EXPLICIT" (case matters),
//   "Stride must be > 0", "Dilated rates should be larger than 0", "Current implementation does not yet support
//   strides in the batch and depth dimensions".
// tests/python/test_tf_nn.py runs every rule here against real TensorFlow.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <span>
#include <utility>

#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/shape_math.hpp"
#include "frontends/arguments.hpp"
#include "frontends/python_call.hpp"

namespace convbridge {
namespace {

using frontends::PyValue;

Error invalid(std::string message) { return frontends::invalid_argument(std::move(message)); }

enum class TfNnFunction {
  conv1d, conv2d, conv3d, depthwise_conv2d, convolution,
  conv1d_transpose, conv2d_transpose, conv3d_transpose, conv_transpose,
};

struct FunctionInfo {
  TfNnFunction function;
  std::string_view name;
  std::array<std::string_view, 8> parameter_storage;
  size_t parameter_count;
  size_t required;
  std::string_view signature;
  std::span<const std::string_view> parameters() const { return {parameter_storage.data(), parameter_count}; }
};

// TF 2 (v2) signatures, every parameter positional or keyword.
constexpr std::array<FunctionInfo, 9> kFunctions = {{
    {TfNnFunction::conv1d, "conv1d",
     {"input", "filters", "stride", "padding", "data_format", "dilations", "name"}, 7, 4,
     "input, filters, stride, padding, data_format='NWC', dilations=None, name=None"},
    {TfNnFunction::conv2d, "conv2d",
     {"input", "filters", "strides", "padding", "data_format", "dilations", "name"}, 7, 4,
     "input, filters, strides, padding, data_format='NHWC', dilations=None, name=None"},
    {TfNnFunction::conv3d, "conv3d",
     {"input", "filters", "strides", "padding", "data_format", "dilations", "name"}, 7, 4,
     "input, filters, strides, padding, data_format='NDHWC', dilations=None, name=None"},
    {TfNnFunction::depthwise_conv2d, "depthwise_conv2d",
     {"input", "filter", "strides", "padding", "data_format", "dilations", "name"}, 7, 4,
     "input, filter, strides, padding, data_format=None, dilations=None, name=None"},
    {TfNnFunction::convolution, "convolution",
     {"input", "filters", "strides", "padding", "data_format", "dilations", "name"}, 7, 2,
     "input, filters, strides=None, padding='VALID', data_format=None, dilations=None, name=None"},
    {TfNnFunction::conv1d_transpose, "conv1d_transpose",
     {"input", "filters", "output_shape", "strides", "padding", "data_format", "dilations", "name"}, 8, 4,
     "input, filters, output_shape, strides, padding='SAME', data_format='NWC', dilations=None, name=None"},
    {TfNnFunction::conv2d_transpose, "conv2d_transpose",
     {"input", "filters", "output_shape", "strides", "padding", "data_format", "dilations", "name"}, 8, 4,
     "input, filters, output_shape, strides, padding='SAME', data_format='NHWC', dilations=None, name=None"},
    {TfNnFunction::conv3d_transpose, "conv3d_transpose",
     {"input", "filters", "output_shape", "strides", "padding", "data_format", "dilations", "name"}, 8, 4,
     "input, filters, output_shape, strides, padding='SAME', data_format='NDHWC', dilations=None, name=None"},
    {TfNnFunction::conv_transpose, "conv_transpose",
     {"input", "filters", "output_shape", "strides", "padding", "data_format", "dilations", "name"}, 8, 4,
     "input, filters, output_shape, strides, padding='SAME', data_format=None, dilations=None, name=None"},
}};

bool is_transposed(TfNnFunction function) {
  return function == TfNnFunction::conv1d_transpose || function == TfNnFunction::conv2d_transpose ||
         function == TfNnFunction::conv3d_transpose || function == TfNnFunction::conv_transpose;
}

const FunctionInfo* find_function(std::string_view callee) {
  std::string_view name = callee;
  std::string_view prefix;
  if (auto dot = name.rfind('.'); dot != std::string_view::npos) {
    prefix = name.substr(0, dot);
    name = name.substr(dot + 1);
  }
  if (prefix != "tf.nn" && prefix != "tensorflow.nn") return nullptr;
  for (const FunctionInfo& info : kFunctions) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

// Parameter names of the function a callee names, so a syntax error in a positional argument names it.
std::span<const std::string_view> tf_nn_parameter_names(std::string_view callee) {
  const FunctionInfo* info = find_function(callee);
  return info == nullptr ? std::span<const std::string_view>() : info->parameters();
}

// "Did you mean" for an unknown keyword of kFunctions[Index]: another framework's spelling of one of its own
// parameters (conv1d's is 'stride', the others' 'strides'; depthwise_conv2d's 'filter'), or a near miss.
template <size_t Index>
std::string tf_nn_keyword_hint(std::string_view keyword) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> kOtherSpellings = {{
      {"stride", "strides"}, {"strides", "stride"}, {"dilation", "dilations"}, {"dilation_rate", "dilations"},
      {"rate", "dilations"}, {"filter", "filters"}, {"filters", "filter"}, {"kernel", "filters"},
  }};
  const auto parameters = kFunctions[Index].parameters();
  for (auto [other, own] : kOtherSpellings) {
    if (keyword == other && std::find(parameters.begin(), parameters.end(), own) != parameters.end()) {
      return fmt::format(" (did you mean '{}'?)", own);
    }
  }
  return frontends::closest_name_hint(keyword, parameters);
}

template <size_t... Indices>
constexpr auto make_hints(std::index_sequence<Indices...>) {
  return std::array<std::string (*)(std::string_view), sizeof...(Indices)>{&tf_nn_keyword_hint<Indices>...};
}
constexpr auto kKeywordHints = make_hints(std::make_index_sequence<kFunctions.size()>());

// A strides/dilations entry: a positive int within kMaxSizeArgument.
Result<int64_t> window_entry(const PyValue& item, std::string_view argument, const PyValue& whole) {
  if (item.kind != PyValue::Kind::integer) {
    return invalid(fmt::format("{}={} must hold ints, not {} ({})", argument, whole.source,
                               frontends::kind_name(item.kind), item.source));
  }
  if (item.integer <= 0) {
    return invalid(fmt::format("{}={} has the entry {}; every entry must be positive (TensorFlow: \"{}\")", argument,
                               whole.source, item.source,
                               argument == "dilations" ? "Dilated rates should be larger than 0"
                                                       : "Stride must be > 0"));
  }
  if (item.integer > kMaxSizeArgument) {
    return invalid(fmt::format("{}={} has the entry {}, above the limit {}", argument, whole.source, item.source,
                               kMaxSizeArgument));
  }
  return item.integer;
}

// What TF does with the batch and channel entries of a rank + 2 strides/dilations list.
enum class OuterEntries {
  must_be_one,    // the Conv2D/Conv3D/DepthwiseConv2dNative kernels: "does not yet support ... batch and depth"
  batch_ignored,  // conv1d: [b, s, c] becomes Conv2D's [1, b, s, c], so b acts on the size-1 axis conv1d adds
  ignored,        // tf.nn.convolution's dilated path keeps only the spatial entries (nn_ops.py convolution_internal)
};

// strides or dilations of conv1d/conv2d/convolution (nn_ops.py _get_sequence): None (all 1), an int, or a list of
// 1 (broadcast), `rank` or rank + 2 ints.
Result<std::vector<int64_t>> broadcast_sequence(const PyValue& value, std::string_view argument, int rank,
                                                OuterEntries outer = OuterEntries::must_be_one) {
  const auto n = static_cast<size_t>(rank);
  if (value.kind == PyValue::Kind::none) return std::vector<int64_t>(n, 1);
  if (value.kind == PyValue::Kind::integer) {
    CONVBRIDGE_TRY(const int64_t v, window_entry(value, argument, value));
    return std::vector<int64_t>(n, v);
  }
  if (value.kind != PyValue::Kind::sequence) {
    return invalid(fmt::format("{}={} must be an int or a list of ints, not {}", argument, value.source,
                               frontends::kind_name(value.kind)));
  }
  const size_t length = value.items.size();
  if (length != 1 && length != n && length != n + 2) {
    return invalid(fmt::format("{}={} has {} entries; it must have 1, {} or {} (TensorFlow: \"{} should be of length "
                               "1, {} or {}\")",
                               argument, value.source, length, n, n + 2, argument, n, n + 2));
  }
  std::vector<int64_t> entries;
  for (const PyValue& item : value.items) {
    CONVBRIDGE_TRY(const int64_t v, window_entry(item, argument, value));
    entries.push_back(v);
  }
  if (length == 1) return std::vector<int64_t>(n, entries.front());
  if (length == n) return entries;
  const bool outer_ok = outer == OuterEntries::ignored ||
                        (outer == OuterEntries::batch_ignored ? entries.back() == 1
                                                              : entries.front() == 1 && entries.back() == 1);
  if (!outer_ok) {
    return invalid(fmt::format("{}={} has a batch or channel entry other than 1 (TensorFlow: \"Current "
                               "implementation does not yet support {} in the batch and depth dimensions\")",
                               argument, value.source, argument));
  }
  return std::vector<int64_t>(entries.begin() + 1, entries.end() - 1);
}

// strides or dilations that the op takes as a full list (conv3d: 5 entries; depthwise_conv2d strides: 4), batch and
// channel entries 1.
Result<std::vector<int64_t>> full_list(const PyValue& value, std::string_view argument, int rank,
                                       std::string_view function) {
  const auto n = static_cast<size_t>(rank) + 2;
  if (value.kind != PyValue::Kind::sequence) {
    return invalid(fmt::format("{}={} must be a list of {} ints for tf.nn.{} (TensorFlow: \"Expected list for '{}' "
                               "argument\"), e.g. [1, 2, 2{}, 1]",
                               argument, value.source, n, function, argument, rank == 3 ? ", 2" : ""));
  }
  if (value.items.size() != n) {
    return invalid(fmt::format("{}={} has {} entries; tf.nn.{} takes {} (batch, {}, channels)", argument,
                               value.source, value.items.size(), function, n,
                               rank == 3 ? "depth, height, width" : "height, width"));
  }
  return broadcast_sequence(value, argument, rank);
}

// depthwise_conv2d's dilations (its `rate`): None or a list of 2 ints (height, width).
Result<std::vector<int64_t>> depthwise_dilations(const PyValue& value) {
  if (value.kind == PyValue::Kind::none) return std::vector<int64_t>{1, 1};
  if (value.kind != PyValue::Kind::sequence || value.items.size() != 2) {
    return invalid(fmt::format("dilations={} must be None or a list of 2 ints (height, width) for "
                               "tf.nn.depthwise_conv2d",
                               value.source));
  }
  return broadcast_sequence(value, "dilations", 2);
}

// padding: 'SAME' or 'VALID' (exactly; TF's attribute check is case-sensitive), or where TF takes one (conv2d,
// depthwise_conv2d, 2-D dilated convolution) a list of rank + 2 [before, after] pairs, batch and channel pairs zero
// (TF's reference kernels reject others; some oneDNN paths silently ignore them, so convbridge refuses them).
Status parse_padding(const PyValue& value, const FunctionInfo& info, int rank, bool explicit_allowed,
                     KerasConvLayer& layer) {
  const std::string choices = explicit_allowed ? "'SAME', 'VALID' or a list of [before, after] pairs" : "'SAME' or "
                                                                                                       "'VALID'";
  if (value.kind == PyValue::Kind::string) {
    if (value.text == "SAME") {
      layer.padding = KerasPadding::same;
    } else if (value.text == "VALID") {
      layer.padding = KerasPadding::valid;
    } else if (value.text == "EXPLICIT") {
      return invalid(fmt::format("padding={} is not a valid value: to pad explicitly, padding must be a list of "
                                 "[before, after] pairs{}",
                                 value.source, explicit_allowed ? "" : fmt::format(" (tf.nn.conv2d and "
                                                                                    "depthwise_conv2d take one; "
                                                                                    "tf.nn.{} does not)",
                                                                                    info.name)));
    } else {
      return invalid(fmt::format("padding={} must be {} (TensorFlow's padding names are upper case: \"Value for attr "
                                 "'padding' ... is not in the list of allowed values: SAME, VALID, EXPLICIT\")",
                                 value.source, choices));
    }
    return Ok{};
  }
  if (value.kind != PyValue::Kind::sequence) {
    return invalid(fmt::format("padding={} must be {}, not {}", value.source, choices,
                               frontends::kind_name(value.kind)));
  }
  if (!explicit_allowed) {
    return invalid(fmt::format("padding={}: tf.nn.{} takes 'SAME' or 'VALID' only (TensorFlow: \"Expected string for "
                               "argument 'padding'\"); explicit padding lists are for tf.nn.conv2d, "
                               "depthwise_conv2d, conv2d_transpose and 2-D dilated tf.nn.convolution",
                               value.source, info.name));
  }
  const auto n = static_cast<size_t>(rank) + 2;
  for (const PyValue& pair : value.items) {
    if (pair.kind != PyValue::Kind::sequence || pair.items.size() != 2) {
      return invalid(fmt::format("padding={} has the element {}; each element must be a [before, after] pair "
                                 "(TensorFlow: \"each element of `padding` must be a list/tuple of size 2\")",
                                 value.source, pair.source));
    }
  }
  if (value.items.size() != n) {
    return invalid(fmt::format("padding={} has {} pairs; tf.nn.{} takes {}: [[0, 0], [top, bottom], [left, right], "
                               "[0, 0]] (TensorFlow: \"When padding is a list, it must be of size {}\")",
                               value.source, value.items.size(), info.name, n, n));
  }
  std::vector<PadPair> pads;
  for (size_t i = 0; i < n; ++i) {
    std::array<int64_t, 2> sides{};
    for (size_t side = 0; side < 2; ++side) {
      const PyValue& item = value.items[i].items[side];
      if (item.kind != PyValue::Kind::integer) {
        return invalid(fmt::format("padding={} has the entry {}; pads must be ints", value.source, item.source));
      }
      if (item.integer < 0) {
        return invalid(fmt::format("padding={} has the negative pad {}; pads must be at least 0", value.source,
                                   item.source));
      }
      if (item.integer > kMaxSizeArgument) {
        return invalid(fmt::format("padding={} has the pad {}, above the limit {}", value.source, item.source,
                                   kMaxSizeArgument));
      }
      sides[side] = item.integer;
    }
    if ((i == 0 || i + 1 == n) && (sides[0] != 0 || sides[1] != 0)) {
      return invalid(fmt::format("padding={} pads the {} dimension by {}; only the spatial pairs may be non-zero "
                                 "(TensorFlow: \"Nonzero explicit padding in the batch or depth dimensions is not "
                                 "supported\")",
                                 value.source, i == 0 ? "batch" : "channel", value.items[i].source));
    }
    if (i != 0 && i + 1 != n) pads.push_back(PadPair{sides[0], sides[1]});
  }
  layer.padding = KerasPadding::explicit_pads;
  layer.explicit_padding = std::move(pads);
  return Ok{};
}

// output_shape of a conv*_transpose call: a literal list of rank + 2 sizes (N, *spatial, C). The batch entry may be
// any expression (e.g. batch_size); the others must be positive ints. The channel entry must be the filters' output
// channel count (Conv2DBackpropInput: "input depth must be evenly divisible by filter depth").
Status parse_output_shape(const PyValue& value, KerasConvLayer& layer) {
  const auto n = static_cast<size_t>(layer.rank) + 2;
  if (value.kind != PyValue::Kind::sequence || value.items.size() != n) {
    return invalid(fmt::format("output_shape={} must be a list of {} sizes (N, {}, C) written in the call: the "
                               "output size of {} is fixed by it",
                               value.source, n, fmt::join(spatial_letters(layer.rank), ", "), layer.class_name));
  }
  layer.output_shape.clear();
  for (size_t i = 0; i < n; ++i) {
    const PyValue& item = value.items[i];
    if (i == 0 && (item.kind == PyValue::Kind::name || item.kind == PyValue::Kind::call)) {
      layer.output_shape.push_back(kUnknownSize);  // a batch size computed at run time (batch, tf.shape(x)[0])
      continue;
    }
    if (item.kind != PyValue::Kind::integer || item.integer <= 0 || item.integer > kMaxSizeArgument) {
      return invalid(fmt::format("output_shape={} has the entry {}; sizes must be positive ints (at most {})",
                                 value.source, item.source, kMaxSizeArgument));
    }
    layer.output_shape.push_back(item.integer);
  }
  // The transposed op is the gradient of a conv whose input has output_shape's channels and whose filters have
  // the depth filters_shape[rank]: fewer make a grouped convolution (as tf.nn.conv2d infers), which TF's oneDNN
  // and XLA kernels run.
  const int64_t out_channels = layer.output_shape.back();
  const int64_t per_group = layer.filters;
  if (out_channels % per_group != 0) {
    return invalid(fmt::format("output_shape={} has {} channels, not a multiple of the filters' {} (their shape's "
                               "second-to-last entry; TensorFlow: \"input depth must be evenly divisible by filter "
                               "depth: {} vs {}\")",
                               value.source, out_channels, per_group, out_channels, per_group));
  }
  layer.groups = out_channels / per_group;
  layer.filters = out_channels;
  if (layer.filters_in_depth % layer.groups != 0) {
    return invalid(fmt::format("output_shape={} makes {} groups ({} channels over filters of depth {}), which do not "
                               "divide the filters' {} input channels (TensorFlow: \"output depth must be evenly "
                               "divisible by number of groups\")",
                               value.source, layer.groups, out_channels, per_group, layer.filters_in_depth));
  }
  return Ok{};
}

// data_format: channels_last only (the channels_first formats are valid TF but not handled yet).
Status check_data_format(const PyValue& value, const FunctionInfo& info, int rank) {
  static constexpr std::array<std::string_view, 3> kChannelsLast = {"NWC", "NHWC", "NDHWC"};
  static constexpr std::array<std::string_view, 3> kChannelsFirst = {"NCW", "NCHW", "NCDHW"};
  const std::string_view last = kChannelsLast[static_cast<size_t>(rank - 1)];
  const std::string_view first = kChannelsFirst[static_cast<size_t>(rank - 1)];
  if (value.kind == PyValue::Kind::none) return Ok{};
  if (value.kind == PyValue::Kind::string) {
    // conv1d also takes the 2-D names it passes on to conv2d (deprecated aliases).
    const bool conv1d = info.function == TfNnFunction::conv1d;
    if (value.text == last || (conv1d && value.text == "NHWC")) return Ok{};
    if (value.text == first || (conv1d && value.text == "NCHW")) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("data_format={} is not supported yet: convbridge translates channels_last ('{}') "
                                    "tf.nn calls",
                                    value.source, last));
    }
  }
  return invalid(fmt::format("data_format={} must be '{}' or '{}' for tf.nn.{}", value.source, last, first,
                             info.name));
}

}  // namespace

bool names_tf_nn_call(std::string_view text) {
  // By the callee alone, so that a tf.nn call whose arguments do not parse is reported in tf.nn's terms.
  const std::string_view callee = frontends::leading_dotted_name(text);
  return callee.starts_with("tf.nn.") || callee.starts_with("tensorflow.nn.");
}

Result<KerasConvLayer> parse_tf_nn_call(std::string_view text, const std::vector<int64_t>& filters_shape) {
  CONVBRIDGE_TRY(const frontends::PyCall call, frontends::parse_python_call(text, tf_nn_parameter_names));
  const FunctionInfo* info = find_function(call.callee);
  if (info == nullptr) {
    return make_error(ErrorCode::unknown_argument,
                      fmt::format("unknown TensorFlow function '{}': expected tf.nn.conv1d, conv2d, conv3d, "
                                  "depthwise_conv2d, convolution, conv1d_transpose, conv2d_transpose, "
                                  "conv3d_transpose or conv_transpose, or a pooling, resizing, padding, pixel "
                                  "shuffle or activation function{}",
                                  call.callee, op_layer_name_hint(call.callee)));
  }
  KerasConvLayer layer;
  layer.text = std::string(text);
  layer.class_name = fmt::format("tf.nn.{}", info->name);
  layer.is_tf_nn = true;
  layer.use_bias = false;
  CONVBRIDGE_TRY(const frontends::BoundArguments bound,
                 frontends::BoundArguments::bind(call, layer.class_name, info->parameters(), info->required,
                                                 info->signature,
                                                 kKeywordHints[static_cast<size_t>(info - kFunctions.data())]));

  // The rank: fixed by the function, or by the filters' rank (tf.nn.convolution) or output_shape's length
  // (tf.nn.conv_transpose, nn_ops.py: "`output_shape` must be of length 3, 4 or 5").
  const bool transposed = is_transposed(info->function);
  const PyValue output_shape = bound.get("output_shape", "None");
  int rank = 0;
  switch (info->function) {
    case TfNnFunction::conv1d:
    case TfNnFunction::conv1d_transpose: rank = 1; break;
    case TfNnFunction::conv2d:
    case TfNnFunction::conv2d_transpose:
    case TfNnFunction::depthwise_conv2d: rank = 2; break;
    case TfNnFunction::conv3d:
    case TfNnFunction::conv3d_transpose: rank = 3; break;
    case TfNnFunction::conv_transpose:
      if (output_shape.kind != PyValue::Kind::sequence || output_shape.items.size() < 3 ||
          output_shape.items.size() > 5) {
        return invalid(fmt::format("output_shape={} must be a list of 3, 4 or 5 sizes (N, *spatial, C) for "
                                   "tf.nn.conv_transpose",
                                   output_shape.source));
      }
      rank = static_cast<int>(output_shape.items.size()) - 2;
      break;
    case TfNnFunction::convolution:
      rank = static_cast<int>(filters_shape.size()) - 2;
      if (rank < 1 || rank > kMaxSpatialRank) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("the filters shape ({}) has {} entries; tf.nn.convolution takes 3-D to 5-D "
                                      "filters (*kernel, in_channels, out_channels)",
                                      fmt::join(filters_shape, ", "), filters_shape.size()));
      }
      break;
  }
  layer.rank = rank;
  const auto n = static_cast<size_t>(rank);
  const bool depthwise = info->function == TfNnFunction::depthwise_conv2d;
  if (filters_shape.size() != n + 2) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("the filters shape ({}) has {} entries; {} takes {}-D filters ({})",
                                  fmt::join(filters_shape, ", "), filters_shape.size(), layer.class_name, n + 2,
                                  depthwise ? "height, width, in_channels, channel_multiplier"
                                            : fmt::format("{}, {}",
                                                          rank == 1   ? "width"
                                                          : rank == 2 ? "height, width"
                                                                      : "depth, height, width",
                                                          transposed ? "out_channels, in_channels"
                                                                     : "in_channels, out_channels")));
  }
  for (int64_t size : filters_shape) {
    if (size <= 0 || size > kMaxSizeArgument) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("the filters shape ({}) has the size {}; every size must be positive and at "
                                    "most {}",
                                    fmt::join(filters_shape, ", "), size, kMaxSizeArgument));
    }
  }
  layer.kernel.assign(filters_shape.begin(), filters_shape.begin() + rank);
  layer.filters_in_depth = filters_shape[n];
  if (depthwise) {
    layer.kind = KerasLayerKind::depthwise;
    layer.depth_multiplier = filters_shape[n + 1];
  } else if (transposed) {
    // conv*_transpose filters are (*kernel, out_channels, in_channels): the gradient of a conv with those filters.
    layer.kind = KerasLayerKind::conv_transpose;
    layer.filters = filters_shape[n];
    layer.filters_in_depth = filters_shape[n + 1];
    CONVBRIDGE_CHECK(parse_output_shape(output_shape, layer));
  } else {
    layer.kind = KerasLayerKind::conv;
    layer.filters = filters_shape[n + 1];
  }

  const std::string_view stride_name = info->function == TfNnFunction::conv1d ? "stride" : "strides";
  const PyValue strides = bound.get(stride_name, "None");
  const PyValue dilations = bound.get("dilations", "None");
  bool dilated_path = false;  // tf.nn.convolution only
  if (info->function == TfNnFunction::conv3d) {
    CONVBRIDGE_TRY(layer.strides, full_list(strides, stride_name, rank, info->name));
    if (dilations.kind == PyValue::Kind::none) {
      layer.dilation.assign(n, 1);
    } else {
      CONVBRIDGE_TRY(layer.dilation, full_list(dilations, "dilations", rank, info->name));
    }
  } else if (depthwise) {
    CONVBRIDGE_TRY(layer.strides, full_list(strides, stride_name, rank, info->name));
    CONVBRIDGE_TRY(layer.dilation, depthwise_dilations(dilations));
  } else if (info->function == TfNnFunction::convolution) {
    // convolution_internal: "dilated" when any entry of the full dilations list is not 1; then only the spatial
    // entries of strides and dilations are used. Otherwise the call goes to conv1d/conv2d/conv3d with the lists.
    CONVBRIDGE_TRY(const auto full_dilations, broadcast_sequence(dilations, "dilations", rank, OuterEntries::ignored));
    dilated_path = dilations.kind != PyValue::Kind::none &&
                   (std::any_of(full_dilations.begin(), full_dilations.end(), [](int64_t d) { return d != 1; }) ||
                    (dilations.kind == PyValue::Kind::sequence && dilations.items.size() == n + 2 &&
                     std::any_of(dilations.items.begin(), dilations.items.end(),
                                 [](const PyValue& d) { return d.kind != PyValue::Kind::integer || d.integer != 1; })));
    const OuterEntries outer = dilated_path ? OuterEntries::ignored
                               : rank == 1  ? OuterEntries::batch_ignored
                                            : OuterEntries::must_be_one;
    CONVBRIDGE_TRY(layer.strides, broadcast_sequence(strides, stride_name, rank, outer));
    CONVBRIDGE_TRY(layer.dilation, broadcast_sequence(dilations, "dilations", rank, outer));
  } else {
    // conv1d_transpose expands to Conv2DBackpropInput as conv1d does to Conv2D; conv3d_transpose, unlike conv3d,
    // goes through _get_sequence (an int is fine).
    const OuterEntries outer = rank == 1 && info->function != TfNnFunction::conv2d ? OuterEntries::batch_ignored
                                                                                   : OuterEntries::must_be_one;
    CONVBRIDGE_TRY(layer.strides, broadcast_sequence(strides, stride_name, rank, outer));
    CONVBRIDGE_TRY(layer.dilation, broadcast_sequence(dilations, "dilations", rank, outer));
  }
  const auto any_above_one = [](const std::vector<int64_t>& v) {
    return std::any_of(v.begin(), v.end(), [](int64_t x) { return x > 1; });
  };
  if ((depthwise || info->function == TfNnFunction::convolution) && any_above_one(layer.strides) &&
      any_above_one(layer.dilation)) {
    // depthwise_conv2d only warns and then computes wrong values on CPU (test_tf_nn.py records it).
    return invalid(fmt::format("{} does not support {}={} together with dilations={} (TensorFlow: \"When dilation "
                               "rate is greater than 1, then all values of strides must be 1\")",
                               layer.class_name, stride_name, strides.source, dilations.source));
  }

  // tf.nn.convolution's dilated path pads through conv2d-style explicit lists too, in 2-D.
  const bool explicit_allowed = info->function == TfNnFunction::conv2d ||
                                info->function == TfNnFunction::depthwise_conv2d ||
                                info->function == TfNnFunction::conv2d_transpose ||
                                (info->function == TfNnFunction::conv_transpose && rank == 2) ||
                                (info->function == TfNnFunction::convolution && dilated_path && rank == 2);
  CONVBRIDGE_CHECK(
      parse_padding(bound.get("padding", transposed ? "'SAME'" : "'VALID'"), *info, rank, explicit_allowed, layer));
  const PyValue data_format = bound.get("data_format", "None");
  CONVBRIDGE_CHECK(check_data_format(data_format, *info, rank));
  const PyValue name = bound.get("name", "None");
  if (name.kind != PyValue::Kind::none && name.kind != PyValue::Kind::string) {
    return invalid(fmt::format("name={} must be a string or None", name.source));
  }
  return layer;
}

Error tf_nn_call_needs_filters_shape(std::string_view text) {
  // Filter-shape faults are the only input_shape errors parse_tf_nn_call reports; anything else is the text's.
  auto call = parse_tf_nn_call(text, {});
  if (!call && call.error().code != ErrorCode::input_shape) return call.error();
  return Error{ErrorCode::invalid_argument,
               "a tf.nn call does not say its filters' shape: give it (--filters-shape on the command line, "
               "filters_shape= in Python), e.g. 3,3,16,32 for tf.nn.conv2d (height, width, in_channels, "
               "out_channels)"};
}

}  // namespace convbridge
