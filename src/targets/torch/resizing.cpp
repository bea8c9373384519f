// STUB: the resizing family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_torch(const ResizeOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "ResizeOp -> torch is not implemented yet");
}
std::vector<FrameworkWeight> torch_weights(const ResizeOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
