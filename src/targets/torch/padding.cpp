// STUB: the padding family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_torch(const PadOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "PadOp -> torch is not implemented yet");
}
Result<TargetPlan> plan_torch(const PixelShuffleOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "PixelShuffleOp -> torch is not implemented yet");
}
std::vector<FrameworkWeight> torch_weights(const PadOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> torch_weights(const PixelShuffleOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
