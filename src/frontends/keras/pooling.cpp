// Keras and TensorFlow pooling front-end, with their own checks:
//   keras/src/layers/pooling/base_pooling.py BasePooling (pool_size / strides through
//   keras/src/utils/argument_validation.py standardize_tuple: "must be a tuple of N integers", "value > 0";
//   padding through backend standardize_padding: 'valid' / 'same', case-insensitive),
//   base_global_pooling.py BaseGlobalPooling (keepdims), base_adaptive_pooling.py (output_size: ints > 0),
//   tensorflow/python/ops/nn_ops.py max_pool_v2 / avg_pool_v2 / max_pool1d..3d / avg_pool1d..3d / pool
//   (ksize and strides of 1, N or N + 2 entries, padding 'VALID' / 'SAME'; pool: dilations > 1 only with strides 1).
// Every get_config() key parses (name, trainable, dtype, data_format and the layer's own).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

// Keras Layer.__init__ keywords every layer takes (and get_config returns); input_shape / batch_input_shape
// only shape a Sequential model's Input.
constexpr std::array<std::string_view, 9> kWindowParameters = {
    "pool_size", "strides", "padding", "data_format", "name", "trainable", "dtype", "input_shape", "batch_input_shape"};
constexpr std::array<std::string_view, 7> kGlobalParameters = {"data_format", "keepdims",    "name",
                                                               "trainable",   "dtype",       "input_shape",
                                                               "batch_input_shape"};
constexpr std::array<std::string_view, 7> kAdaptiveParameters = {"output_size", "data_format", "name",
                                                                 "trainable",   "dtype",       "input_shape",
                                                                 "batch_input_shape"};
constexpr std::array<std::string_view, 6> kTfPoolParameters = {"input", "ksize", "strides",
                                                               "padding", "data_format", "name"};
constexpr std::array<std::string_view, 8> kTfGenericPoolParameters = {
    "input", "window_shape", "pooling_type", "strides", "padding", "data_format", "dilations", "name"};

std::string keras_hint(std::string_view keyword) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kTorchSpellings = {{
      {"kernel_size", "pool_size"},
      {"stride", "strides"},
      {"ceil_mode", "padding"},
      {"keepdim", "keepdims"},
      {"dilation", "pool_size"},
  }};
  for (auto [torch, keras] : kTorchSpellings) {
    if (keyword == torch) {
      return keyword == "dilation" ? std::string(" (Keras pooling has no dilation: use tf.nn.pool(..., dilations=))")
                                   : fmt::format(" (did you mean '{}'? '{}' is the PyTorch name)", keras, torch);
    }
  }
  std::string hint = closest_name_hint(keyword, kWindowParameters);
  if (hint.empty()) hint = closest_name_hint(keyword, kGlobalParameters);
  if (hint.empty()) hint = closest_name_hint(keyword, kAdaptiveParameters);
  return hint;
}

std::string tf_hint(std::string_view keyword) {
  std::string hint = closest_name_hint(keyword, kTfGenericPoolParameters);
  if (hint.empty()) hint = closest_name_hint(keyword, kTfPoolParameters);
  return hint;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

int rank_of_name(std::string_view name) {
  for (char c : name) {
    if (c >= '1' && c <= '3') return c - '0';
  }
  return 0;
}

// Keras' standardize_tuple: an int or `rank` ints, each > 0.
Result<std::vector<int64_t>> keras_sizes(const PyValue& value, std::string_view name, int rank) {
  auto refuse = [&](std::string_view why) {
    return invalid_argument(fmt::format("{}={} {} (Keras: \"The `{}` argument must be a tuple of {} integers\")", name,
                                        value.source, why, name, rank));
  };
  if (value.kind == PyValue::Kind::sequence && value.items.size() != static_cast<size_t>(rank)) {
    return refuse(fmt::format("has {} entries", value.items.size()));
  }
  if (value.kind != PyValue::Kind::sequence && value.kind != PyValue::Kind::integer) {
    return refuse(fmt::format("is {}, not an int", kind_name(value.kind)));
  }
  CONVBRIDGE_TRY(std::vector<int64_t> sizes, int_or_tuple(value, name, rank));
  for (const int64_t v : sizes) {
    if (v <= 0) return refuse("must be positive");
  }
  return sizes;
}

// data_format: None / 'channels_last' as is; 'channels_first' is valid Keras but not translated.
Status keras_data_format(const PyValue& value) {
  if (value.kind == PyValue::Kind::none) return Ok{};
  if (value.kind == PyValue::Kind::string && value.text == "channels_last") return Ok{};
  if (value.kind == PyValue::Kind::string && value.text == "channels_first") {
    return make_error(ErrorCode::unsupported,
                      "data_format='channels_first' is not supported: convbridge translates channels_last Keras "
                      "layers (the Keras default); transpose to channels_last first");
  }
  return invalid_argument(fmt::format("data_format={} must be 'channels_last' or 'channels_first' (Keras: \"The "
                                      "`data_format` argument must be one of {{'channels_first', 'channels_last'}}\")",
                                      value.source));
}

Status keras_common(const BoundArguments& bound, OpLayer& layer) {
  CONVBRIDGE_CHECK(keras_data_format(bound.get("data_format", "None")));
  const PyValue dtype = bound.get("dtype", "None");
  // get_config() gives dtype as a DTypePolicy dict, which the Python side drops; a call form is accepted.
  if (dtype.kind == PyValue::Kind::string && dtype.text != "float32") {
    return make_error(ErrorCode::unsupported,
                      fmt::format("dtype={} is not supported yet: convbridge plans float32 layers", dtype.source));
  }
  const PyValue trainable = bound.get("trainable", "True");
  if (trainable.kind != PyValue::Kind::boolean) {
    return invalid_argument(fmt::format("trainable={} must be True or False", trainable.source));
  }
  if (bound.given("name")) layer.notes.push_back("name= does not change the values");
  return Ok{};
}

template <PoolKind Kind>
Status parse_keras_window(const PyCall& call, OpLayer& layer) {
  const int rank = rank_of_name(layer.class_name);
  const bool average = Kind == PoolKind::average;
  // MaxPoolingND has a default pool_size (2 per axis); AveragePoolingND requires it (keras 3.15 signatures).
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, kWindowParameters, average ? 1 : 0,
                                      average ? "pool_size, strides=None, padding='valid', data_format=None"
                                              : "pool_size=2, strides=None, padding='valid', data_format=None",
                                      keras_hint));
  CONVBRIDGE_CHECK(keras_common(bound, layer));
  PoolOp op;
  op.kind = Kind;
  op.rank = rank;
  CONVBRIDGE_TRY(op.kernel, keras_sizes(bound.get("pool_size", "2"), "pool_size", rank));
  const PyValue strides = bound.get("strides", "None");
  if (strides.kind == PyValue::Kind::none) {
    op.stride = op.kernel;
  } else {
    CONVBRIDGE_TRY(op.stride, keras_sizes(strides, "strides", rank));
  }
  op.dilation.assign(static_cast<size_t>(rank), 1);
  const PyValue padding = bound.get("padding", "'valid'");
  const std::string mode = padding.kind == PyValue::Kind::string ? lower(padding.text) : std::string();
  if (mode == "same") {
    op.padding = PoolPadding::tf_same;
  } else if (mode == "valid") {
    op.pads.assign(static_cast<size_t>(rank), PadPair{});
  } else {
    return invalid_argument(fmt::format("padding={} must be 'valid' or 'same' (Keras: \"The `padding` argument must "
                                        "be a list/tuple or one of 'valid', 'same'\")",
                                        padding.source));
  }
  op.divisor = AverageDivisor::valid_elements;  // TF averages over the input elements of a window
  layer.op = op;
  return Ok{};
}

template <PoolKind Kind>
Status parse_keras_global(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, kGlobalParameters, 0,
                                      "data_format=None, keepdims=False", keras_hint));
  CONVBRIDGE_CHECK(keras_common(bound, layer));
  const PyValue keepdims = bound.get("keepdims", "False");
  if (keepdims.kind != PyValue::Kind::boolean) {
    return invalid_argument(fmt::format("keepdims={} must be True or False", keepdims.source));
  }
  AdaptivePoolOp op;
  op.kind = Kind;
  op.rank = rank_of_name(layer.class_name);
  op.output_size.assign(static_cast<size_t>(op.rank), 1);
  op.keep_dims = keepdims.boolean;
  layer.op = op;
  return Ok{};
}

template <PoolKind Kind>
Status parse_keras_adaptive(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, BoundArguments::bind(call, layer.class_name, kAdaptiveParameters, 1,
                                                                   "output_size, data_format=None", keras_hint));
  CONVBRIDGE_CHECK(keras_common(bound, layer));
  AdaptivePoolOp op;
  op.kind = Kind;
  op.rank = rank_of_name(layer.class_name);
  CONVBRIDGE_TRY(op.output_size, keras_sizes(bound.get("output_size", "None"), "output_size", op.rank));
  layer.op = op;
  return Ok{};
}

// ksize / strides of tf.nn pooling: an int, or 1, N or N + 2 entries (the batch and channel entries 1).
Result<std::vector<int64_t>> tf_sizes(const PyValue& value, std::string_view name, int rank) {
  std::vector<PyValue> items;
  if (value.kind == PyValue::Kind::sequence) items = value.items;
  else items.push_back(value);
  const size_t n = items.size();
  if (n == static_cast<size_t>(rank) + 2) {
    for (const size_t outer : {size_t{0}, n - 1}) {
      if (items[outer].kind != PyValue::Kind::integer || items[outer].integer != 1) {
        return make_error(ErrorCode::unsupported,
                          fmt::format("{}={}: pooling over the batch or channel axis is not supported (TF: \"Pooling "
                                      "is not yet supported on the batch dimension\"); their entries must be 1",
                                      name, value.source));
      }
    }
    items = std::vector<PyValue>(items.begin() + 1, items.end() - 1);
  } else if (n == 1) {
    items.assign(static_cast<size_t>(rank), items.front());
  } else if (n != static_cast<size_t>(rank)) {
    return invalid_argument(fmt::format("{}={} should be of length 1, {} or {} (TF: \"{} should be of length 1, {} or "
                                        "{}. Received: {}={} of length {}\")",
                                        name, value.source, rank, rank + 2, name, rank, rank + 2, name, value.source,
                                        n));
  }
  std::vector<int64_t> out;
  for (const PyValue& item : items) {
    if (item.kind != PyValue::Kind::integer) {
      return invalid_argument(fmt::format("{}={} must hold ints, not {}", name, value.source, kind_name(item.kind)));
    }
    if (item.integer <= 0 || item.integer > kMaxSizeArgument) {
      return invalid_argument(fmt::format("{}={} must be positive ints (at most {})", name, value.source,
                                          kMaxSizeArgument));
    }
    out.push_back(item.integer);
  }
  return out;
}

Result<PoolPadding> tf_padding(const PyValue& padding) {
  if (padding.kind == PyValue::Kind::string && (padding.text == "VALID" || padding.text == "SAME")) {
    return padding.text == "SAME" ? PoolPadding::tf_same : PoolPadding::explicit_pads;
  }
  if (padding.kind == PyValue::Kind::sequence) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("padding={}: explicit padding lists are not supported yet; pad with tf.pad and use "
                                  "'VALID'",
                                  padding.source));
  }
  return invalid_argument(fmt::format("padding={} must be 'VALID' or 'SAME' (TF: \"Padding must be 'VALID' or "
                                      "'SAME'\"; uppercase)",
                                      padding.source));
}

Status tf_channels_last(const PyValue& format, int rank) {
  if (format.kind == PyValue::Kind::none) return Ok{};
  static constexpr std::array<std::string_view, 3> kLast = {"NWC", "NHWC", "NDHWC"};
  static constexpr std::array<std::string_view, 3> kFirst = {"NCW", "NCHW", "NCDHW"};
  if (format.kind == PyValue::Kind::string && format.text == kLast[static_cast<size_t>(rank - 1)]) return Ok{};
  if (format.kind == PyValue::Kind::string && format.text == kFirst[static_cast<size_t>(rank - 1)]) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("data_format={} is not supported: convbridge translates channels_last TF pooling "
                                  "({})",
                                  format.source, kLast[static_cast<size_t>(rank - 1)]));
  }
  return invalid_argument(fmt::format("data_format={} must be '{}' for a {}-D pooling", format.source,
                                      kLast[static_cast<size_t>(rank - 1)], rank));
}

Status require_input_name(const BoundArguments& bound, const OpLayer& layer) {
  const PyValue input = bound.get("input", "None");
  if (input.kind != PyValue::Kind::name) {
    return invalid_argument(fmt::format("{}: input={} must be the input tensor's name (e.g. x)", layer.class_name,
                                        input.source));
  }
  return Ok{};
}

// The spatial rank of tf.nn.max_pool / avg_pool (no rank in the name): from a ksize/strides list of N + 2 entries
// or from data_format.
Result<int> tf_rank(const BoundArguments& bound, const OpLayer& layer) {
  const int named = rank_of_name(layer.class_name);
  if (named > 0) return named;
  const PyValue format = bound.get("data_format", "None");
  if (format.kind == PyValue::Kind::string) {
    if (format.text == "NWC" || format.text == "NCW") return 1;
    if (format.text == "NHWC" || format.text == "NCHW") return 2;
    if (format.text == "NDHWC" || format.text == "NCDHW") return 3;
  }
  for (const std::string_view name : {"ksize", "strides"}) {
    const PyValue v = bound.get(name, "None");
    if (v.kind == PyValue::Kind::sequence && v.items.size() >= 3 && v.items.size() <= 5) {
      return static_cast<int>(v.items.size()) - 2;
    }
  }
  return make_error(ErrorCode::input_shape,
                    fmt::format("{} takes its rank from the input: write ksize/strides with N + 2 entries, "
                                "data_format='NHWC' (or NWC / NDHWC), or {}2d",
                                layer.class_name, layer.class_name));
}

template <PoolKind Kind>
Status parse_tf_pool(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, kTfPoolParameters, 4,
                                      "input, ksize, strides, padding, data_format=None, name=None", tf_hint));
  CONVBRIDGE_CHECK(require_input_name(bound, layer));
  CONVBRIDGE_TRY(const int rank, tf_rank(bound, layer));
  CONVBRIDGE_CHECK(tf_channels_last(bound.get("data_format", "None"), rank));
  PoolOp op;
  op.kind = Kind;
  op.rank = rank;
  CONVBRIDGE_TRY(op.kernel, tf_sizes(bound.get("ksize", "None"), "ksize", rank));
  CONVBRIDGE_TRY(op.stride, tf_sizes(bound.get("strides", "None"), "strides", rank));
  op.dilation.assign(static_cast<size_t>(rank), 1);
  CONVBRIDGE_TRY(op.padding, tf_padding(bound.get("padding", "None")));
  if (op.padding == PoolPadding::explicit_pads) op.pads.assign(static_cast<size_t>(rank), PadPair{});
  op.divisor = AverageDivisor::valid_elements;
  layer.op = op;
  return Ok{};
}

// tf.nn.pool(input, window_shape, pooling_type, strides=None, padding='VALID', data_format=None, dilations=None).
Status parse_tf_generic_pool(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, kTfGenericPoolParameters, 3,
                                      "input, window_shape, pooling_type, strides=None, padding='VALID', "
                                      "data_format=None, dilations=None, name=None",
                                      tf_hint));
  CONVBRIDGE_CHECK(require_input_name(bound, layer));
  const PyValue window = bound.get("window_shape", "None");
  if (window.kind != PyValue::Kind::sequence || window.items.empty() || window.items.size() > 3) {
    return invalid_argument(fmt::format("window_shape={} must be a list of 1 to 3 ints (TF: \"window_shape must be "
                                        "a sequence of N ints\")",
                                        window.source));
  }
  PoolOp op;
  op.rank = static_cast<int>(window.items.size());
  CONVBRIDGE_CHECK(tf_channels_last(bound.get("data_format", "None"), op.rank));
  const PyValue type = bound.get("pooling_type", "None");
  if (type.kind == PyValue::Kind::string && (type.text == "MAX" || type.text == "AVG")) {
    op.kind = type.text == "MAX" ? PoolKind::max : PoolKind::average;
  } else {
    return invalid_argument(fmt::format("pooling_type={} must be 'MAX' or 'AVG' (TF: \"Invalid pooling_type\")",
                                        type.source));
  }
  CONVBRIDGE_TRY(op.kernel, tf_sizes(window, "window_shape", op.rank));
  const PyValue strides = bound.get("strides", "None");
  op.stride.assign(static_cast<size_t>(op.rank), 1);
  if (strides.kind != PyValue::Kind::none) {
    CONVBRIDGE_TRY(op.stride, tf_sizes(strides, "strides", op.rank));
  }
  const PyValue dilations = bound.get("dilations", "None");
  op.dilation.assign(static_cast<size_t>(op.rank), 1);
  if (dilations.kind != PyValue::Kind::none) {
    CONVBRIDGE_TRY(op.dilation, tf_sizes(dilations, "dilations", op.rank));
  }
  const bool dilated = std::any_of(op.dilation.begin(), op.dilation.end(), [](int64_t d) { return d > 1; });
  const bool strided = std::any_of(op.stride.begin(), op.stride.end(), [](int64_t s) { return s > 1; });
  if (dilated && strided) {
    return invalid_argument(fmt::format("strides={} with dilations={}: TF refuses both above 1 (\"strides > window_"
                                        "shape not supported due to inconsistency between CPU and GPU "
                                        "implementations\" / \"dilation_rate > 1 ... strides must be 1\")",
                                        strides.source, dilations.source));
  }
  if (dilated && op.kind == PoolKind::average) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("pooling_type='AVG' with dilations={} is not supported: PyTorch average pooling "
                                  "has no dilation",
                                  dilations.source));
  }
  CONVBRIDGE_TRY(op.padding, tf_padding(bound.get("padding", "'VALID'")));
  if (op.padding == PoolPadding::explicit_pads) op.pads.assign(static_cast<size_t>(op.rank), PadPair{});
  op.divisor = AverageDivisor::valid_elements;
  layer.op = op;
  return Ok{};
}

using Span = std::span<const std::string_view>;
constexpr PoolKind kMax = PoolKind::max;
constexpr PoolKind kAvg = PoolKind::average;
const std::array<LayerClass, 39> kClasses = {{
    {Framework::keras, "MaxPooling1D", Span(kWindowParameters), parse_keras_window<kMax>},
    {Framework::keras, "MaxPooling2D", Span(kWindowParameters), parse_keras_window<kMax>},
    {Framework::keras, "MaxPooling3D", Span(kWindowParameters), parse_keras_window<kMax>},
    {Framework::keras, "MaxPool1D", Span(kWindowParameters), parse_keras_window<kMax>},
    {Framework::keras, "MaxPool2D", Span(kWindowParameters), parse_keras_window<kMax>},
    {Framework::keras, "MaxPool3D", Span(kWindowParameters), parse_keras_window<kMax>},
    {Framework::keras, "AveragePooling1D", Span(kWindowParameters), parse_keras_window<kAvg>},
    {Framework::keras, "AveragePooling2D", Span(kWindowParameters), parse_keras_window<kAvg>},
    {Framework::keras, "AveragePooling3D", Span(kWindowParameters), parse_keras_window<kAvg>},
    {Framework::keras, "AvgPool1D", Span(kWindowParameters), parse_keras_window<kAvg>},
    {Framework::keras, "AvgPool2D", Span(kWindowParameters), parse_keras_window<kAvg>},
    {Framework::keras, "AvgPool3D", Span(kWindowParameters), parse_keras_window<kAvg>},
    {Framework::keras, "GlobalMaxPooling1D", Span(kGlobalParameters), parse_keras_global<kMax>},
    {Framework::keras, "GlobalMaxPooling2D", Span(kGlobalParameters), parse_keras_global<kMax>},
    {Framework::keras, "GlobalMaxPooling3D", Span(kGlobalParameters), parse_keras_global<kMax>},
    {Framework::keras, "GlobalMaxPool1D", Span(kGlobalParameters), parse_keras_global<kMax>},
    {Framework::keras, "GlobalMaxPool2D", Span(kGlobalParameters), parse_keras_global<kMax>},
    {Framework::keras, "GlobalMaxPool3D", Span(kGlobalParameters), parse_keras_global<kMax>},
    {Framework::keras, "GlobalAveragePooling1D", Span(kGlobalParameters), parse_keras_global<kAvg>},
    {Framework::keras, "GlobalAveragePooling2D", Span(kGlobalParameters), parse_keras_global<kAvg>},
    {Framework::keras, "GlobalAveragePooling3D", Span(kGlobalParameters), parse_keras_global<kAvg>},
    {Framework::keras, "GlobalAvgPool1D", Span(kGlobalParameters), parse_keras_global<kAvg>},
    {Framework::keras, "GlobalAvgPool2D", Span(kGlobalParameters), parse_keras_global<kAvg>},
    {Framework::keras, "GlobalAvgPool3D", Span(kGlobalParameters), parse_keras_global<kAvg>},
    {Framework::keras, "AdaptiveMaxPooling1D", Span(kAdaptiveParameters), parse_keras_adaptive<kMax>},
    {Framework::keras, "AdaptiveMaxPooling2D", Span(kAdaptiveParameters), parse_keras_adaptive<kMax>},
    {Framework::keras, "AdaptiveMaxPooling3D", Span(kAdaptiveParameters), parse_keras_adaptive<kMax>},
    {Framework::keras, "AdaptiveAveragePooling1D", Span(kAdaptiveParameters), parse_keras_adaptive<kAvg>},
    {Framework::keras, "AdaptiveAveragePooling2D", Span(kAdaptiveParameters), parse_keras_adaptive<kAvg>},
    {Framework::keras, "AdaptiveAveragePooling3D", Span(kAdaptiveParameters), parse_keras_adaptive<kAvg>},
    {Framework::tensorflow, "nn.max_pool", Span(kTfPoolParameters), parse_tf_pool<kMax>},
    {Framework::tensorflow, "nn.max_pool1d", Span(kTfPoolParameters), parse_tf_pool<kMax>},
    {Framework::tensorflow, "nn.max_pool2d", Span(kTfPoolParameters), parse_tf_pool<kMax>},
    {Framework::tensorflow, "nn.max_pool3d", Span(kTfPoolParameters), parse_tf_pool<kMax>},
    {Framework::tensorflow, "nn.avg_pool", Span(kTfPoolParameters), parse_tf_pool<kAvg>},
    {Framework::tensorflow, "nn.avg_pool1d", Span(kTfPoolParameters), parse_tf_pool<kAvg>},
    {Framework::tensorflow, "nn.avg_pool2d", Span(kTfPoolParameters), parse_tf_pool<kAvg>},
    {Framework::tensorflow, "nn.avg_pool3d", Span(kTfPoolParameters), parse_tf_pool<kAvg>},
    {Framework::tensorflow, "nn.pool", Span(kTfGenericPoolParameters), parse_tf_generic_pool},
}};

}  // namespace

std::span<const LayerClass> keras_pooling_classes() { return kClasses; }

}  // namespace convbridge::frontends
