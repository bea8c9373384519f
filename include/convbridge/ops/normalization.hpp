// Normalization layers, framework-neutral: batch norm with its running statistics and momentum convention, and the
// statistics-at-run-time norms (group, instance, layer) as one struct that names which axes it reduces.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "convbridge/result.hpp"

namespace convbridge {

// Batch normalization over the channel axis of (N, C, *spatial).
// Inference (running statistics): y = (x - mean) / sqrt(var + eps) * gamma + beta.
// use_batch_statistics: PyTorch track_running_stats=False, which normalizes with the batch's own statistics even
// in eval mode (mean and biased variance over N and the spatial axes).
// Training-time update of the running statistics, written the PyTorch way: new = (1 - m) * old + m * batch with
// m = momentum_torch (Keras' momentum is 1 - m: new = k * old + (1 - k) * batch, torch/nn/modules/batchnorm.py vs
// keras/src/layers/normalization/batch_normalization.py). cumulative_average: PyTorch momentum=None.
// Weights (neutral order, each (C)): gamma if scale, beta if center, then running mean and variance unless
// use_batch_statistics.
struct BatchNormOp {
  int64_t channels = 0;  // 0: unknown until the input shape says (Keras BatchNormalization())
  double epsilon = 1e-5;
  bool scale = true;     // has gamma (PyTorch affine, Keras scale)
  bool center = true;    // has beta (PyTorch affine, Keras center)
  bool use_batch_statistics = false;
  double momentum_torch = 0.1;
  bool cumulative_average = false;
  int rank = 0;          // spatial rank the layer demands (BatchNorm2d: 2 -> 4-D input), 0 any; BatchNorm1d (1)
                         // also takes (N, C)
};

// 1 - momentum as the decimal a user would write: Keras momentum 0.99 -> PyTorch momentum 0.01, not the double
// 1 - 0.99 = 0.010000000000000009 (which differs by 9e-18 and only in training). The exact difference is kept
// when no 15-digit decimal is within 2 ulps of it.
double momentum_complement(double momentum);

Status validate(const BatchNormOp& op);
Result<std::vector<int64_t>> output_shape(const BatchNormOp& op, std::span<const int64_t> input_shape);

// Normalization by statistics computed per sample at run time, on (N, C, *spatial):
//   group: channels split into `groups` contiguous groups; mean and biased variance over each group's channels and
//     every spatial position (PyTorch GroupNorm, Keras GroupNormalization; instance norm is groups == C).
//   trailing: over the last `normalized_axes` axes of the channels_first tensor (PyTorch LayerNorm's
//     normalized_shape), which for an image (N, C, H, W) with 3 axes is C, H, W and with 1 axis is W only.
//   channel: over C alone at each position (Keras LayerNormalization(axis=-1) on channels_last, ConvNeXt's
//     "channel LayerNorm").
// y = (x - mean) / sqrt(var + eps) * gamma + beta. gamma/beta: per channel (C) for group and channel; for trailing,
// the normalized shape (channels_first order), e.g. (C, H, W) or (W).
enum class NormAxes { group, trailing, channel };

struct NormOp {
  NormAxes axes = NormAxes::group;
  int64_t channels = 0;       // group / channel: C (0: from the input shape)
  int64_t groups = 1;         // group; 0: one group per channel (instance norm, Keras groups=-1)
  std::vector<int64_t> normalized_shape;  // trailing: sizes of the normalized axes, channels_first order
  double epsilon = 1e-5;
  bool scale = true;          // has gamma
  bool center = true;         // has beta
  int rank = 0;               // spatial rank the layer demands, 0 any
};

Status validate(const NormOp& op);
Result<std::vector<int64_t>> output_shape(const NormOp& op, std::span<const int64_t> input_shape);

// Neutral shape of gamma and beta for an input shape (N, C, *spatial); -1 (kUnknownSize) for a channel count
// neither the op nor the shape says.
std::vector<int64_t> norm_parameter_shape(const NormOp& op, std::span<const int64_t> input_shape);

}  // namespace convbridge
