// Keras 3's activation layers (keras/src/layers/activations/*.py) and TensorFlow's tf.nn activation functions,
// with their defaults, which differ from PyTorch's: LeakyReLU negative_slope=0.3 (tf.nn.leaky_relu alpha=0.2,
// PyTorch 0.01), Softmax axis=-1 (the channels of channels_last). Every get_config() key parses; PReLU's
// initializer, regularizer and constraint do not change a built layer's values and are accepted as written.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/keras/layer_base_arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

using K = ActivationKind;

constexpr std::array<std::string_view, 6> kRelu = {"max_value", "negative_slope", "threshold", "name", "trainable",
                                                   "dtype"};
constexpr std::array<std::string_view, 5> kLeaky = {"negative_slope", "name", "trainable", "dtype", "alpha"};
constexpr std::array<std::string_view, 4> kElu = {"alpha", "name", "trainable", "dtype"};
constexpr std::array<std::string_view, 7> kPrelu = {"alpha_initializer", "alpha_regularizer", "alpha_constraint",
                                                    "shared_axes", "name", "trainable", "dtype"};
constexpr std::array<std::string_view, 4> kSoftmax = {"axis", "name", "trainable", "dtype"};
constexpr std::array<std::string_view, 4> kActivation = {"activation", "name", "trainable", "dtype"};
constexpr std::array<std::string_view, 2> kFeatures = {"features", "name"};
constexpr std::array<std::string_view, 2> kX = {"x", "name"};
constexpr std::array<std::string_view, 3> kTfLeaky = {"features", "alpha", "name"};
constexpr std::array<std::string_view, 3> kTfGelu = {"features", "approximate", "name"};
constexpr std::array<std::string_view, 3> kTfSilu = {"features", "beta", "name"};
constexpr std::array<std::string_view, 3> kTfSoftmax = {"logits", "axis", "name"};

template <const auto& Names>
std::string hint(std::string_view keyword) {
  return closest_name_hint(keyword, Names);
}

template <const auto& Names>
Result<BoundArguments> bind(const PyCall& call, const OpLayer& layer, size_t required, std::string_view signature) {
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, Names, required, signature, hint<Names>));
  CONVBRIDGE_CHECK(check_layer_base_arguments(bound, layer.framework == Framework::keras));
  return bound;
}

Result<double> number(const BoundArguments& bound, std::string_view name, double fallback, bool allow_none = false) {
  if (!bound.given(name)) return fallback;
  const PyValue v = bound.get(name, "None");
  if (v.kind == PyValue::Kind::integer) return static_cast<double>(v.integer);
  if (v.kind == PyValue::Kind::number) return v.number;
  if (allow_none && v.kind == PyValue::Kind::none) return std::nan("");
  return invalid_argument(fmt::format("{}={} must be a number, not {}", name, v.source, kind_name(v.kind)));
}

Status tensor_argument(const BoundArguments& bound, std::string_view name, std::string_view function) {
  const PyValue v = bound.get(name, "");
  if (v.kind != PyValue::Kind::name) {
    return invalid_argument(fmt::format("{}: {}={} must be the tensor (a name such as x), not {}", function, name,
                                        v.source, kind_name(v.kind)));
  }
  return Ok{};
}

// ReLU(max_value=None, negative_slope=0.0, threshold=0.0): keras/src/layers/activations/relu.py refuses negative
// values ("... cannot be a negative value"). PyTorch has the combinations relu, relu6 and leaky_relu.
Status parse_relu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 bind<kRelu>(call, layer, 0, "max_value=None, negative_slope=0.0, threshold=0.0"));
  CONVBRIDGE_TRY(const double max_value, number(bound, "max_value", std::nan(""), true));
  CONVBRIDGE_TRY(const double slope, number(bound, "negative_slope", 0.0));
  CONVBRIDGE_TRY(const double threshold, number(bound, "threshold", 0.0));
  for (const auto& [name, value] : {std::pair{"max_value", max_value}, std::pair{"negative_slope", slope},
                                    std::pair{"threshold", threshold}}) {
    if (value < 0) {
      return invalid_argument(fmt::format("{}={} must not be negative (Keras: \"The {} value of a Relu layer cannot "
                                          "be None or negative value\")",
                                          name, python_literal(CallValue::of(value)), name));
    }
  }
  const bool capped = !std::isnan(max_value);
  if (threshold != 0.0 || (capped && max_value != 6.0) || (capped && slope != 0.0)) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("ReLU(max_value={}, negative_slope={}, threshold={}) has no PyTorch module: "
                                  "convbridge maps ReLU(), ReLU(max_value=6) (nn.ReLU6) and ReLU(negative_slope=a) "
                                  "(nn.LeakyReLU(a))",
                                  capped ? python_literal(CallValue::of(max_value)) : "None",
                                  python_literal(CallValue::of(slope)), python_literal(CallValue::of(threshold))));
  }
  if (capped) layer.op = ActivationOp{Activation{K::relu6}};
  else if (slope != 0.0) layer.op = ActivationOp{Activation{K::leaky_relu, slope}};
  else layer.op = ActivationOp{Activation{K::relu}};
  return Ok{};
}

// LeakyReLU(negative_slope=0.3); Keras 3 still takes the Keras 2 keyword alpha= (with a warning).
Status parse_leaky_relu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kLeaky>(call, layer, 0, "negative_slope=0.3"));
  CONVBRIDGE_TRY(double slope, number(bound, "negative_slope", 0.3));
  if (bound.given("alpha")) {
    CONVBRIDGE_TRY(slope, number(bound, "alpha", slope));
  }
  if (slope < 0) {
    return invalid_argument(fmt::format("negative_slope={} must not be negative (Keras: \"The negative_slope value "
                                        "of a Leaky ReLU layer cannot be None or negative\")",
                                        python_literal(CallValue::of(slope))));
  }
  layer.op = ActivationOp{Activation{K::leaky_relu, slope}};
  return Ok{};
}

Status parse_elu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kElu>(call, layer, 0, "alpha=1.0"));
  CONVBRIDGE_TRY(const double alpha, number(bound, "alpha", 1.0));
  layer.op = ActivationOp{Activation{K::elu, alpha}};
  return Ok{};
}

// PReLU(alpha_initializer='Zeros', alpha_regularizer=None, alpha_constraint=None, shared_axes=None): alpha has
// the input's shape without the batch, size 1 along shared_axes. Shared over every spatial axis it is one slope
// per channel (nn.PReLU(C)); over every axis, one slope (nn.PReLU()). Other sharings have no PyTorch module.
Status parse_prelu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 bind<kPrelu>(call, layer, 0, "alpha_initializer='Zeros', alpha_regularizer=None, "
                                              "alpha_constraint=None, shared_axes=None"));
  // keras.initializers.get / regularizers.get / constraints.get take a name, a config or an object.
  for (const std::string_view name : {"alpha_initializer", "alpha_regularizer", "alpha_constraint"}) {
    const PyValue v = bound.get(name, "None");
    const bool usable = v.kind == PyValue::Kind::string || v.kind == PyValue::Kind::name ||
                        v.kind == PyValue::Kind::call || (v.kind == PyValue::Kind::none && name != "alpha_initializer");
    if (bound.given(name) && !usable) {
      return invalid_argument(fmt::format("{}={} is not an initializer, regularizer or constraint (Keras: \"Could not "
                                          "interpret ... identifier\")",
                                          name, v.source));
    }
  }
  const PyValue axes = bound.get("shared_axes", "None");
  if (axes.kind == PyValue::Kind::none) {
    return make_error(ErrorCode::unsupported,
                      "PReLU(shared_axes=None) learns one slope per element: nn.PReLU has one per channel at most; "
                      "give shared_axes=[1, 2] (2-D) for per-channel slopes");
  }
  std::vector<int64_t> listed;
  if (axes.kind == PyValue::Kind::integer) listed.push_back(axes.integer);
  else if (axes.kind == PyValue::Kind::sequence) {
    for (const PyValue& item : axes.items) {
      if (item.kind != PyValue::Kind::integer) {
        return invalid_argument(fmt::format("shared_axes={} must be ints, not {}", axes.source, kind_name(item.kind)));
      }
      listed.push_back(item.integer);
    }
  } else {
    return invalid_argument(fmt::format("shared_axes={} must be an int or a list of ints", axes.source));
  }
  std::sort(listed.begin(), listed.end());
  for (size_t i = 0; i < listed.size(); ++i) {
    if (listed[i] != static_cast<int64_t>(i) + 1) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("PReLU(shared_axes={}) is not translated: nn.PReLU shares its slopes over all "
                                    "spatial axes ([1, ..., rank]: one per channel) or all axes",
                                    axes.source));
    }
  }
  ActivationOp op;
  op.prelu = true;
  op.prelu_parameters = 0;  // per channel; listed.size() is the spatial rank (or rank + 1 for all axes)
  op.prelu_init = 0.0;      // Keras' default initializer is Zeros
  op.axis = static_cast<int>(listed.size());  // remembered for the plan: checked against the input rank there
  layer.op = op;
  return Ok{};
}

Status parse_softmax_layer(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kSoftmax>(call, layer, 0, "axis=-1"));
  const PyValue axis = bound.get("axis", "-1");
  if (axis.kind != PyValue::Kind::integer || axis.integer < -8 || axis.integer >= 8) {
    return make_error(axis.kind == PyValue::Kind::sequence ? ErrorCode::unsupported : ErrorCode::invalid_argument,
                      fmt::format("axis={} must be one int within the input's dimensions{}", axis.source,
                                  axis.kind == PyValue::Kind::sequence ? " (a softmax over several axes has no "
                                                                         "PyTorch module)"
                                                                       : ""));
  }
  ActivationOp op{Activation{K::softmax}};
  op.axis = static_cast<int>(axis.integer);
  op.axis_channels_last = true;
  layer.op = op;
  return Ok{};
}

// Activation('name') or Activation(keras.activations.name / tf.nn.name): the name table of keras_args.cpp.
Status parse_activation_layer(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kActivation>(call, layer, 1, "activation"));
  const PyValue v = bound.get("activation", "");
  std::string_view name;
  if (v.kind == PyValue::Kind::string) name = v.text;
  else if (v.kind == PyValue::Kind::name) {
    const size_t dot = v.text.rfind('.');
    const std::string_view prefix = dot == std::string::npos ? std::string_view() : std::string_view(v.text).substr(0, dot);
    if (prefix == "keras.activations" || prefix == "activations" || prefix == "tf.keras.activations" ||
        prefix == "tf.nn" || prefix == "tensorflow.nn") {
      name = std::string_view(v.text).substr(dot + 1);
    }
  }
  const KerasActivationLookup lookup = keras_activation(name);
  if (!lookup.known) {
    return invalid_argument(fmt::format("activation={} is not a Keras activation (Keras: \"Could not interpret "
                                        "activation function identifier\")",
                                        v.source));
  }
  if (!lookup.activation) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("activation={} is not translated{}; convbridge translates {}", v.source,
                                  lookup.identity ? " (it is the identity: drop the layer)" : "",
                                  supported_keras_activations()));
  }
  ActivationOp op{*lookup.activation};
  if (op.activation.kind == K::softmax || op.activation.kind == K::log_softmax) {
    op.axis = -1;  // keras.activations.softmax(x, axis=-1)
    op.axis_channels_last = true;
  }
  layer.op = op;
  return Ok{};
}

// tf.nn.<name>(features, name=None) and friends.
template <ActivationKind Kind, const auto& Names>
Status parse_tf_plain(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<Names>(call, layer, 1, fmt::format("{}, name=None", Names[0])));
  CONVBRIDGE_CHECK(tensor_argument(bound, Names[0], layer.class_name));
  layer.op = ActivationOp{Activation{Kind, Kind == K::elu ? 1.0 : 0.0}};
  return Ok{};
}

Status parse_tf_leaky_relu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kTfLeaky>(call, layer, 1, "features, alpha=0.2, name=None"));
  CONVBRIDGE_CHECK(tensor_argument(bound, "features", layer.class_name));
  CONVBRIDGE_TRY(const double alpha, number(bound, "alpha", 0.2));
  layer.op = ActivationOp{Activation{K::leaky_relu, alpha}};
  return Ok{};
}

Status parse_tf_gelu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kTfGelu>(call, layer, 1, "features, approximate=False, name=None"));
  CONVBRIDGE_CHECK(tensor_argument(bound, "features", layer.class_name));
  const PyValue approximate = bound.get("approximate", "False");
  if (approximate.kind != PyValue::Kind::boolean) {
    return invalid_argument(fmt::format("approximate={} must be True or False", approximate.source));
  }
  layer.op = ActivationOp{Activation{approximate.boolean ? K::gelu_tanh : K::gelu}};
  return Ok{};
}

// tf.nn.silu / swish(features, beta=1.0): x * sigmoid(beta * x); only beta 1 is nn.SiLU.
Status parse_tf_silu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kTfSilu>(call, layer, 1, "features, beta=1.0, name=None"));
  CONVBRIDGE_CHECK(tensor_argument(bound, "features", layer.class_name));
  CONVBRIDGE_TRY(const double beta, number(bound, "beta", 1.0));
  if (beta != 1.0) {
    return make_error(ErrorCode::unsupported, fmt::format("beta={}: nn.SiLU is x * sigmoid(x), beta 1 only",
                                                          python_literal(CallValue::of(beta))));
  }
  layer.op = ActivationOp{Activation{K::silu}};
  return Ok{};
}

// tf.nn.softmax / log_softmax(logits, axis=None): None is the last axis.
template <ActivationKind Kind>
Status parse_tf_softmax(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kTfSoftmax>(call, layer, 1, "logits, axis=None, name=None"));
  CONVBRIDGE_CHECK(tensor_argument(bound, "logits", layer.class_name));
  ActivationOp op{Activation{Kind}};
  op.axis_channels_last = true;
  const PyValue axis = bound.get("axis", "None");
  if (axis.kind == PyValue::Kind::none) op.axis = -1;
  else if (axis.kind == PyValue::Kind::integer && axis.integer >= -8 && axis.integer < 8) op.axis = static_cast<int>(axis.integer);
  else return invalid_argument(fmt::format("axis={} must be an int within the input's dimensions", axis.source));
  layer.op = op;
  return Ok{};
}

const std::array<LayerClass, 21> kClasses = {{
    {Framework::keras, "ReLU", kRelu, parse_relu},
    {Framework::keras, "LeakyReLU", kLeaky, parse_leaky_relu},
    {Framework::keras, "ELU", kElu, parse_elu},
    {Framework::keras, "PReLU", kPrelu, parse_prelu},
    {Framework::keras, "Softmax", kSoftmax, parse_softmax_layer},
    {Framework::keras, "Activation", kActivation, parse_activation_layer},
    {Framework::tensorflow, "nn.relu", kFeatures, parse_tf_plain<K::relu, kFeatures>},
    {Framework::tensorflow, "nn.relu6", kFeatures, parse_tf_plain<K::relu6, kFeatures>},
    {Framework::tensorflow, "nn.leaky_relu", kTfLeaky, parse_tf_leaky_relu},
    {Framework::tensorflow, "nn.elu", kFeatures, parse_tf_plain<K::elu, kFeatures>},
    {Framework::tensorflow, "nn.selu", kFeatures, parse_tf_plain<K::selu, kFeatures>},
    {Framework::tensorflow, "nn.gelu", kTfGelu, parse_tf_gelu},
    {Framework::tensorflow, "nn.silu", kTfSilu, parse_tf_silu},
    {Framework::tensorflow, "nn.swish", kTfSilu, parse_tf_silu},
    {Framework::tensorflow, "nn.sigmoid", kX, parse_tf_plain<K::sigmoid, kX>},
    {Framework::tensorflow, "nn.tanh", kX, parse_tf_plain<K::tanh, kX>},
    {Framework::tensorflow, "nn.softplus", kFeatures, parse_tf_plain<K::softplus, kFeatures>},
    {Framework::tensorflow, "nn.softsign", kFeatures, parse_tf_plain<K::softsign, kFeatures>},
    {Framework::tensorflow, "nn.softmax", kTfSoftmax, parse_tf_softmax<K::softmax>},
    {Framework::tensorflow, "nn.log_softmax", kTfSoftmax, parse_tf_softmax<K::log_softmax>},
    {Framework::tensorflow, "sigmoid", kX, parse_tf_plain<K::sigmoid, kX>},
}};

}  // namespace

std::span<const LayerClass> keras_activation_classes() { return kClasses; }

}  // namespace convbridge::frontends
