// Keras front-end for the normalization layers (Keras 3, keras/src/layers/normalization/):
//   BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer,
//       gamma_initializer, moving_mean_initializer, moving_variance_initializer, beta_regularizer, gamma_regularizer,
//       beta_constraint, gamma_constraint, renorm=False, renorm_clipping=None, renorm_momentum=0.99,
//       synchronized=False, **kwargs)                                             batch_normalization.py __init__
//   GroupNormalization(groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer,
//       gamma_initializer, beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
//       groups: a positive int or -1 (instance normalization)                     group_normalization.py __init__
//   LayerNormalization(axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer, gamma_initializer,
//       beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint, **kwargs); rms_scaling is popped
//       from kwargs (deprecated)                                                  layer_normalization.py __init__
// **kwargs are Layer's: name, trainable, dtype, autocast, input_shape (kept for a Sequential's Input).
// Initializers, regularizers and constraints only matter for training from scratch: accepted and ignored (the
// Python adapter drops their dict configs; a call such as keras.initializers.Ones() parses and is ignored too).
// Every layer here is translated on the channels_last channel axis: axis=-1 (or the last axis written positively,
// which fixes the input rank).
#include <fmt/format.h>

#include <array>
#include <string>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

constexpr std::array<std::string_view, 23> kBatchNormalizationParameters = {
    "axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
    "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
    "beta_constraint", "gamma_constraint", "renorm", "renorm_clipping", "renorm_momentum", "synchronized",
    // keyword-only (Layer.__init__ kwargs)
    "name", "trainable", "dtype", "autocast", "input_shape", "activity_regularizer"};
constexpr size_t kBatchNormalizationPositional = 17;

constexpr std::array<std::string_view, 17> kGroupNormalizationParameters = {
    "groups", "axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer", "beta_regularizer",
    "gamma_regularizer", "beta_constraint", "gamma_constraint",
    "name", "trainable", "dtype", "autocast", "input_shape", "activity_regularizer"};
constexpr size_t kGroupNormalizationPositional = 11;

constexpr std::array<std::string_view, 17> kLayerNormalizationParameters = {
    "axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer", "beta_regularizer",
    "gamma_regularizer", "beta_constraint", "gamma_constraint",
    "rms_scaling", "name", "trainable", "dtype", "autocast", "input_shape", "activity_regularizer"};
constexpr size_t kLayerNormalizationPositional = 10;

std::string keyword_hint(std::string_view keyword) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kTorchSpellings = {{
      {"eps", "epsilon"}, {"num_groups", "groups"}, {"affine", "center' and 'scale"},
      {"elementwise_affine", "center' and 'scale"}, {"num_features", "axis"},
  }};
  for (auto [torch, keras] : kTorchSpellings) {
    if (keyword == torch) return fmt::format(" (did you mean '{}'? '{}' is the PyTorch name)", keras, torch);
  }
  for (auto names : {std::span<const std::string_view>(kBatchNormalizationParameters),
                     std::span<const std::string_view>(kGroupNormalizationParameters),
                     std::span<const std::string_view>(kLayerNormalizationParameters)}) {
    if (std::string hint = closest_name_hint(keyword, names); !hint.empty()) return hint;
  }
  return "";
}

Status check_positional_count(const PyCall& call, std::string_view class_name, size_t positional) {
  size_t count = 0;
  for (const PyArgument& a : call.arguments) count += a.keyword ? 0 : 1;
  if (count > positional) {
    return invalid_argument(fmt::format("{} takes at most {} positional arguments ({} given)", class_name, positional,
                                        count));
  }
  return Ok{};
}

// Keras applies float() to momentum and epsilon (BatchNormalization); ints convert.
Result<double> float_argument(const PyValue& value, std::string_view name) {
  if (value.kind == PyValue::Kind::number) return value.number;
  if (value.kind == PyValue::Kind::integer) return static_cast<double>(value.integer);
  return invalid_argument(fmt::format("{}={} must be a float, not {}", name, value.source, kind_name(value.kind)));
}

Result<bool> flag_argument(const PyValue& value, std::string_view name) {
  if (value.kind == PyValue::Kind::boolean) return value.boolean;
  return invalid_argument(fmt::format("{}={} must be True or False, not {}", name, value.source, kind_name(value.kind)));
}

// The channel axis of channels_last input: -1 (any rank), or k >= 2 (the last axis of a (k + 1)-D input: spatial
// rank k - 1). Returns the spatial rank it fixes (0: any).
Result<int> channel_axis_rank(const PyValue& value, std::string_view class_name) {
  if (value.kind != PyValue::Kind::integer) {
    return invalid_argument(fmt::format("axis={} must be an int, not {}", value.source, kind_name(value.kind)));
  }
  const int64_t axis = value.integer;
  if (axis == -1) return 0;
  if (axis >= 2 && axis <= kMaxSpatialRank + 1) return static_cast<int>(axis - 1);
  return make_error(ErrorCode::unsupported,
                    fmt::format("{}(axis={}) normalizes along an axis that is the channel axis of no channels_last "
                                "input convbridge translates: only the channel axis is translated (axis=-1, or 2/3/4 "
                                "for 3-D/4-D/5-D input)",
                                class_name, value.source));
}

// Layer kwargs and the training-only arguments.
Status read_common(const BoundArguments& bound, OpLayer& layer, int rank) {
  const PyValue dtype = bound.get("dtype", "None");
  if (!(dtype.kind == PyValue::Kind::none || (dtype.kind == PyValue::Kind::string && dtype.text == "float32") ||
        dtype.kind == PyValue::Kind::call)) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("dtype={} is not supported yet: convbridge plans float32 layers", dtype.source));
  }
  if (const PyValue trainable = bound.get("trainable", "True"); trainable.kind != PyValue::Kind::boolean) {
    return invalid_argument(fmt::format("trainable={} must be True or False", trainable.source));
  }
  const PyValue shape = bound.get("input_shape", "None");
  if (shape.kind != PyValue::Kind::none) {
    bool valid = shape.kind == PyValue::Kind::sequence && shape.items.size() >= 1 &&
                 (rank == 0 || shape.items.size() == static_cast<size_t>(rank) + 1);
    std::vector<int64_t> sizes;
    for (size_t i = 0; valid && i < shape.items.size(); ++i) {
      const PyValue& item = shape.items[i];
      if (item.kind == PyValue::Kind::none && i + 1 < shape.items.size()) {
        sizes.push_back(kUnknownSize);
      } else if (item.kind == PyValue::Kind::integer && item.integer > 0 && item.integer <= kMaxSizeArgument) {
        sizes.push_back(item.integer);
      } else {
        valid = false;
      }
    }
    if (!valid) {
      return invalid_argument(fmt::format("input_shape={} must be the input's shape without the batch (*spatial, C): "
                                          "positive ints, None for spatial sizes that vary, the channel count given",
                                          shape.source));
    }
    layer.declared_input_shape = sizes;
  }
  return Ok{};
}

Status parse_batch_normalization(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_CHECK(check_positional_count(call, "BatchNormalization", kBatchNormalizationPositional));
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "BatchNormalization", kBatchNormalizationParameters, 0,
                                      "axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True, ...",
                                      keyword_hint));
  BatchNormOp op;
  CONVBRIDGE_TRY(op.rank, channel_axis_rank(bound.get("axis", "-1"), "BatchNormalization"));
  CONVBRIDGE_TRY(const double momentum, float_argument(bound.get("momentum", "0.99"), "momentum"));
  op.momentum_torch = momentum_complement(momentum);  // Keras new = k * old + (1 - k) * batch
  CONVBRIDGE_TRY(op.epsilon, float_argument(bound.get("epsilon", "0.001"), "epsilon"));
  CONVBRIDGE_TRY(op.center, flag_argument(bound.get("center", "True"), "center"));
  CONVBRIDGE_TRY(op.scale, flag_argument(bound.get("scale", "True"), "scale"));
  CONVBRIDGE_TRY(const bool renorm, flag_argument(bound.get("renorm", "False"), "renorm"));
  if (renorm) {
    // Batch renormalization adds the weights moving_stddev, renorm_mean and renorm_stddev and changes training.
    return make_error(ErrorCode::unsupported,
                      "renorm=True (batch renormalization) is not translated: it adds the weights moving_stddev, "
                      "renorm_mean and renorm_stddev, and its training step has no PyTorch layer");
  }
  const PyValue renorm_momentum = bound.get("renorm_momentum", "0.99");
  CONVBRIDGE_TRY(const double ignored_renorm_momentum, float_argument(renorm_momentum, "renorm_momentum"));
  (void)ignored_renorm_momentum;
  CONVBRIDGE_TRY(const bool synchronized, flag_argument(bound.get("synchronized", "False"), "synchronized"));
  if (synchronized) {
    layer.notes.push_back("synchronized=True only changes training across devices (the batch statistics are "
                          "all-reduced); PyTorch's nn.SyncBatchNorm is the training-time counterpart");
  }
  CONVBRIDGE_CHECK(read_common(bound, layer, op.rank));
  layer.op = op;
  return Ok{};
}

Status parse_group_normalization(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_CHECK(check_positional_count(call, "GroupNormalization", kGroupNormalizationPositional));
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "GroupNormalization", kGroupNormalizationParameters, 0,
                                      "groups=32, axis=-1, epsilon=0.001, center=True, scale=True, ...", keyword_hint));
  NormOp op;
  op.axes = NormAxes::group;
  const PyValue groups = bound.get("groups", "32");
  // GroupNormalization.__init__: "expected a positive integer (or `-1` for instance normalization)".
  if (groups.kind != PyValue::Kind::integer || (groups.integer <= 0 && groups.integer != -1)) {
    return invalid_argument(fmt::format("Received an invalid value for argument `groups`, expected a positive integer "
                                        "(or `-1` for instance normalization). Received: groups={}",
                                        groups.source));
  }
  if (groups.integer > kMaxSizeArgument) {
    return invalid_argument(fmt::format("groups={} is too large (the limit is {})", groups.source, kMaxSizeArgument));
  }
  op.groups = groups.integer == -1 ? 0 : groups.integer;
  CONVBRIDGE_TRY(op.rank, channel_axis_rank(bound.get("axis", "-1"), "GroupNormalization"));
  CONVBRIDGE_TRY(op.epsilon, float_argument(bound.get("epsilon", "0.001"), "epsilon"));
  CONVBRIDGE_TRY(op.center, flag_argument(bound.get("center", "True"), "center"));
  CONVBRIDGE_TRY(op.scale, flag_argument(bound.get("scale", "True"), "scale"));
  CONVBRIDGE_CHECK(read_common(bound, layer, op.rank));
  layer.op = op;
  return Ok{};
}

Status parse_layer_normalization(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_CHECK(check_positional_count(call, "LayerNormalization", kLayerNormalizationPositional));
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "LayerNormalization", kLayerNormalizationParameters, 0,
                                      "axis=-1, epsilon=0.001, center=True, scale=True, ...", keyword_hint));
  NormOp op;
  op.axes = NormAxes::channel;
  PyValue axis = bound.get("axis", "-1");
  // A list or tuple of one axis is that axis (LayerNormalization.build sorts the list and reads each entry).
  if (axis.kind == PyValue::Kind::sequence) {
    if (axis.items.size() != 1) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("LayerNormalization(axis={}) normalizes over several axes: only the channel axis "
                                    "(axis=-1) is translated to PyTorch (nn.LayerNorm normalizes trailing "
                                    "channels_first axes, which are not these)",
                                    axis.source));
    }
    const std::string source = axis.source;
    axis = PyValue(axis.items.front());
    axis.source = source;
  }
  if (axis.kind != PyValue::Kind::integer) {
    return invalid_argument(fmt::format("Expected an int or a list/tuple of ints for the argument 'axis', but received: "
                                        "{}",
                                        axis.source));
  }
  CONVBRIDGE_TRY(op.rank, channel_axis_rank(axis, "LayerNormalization"));
  CONVBRIDGE_TRY(op.epsilon, float_argument(bound.get("epsilon", "0.001"), "epsilon"));
  CONVBRIDGE_TRY(op.center, flag_argument(bound.get("center", "True"), "center"));
  CONVBRIDGE_TRY(op.scale, flag_argument(bound.get("scale", "True"), "scale"));
  CONVBRIDGE_TRY(const bool rms_scaling, flag_argument(bound.get("rms_scaling", "False"), "rms_scaling"));
  if (rms_scaling) {
    // layer_normalization.py warns that rms_scaling "incorrectly scales the input by the variance, not the root
    // mean square"; it has no PyTorch counterpart.
    return make_error(ErrorCode::unsupported,
                      "rms_scaling=True is not translated: Keras deprecates it (it scales by the variance, not the "
                      "root mean square) and PyTorch has no such layer; use keras.layers.RMSNormalization");
  }
  CONVBRIDGE_CHECK(read_common(bound, layer, op.rank));
  layer.op = op;
  return Ok{};
}

constexpr std::array<LayerClass, 3> kClasses = {{
    {Framework::keras, "BatchNormalization", kBatchNormalizationParameters, parse_batch_normalization},
    {Framework::keras, "GroupNormalization", kGroupNormalizationParameters, parse_group_normalization},
    {Framework::keras, "LayerNormalization", kLayerNormalizationParameters, parse_layer_normalization},
}};

}  // namespace

std::span<const LayerClass> keras_normalization_classes() { return kClasses; }

}  // namespace convbridge::frontends
