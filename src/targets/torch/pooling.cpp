// STUB: the pooling family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_torch(const PoolOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "PoolOp -> torch is not implemented yet");
}
Result<TargetPlan> plan_torch(const AdaptivePoolOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "AdaptivePoolOp -> torch is not implemented yet");
}
std::vector<FrameworkWeight> torch_weights(const PoolOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> torch_weights(const AdaptivePoolOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
