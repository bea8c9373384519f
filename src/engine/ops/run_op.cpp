#include <fmt/format.h>

#include "convbridge/checked_math.hpp"
#include "convbridge/engine.hpp"
#include "engine/ops/run_ops.hpp"

namespace convbridge {

namespace engine {

std::vector<int64_t> strides_of(std::span<const int64_t> shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

int64_t element_count(std::span<const int64_t> shape) {
  int64_t count = 1;
  for (const int64_t size : shape) count *= size;
  return count;
}

}  // namespace engine

Result<Tensor> run_op(const Op& op, const Tensor& input, std::span<const Tensor> weights) {
  CONVBRIDGE_TRY(auto expected, op_output_shape(op, input.shape));
  CONVBRIDGE_TRY(Tensor output, std::visit([&](const auto& kind) { return engine::run(kind, input, weights); }, op));
  if (output.shape != expected || output.data.size() != static_cast<size_t>(engine::element_count(output.shape))) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("reference engine: {} gave a tensor of the wrong shape", describe_op(op)));
  }
  return output;
}

}  // namespace convbridge
