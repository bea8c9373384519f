// Keras 3 front-end: keras.layers.Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D and Conv1D/2D/3DTranspose
// constructor text -> KerasConvLayer, with the checks Keras makes (keras/src/layers/convolutional/base_conv.py,
// base_depthwise_conv.py, base_separable_conv.py, base_conv_transpose.py; keras/src/utils/argument_validation.py;
// keras/src/backend/common/backend_utils.py standardize_padding).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <span>

#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "frontends/arguments.hpp"
#include "frontends/python_call.hpp"

namespace convbridge {
namespace {

using frontends::PyValue;

Error invalid(std::string message) { return frontends::invalid_argument(std::move(message)); }

// Positional orders of the Keras 3.15 signatures, then the arguments that cannot change the computation.
constexpr std::array<std::string_view, 16> kConvParameters = {
    "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation",
    "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
    "activity_regularizer", "kernel_constraint", "bias_constraint"};
constexpr std::array<std::string_view, 15> kDepthwiseParameters = {
    "kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate", "activation",
    "use_bias", "depthwise_initializer", "bias_initializer", "depthwise_regularizer", "bias_regularizer",
    "activity_regularizer", "depthwise_constraint", "bias_constraint"};
constexpr std::array<std::string_view, 19> kSeparableParameters = {
    "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier",
    "activation", "use_bias", "depthwise_initializer", "pointwise_initializer", "bias_initializer",
    "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer", "activity_regularizer",
    "depthwise_constraint", "pointwise_constraint", "bias_constraint"};
constexpr std::array<std::string_view, 16> kTransposeParameters = {
    "filters", "kernel_size", "strides", "padding", "output_padding", "data_format", "dilation_rate", "activation",
    "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
    "activity_regularizer", "kernel_constraint", "bias_constraint"};
// Layer keyword arguments (keras.layers.Layer.__init__) accepted by every class.
constexpr std::array<std::string_view, 4> kLayerKeywords = {"name", "trainable", "dtype", "input_shape"};

// The positional parameters of a kind of layer, in order.
std::span<const std::string_view> kind_parameters(KerasLayerKind kind) {
  switch (kind) {
    case KerasLayerKind::conv: return kConvParameters;
    case KerasLayerKind::depthwise: return kDepthwiseParameters;
    case KerasLayerKind::separable: return kSeparableParameters;
    case KerasLayerKind::conv_transpose: return kTransposeParameters;
  }
  return {};
}

// " (did you mean ...)" for an unexpected keyword of a Kind layer: PyTorch spellings, then near misses among the
// class's own parameters and the layer keywords.
template <KerasLayerKind Kind>
std::string keras_keyword_hint(std::string_view keyword) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kTorchSpellings = {{
      {"stride", "strides"}, {"dilation", "dilation_rate"}, {"out_channels", "filters"},
      {"bias", "use_bias"},  {"in_channels", ""},           {"padding_mode", ""},
  }};
  if (Kind == KerasLayerKind::depthwise && (keyword == "filters" || keyword == "out_channels")) {
    return " (depthwise layers take no filters: they output input channels * depth_multiplier)";
  }
  for (auto [torch, keras] : kTorchSpellings) {
    if (keyword != torch) continue;
    if (keras.empty()) return fmt::format(" ('{}' is a PyTorch argument with no Keras equivalent)", torch);
    return fmt::format(" (did you mean '{}'? '{}' is the PyTorch name)", keras, torch);
  }
  // No Keras parameter name is 30 characters long: a longer keyword is within two edits of none of them (and the
  // edit distances would cost time proportional to its length).
  if (keyword.size() > 32) return "";
  std::string hint = frontends::closest_name_hint(keyword, kind_parameters(Kind));
  return hint.empty() ? frontends::closest_name_hint(keyword, kLayerKeywords) : hint;
}

std::string (*keyword_hint_for(KerasLayerKind kind))(std::string_view) {
  switch (kind) {
    case KerasLayerKind::conv: return keras_keyword_hint<KerasLayerKind::conv>;
    case KerasLayerKind::depthwise: return keras_keyword_hint<KerasLayerKind::depthwise>;
    case KerasLayerKind::separable: return keras_keyword_hint<KerasLayerKind::separable>;
    case KerasLayerKind::conv_transpose: return keras_keyword_hint<KerasLayerKind::conv_transpose>;
  }
  return keras_keyword_hint<KerasLayerKind::conv>;
}

struct KerasClass {
  KerasLayerKind kind;
  int rank;
};

Result<KerasClass> keras_class(std::string_view callee, std::string* class_name) {
  std::string_view name = callee;
  std::string_view prefix;
  if (auto dot = name.rfind('.'); dot != std::string_view::npos) {
    prefix = name.substr(0, dot);
    name = name.substr(dot + 1);
  }
  const bool known_prefix = prefix.empty() || prefix == "layers" || prefix == "keras.layers" ||
                            prefix == "tf.keras.layers" || prefix == "tensorflow.keras.layers" || prefix == "tfkl";
  for (int rank = 1; rank <= kMaxSpatialRank; ++rank) {
    const std::array<std::pair<std::string, KerasLayerKind>, 4> forms = {{
        {fmt::format("Conv{}D", rank), KerasLayerKind::conv},
        {fmt::format("DepthwiseConv{}D", rank), KerasLayerKind::depthwise},
        {fmt::format("SeparableConv{}D", rank), KerasLayerKind::separable},
        {fmt::format("Conv{}DTranspose", rank), KerasLayerKind::conv_transpose},
    }};
    for (const auto& [form, kind] : forms) {
      if (name != form) continue;
      if (!known_prefix) break;
      if (rank == 3 && (kind == KerasLayerKind::depthwise || kind == KerasLayerKind::separable)) break;
      *class_name = std::string(name);
      return KerasClass{kind, rank};
    }
  }
  return make_error(ErrorCode::unknown_argument,
                    fmt::format("unknown Keras layer '{}': expected keras.layers.Conv1D/2D/3D, DepthwiseConv1D/2D, "
                                "SeparableConv1D/2D or Conv1D/2D/3DTranspose, or a pooling, normalization, resizing, "
                                "padding or activation layer{}",
                                frontends::printable_excerpt(callee), op_layer_name_hint(callee)));
}

// The positional parameter names of the class a callee names, so that a syntax error inside an argument names
// it ("strides: ..."); empty for a callee that names no Keras class.
std::span<const std::string_view> keras_parameter_names(std::string_view callee) {
  // Asked once per argument (30000 times for 30000 arguments): remember the answer for the last callee.
  thread_local std::string last_callee;
  thread_local std::span<const std::string_view> last_names;
  thread_local bool known = false;
  if (!known || callee != last_callee) {
    std::string ignored;
    auto cls = keras_class(callee, &ignored);
    last_names = cls ? kind_parameters(cls->kind) : std::span<const std::string_view>();
    last_callee = std::string(callee);
    known = true;
  }
  return last_names;
}

Result<std::vector<int64_t>> positive_sizes(const PyValue& value, std::string_view name, int rank) {
  CONVBRIDGE_TRY(std::vector<int64_t> sizes, frontends::int_or_tuple(value, name, rank));
  for (int64_t v : sizes) {
    if (v <= 0) return invalid(fmt::format("{}={} must be positive (Keras rejects it)", name, value.source));
  }
  return sizes;
}

Result<int64_t> positive_int(const PyValue& value, std::string_view name) {
  if (value.kind != PyValue::Kind::integer || value.integer <= 0 || value.integer > kMaxSizeArgument) {
    return invalid(fmt::format("{}={} must be a positive int (at most {})", name, value.source, kMaxSizeArgument));
  }
  return value.integer;
}

// Keras 3.15's activation names (keras/src/activations/__init__.py ALL_OBJECTS_DICT, with the aliases "swish" and
// "hard_swish") and their default parameters (keras/src/activations/activations.py: leaky_relu negative_slope=0.2,
// elu/celu alpha=1, gelu approximate=False, hard/soft_shrink threshold=0.5, softmax/log_softmax axis=-1, the
// channels in channels_last). Those without a parameter-free equivalent here are known but not translated yet.
struct KerasActivationName {
  std::string_view name;
  std::optional<Activation> activation;
};
const std::array<KerasActivationName, 32>& keras_activation_names() {
  using K = ActivationKind;
  static const std::array<KerasActivationName, 32> kNames = {{
      {"relu", Activation{K::relu}},
      {"relu6", Activation{K::relu6}},
      {"leaky_relu", Activation{K::leaky_relu, 0.2}},
      {"elu", Activation{K::elu, 1.0}},
      {"selu", Activation{K::selu}},
      {"celu", Activation{K::celu, 1.0}},
      {"sigmoid", Activation{K::sigmoid}},
      {"tanh", Activation{K::tanh}},
      {"softplus", Activation{K::softplus}},
      {"softsign", Activation{K::softsign}},
      {"silu", Activation{K::silu}},
      {"swish", Activation{K::silu}},
      {"gelu", Activation{K::gelu}},
      {"hard_sigmoid", Activation{K::hard_sigmoid}},
      {"hard_silu", Activation{K::hard_silu}},
      {"hard_swish", Activation{K::hard_silu}},
      {"hard_tanh", Activation{K::hard_tanh}},
      {"mish", Activation{K::mish}},
      {"log_sigmoid", Activation{K::log_sigmoid}},
      {"tanh_shrink", Activation{K::tanh_shrink}},
      {"hard_shrink", Activation{K::hard_shrink, 0.5}},
      {"soft_shrink", Activation{K::soft_shrink, 0.5}},
      {"softmax", Activation{K::softmax}},
      {"log_softmax", Activation{K::log_softmax}},
      {"linear", std::nullopt},
      {"exponential", std::nullopt},
      {"glu", std::nullopt},
      {"sparse_plus", std::nullopt},
      {"sparse_sigmoid", std::nullopt},
      {"sparsemax", std::nullopt},
      {"squareplus", std::nullopt},
      {"threshold", std::nullopt},
  }};
  return kNames;
}

// activation= as written: a name string ('relu'), or the function itself (keras.activations.relu, tf.nn.relu).
// tf.nn's functions that Keras also defines compute the same with the same defaults (tf.nn.leaky_relu alpha=0.2,
// tf.nn.gelu approximate=False, tf.nn.softmax axis=-1).
Status read_activation(const PyValue& value, KerasConvLayer& layer) {
  layer.activation_text = value.source;
  if (value.kind == PyValue::Kind::none) return Ok{};
  std::string_view name;
  if (value.kind == PyValue::Kind::string) {
    name = value.text;  // keras.activations.get looks names up as written (case-sensitive)
  } else if (value.kind == PyValue::Kind::name) {
    const std::string_view dotted = value.text;
    const size_t dot = dotted.rfind('.');
    const std::string_view prefix = dot == std::string_view::npos ? std::string_view() : dotted.substr(0, dot);
    if (prefix == "keras.activations" || prefix == "activations" || prefix == "tf.keras.activations" ||
        prefix == "tf.nn" || prefix == "tensorflow.nn") {
      name = dotted.substr(dot + 1);
    }
  }
  const KerasActivationLookup lookup = keras_activation(name);
  if (!lookup.known) {
    return invalid(fmt::format("activation={} is not a Keras activation (Keras: \"Could not interpret activation "
                               "function identifier\"); convbridge translates {}",
                               value.source, supported_keras_activations()));
  }
  if (!lookup.identity && !lookup.activation) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("activation={} is not supported yet: convbridge translates {}; build the layer "
                                  "with activation=None and apply it yourself",
                                  value.source, supported_keras_activations()));
  }
  layer.activation = lookup.activation;
  return Ok{};
}

// input_shape=(H, W, C) in the constructor: Keras keeps it for the Input a Sequential model builds (Layer.__init__
// pops it from kwargs); None marks a size that varies.
Status read_declared_input_shape(const PyValue& value, KerasConvLayer& layer) {
  if (value.kind == PyValue::Kind::none) return Ok{};
  const size_t expected = static_cast<size_t>(layer.rank) + 1;
  bool valid = value.kind == PyValue::Kind::sequence && value.items.size() == expected;
  for (size_t i = 0; valid && i < value.items.size(); ++i) {
    const PyValue& item = value.items[i];
    if (item.kind == PyValue::Kind::none && i + 1 < expected) {
      layer.declared_input_shape.push_back(kUnknownSize);
    } else if (item.kind == PyValue::Kind::integer && item.integer > 0 && item.integer <= kMaxSizeArgument) {
      layer.declared_input_shape.push_back(item.integer);
    } else {
      valid = false;
    }
  }
  if (!valid) {
    layer.declared_input_shape.clear();
    return invalid(fmt::format("input_shape={} must be the input's shape without the batch, {} entries ({}, C): "
                               "positive ints, None for spatial sizes that vary, the channel count given",
                               value.source, expected, fmt::join(spatial_letters(layer.rank), ", ")));
  }
  return Ok{};
}

}  // namespace

KerasActivationLookup keras_activation(std::string_view name) {
  for (const KerasActivationName& entry : keras_activation_names()) {
    if (entry.name == name) return {true, name == "linear", entry.activation};
  }
  return {};
}

std::string supported_keras_activations() {
  std::vector<std::string> names{"None", "'linear'"};
  for (const KerasActivationName& entry : keras_activation_names()) {
    if (entry.activation) names.push_back(fmt::format("'{}'", entry.name));
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

bool names_keras_layer(std::string_view text) {
  // By the callee alone, so that Keras text whose arguments do not parse, or that names a class Keras does not
  // have under a Keras prefix ("keras.layers.DepthwiseConv3D"), is reported by parse_keras_layer in Keras' terms.
  const std::string_view callee = frontends::leading_dotted_name(text);
  std::string ignored;
  if (keras_class(callee, &ignored).ok()) return true;
  const size_t dot = callee.rfind('.');
  const std::string_view prefix = dot == std::string_view::npos ? std::string_view() : callee.substr(0, dot);
  return prefix == "layers" || prefix == "keras.layers" || prefix == "tf.keras.layers" ||
         prefix == "tensorflow.keras.layers" || prefix == "tfkl";
}

Result<KerasConvLayer> parse_keras_layer(std::string_view text) {
  CONVBRIDGE_TRY(frontends::PyCall call, frontends::parse_python_call(text, keras_parameter_names));
  KerasConvLayer layer;
  layer.text = std::string(text);
  CONVBRIDGE_TRY(const KerasClass cls, keras_class(call.callee, &layer.class_name));
  layer.kind = cls.kind;
  layer.rank = cls.rank;

  std::vector<std::string_view> names;
  size_t required = 2;
  std::string_view signature;
  switch (cls.kind) {
    case KerasLayerKind::conv:
      names.assign(kConvParameters.begin(), kConvParameters.end());
      signature = "filters, kernel_size, strides=1, padding='valid', data_format=None, dilation_rate=1, groups=1, "
                  "activation=None, use_bias=True, ...";
      break;
    case KerasLayerKind::depthwise:
      names.assign(kDepthwiseParameters.begin(), kDepthwiseParameters.end());
      required = 1;
      signature = "kernel_size, strides=1, padding='valid', depth_multiplier=1, data_format=None, dilation_rate=1, "
                  "activation=None, use_bias=True, ...";
      break;
    case KerasLayerKind::separable:
      names.assign(kSeparableParameters.begin(), kSeparableParameters.end());
      signature = "filters, kernel_size, strides=1, padding='valid', data_format=None, dilation_rate=1, "
                  "depth_multiplier=1, activation=None, use_bias=True, ...";
      break;
    case KerasLayerKind::conv_transpose:
      names.assign(kTransposeParameters.begin(), kTransposeParameters.end());
      signature = "filters, kernel_size, strides=1, padding='valid', output_padding=None, data_format=None, "
                  "dilation_rate=1, activation=None, use_bias=True, ...";
      break;
  }
  const size_t positional = names.size();
  names.insert(names.end(), kLayerKeywords.begin(), kLayerKeywords.end());
  // Layer keywords are keyword-only: count the positionals before binding (which would bind the surplus to them),
  // unless a positional follows a keyword (then bind reports Python's syntax error, which comes first).
  size_t positionals = 0;
  bool seen_keyword = false;
  bool positional_after_keyword = false;
  for (const auto& argument : call.arguments) {
    positional_after_keyword = positional_after_keyword || (seen_keyword && !argument.keyword);
    seen_keyword = seen_keyword || argument.keyword.has_value();
    positionals += argument.keyword ? 0 : 1;
  }
  if (positionals > positional && !positional_after_keyword) {
    return invalid(fmt::format("{} takes at most {} positional arguments ({} given)", layer.class_name, positional,
                               positionals));
  }
  CONVBRIDGE_TRY(const frontends::BoundArguments bound,
                 frontends::BoundArguments::bind(call, layer.class_name, names, required, signature,
                                                 keyword_hint_for(cls.kind)));
  const int rank = cls.rank;

  if (cls.kind != KerasLayerKind::depthwise) {
    CONVBRIDGE_TRY(layer.filters, positive_int(bound.get("filters", ""), "filters"));
  }
  CONVBRIDGE_TRY(layer.kernel, positive_sizes(bound.get("kernel_size", ""), "kernel_size", rank));
  CONVBRIDGE_TRY(layer.strides, positive_sizes(bound.get("strides", "1"), "strides", rank));
  CONVBRIDGE_TRY(layer.dilation, positive_sizes(bound.get("dilation_rate", "1"), "dilation_rate", rank));

  const PyValue padding = bound.get("padding", "'valid'");
  if (padding.kind != PyValue::Kind::string) {
    return invalid(fmt::format("padding={} must be 'valid' or 'same'{}", padding.source,
                               rank == 1 && cls.kind == KerasLayerKind::conv ? " or 'causal'" : ""));
  }
  std::string lowered = padding.text;  // Keras lower-cases padding (standardize_padding)
  std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lowered == "valid") {
    layer.padding = KerasPadding::valid;
  } else if (lowered == "same") {
    layer.padding = KerasPadding::same;
  } else if (lowered == "causal" && rank == 1 && cls.kind == KerasLayerKind::conv) {
    layer.padding = KerasPadding::causal;
  } else {
    return invalid(fmt::format("padding={} is not a {} padding: use 'valid' or 'same'{}", padding.source,
                               layer.class_name,
                               rank == 1 && cls.kind == KerasLayerKind::conv ? " or 'causal'" : ""));
  }

  const auto any_above_one = [](const std::vector<int64_t>& v) {
    return std::any_of(v.begin(), v.end(), [](int64_t x) { return x > 1; });
  };
  if ((cls.kind == KerasLayerKind::conv || cls.kind == KerasLayerKind::conv_transpose) &&
      any_above_one(layer.strides) && any_above_one(layer.dilation)) {
    return invalid(fmt::format("strides={} with dilation_rate={}: {} does not support strides > 1 together with "
                               "dilation_rate > 1 (Keras: \"`strides > 1` not supported in conjunction with "
                               "`dilation_rate > 1`\")",
                               bound.get("strides", "1").source, bound.get("dilation_rate", "1").source,
                               layer.class_name));
  }

  if (cls.kind == KerasLayerKind::conv) {
    CONVBRIDGE_TRY(layer.groups, positive_int(bound.get("groups", "1"), "groups"));
    if (layer.filters % layer.groups != 0) {
      return invalid(fmt::format("filters={} must be divisible by groups={} (Keras: \"The number of filters must be "
                                 "evenly divisible by the number of groups\")",
                                 layer.filters, layer.groups));
    }
  }
  if (cls.kind == KerasLayerKind::depthwise || cls.kind == KerasLayerKind::separable) {
    CONVBRIDGE_TRY(layer.depth_multiplier, positive_int(bound.get("depth_multiplier", "1"), "depth_multiplier"));
  }
  if (cls.kind == KerasLayerKind::conv_transpose) {
    const PyValue output_padding = bound.get("output_padding", "None");
    if (output_padding.kind != PyValue::Kind::none) {
      CONVBRIDGE_TRY(layer.output_padding, frontends::int_or_tuple(output_padding, "output_padding", rank));
      layer.has_output_padding = true;
      for (size_t i = 0; i < static_cast<size_t>(rank); ++i) {
        if (layer.output_padding[i] < 0 || layer.output_padding[i] >= layer.strides[i]) {
          return invalid(fmt::format("output_padding={} must be at least 0 and smaller than strides={} (Keras: "
                                     "\"Strides must be greater than output padding\")",
                                     output_padding.source, bound.get("strides", "1").source));
        }
      }
    }
  }

  const PyValue use_bias = bound.get("use_bias", "True");
  if (use_bias.kind != PyValue::Kind::boolean) {
    return invalid(fmt::format("use_bias={} must be True or False", use_bias.source));
  }
  layer.use_bias = use_bias.boolean;

  const PyValue data_format = bound.get("data_format", "None");
  if (data_format.kind != PyValue::Kind::none) {
    // Keras lower-cases it (backend/config.py standardize_data_format), then accepts only the two layouts.
    std::string format = data_format.kind == PyValue::Kind::string ? data_format.text : std::string();
    std::transform(format.begin(), format.end(), format.begin(), [](unsigned char c) { return std::tolower(c); });
    if (format == "channels_first") {
      return make_error(ErrorCode::unsupported,
                        fmt::format("data_format={} is not supported: convbridge translates channels_last Keras "
                                    "layers (TF's CPU convolutions need channels_last)",
                                    data_format.source));
    }
    if (format != "channels_last") {
      return invalid(fmt::format("data_format={} must be 'channels_last' or 'channels_first' (Keras: \"The "
                                 "`data_format` argument must be one of {{'channels_first', 'channels_last'}}\")",
                                 data_format.source));
    }
  }
  CONVBRIDGE_CHECK(read_activation(bound.get("activation", "None"), layer));
  CONVBRIDGE_CHECK(read_declared_input_shape(bound.get("input_shape", "None"), layer));
  const PyValue dtype = bound.get("dtype", "None");
  if (!(dtype.kind == PyValue::Kind::none || (dtype.kind == PyValue::Kind::string && dtype.text == "float32"))) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("dtype={} is not supported yet: convbridge plans float32 layers", dtype.source));
  }
  return layer;
}

}  // namespace convbridge
