// Keras target for the normalization ops (PyTorch source -> Keras, channels_last).
//   BatchNormOp with running statistics -> keras.layers.BatchNormalization(axis=-1): both compute
//     (x - mean) / sqrt(var + eps) * gamma + beta in inference (keras/src/ops/nn.py batch_normalization,
//     torch.nn.functional.batch_norm); eps is copied, momentum becomes 1 - momentum.
//   BatchNormOp with batch statistics (track_running_stats=False) -> convbridge.BatchStatisticsNormalization: Keras'
//     BatchNormalization uses the batch's statistics only when called with training=True, which also updates its
//     moving statistics, so no native layer computes it in inference.
//   group -> keras.layers.GroupNormalization (contiguous channel groups like torch.nn.GroupNorm,
//     group_normalization.py _reshape_into_groups); instance norm is groups=-1.
//   trailing (nn.LayerNorm) -> keras.layers.LayerNormalization over the same axes written channels_last, gamma and
//     beta permuted when C is among them ((C, H, W) -> (H, W, C)).
//   channel -> keras.layers.LayerNormalization(axis=-1).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <numeric>

#include "convbridge/frontends.hpp"
#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {

CallValue number(double value) { return CallValue::of(value); }

int64_t channels_of(int64_t op_channels, const TargetInput& input) {
  if (op_channels > 0) return op_channels;
  return input.shape.size() >= 2 && input.shape[1] > 0 ? input.shape[1] : kUnknownSize;
}

CallValue weight_name(std::string name) {
  CallValue v;
  v.kind = CallValue::Kind::name;
  v.text = std::move(name);
  return v;
}

// Which neutral index each role has in the op's weights (gamma, beta, running_mean, running_var in that order,
// each present or not).
struct NeutralIndices {
  int gamma = -1, beta = -1, running_mean = -1, running_var = -1;
};
NeutralIndices indices_of(bool scale, bool center, bool running) {
  NeutralIndices out;
  int next = 0;
  if (scale) out.gamma = next++;
  if (center) out.beta = next++;
  if (running) {
    out.running_mean = next++;
    out.running_var = next++;
  }
  return out;
}

std::string spatial_letters(size_t count) {
  static constexpr std::string_view kLetters = "DHW";
  return std::string(kLetters.substr(kLetters.size() - count));
}

// Keras LayerNormalization's gamma/beta for nn.LayerNorm's normalized_shape on a (rank + 2)-D input: the same
// tensor when only spatial axes are normalized, (C, *spatial) -> (*spatial, C) when C is among them.
WeightLayoutChange trailing_layout(const std::vector<int64_t>& normalized_shape, int rank) {
  const size_t k = normalized_shape.size();
  if (k <= static_cast<size_t>(rank)) return identity_layout(normalized_shape, spatial_letters(k));
  WeightLayoutChange change = identity_layout(normalized_shape, "C" + spatial_letters(k - 1));
  std::iota(change.permutation.begin(), change.permutation.end(), 1);
  change.permutation.back() = 0;
  change.to_layout = spatial_letters(k - 1) + "C";
  change.to_shape.clear();
  for (const int axis : change.permutation) change.to_shape.push_back(normalized_shape[static_cast<size_t>(axis)]);
  return change;
}

std::vector<FrameworkWeight> norm_weights(const NormOp& op, const TargetInput& input) {
  std::vector<FrameworkWeight> out;
  const NeutralIndices index = indices_of(op.scale, op.center, false);
  if (op.axes == NormAxes::trailing) {
    const WeightLayoutChange layout = trailing_layout(op.normalized_shape, input.rank());
    if (op.scale) out.push_back(FrameworkWeight{"gamma", "gamma", index.gamma, 0.0, layout});
    if (op.center) out.push_back(FrameworkWeight{"beta", "beta", index.beta, 0.0, layout});
    return out;
  }
  const int64_t channels = channels_of(op.channels, input);
  if (op.scale) out.push_back(per_channel_weight("gamma", "gamma", index.gamma, channels));
  if (op.center) out.push_back(per_channel_weight("beta", "beta", index.beta, channels));
  return out;
}

}  // namespace

std::vector<FrameworkWeight> keras_weights(const BatchNormOp& op, const TargetInput& input) {
  // BatchNormalization.build adds gamma, beta, moving_mean, moving_variance in this order (layer.weights).
  const int64_t channels = channels_of(op.channels, input);
  const NeutralIndices index = indices_of(op.scale, op.center, !op.use_batch_statistics);
  std::vector<FrameworkWeight> out;
  if (op.scale) out.push_back(per_channel_weight("gamma", "gamma", index.gamma, channels));
  if (op.center) out.push_back(per_channel_weight("beta", "beta", index.beta, channels));
  if (!op.use_batch_statistics) {
    out.push_back(per_channel_weight("moving_mean", "running_mean", index.running_mean, channels));
    out.push_back(per_channel_weight("moving_variance", "running_var", index.running_var, channels));
  }
  return out;
}

std::vector<FrameworkWeight> keras_weights(const NormOp& op, const TargetInput& input) {
  return norm_weights(op, input);
}

Result<TargetPlan> plan_keras(const BatchNormOp& op, const TargetInput& input) {
  TargetPlan plan;
  if (op.use_batch_statistics) {
    TargetStep step = keras_step(op, "convbridge.BatchStatisticsNormalization",
                                 {arg("epsilon", number(op.epsilon)), arg("center", CallValue::flag(op.center)),
                                  arg("scale", CallValue::flag(op.scale))},
                                 "track_running_stats=False normalizes with the batch's own mean and biased variance "
                                 "even in eval; Keras BatchNormalization does that only in a training call (which "
                                 "also moves its statistics), so a small layer of ours computes it");
    step.helpers = {"BatchStatisticsNormalization"};
    step.weights = keras_weights(op, input);
    plan.steps.push_back(std::move(step));
    plan.notes.push_back("the output depends on the whole batch (batch statistics), as in PyTorch");
    return plan;
  }
  if (op.cumulative_average) {
    return make_error(ErrorCode::unsupported,
                      "momentum=None (running statistics as a cumulative average over all batches) has no Keras "
                      "equivalent: Keras BatchNormalization always updates them as an exponential moving average "
                      "(momentum * old + (1 - momentum) * batch); inference would match, training would not. Give a "
                      "float momentum (Keras momentum = 1 - PyTorch momentum)");
  }
  const double keras_momentum = momentum_complement(op.momentum_torch);
  TargetStep step = keras_step(op, "keras.layers.BatchNormalization",
                               {arg("axis", CallValue::of(int64_t{-1})), arg("momentum", number(keras_momentum)),
                                arg("epsilon", number(op.epsilon)), arg("center", CallValue::flag(op.center)),
                                arg("scale", CallValue::flag(op.scale))},
                               fmt::format("Keras BatchNormalization on the channels_last channel axis computes the "
                                           "same inference formula; epsilon={} is copied (Keras' default is 1e-3) and "
                                           "momentum is 1 - {} (Keras weighs the old value by its momentum)",
                                           python_literal(number(op.epsilon)), python_literal(number(op.momentum_torch))));
  step.weights = keras_weights(op, input);
  FrameworkCall function;
  function.callee = "tf.nn.batch_normalization";
  function.arguments = {arg("", weight_name("x")),
                        arg("mean", weight_name("moving_mean")),
                        arg("variance", weight_name("moving_variance")),
                        arg("offset", op.center ? weight_name("beta") : CallValue::none()),
                        arg("scale", op.scale ? weight_name("gamma") : CallValue::none()),
                        arg("variance_epsilon", number(op.epsilon))};
  step.function = std::move(function);
  plan.steps.push_back(std::move(step));
  plan.notes.push_back("training: PyTorch moves running_var towards the batch's unbiased variance (divided by n - 1), "
                       "Keras moves moving_variance towards the biased one (divided by n), so a training step updates "
                       "the variance statistic differently by the factor n / (n - 1) on the batch term; inference is "
                       "exact");
  return plan;
}

Result<TargetPlan> plan_keras(const NormOp& op, const TargetInput& input) {
  TargetPlan plan;
  // With the rank and channels known but sizes not, the channel checks (groups vs channels) still apply: the
  // planner runs the source's shape checks only when every size is known.
  if (input.shape.size() >= 2 && input.shape[1] > 0 && !input.sizes_known()) {
    std::vector<int64_t> probe = input.shape;
    for (int64_t& size : probe) size = size > 0 ? size : 2;
    if (op.axes != NormAxes::trailing) {
      CONVBRIDGE_TRY(auto checked, output_shape(op, probe));
      (void)checked;
    }
  }
  const CallValue eps = number(op.epsilon);
  switch (op.axes) {
    case NormAxes::group: {
      const bool instance = op.groups == 0 || (op.channels > 0 && op.groups == op.channels);
      TargetStep step = keras_step(
          op, "keras.layers.GroupNormalization",
          {arg("groups", CallValue::of(instance ? int64_t{-1} : op.groups)), arg("axis", CallValue::of(int64_t{-1})),
           arg("epsilon", eps), arg("center", CallValue::flag(op.center)), arg("scale", CallValue::flag(op.scale))},
          instance ? "Keras GroupNormalization(groups=-1) is instance normalization: statistics per sample and "
                     "channel over every position, as nn.InstanceNorm without running statistics"
                   : "Keras GroupNormalization splits the channels into the same contiguous groups as nn.GroupNorm "
                     "and takes the same per-sample statistics; epsilon is copied (Keras' default is 1e-3)");
      step.weights = keras_weights(op, input);
      plan.steps.push_back(std::move(step));
      return plan;
    }
    case NormAxes::channel: {
      TargetStep step = keras_step(op, "keras.layers.LayerNormalization",
                                   {arg("axis", CallValue::of(int64_t{-1})), arg("epsilon", eps),
                                    arg("center", CallValue::flag(op.center)), arg("scale", CallValue::flag(op.scale))},
                                   "normalizing over the channels at each position is Keras' default LayerNormalization "
                                   "on channels_last tensors");
      step.weights = keras_weights(op, input);
      plan.steps.push_back(std::move(step));
      return plan;
    }
    case NormAxes::trailing: break;
  }
  const size_t k = op.normalized_shape.size();
  if (input.shape.empty()) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("LayerNorm(normalized_shape=({})) needs the input shape: it normalizes the last {} "
                                  "axes of the channels_first input, and which channels_last axes those are (whether "
                                  "C is among them) depends on the input's rank",
                                  fmt::join(op.normalized_shape, ", "), k));
  }
  const int rank = input.rank();
  if (k > static_cast<size_t>(rank) + 1) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("LayerNorm(normalized_shape=({})) on a {}-D input normalizes over the batch axis too; "
                                  "Keras LayerNormalization normalizes each sample: not translated",
                                  fmt::join(op.normalized_shape, ", "), rank + 2));
  }
  if (!input.sizes_known()) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("LayerNorm(normalized_shape=({})) needs every input size: Keras LayerNormalization "
                                  "over axes other than the last builds gamma and beta from the input's sizes, so the "
                                  "Keras layer is built for one input size (the sizes PyTorch demands anyway)",
                                  fmt::join(op.normalized_shape, ", ")));
  }
  // channels_last positions of the normalized channels_first axes: spatial axis i (0-based) is at i + 1, C at rank + 1.
  std::vector<int64_t> axes;
  const bool with_channels = k == static_cast<size_t>(rank) + 1;
  for (int i = rank - static_cast<int>(with_channels ? k - 1 : k); i < rank; ++i) axes.push_back(i + 1);
  if (with_channels) axes.push_back(rank + 1);
  TargetStep step = keras_step(
      op, "keras.layers.LayerNormalization",
      {arg("axis", CallValue::ints(axes)), arg("epsilon", eps), arg("center", CallValue::flag(op.center)),
       arg("scale", CallValue::flag(op.scale))},
      with_channels
          ? fmt::format("nn.LayerNorm over ({}) normalizes C and every spatial axis; channels_last those are axes {}, "
                        "and gamma/beta move from (C, *spatial) to (*spatial, C)",
                        fmt::join(op.normalized_shape, ", "), fmt::join(axes, ", "))
          : fmt::format("nn.LayerNorm over ({}) normalizes the last spatial axes only, per sample and channel; "
                        "channels_last those are axes {}, gamma/beta keep their layout",
                        fmt::join(op.normalized_shape, ", "), fmt::join(axes, ", ")));
  step.weights = keras_weights(op, input);
  plan.steps.push_back(std::move(step));
  plan.exact_for_every_input_size = false;
  plan.notes.push_back("the Keras layer is built for this input size: LayerNormalization's gamma and beta take the "
                       "sizes of the normalized axes");
  return plan;
}

}  // namespace convbridge::targets
