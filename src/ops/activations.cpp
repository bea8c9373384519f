// STUB: the activations family is not implemented yet.
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {
Status validate(const ActivationOp&) { return make_error(ErrorCode::unsupported, "ActivationOp is not implemented yet"); }
Result<std::vector<int64_t>> output_shape(const ActivationOp&, std::span<const int64_t>) {
  return make_error(ErrorCode::unsupported, "ActivationOp is not implemented yet");
}
namespace ops {
std::string describe(const ActivationOp&) { return "ActivationOp"; }
std::vector<OpWeight> weights_of(const ActivationOp&, std::span<const int64_t>) { return {}; }
int rank_of(const ActivationOp&) { return 0; }
}  // namespace ops
}  // namespace convbridge
