// STUB: the pooling family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_keras(const PoolOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "PoolOp -> keras is not implemented yet");
}
Result<TargetPlan> plan_keras(const AdaptivePoolOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "AdaptivePoolOp -> keras is not implemented yet");
}
std::vector<FrameworkWeight> keras_weights(const PoolOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> keras_weights(const AdaptivePoolOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
