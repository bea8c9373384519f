// The two targets of the op set. For each op kind, each target plans the cheapest exact sequence of its own
// layers (or small layers of ours where it has none) and names the weights its layers hold; the family files
// (src/targets/keras/<family>.cpp, src/targets/torch/<family>.cpp) define them, src/targets/layer_planner.cpp
// dispatches, adds size guards and fills the plan.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convbridge/layer_plan.hpp"

namespace convbridge::targets {

// What a target knows when it plans: the source layer and the input, channels_first. `shape` is empty when the
// rank is unknown; entries are kUnknownSize (-1) where a size is unknown (the channel count is always known when
// the op needs it: the planner fills it in).
struct TargetInput {
  const OpLayer& source;
  std::vector<int64_t> shape;
  bool sizes_known() const;  // every spatial size known
  int rank() const;          // spatial rank, or the op's own when shape is empty
};

struct TargetPlan {
  std::vector<TargetStep> steps;
  bool exact_for_every_input_size = true;  // false: exact for input.shape only (all sizes known)
  std::vector<std::string> notes;
};

// Errors name the argument and why, e.g. "ceil_mode=True with padding needs the input size: ...".
#define CONVBRIDGE_TARGET_FUNCTIONS(Kind)                                                                   \
  Result<TargetPlan> plan_keras(const Kind& op, const TargetInput& input);                                  \
  Result<TargetPlan> plan_torch(const Kind& op, const TargetInput& input);                                  \
  /* The weights of each framework's own layer for this op: names, layouts (a source layer's weights). */    \
  /* keras_weights also names a TensorFlow function's tensor arguments. */                                  \
  std::vector<FrameworkWeight> keras_weights(const Kind& op, const TargetInput& input);                     \
  std::vector<FrameworkWeight> torch_weights(const Kind& op, const TargetInput& input);
CONVBRIDGE_TARGET_FUNCTIONS(PoolOp)
CONVBRIDGE_TARGET_FUNCTIONS(AdaptivePoolOp)
CONVBRIDGE_TARGET_FUNCTIONS(BatchNormOp)
CONVBRIDGE_TARGET_FUNCTIONS(NormOp)
CONVBRIDGE_TARGET_FUNCTIONS(ResizeOp)
CONVBRIDGE_TARGET_FUNCTIONS(PadOp)
CONVBRIDGE_TARGET_FUNCTIONS(PixelShuffleOp)
CONVBRIDGE_TARGET_FUNCTIONS(ActivationOp)
#undef CONVBRIDGE_TARGET_FUNCTIONS

// Helpers for the family files.
WeightLayoutChange identity_layout(std::vector<int64_t> shape, std::string letters = "C");
// A (C) tensor holding the source op's neutral weight `neutral_index` (its role `role`) unchanged.
FrameworkWeight per_channel_weight(std::string name, std::string role, int neutral_index, int64_t channels);
TargetStep keras_step(Op op, std::string callee, std::vector<CallArgument> arguments, std::string why);
TargetStep torch_step(Op op, std::string callee, std::vector<CallArgument> arguments, std::string why);
CallArgument arg(std::string keyword, CallValue value);
CallValue float_tuple(const std::vector<double>& values);  // (1.5, 2.0)

// convbridge.SeparableResize's arguments (its Keras layer and torch module take the same): only those the mode
// reads; src/targets/separable_resize.cpp.
std::vector<CallArgument> separable_resize_arguments(const ResizeOp& op);

}  // namespace convbridge::targets
