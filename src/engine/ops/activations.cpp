// STUB: the activations family is not implemented yet.
#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {
Result<Tensor> run(const ActivationOp&, const Tensor&, std::span<const Tensor>) {
  return make_error(ErrorCode::unsupported, "ActivationOp is not implemented yet");
}
}  // namespace convbridge::engine
