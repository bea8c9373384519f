// PyTorch front-end for the normalization layers, with the checks PyTorch itself makes (2.x):
//   BatchNorm1d/2d/3d(num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True, device=None,
//                     dtype=None, *, bias=True)                                   torch/nn/modules/batchnorm.py (_NormBase)
//   InstanceNorm1d/2d/3d(num_features, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False, device=None,
//                        dtype=None, *, bias=True)                  torch/nn/modules/instancenorm.py
//   GroupNorm(num_groups, num_channels, eps=1e-05, affine=True, device=None, dtype=None, *, bias=True)
//       GroupNorm.__init__ raises "num_channels must be divisible by num_groups"  torch/nn/modules/normalization.py
//   LayerNorm(normalized_shape, eps=1e-05, elementwise_affine=True, bias=True, device=None, dtype=None)
//       normalized_shape: an int or a sequence of ints               torch/nn/modules/normalization.py
// Eval semantics (what convbridge translates): BatchNorm with track_running_stats=True uses the running statistics;
// with track_running_stats=False the buffers are None and F.batch_norm normalizes with the batch's statistics even
// in eval (_BatchNorm.forward: bn_training = running_mean is None and running_var is None). InstanceNorm with
// track_running_stats=True uses the running statistics in eval (_InstanceNorm.forward passes
// `self.training or not self.track_running_stats` as use_input_stats), which is a batch norm.
#include <fmt/format.h>

#include <array>
#include <string>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

// The last parameter, bias, is keyword-only (PyTorch 2.13: `*, bias=True`; with affine=True and bias=False the
// layer has a weight and no bias).
constexpr std::array<std::string_view, 8> kBatchNormParameters = {
    "num_features", "eps", "momentum", "affine", "track_running_stats", "device", "dtype", "bias"};
constexpr std::array<std::string_view, 7> kGroupNormParameters = {"num_groups", "num_channels", "eps",   "affine",
                                                                  "device",     "dtype",        "bias"};
constexpr std::array<std::string_view, 6> kLayerNormParameters = {"normalized_shape", "eps",    "elementwise_affine",
                                                                  "bias",             "device", "dtype"};

std::string keyword_hint(std::string_view keyword) {
  // Keras spellings users carry over, then near-misses of any parameter here.
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kKerasSpellings = {{
      {"epsilon", "eps"}, {"groups", "num_groups"}, {"center", "affine"}, {"scale", "affine"}, {"axis", "normalized_shape"},
  }};
  for (auto [keras, torch] : kKerasSpellings) {
    if (keyword == keras) return fmt::format(" (did you mean '{}'? '{}' is the Keras name)", torch, keras);
  }
  for (auto names : {std::span<const std::string_view>(kBatchNormParameters),
                     std::span<const std::string_view>(kGroupNormParameters),
                     std::span<const std::string_view>(kLayerNormParameters)}) {
    if (std::string hint = closest_name_hint(keyword, names); !hint.empty()) return hint;
  }
  return "";
}

// A size PyTorch passes to torch.empty: a non-bool int, positive here (torch.empty(0) builds, but a layer of zero
// channels normalizes nothing; a negative size fails in torch.empty: "Trying to create tensor with negative
// dimension").
Result<int64_t> positive_count(const PyValue& value, std::string_view name) {
  if (value.kind != PyValue::Kind::integer) {
    return invalid_argument(fmt::format("{}={} must be an int, not {}", name, value.source, kind_name(value.kind)));
  }
  if (value.integer <= 0) return invalid_argument(fmt::format("{}={} must be a positive int", name, value.source));
  if (value.integer > kMaxSizeArgument) {
    return invalid_argument(fmt::format("{}={} is too large (the limit is {})", name, value.source, kMaxSizeArgument));
  }
  return value.integer;
}

// eps and momentum: Python floats; ints convert (eps=0). PyTorch passes them to the C++ op as doubles, where a
// string or None fails ("argument 'eps' must be float").
Result<double> float_argument(const PyValue& value, std::string_view name) {
  if (value.kind == PyValue::Kind::number) return value.number;
  if (value.kind == PyValue::Kind::integer) return static_cast<double>(value.integer);
  return invalid_argument(fmt::format("{}={} must be a float, not {}", name, value.source, kind_name(value.kind)));
}

Result<bool> flag_argument(const PyValue& value, std::string_view name) {
  if (value.kind == PyValue::Kind::boolean) return value.boolean;
  return invalid_argument(fmt::format("{}={} must be True or False, not {}", name, value.source, kind_name(value.kind)));
}

// device and dtype change where and in what type the layer computes, not what: None, a device name, float32.
Status check_device_and_dtype(const BoundArguments& bound, OpLayer& layer) {
  const PyValue device = bound.get("device", "None");
  if (device.kind != PyValue::Kind::none && device.kind != PyValue::Kind::string && device.kind != PyValue::Kind::name &&
      device.kind != PyValue::Kind::call) {
    return invalid_argument(fmt::format("device={} must be a device name such as 'cpu'", device.source));
  }
  if (device.kind != PyValue::Kind::none) layer.notes.push_back(fmt::format("device={} is ignored", device.source));
  const PyValue dtype = bound.get("dtype", "None");
  const bool float32 = dtype.kind == PyValue::Kind::none ||
                       (dtype.kind == PyValue::Kind::name && (dtype.text == "torch.float32" || dtype.text == "torch.float")) ||
                       (dtype.kind == PyValue::Kind::string && dtype.text == "float32");
  if (!float32) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("dtype={} is not supported yet: convbridge plans float32 layers", dtype.source));
  }
  return Ok{};
}

// Python's own error for a keyword-only parameter passed positionally.
Status check_positional_count(const PyCall& call, std::string_view class_name, size_t positional) {
  size_t count = 0;
  for (const PyArgument& a : call.arguments) count += a.keyword ? 0 : 1;
  if (count > positional) {
    return invalid_argument(fmt::format("{} takes at most {} positional arguments ({} given; bias is keyword-only)",
                                        class_name, positional, count));
  }
  return Ok{};
}

// momentum: a float or None (cumulative moving average, _BatchNorm.forward: exponential_average_factor = 1 /
// num_batches_tracked).
Status read_momentum(const BoundArguments& bound, BatchNormOp& op) {
  const PyValue momentum = bound.get("momentum", "0.1");
  if (momentum.kind == PyValue::Kind::none) {
    op.cumulative_average = true;
    op.momentum_torch = 0.0;
    return Ok{};
  }
  CONVBRIDGE_TRY(op.momentum_torch, float_argument(momentum, "momentum"));
  return Ok{};
}

template <int Rank>
Status parse_batch_norm(const PyCall& call, OpLayer& layer) {
  const std::string name = fmt::format("BatchNorm{}d", Rank);
  CONVBRIDGE_CHECK(check_positional_count(call, name, kBatchNormParameters.size() - 1));
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, name, kBatchNormParameters, 1,
                                      "num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True, "
                                      "device=None, dtype=None, *, bias=True",
                                      keyword_hint));
  BatchNormOp op;
  op.rank = Rank;
  CONVBRIDGE_TRY(op.channels, positive_count(bound.get("num_features", "None"), "num_features"));
  CONVBRIDGE_TRY(op.epsilon, float_argument(bound.get("eps", "1e-05"), "eps"));
  CONVBRIDGE_CHECK(read_momentum(bound, op));
  CONVBRIDGE_TRY(const bool affine, flag_argument(bound.get("affine", "True"), "affine"));
  CONVBRIDGE_TRY(const bool track, flag_argument(bound.get("track_running_stats", "True"), "track_running_stats"));
  CONVBRIDGE_TRY(const bool bias, flag_argument(bound.get("bias", "True"), "bias"));
  op.scale = affine;
  op.center = affine && bias;
  op.use_batch_statistics = !track;
  CONVBRIDGE_CHECK(check_device_and_dtype(bound, layer));
  layer.op = op;
  return Ok{};
}

template <int Rank>
Status parse_instance_norm(const PyCall& call, OpLayer& layer) {
  const std::string name = fmt::format("InstanceNorm{}d", Rank);
  CONVBRIDGE_CHECK(check_positional_count(call, name, kBatchNormParameters.size() - 1));
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, name, kBatchNormParameters, 1,
                                      "num_features, eps=1e-05, momentum=0.1, affine=False, "
                                      "track_running_stats=False, device=None, dtype=None, *, bias=True",
                                      keyword_hint));
  CONVBRIDGE_TRY(const int64_t channels, positive_count(bound.get("num_features", "None"), "num_features"));
  CONVBRIDGE_TRY(const double eps, float_argument(bound.get("eps", "1e-05"), "eps"));
  CONVBRIDGE_TRY(const bool affine, flag_argument(bound.get("affine", "False"), "affine"));
  CONVBRIDGE_TRY(const bool track, flag_argument(bound.get("track_running_stats", "False"), "track_running_stats"));
  CONVBRIDGE_TRY(const bool bias, flag_argument(bound.get("bias", "True"), "bias"));
  CONVBRIDGE_CHECK(check_device_and_dtype(bound, layer));
  if (track) {
    // Eval mode normalizes with the running statistics per channel: a batch norm.
    BatchNormOp op;
    op.rank = Rank;
    op.channels = channels;
    op.epsilon = eps;
    op.scale = affine;
    op.center = affine && bias;
    CONVBRIDGE_CHECK(read_momentum(bound, op));
    layer.op = op;
    layer.notes.push_back(fmt::format("{} with track_running_stats=True normalizes with its running statistics in "
                                      "eval mode, per channel: a batch norm",
                                      name));
    return Ok{};
  }
  const PyValue momentum = bound.get("momentum", "0.1");
  if (momentum.kind != PyValue::Kind::none) {
    // Only the training-time running statistics (which track_running_stats=False does not keep) read it.
    CONVBRIDGE_TRY(const double ignored, float_argument(momentum, "momentum"));
    (void)ignored;
  }
  NormOp op;
  op.axes = NormAxes::group;
  op.channels = channels;
  op.groups = 0;  // one group per channel
  op.epsilon = eps;
  op.scale = affine;
  op.center = affine && bias;
  op.rank = Rank;
  layer.op = op;
  return Ok{};
}

Status parse_group_norm(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_CHECK(check_positional_count(call, "GroupNorm", kGroupNormParameters.size() - 1));
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "GroupNorm", kGroupNormParameters, 2,
                                      "num_groups, num_channels, eps=1e-05, affine=True, device=None, dtype=None, *, "
                                      "bias=True",
                                      keyword_hint));
  NormOp op;
  op.axes = NormAxes::group;
  CONVBRIDGE_TRY(op.groups, positive_count(bound.get("num_groups", "None"), "num_groups"));
  CONVBRIDGE_TRY(op.channels, positive_count(bound.get("num_channels", "None"), "num_channels"));
  if (op.channels % op.groups != 0) {
    // GroupNorm.__init__: ValueError("num_channels must be divisible by num_groups")
    return invalid_argument(fmt::format("num_channels must be divisible by num_groups (num_channels={}, num_groups={})",
                                        op.channels, op.groups));
  }
  CONVBRIDGE_TRY(op.epsilon, float_argument(bound.get("eps", "1e-05"), "eps"));
  CONVBRIDGE_TRY(const bool affine, flag_argument(bound.get("affine", "True"), "affine"));
  CONVBRIDGE_TRY(const bool bias, flag_argument(bound.get("bias", "True"), "bias"));
  op.scale = affine;
  op.center = affine && bias;
  CONVBRIDGE_CHECK(check_device_and_dtype(bound, layer));
  layer.op = op;
  return Ok{};
}

Status parse_layer_norm(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "LayerNorm", kLayerNormParameters, 1,
                                      "normalized_shape, eps=1e-05, elementwise_affine=True, bias=True, device=None, "
                                      "dtype=None",
                                      keyword_hint));
  NormOp op;
  op.axes = NormAxes::trailing;
  const PyValue shape = bound.get("normalized_shape", "None");
  if (shape.kind == PyValue::Kind::integer) {
    CONVBRIDGE_TRY(int64_t size, positive_count(shape, "normalized_shape"));
    op.normalized_shape = {size};
  } else if (shape.kind == PyValue::Kind::sequence) {
    if (shape.items.empty()) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("normalized_shape={} normalizes over no axis: not translated", shape.source));
    }
    for (const PyValue& item : shape.items) {
      if (item.kind != PyValue::Kind::integer) {
        return invalid_argument(fmt::format("normalized_shape={} must hold ints, not {}", shape.source,
                                            kind_name(item.kind)));
      }
      if (item.integer <= 0) {
        return invalid_argument(fmt::format("normalized_shape={} must hold positive sizes", shape.source));
      }
      if (item.integer > kMaxSizeArgument) {
        return invalid_argument(fmt::format("normalized_shape={} has the size {}, above the limit {}", shape.source,
                                            item.source, kMaxSizeArgument));
      }
      op.normalized_shape.push_back(item.integer);
    }
    if (op.normalized_shape.size() > static_cast<size_t>(kMaxSpatialRank) + 2) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("normalized_shape={} has {} entries: convbridge takes inputs of at most {} axes",
                                    shape.source, op.normalized_shape.size(), kMaxSpatialRank + 2));
    }
  } else {
    return invalid_argument(fmt::format("normalized_shape={} must be an int or a tuple of ints, not {}", shape.source,
                                        kind_name(shape.kind)));
  }
  CONVBRIDGE_TRY(op.epsilon, float_argument(bound.get("eps", "1e-05"), "eps"));
  CONVBRIDGE_TRY(const bool elementwise_affine,
                 flag_argument(bound.get("elementwise_affine", "True"), "elementwise_affine"));
  CONVBRIDGE_TRY(const bool bias, flag_argument(bound.get("bias", "True"), "bias"));
  // LayerNorm.__init__: weight exists with elementwise_affine, bias only with elementwise_affine and bias.
  op.scale = elementwise_affine;
  op.center = elementwise_affine && bias;
  if (!elementwise_affine && !bias) {
    layer.notes.push_back("bias=False changes nothing without elementwise_affine");
  }
  CONVBRIDGE_CHECK(check_device_and_dtype(bound, layer));
  layer.op = op;
  return Ok{};
}

constexpr std::array<LayerClass, 8> kClasses = {{
    {Framework::pytorch, "BatchNorm1d", kBatchNormParameters, parse_batch_norm<1>},
    {Framework::pytorch, "BatchNorm2d", kBatchNormParameters, parse_batch_norm<2>},
    {Framework::pytorch, "BatchNorm3d", kBatchNormParameters, parse_batch_norm<3>},
    {Framework::pytorch, "InstanceNorm1d", kBatchNormParameters, parse_instance_norm<1>},
    {Framework::pytorch, "InstanceNorm2d", kBatchNormParameters, parse_instance_norm<2>},
    {Framework::pytorch, "InstanceNorm3d", kBatchNormParameters, parse_instance_norm<3>},
    {Framework::pytorch, "GroupNorm", kGroupNormParameters, parse_group_norm},
    {Framework::pytorch, "LayerNorm", kLayerNormParameters, parse_layer_norm},
}};

}  // namespace

std::span<const LayerClass> torch_normalization_classes() { return kClasses; }

}  // namespace convbridge::frontends
