// PyTorch target for the normalization ops (Keras source -> PyTorch, channels_first).
//   BatchNormOp -> nn.BatchNorm1d/2d/3d (by the input rank; BatchNorm2d when the rank is unknown), eps copied,
//     momentum 1 - Keras momentum. Keras center/scale are separate, PyTorch's affine covers both: with only one of
//     them the missing parameter is a constant (weight 1 or bias 0) that must stay frozen.
//   group -> nn.GroupNorm (groups=-1: one group per channel), same contiguous groups and per-sample statistics
//     (torch/nn/functional.py group_norm vs keras group_normalization.py).
//   channel -> nn.LayerNorm(C) on (N, C) input; otherwise convbridge.ChannelsLayerNorm (channels_last permute,
//     F.layer_norm over C, permute back: ConvNeXt's LayerNorm for channels_first), since nn.LayerNorm only
//     normalizes trailing axes.
//   trailing -> nn.LayerNorm (the same layer).
#include <fmt/format.h>

#include <algorithm>

#include "convbridge/frontends.hpp"
#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {

int64_t channels_of(int64_t op_channels, const TargetInput& input) {
  if (op_channels > 0) return op_channels;
  return input.shape.size() >= 2 && input.shape[1] > 0 ? input.shape[1] : kUnknownSize;
}

// Neutral indices of gamma and beta (then running mean/var) as op_weights orders them.
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

// PyTorch's affine parameters for a source with gamma and/or beta: `weight` (the constant 1 when the source has no
// gamma) whenever either exists, and `bias` (the constant 0 when the source has no beta) when the layer has one.
void affine_weights(bool scale, bool center, bool with_bias, const NeutralIndices& index, const std::vector<int64_t>& shape,
                    std::vector<FrameworkWeight>& out) {
  if (!scale && !center) return;
  const std::string letters = std::string("CDHW").substr(4 - std::min<size_t>(4, shape.size()));
  out.push_back(FrameworkWeight{"weight", "gamma", scale ? index.gamma : -1, 1.0, identity_layout(shape, letters)});
  if (with_bias) {
    out.push_back(FrameworkWeight{"bias", "beta", center ? index.beta : -1, 0.0, identity_layout(shape, letters)});
  }
}

std::string frozen_note(bool scale, bool center) {
  if (scale == center) return "";
  return scale ? "the Keras layer has no beta (center=False): PyTorch's affine=True adds a bias, loaded as 0; keep "
                 "it at 0 when training (bias.requires_grad_(False)), which the constructor cannot say"
               : "the Keras layer has no gamma (scale=False): PyTorch's affine=True adds a weight, loaded as 1; keep "
                 "it at 1 when training (weight.requires_grad_(False)), which the constructor cannot say";
}

}  // namespace

std::vector<FrameworkWeight> torch_weights(const BatchNormOp& op, const TargetInput& input) {
  // _NormBase registers weight, bias (affine), then the buffers running_mean, running_var (num_batches_tracked is
  // a counter, not translated).
  const int64_t channels = channels_of(op.channels, input);
  const NeutralIndices index = indices_of(op.scale, op.center, !op.use_batch_statistics);
  std::vector<FrameworkWeight> out;
  if (op.scale) out.push_back(per_channel_weight("weight", "gamma", index.gamma, channels));
  if (op.center) out.push_back(per_channel_weight("bias", "beta", index.beta, channels));
  if (!op.use_batch_statistics) {
    out.push_back(per_channel_weight("running_mean", "running_mean", index.running_mean, channels));
    out.push_back(per_channel_weight("running_var", "running_var", index.running_var, channels));
  }
  return out;
}

std::vector<FrameworkWeight> torch_weights(const NormOp& op, const TargetInput& input) {
  const NeutralIndices index = indices_of(op.scale, op.center, false);
  std::vector<int64_t> shape = op.axes == NormAxes::trailing ? op.normalized_shape
                                                             : std::vector<int64_t>{channels_of(op.channels, input)};
  const std::string letters = op.axes == NormAxes::trailing ? std::string("CDHW").substr(4 - std::min<size_t>(4, shape.size())) : "C";
  std::vector<FrameworkWeight> out;
  if (op.scale) out.push_back(FrameworkWeight{"weight", "gamma", index.gamma, 0.0, identity_layout(shape, letters)});
  if (op.center) out.push_back(FrameworkWeight{"bias", "beta", index.beta, 0.0, identity_layout(shape, letters)});
  return out;
}

Result<TargetPlan> plan_torch(const BatchNormOp& op, const TargetInput& input) {
  TargetPlan plan;
  if (op.use_batch_statistics || op.cumulative_average) {
    return make_error(ErrorCode::unsupported, "a batch-statistics or cumulative batch norm has no Keras source form");
  }
  int rank = input.rank();
  if (input.shape.empty() && op.rank == 0) {
    rank = 2;
    plan.notes.push_back("the input rank is unknown: nn.BatchNorm2d takes 4-D input (N, C, H, W); give an input "
                         "shape for 2-D/3-D (BatchNorm1d) or 5-D (BatchNorm3d) input");
  }
  if (rank > 3) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("PyTorch has batch norm layers for up to 3 spatial axes, the input has {}", rank));
  }
  const int64_t channels = channels_of(op.channels, input);
  const bool affine = op.scale || op.center;
  // PyTorch's weight exists whenever affine; its bias can be left out (bias=False), its weight cannot.
  BatchNormOp computed = op;
  computed.scale = affine;
  computed.rank = rank == 0 ? 1 : rank;
  const double torch_momentum = op.momentum_torch;
  TargetStep step = torch_step(
      computed, fmt::format("nn.BatchNorm{}d", rank == 0 ? 1 : rank),
      {arg("", CallValue::channels_or_name(channels)), arg("eps", CallValue::of(op.epsilon)),
       arg("momentum", CallValue::of(torch_momentum)), arg("affine", CallValue::flag(affine)),
       arg("track_running_stats", CallValue::flag(true))},
      fmt::format("nn.BatchNorm{}d in eval mode normalizes with its running statistics like Keras "
                  "BatchNormalization in inference; eps={} is copied (PyTorch's default is 1e-5) and momentum is 1 - "
                  "the Keras momentum",
                  rank == 0 ? 1 : rank, python_literal(CallValue::of(op.epsilon))));
  // bias=False (keyword-only, PyTorch 2.x) only where it says something: a Keras layer with gamma but no beta.
  if (op.scale && !op.center) step.call.arguments.push_back(arg("bias", CallValue::flag(false)));
  const NeutralIndices index = indices_of(op.scale, op.center, true);
  affine_weights(op.scale, op.center, op.center, index, {channels}, step.weights);
  step.weights.push_back(per_channel_weight("running_mean", "running_mean", index.running_mean, channels));
  step.weights.push_back(per_channel_weight("running_var", "running_var", index.running_var, channels));
  plan.steps.push_back(std::move(step));
  if (op.center && !op.scale) plan.notes.push_back(frozen_note(op.scale, op.center));
  plan.notes.push_back("training: Keras moves moving_variance towards the batch's biased variance (divided by n), "
                       "PyTorch moves running_var towards the unbiased one (divided by n - 1); inference is exact");
  return plan;
}

Result<TargetPlan> plan_torch(const NormOp& op, const TargetInput& input) {
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
  const int64_t channels = channels_of(op.channels, input);
  const bool affine = op.scale || op.center;
  // What the PyTorch layer computes: GroupNorm's affine has both parameters; LayerNorm's bias is separate.
  NormOp computed = op;
  computed.scale = affine;
  computed.center = op.center;
  const NeutralIndices index = indices_of(op.scale, op.center, false);
  const CallValue eps = CallValue::of(op.epsilon);
  switch (op.axes) {
    case NormAxes::group: {
      const bool instance = op.groups == 0;
      // F.group_norm checks every call, eval included, that a group holds more than one value ("Expected more than
      // 1 value per channel when training", torch/nn/functional.py _verify_batch_size); Keras normalizes such a
      // group to beta. With the sizes known, say so now.
      if (input.sizes_known()) {
        int64_t per_group = instance ? 1 : input.shape[1] / op.groups;
        for (size_t i = 2; i < input.shape.size(); ++i) per_group *= input.shape[i];
        if (per_group == 1) {
          return make_error(ErrorCode::input_shape,
                            "each group holds a single value at this input size: nn.GroupNorm rejects that even in "
                            "eval (\"Expected more than 1 value per channel\"), while Keras GroupNormalization "
                            "outputs beta; give more channels per group or a larger input");
        }
      }
      const CallValue groups = instance ? CallValue::channels_or_name(channels) : CallValue::of(op.groups);
      TargetStep step = torch_step(
          computed, "nn.GroupNorm",
          {arg("", groups), arg("", CallValue::channels_or_name(channels)), arg("eps", eps),
           arg("affine", CallValue::flag(affine))},
          instance ? "Keras GroupNormalization(groups=-1) is one group per channel: nn.GroupNorm with as many groups "
                     "as channels (per-channel gamma/beta, which nn.InstanceNorm also has only with affine=True)"
                   : "nn.GroupNorm splits the channels into the same contiguous groups as Keras GroupNormalization "
                     "and takes the same per-sample statistics; eps is copied (PyTorch's default is 1e-5)");
      if (op.scale && !op.center) step.call.arguments.push_back(arg("bias", CallValue::flag(false)));
      affine_weights(op.scale, op.center, op.center, index, {channels}, step.weights);
      plan.steps.push_back(std::move(step));
      break;
    }
    case NormAxes::channel: {
      const bool native = !input.shape.empty() && input.rank() == 0;
      TargetStep step = torch_step(
          computed, native ? "nn.LayerNorm" : "convbridge.ChannelsLayerNorm",
          {arg("", CallValue::channels_or_name(channels)), arg("eps", eps),
           arg("elementwise_affine", CallValue::flag(affine)), arg("bias", CallValue::flag(op.center))},
          native ? "on (N, C) input the channels are the trailing axis, which nn.LayerNorm normalizes"
                 : "Keras LayerNormalization(axis=-1) normalizes the channels at each position; nn.LayerNorm only "
                   "normalizes trailing axes, which channels_first are spatial, so a small module of ours moves C "
                   "last, applies F.layer_norm over it and moves it back (as ConvNeXt's channels_first LayerNorm does)");
      if (!native) step.helpers = {"ChannelsLayerNorm"};
      affine_weights(op.scale, op.center, op.center, index, {channels}, step.weights);
      plan.steps.push_back(std::move(step));
      break;
    }
    case NormAxes::trailing: {
      TargetStep step = torch_step(
          computed, "nn.LayerNorm",
          {arg("", CallValue::ints(op.normalized_shape)), arg("eps", eps),
           arg("elementwise_affine", CallValue::flag(affine)), arg("bias", CallValue::flag(op.center))},
          "the same trailing-axes layer normalization");
      affine_weights(op.scale, op.center, op.center, index, op.normalized_shape, step.weights);
      plan.steps.push_back(std::move(step));
      break;
    }
  }
  // bias=False covers a Keras layer without beta; only a missing gamma needs a frozen constant.
  const bool needs_constant = op.center && !op.scale;
  if (needs_constant) plan.notes.push_back(frozen_note(op.scale, op.center));
  return plan;
}

}  // namespace convbridge::targets
