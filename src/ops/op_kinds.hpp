// Per-kind functions behind the op variant (convbridge/ops/op.hpp). Each family file (src/ops/<family>.cpp)
// defines them for its kinds; src/ops/op.cpp dispatches.
#pragma once

#include <string>
#include <span>
#include <vector>

#include "convbridge/ops/op.hpp"

namespace convbridge::ops {

#define CONVBRIDGE_OP_KIND_FUNCTIONS(Kind)                                                  \
  std::string describe(const Kind& op);                                                     \
  std::vector<OpWeight> weights_of(const Kind& op, std::span<const int64_t> input_shape);  \
  int rank_of(const Kind& op);
CONVBRIDGE_OP_KIND_FUNCTIONS(PoolOp)
CONVBRIDGE_OP_KIND_FUNCTIONS(AdaptivePoolOp)
CONVBRIDGE_OP_KIND_FUNCTIONS(BatchNormOp)
CONVBRIDGE_OP_KIND_FUNCTIONS(NormOp)
CONVBRIDGE_OP_KIND_FUNCTIONS(ResizeOp)
CONVBRIDGE_OP_KIND_FUNCTIONS(PadOp)
CONVBRIDGE_OP_KIND_FUNCTIONS(PixelShuffleOp)
CONVBRIDGE_OP_KIND_FUNCTIONS(ActivationOp)
#undef CONVBRIDGE_OP_KIND_FUNCTIONS

// Shared checks for the family files: a shape (N, C, *spatial) of the right rank with known positive sizes.
Status check_input_rank(std::span<const int64_t> input_shape, int rank, std::string_view what);

}  // namespace convbridge::ops
