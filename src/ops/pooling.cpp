// STUB: the pooling family is not implemented yet.
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {
Status validate(const PoolOp&) { return make_error(ErrorCode::unsupported, "PoolOp is not implemented yet"); }
Result<std::vector<int64_t>> output_shape(const PoolOp&, std::span<const int64_t>) {
  return make_error(ErrorCode::unsupported, "PoolOp is not implemented yet");
}
Status validate(const AdaptivePoolOp&) { return make_error(ErrorCode::unsupported, "AdaptivePoolOp is not implemented yet"); }
Result<std::vector<int64_t>> output_shape(const AdaptivePoolOp&, std::span<const int64_t>) {
  return make_error(ErrorCode::unsupported, "AdaptivePoolOp is not implemented yet");
}
namespace ops {
std::string describe(const PoolOp&) { return "PoolOp"; }
std::vector<OpWeight> weights_of(const PoolOp&, std::span<const int64_t>) { return {}; }
int rank_of(const PoolOp&) { return 0; }
std::string describe(const AdaptivePoolOp&) { return "AdaptivePoolOp"; }
std::vector<OpWeight> weights_of(const AdaptivePoolOp&, std::span<const int64_t>) { return {}; }
int rank_of(const AdaptivePoolOp&) { return 0; }
}  // namespace ops
}  // namespace convbridge
