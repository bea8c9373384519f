// Planners: a source layer in, the best exact target plan out, with the reason for every choice.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "convbridge/frontends.hpp"
#include "convbridge/plan.hpp"
#include "convbridge/result.hpp"

namespace convbridge {

// PyTorch -> TensorFlow/Keras. With `input_shape` (PyTorch's (N, C, *spatial)) unknown, the plan is exact for every
// input size PyTorch accepts; with it known, the plan is the cheapest one exact for that size (it may use TF
// 'same' padding where TF's size-dependent split happens to equal PyTorch's).
Result<Plan> plan_torch_to_tf(const TorchConvLayer& layer, const std::optional<std::vector<int64_t>>& input_shape);

}  // namespace convbridge
