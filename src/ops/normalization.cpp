// STUB: the normalization family is not implemented yet.
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {
Status validate(const BatchNormOp&) { return make_error(ErrorCode::unsupported, "BatchNormOp is not implemented yet"); }
Result<std::vector<int64_t>> output_shape(const BatchNormOp&, std::span<const int64_t>) {
  return make_error(ErrorCode::unsupported, "BatchNormOp is not implemented yet");
}
Status validate(const NormOp&) { return make_error(ErrorCode::unsupported, "NormOp is not implemented yet"); }
Result<std::vector<int64_t>> output_shape(const NormOp&, std::span<const int64_t>) {
  return make_error(ErrorCode::unsupported, "NormOp is not implemented yet");
}
namespace ops {
std::string describe(const BatchNormOp&) { return "BatchNormOp"; }
std::vector<OpWeight> weights_of(const BatchNormOp&, std::span<const int64_t>) { return {}; }
int rank_of(const BatchNormOp&) { return 0; }
std::string describe(const NormOp&) { return "NormOp"; }
std::vector<OpWeight> weights_of(const NormOp&, std::span<const int64_t>) { return {}; }
int rank_of(const NormOp&) { return 0; }
}  // namespace ops
}  // namespace convbridge
