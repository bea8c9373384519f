// Activations as layers, in float64: element-wise ones through apply_activation (src/engine/activation.cpp),
// softmax over any axis, PReLU with its per-channel slopes.
#include <cmath>

#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {

Result<Tensor> run(const ActivationOp& op, const Tensor& input, std::span<const Tensor> weights) {
  CONVBRIDGE_TRY(const std::vector<int64_t> shape, output_shape(op, input.shape));
  Tensor out = input;
  const auto strides = strides_of(input.shape);
  if (op.prelu) {
    const Tensor& slopes = weights.front();
    for (size_t i = 0; i < out.data.size(); ++i) {
      const int64_t channel = (static_cast<int64_t>(i) / strides[1]) % input.shape[1];
      const double a = slopes.data.size() == 1 ? slopes.data[0] : slopes.data[static_cast<size_t>(channel)];
      if (out.data[i] < 0) out.data[i] *= a;
    }
    return out;
  }
  const ActivationKind kind = op.activation.kind;
  if (kind != ActivationKind::softmax && kind != ActivationKind::log_softmax) {
    apply_activation(op.activation, out, /*channels_last=*/false);
    return out;
  }
  CONVBRIDGE_TRY(const int axis, resolved_axis(op, static_cast<int>(input.shape.size())));
  const int64_t length = input.shape[static_cast<size_t>(axis)];
  const int64_t stride = strides[static_cast<size_t>(axis)];
  for (size_t first = 0; first < out.data.size(); ++first) {
    if ((static_cast<int64_t>(first) / stride) % length != 0) continue;  // start of each line along the axis
    const auto at = [&](int64_t k) -> double& { return out.data[first + static_cast<size_t>(k * stride)]; };
    double largest = at(0);
    for (int64_t k = 1; k < length; ++k) largest = std::max(largest, at(k));
    double sum = 0.0;
    for (int64_t k = 0; k < length; ++k) sum += std::exp(at(k) - largest);
    for (int64_t k = 0; k < length; ++k) {
      at(k) = kind == ActivationKind::softmax ? std::exp(at(k) - largest) / sum : at(k) - largest - std::log(sum);
    }
  }
  (void)shape;
  return out;
}

}  // namespace convbridge::engine
