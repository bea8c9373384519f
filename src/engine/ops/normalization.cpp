// STUB: the normalization family is not implemented yet.
#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {
Result<Tensor> run(const BatchNormOp&, const Tensor&, std::span<const Tensor>) {
  return make_error(ErrorCode::unsupported, "BatchNormOp is not implemented yet");
}
Result<Tensor> run(const NormOp&, const Tensor&, std::span<const Tensor>) {
  return make_error(ErrorCode::unsupported, "NormOp is not implemented yet");
}
}  // namespace convbridge::engine
