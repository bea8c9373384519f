// The op set: one plain struct per layer kind around the convolutions, and one variant over them. Shape math,
// validation and descriptions dispatch over the variant; each kind's functions live with its struct.
// Every op is described on channels_first tensors (N, C, *spatial); front-ends map their framework's axes onto
// that, targets map it back, so a layout is never a special case inside an op.
#pragma once

#include <span>
#include <string>
#include <variant>
#include <vector>

#include "convbridge/ops/activation_layer.hpp"
#include "convbridge/ops/normalization.hpp"
#include "convbridge/ops/pad.hpp"
#include "convbridge/ops/pool.hpp"
#include "convbridge/ops/resize.hpp"

namespace convbridge {

using Op = std::variant<PoolOp, AdaptivePoolOp, BatchNormOp, NormOp, ResizeOp, PadOp, PixelShuffleOp, ActivationOp>;

Status validate_op(const Op& op);

// Output shape (channels_first) for a channels_first input, with the checks the source framework makes at run
// time; the error names the size at fault.
Result<std::vector<int64_t>> op_output_shape(const Op& op, std::span<const int64_t> input_shape);

// The spatial rank the op demands (MaxPool2d: 2), or 0 when it takes any rank (activations, Keras BatchNormalization).
int op_rank(const Op& op);

// One line for explanations: "max pooling 3x3, stride 2, pads H (1, 1) W (1, 1), ceil_mode".
std::string describe_op(const Op& op);

// A learned tensor or running statistic of an op, in neutral layout.
struct OpWeight {
  std::string role;             // "gamma", "beta", "running_mean", "running_var", "prelu_slope"
  std::vector<int64_t> shape;   // neutral layout (per channel: (C))
};

// The op's weights in neutral order for a channels_first input shape (channel counts the op does not fix come
// from it).
std::vector<OpWeight> op_weights(const Op& op, std::span<const int64_t> input_shape);

}  // namespace convbridge
