// STUB: the normalization family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_keras(const BatchNormOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "BatchNormOp -> keras is not implemented yet");
}
Result<TargetPlan> plan_keras(const NormOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "NormOp -> keras is not implemented yet");
}
std::vector<FrameworkWeight> keras_weights(const BatchNormOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> keras_weights(const NormOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
