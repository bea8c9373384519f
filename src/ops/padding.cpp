// STUB: the padding family is not implemented yet.
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {
Status validate(const PadOp&) { return make_error(ErrorCode::unsupported, "PadOp is not implemented yet"); }
Result<std::vector<int64_t>> output_shape(const PadOp&, std::span<const int64_t>) {
  return make_error(ErrorCode::unsupported, "PadOp is not implemented yet");
}
Status validate(const PixelShuffleOp&) { return make_error(ErrorCode::unsupported, "PixelShuffleOp is not implemented yet"); }
Result<std::vector<int64_t>> output_shape(const PixelShuffleOp&, std::span<const int64_t>) {
  return make_error(ErrorCode::unsupported, "PixelShuffleOp is not implemented yet");
}
namespace ops {
std::string describe(const PadOp&) { return "PadOp"; }
std::vector<OpWeight> weights_of(const PadOp&, std::span<const int64_t>) { return {}; }
int rank_of(const PadOp&) { return 0; }
std::string describe(const PixelShuffleOp&) { return "PixelShuffleOp"; }
std::vector<OpWeight> weights_of(const PixelShuffleOp&, std::span<const int64_t>) { return {}; }
int rank_of(const PixelShuffleOp&) { return 0; }
}  // namespace ops
}  // namespace convbridge
