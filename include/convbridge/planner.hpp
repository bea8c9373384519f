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

// TensorFlow/Keras -> PyTorch. `input_shape` is the channels_last shape the Keras layer sees (batch included);
// kUnknownSize entries are unknown sizes. With every spatial size known, the plan is the cheapest exact one for
// that size (fixed pads); otherwise it is exact for every size, computing TF 'same' padding at run time where
// it depends on the size. in_channels comes from the input shape or the built layer.
Result<TorchPlan> plan_keras_to_torch(const KerasConvLayer& layer, int64_t in_channels,
                                      const std::optional<std::vector<int64_t>>& input_shape);

// A tf.nn call (parse_tf_nn_call) -> PyTorch, as plan_keras_to_torch. The input channels are input_shape's last
// entry when known, else the filters' input depth (an ungrouped convolution); without input_shape every size is
// unknown.
Result<TorchPlan> plan_tf_nn_to_torch(const KerasConvLayer& call, const std::optional<std::vector<int64_t>>& input_shape);

// The input shape (N, *spatial, C) a tf.nn conv*_transpose call accepts: the one whose forward convolution gives
// its output_shape. N is kUnknownSize when output_shape does not fix it.
Result<std::vector<int64_t>> tf_nn_transpose_input_shape(const KerasConvLayer& call);

}  // namespace convbridge
