// Shape math and descriptions for ActivationOp: element-wise activations keep the shape; softmax needs its axis
// inside the input; PReLU's slopes are one per channel (PyTorch: "Mismatch in parameter numbers" otherwise).
#include <fmt/format.h>

#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {

namespace {
bool is_softmax(const ActivationOp& op) {
  return op.activation.kind == ActivationKind::softmax || op.activation.kind == ActivationKind::log_softmax;
}
}  // namespace

Result<int> resolved_axis(const ActivationOp& op, int ndim) {
  if (op.axis < -ndim || op.axis >= ndim) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("softmax {}={} is out of range for a {}-D input (PyTorch: \"Dimension out of "
                                  "range\")",
                                  op.axis_channels_last ? "axis" : "dim", op.axis, ndim));
  }
  const int axis = op.axis < 0 ? op.axis + ndim : op.axis;
  if (!op.axis_channels_last) return axis;
  // channels_last (N, *spatial, C) index -> channels_first (N, C, *spatial)
  if (axis == 0) return 0;
  if (axis == ndim - 1) return 1;
  return axis + 1;
}

Status validate(const ActivationOp& op) {
  if (op.prelu && op.prelu_parameters < 0) {
    return make_error(ErrorCode::invalid_argument,
                      fmt::format("num_parameters={} must be positive", op.prelu_parameters));
  }
  if (op.prelu && op.prelu_parameters > kMaxSizeArgument) {
    return make_error(ErrorCode::invalid_argument,
                      fmt::format("num_parameters={} is too large (the limit is {})", op.prelu_parameters,
                                  kMaxSizeArgument));
  }
  return Ok{};
}

Result<std::vector<int64_t>> output_shape(const ActivationOp& op, std::span<const int64_t> input_shape) {
  CONVBRIDGE_CHECK(validate(op));
  CONVBRIDGE_CHECK(ops::check_input_rank(input_shape, 0, op.prelu ? "PReLU" : "the activation"));
  if (is_softmax(op)) CONVBRIDGE_CHECK(resolved_axis(op, static_cast<int>(input_shape.size())));
  if (op.prelu && op.prelu_parameters > 1 && op.prelu_parameters != input_shape[1]) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("PReLU has {} slopes, but the input has {} channels (PyTorch: \"Mismatch in "
                                  "parameter numbers\")",
                                  op.prelu_parameters, input_shape[1]));
  }
  return std::vector<int64_t>(input_shape.begin(), input_shape.end());
}

namespace ops {

std::string describe(const ActivationOp& op) {
  if (op.prelu) {
    return op.prelu_parameters == 1 ? "PReLU: x >= 0 ? x : a * x, one learned slope a for every channel"
                                    : "PReLU: x >= 0 ? x : a[c] * x, a learned slope per channel";
  }
  if (is_softmax(op)) {
    return fmt::format("{} over {} {}", describe_activation(op.activation),
                       op.axis_channels_last ? "channels_last axis" : "channels_first dim", op.axis);
  }
  return describe_activation(op.activation);
}

std::vector<OpWeight> weights_of(const ActivationOp& op, std::span<const int64_t> input_shape) {
  if (!op.prelu) return {};
  int64_t count = op.prelu_parameters;
  if (count == 0) count = input_shape.size() >= 2 && input_shape[1] > 0 ? input_shape[1] : 0;
  return {OpWeight{"prelu_slope", {count}}};
}

int rank_of(const ActivationOp&) { return 0; }

}  // namespace ops
}  // namespace convbridge
