// STUB: the activations family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_torch(const ActivationOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "ActivationOp -> torch is not implemented yet");
}
std::vector<FrameworkWeight> torch_weights(const ActivationOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
