// STUB: the resizing family is not implemented yet.
#include "targets/targets.hpp"

namespace convbridge::targets {
Result<TargetPlan> plan_keras(const ResizeOp&, const TargetInput&) {
  return make_error(ErrorCode::unsupported, "ResizeOp -> keras is not implemented yet");
}
std::vector<FrameworkWeight> keras_weights(const ResizeOp&, const TargetInput&) { return {}; }
}  // namespace convbridge::targets
