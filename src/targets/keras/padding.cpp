// STUB: the padding family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_keras(const PadOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "PadOp -> keras is not implemented yet");
}
Result<TargetPlan> plan_keras(const PixelShuffleOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "PixelShuffleOp -> keras is not implemented yet");
}
std::vector<FrameworkWeight> keras_weights(const PadOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> keras_weights(const PixelShuffleOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
