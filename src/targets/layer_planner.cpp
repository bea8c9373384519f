// plan_op_layer: the layout and channel bookkeeping every op shares, then the target's family planner.
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "targets/targets.hpp"

namespace convbridge {
namespace targets {

bool TargetInput::sizes_known() const {
  return !shape.empty() && std::all_of(shape.begin(), shape.end(), [](int64_t v) { return v > 0; });
}

int TargetInput::rank() const {
  if (!shape.empty()) return static_cast<int>(shape.size()) - 2;
  return op_rank(source.op);
}

WeightLayoutChange identity_layout(std::vector<int64_t> shape, std::string letters) {
  WeightLayoutChange change;
  change.from_layout = letters;
  change.to_layout = std::move(letters);
  change.permutation.resize(shape.size());
  std::iota(change.permutation.begin(), change.permutation.end(), 0);
  change.from_shape = shape;
  change.to_shape = std::move(shape);
  return change;
}

FrameworkWeight per_channel_weight(std::string name, std::string role, int neutral_index, int64_t channels) {
  FrameworkWeight weight;
  weight.name = std::move(name);
  weight.role = std::move(role);
  weight.neutral_index = neutral_index;
  weight.from_neutral = identity_layout({channels});
  return weight;
}

namespace {
TargetStep step(Op op, std::string callee, std::vector<CallArgument> arguments, std::string why) {
  TargetStep out;
  out.op = std::move(op);
  out.call.callee = std::move(callee);
  out.call.arguments = std::move(arguments);
  out.why = std::move(why);
  return out;
}
}  // namespace

TargetStep keras_step(Op op, std::string callee, std::vector<CallArgument> arguments, std::string why) {
  return step(std::move(op), std::move(callee), std::move(arguments), std::move(why));
}
TargetStep torch_step(Op op, std::string callee, std::vector<CallArgument> arguments, std::string why) {
  return step(std::move(op), std::move(callee), std::move(arguments), std::move(why));
}
CallArgument arg(std::string keyword, CallValue value) { return CallArgument{std::move(keyword), std::move(value)}; }

}  // namespace targets

namespace {

// Ops whose channel count the text may leave open (Keras BatchNormalization()) take it from the input.
template <class Kind>
Status bind_channels(Kind& op, int64_t channels, const OpLayer& layer) {
  if constexpr (requires { op.channels; }) {
    if (channels <= 0) return Ok{};
    if (op.channels == 0) {
      op.channels = channels;
    } else if (op.channels != channels) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("{} expects {} channels, but the input shape has {}", layer.class_name,
                                    op.channels, channels));
    }
  }
  return Ok{};
}

}  // namespace

Result<LayerPlan> plan_op_layer(const OpLayer& layer, const std::optional<std::vector<int64_t>>& input_shape,
                                int64_t channels) {
  LayerPlan plan;
  plan.source = layer;
  plan.target = layer.framework == Framework::pytorch ? Framework::keras : Framework::pytorch;
  plan.input_shape = input_shape;
  std::vector<int64_t> shape;  // channels_first
  if (input_shape) {
    shape = *input_shape;
    if (shape.size() < 2) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("{} takes (N, C, ...) input: the input shape needs at least 2 entries",
                                    layer.class_name));
    }
    if (layer.framework != Framework::pytorch) std::rotate(shape.begin() + 1, shape.end() - 1, shape.end());
    if (shape[1] > 0) {
      if (channels > 0 && channels != shape[1]) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("the input shape has {} channels, but the layer was built for {}", shape[1],
                                      channels));
      }
      channels = shape[1];
    } else if (channels > 0) {
      shape[1] = channels;
    }
  }
  CONVBRIDGE_CHECK(std::visit([&](auto& op) { return bind_channels(op, channels, layer); }, plan.source.op));
  if (!shape.empty() && shape[1] <= 0) {
    const int64_t op_channels = std::visit(
        [](const auto& op) -> int64_t {
          if constexpr (requires { op.channels; }) return op.channels;
          return 0;
        },
        plan.source.op);
    if (op_channels > 0) shape[1] = op_channels;
  }
  // With every size known, the source framework's own shape checks run now.
  const bool known = !shape.empty() && std::all_of(shape.begin(), shape.end(), [](int64_t v) { return v > 0; });
  if (known) {
    CONVBRIDGE_TRY(auto ignored, op_output_shape(plan.source.op, shape));
    (void)ignored;
  }
  plan.channels_first_input = shape;
  const targets::TargetInput input{plan.source, shape};
  CONVBRIDGE_TRY(targets::TargetPlan target, std::visit(
                                                 [&](const auto& op) {
                                                   return plan.target == Framework::keras
                                                              ? targets::plan_keras(op, input)
                                                              : targets::plan_torch(op, input);
                                                 },
                                                 plan.source.op));
  plan.steps = std::move(target.steps);
  plan.exact_for_every_input_size = target.exact_for_every_input_size;
  plan.notes = layer.notes;
  plan.notes.insert(plan.notes.end(), target.notes.begin(), target.notes.end());
  plan.weights = op_weights(plan.source.op, shape);
  plan.source_weights = std::visit(
      [&](const auto& op) {
        return layer.framework == Framework::pytorch ? targets::torch_weights(op, input)
                                                     : targets::keras_weights(op, input);
      },
      plan.source.op);
  return plan;
}

}  // namespace convbridge
