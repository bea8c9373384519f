// STUB: the resizing family is not implemented yet.
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {
Status validate(const ResizeOp&) { return make_error(ErrorCode::unsupported, "ResizeOp is not implemented yet"); }
Result<std::vector<int64_t>> output_shape(const ResizeOp&, std::span<const int64_t>) {
  return make_error(ErrorCode::unsupported, "ResizeOp is not implemented yet");
}
namespace ops {
std::string describe(const ResizeOp&) { return "ResizeOp"; }
std::vector<OpWeight> weights_of(const ResizeOp&, std::span<const int64_t>) { return {}; }
int rank_of(const ResizeOp&) { return 0; }
}  // namespace ops
}  // namespace convbridge
