#include "convbridge/ops/op.hpp"

#include <fmt/format.h>

#include "ops/op_kinds.hpp"

namespace convbridge {

Status validate_op(const Op& op) {
  return std::visit([](const auto& kind) { return validate(kind); }, op);
}

Result<std::vector<int64_t>> op_output_shape(const Op& op, std::span<const int64_t> input_shape) {
  CONVBRIDGE_CHECK(validate_op(op));
  return std::visit([&](const auto& kind) { return output_shape(kind, input_shape); }, op);
}

int op_rank(const Op& op) {
  return std::visit([](const auto& kind) { return ops::rank_of(kind); }, op);
}

std::string describe_op(const Op& op) {
  return std::visit([](const auto& kind) { return ops::describe(kind); }, op);
}

std::vector<OpWeight> op_weights(const Op& op, std::span<const int64_t> input_shape) {
  return std::visit([&](const auto& kind) { return ops::weights_of(kind, input_shape); }, op);
}

namespace ops {

Status check_input_rank(std::span<const int64_t> input_shape, int rank, std::string_view what) {
  if (rank > 0 && input_shape.size() != static_cast<size_t>(rank) + 2) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("{} takes a {}-D input (N, C, {}), got a {}-D shape", what, rank + 2,
                                  rank == 1 ? "L" : rank == 2 ? "H, W" : "D, H, W", input_shape.size()));
  }
  if (input_shape.size() < 2) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("{} takes a batch and a channel axis: a shape with at least 2 entries", what));
  }
  for (const int64_t size : input_shape) {
    if (size <= 0) {
      return make_error(ErrorCode::input_shape, fmt::format("{} got an input shape with the size {}", what, size));
    }
  }
  return Ok{};
}

}  // namespace ops
}  // namespace convbridge
