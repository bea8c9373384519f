// STUB: the padding family is not implemented yet.
#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {
Result<Tensor> run(const PadOp&, const Tensor&, std::span<const Tensor>) {
  return make_error(ErrorCode::unsupported, "PadOp is not implemented yet");
}
Result<Tensor> run(const PixelShuffleOp&, const Tensor&, std::span<const Tensor>) {
  return make_error(ErrorCode::unsupported, "PixelShuffleOp is not implemented yet");
}
}  // namespace convbridge::engine
