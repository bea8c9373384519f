// The reference engine for the op set: each kind computed plainly in float64 on channels_first tensors, exactly
// as its neutral description says (convbridge/ops/*.hpp). Family files (src/engine/ops/<family>.cpp) define them.
#pragma once

#include <span>

#include "convbridge/engine.hpp"
#include "convbridge/ops/op.hpp"

namespace convbridge::engine {

// weights: the op's OpWeights in order (op_weights).
Result<Tensor> run(const PoolOp& op, const Tensor& input, std::span<const Tensor> weights);
Result<Tensor> run(const AdaptivePoolOp& op, const Tensor& input, std::span<const Tensor> weights);
Result<Tensor> run(const BatchNormOp& op, const Tensor& input, std::span<const Tensor> weights);
Result<Tensor> run(const NormOp& op, const Tensor& input, std::span<const Tensor> weights);
Result<Tensor> run(const ResizeOp& op, const Tensor& input, std::span<const Tensor> weights);
Result<Tensor> run(const PadOp& op, const Tensor& input, std::span<const Tensor> weights);
Result<Tensor> run(const PixelShuffleOp& op, const Tensor& input, std::span<const Tensor> weights);
Result<Tensor> run(const ActivationOp& op, const Tensor& input, std::span<const Tensor> weights);

// Row-major strides of a shape, and the element count.
std::vector<int64_t> strides_of(std::span<const int64_t> shape);
int64_t element_count(std::span<const int64_t> shape);

}  // namespace convbridge::engine
