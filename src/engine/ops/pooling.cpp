// STUB: the pooling family is not implemented yet.
#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {
Result<Tensor> run(const PoolOp&, const Tensor&, std::span<const Tensor>) {
  return make_error(ErrorCode::unsupported, "PoolOp is not implemented yet");
}
Result<Tensor> run(const AdaptivePoolOp&, const Tensor&, std::span<const Tensor>) {
  return make_error(ErrorCode::unsupported, "AdaptivePoolOp is not implemented yet");
}
}  // namespace convbridge::engine
