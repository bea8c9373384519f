// STUB: the normalization family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_torch(const BatchNormOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "BatchNormOp -> torch is not implemented yet");
}
Result<TargetPlan> plan_torch(const NormOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "NormOp -> torch is not implemented yet");
}
std::vector<FrameworkWeight> torch_weights(const BatchNormOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> torch_weights(const NormOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
