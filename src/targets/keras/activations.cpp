// STUB: the activations family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_keras(const ActivationOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "ActivationOp -> keras is not implemented yet");
}
std::vector<FrameworkWeight> keras_weights(const ActivationOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
