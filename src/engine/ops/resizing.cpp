// STUB: the resizing family is not implemented yet.
#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {
Result<Tensor> run(const ResizeOp&, const Tensor&, std::span<const Tensor>) {
  return make_error(ErrorCode::unsupported, "ResizeOp is not implemented yet");
}
}  // namespace convbridge::engine
