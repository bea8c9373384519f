// The reference resize: the input multiplied along each spatial axis by its interpolation matrix
// (resize_axis_matrix), one axis at a time, in float64. Every mode is separable, so this is the whole op.
#include <fmt/format.h>

#include "convbridge/checked_math.hpp"
#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {

Result<Tensor> run(const ResizeOp& op, const Tensor& input, std::span<const Tensor>) {
  CONVBRIDGE_TRY(std::vector<int64_t> out_shape, output_shape(op, input.shape));
  Tensor current = input;
  const size_t rank = input.shape.size() - 2;
  for (size_t axis = 0; axis < rank; ++axis) {
    const int64_t in = current.shape[axis + 2];
    const int64_t out = out_shape[axis + 2];
    CONVBRIDGE_TRY(std::vector<double> matrix, resize_axis_matrix(op, static_cast<int>(axis), in, out));
    // View the tensor as (outer, in, inner) around this axis.
    int64_t outer = 1;
    for (size_t i = 0; i < axis + 2; ++i) outer *= current.shape[i];
    int64_t inner = 1;
    for (size_t i = axis + 3; i < current.shape.size(); ++i) inner *= current.shape[i];
    Tensor next;
    next.shape = current.shape;
    next.shape[axis + 2] = out;
    const auto count = checked_product(next.shape);
    if (!count) return make_error(ErrorCode::overflow, "resize: the output is too large");
    next.data.assign(static_cast<size_t>(*count), 0.0);
    for (int64_t o = 0; o < outer; ++o) {
      const double* source = current.data.data() + o * in * inner;
      double* target = next.data.data() + o * out * inner;
      for (int64_t x = 0; x < out; ++x) {
        const double* weights = matrix.data() + x * in;
        for (int64_t j = 0; j < in; ++j) {
          if (weights[j] == 0.0) continue;
          for (int64_t k = 0; k < inner; ++k) target[x * inner + k] += weights[j] * source[j * inner + k];
        }
      }
    }
    current = std::move(next);
  }
  return current;
}

}  // namespace convbridge::engine
