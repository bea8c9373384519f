// Window pooling (max and average), framework-neutral. Conventions are data, as ONNX MaxPool/AveragePool name them
// (per-side pads, ceil_mode, count_include_pad), plus TF's input-size-dependent 'SAME' split, so one description
// holds PyTorch's nn.MaxPoolNd/AvgPoolNd, Keras' MaxPoolingND/AveragePoolingND and tf.nn.max_pool/avg_pool/pool.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "convbridge/conv_spec.hpp"

namespace convbridge {

enum class PoolKind { max, average };

// Which pads are decided how. explicit_pads: `pads` as stored. tf_same: TF's SAME rule from the input size at run
// time (out = ceil(in/s), need = max((out-1)*s + eff - in, 0), before = need/2), `pads` unused.
enum class PoolPadding { explicit_pads, tf_same };

// What an average window divides by.
//   window_clipped_to_padding: PyTorch count_include_pad=True: (min(start+k, in+after) - start) per axis, i.e. the
//     window clipped to the padded input; the ceil_mode tail beyond the right pad never counts
//     (aten/src/ATen/native/cpu/AvgPoolKernel.cpp pool_size before clamping to the input).
//   valid_elements: PyTorch count_include_pad=False and TF/Keras average pooling: the input elements in the window.
//   fixed: PyTorch divisor_override.
enum class AverageDivisor { window_clipped_to_padding, valid_elements, fixed };

// Input (N, C, *spatial), output (N, C, *out). Max pooling pads with -inf (padding never wins); average pooling
// pads with 0 and divides as `divisor` says.
// Output size per axis (PyTorch pooling_output_shape, aten/src/ATen/native/Pool.h):
//   explicit_pads: out = floor_or_ceil((in + before + after - eff) / stride) + 1, and with ceil_mode the last window
//     is dropped when it would start at or past in + before ("windows that start in the right padded region are
//     ignored"), eff = (k-1)*dilation + 1.
//   tf_same: out = ceil(in / stride).
struct PoolOp {
  PoolKind kind = PoolKind::max;
  int rank = 2;                   // spatial rank, 1..3
  std::vector<int64_t> kernel;    // [rank]
  std::vector<int64_t> stride;    // [rank]
  std::vector<int64_t> dilation;  // [rank], 1 for average pooling
  PoolPadding padding = PoolPadding::explicit_pads;
  std::vector<PadPair> pads;      // [rank], explicit_pads
  bool ceil_mode = false;
  AverageDivisor divisor = AverageDivisor::valid_elements;
  int64_t divisor_override = 0;   // AverageDivisor::fixed; non-zero (PyTorch accepts a negative one)
  // PyTorch's avg_pool3d also refuses an axis shorter than the kernel before padding ("input image (T: 2 H: 3
  // W: 3) smaller than kernel size", aten/src/ATen/native/Pool.h pool3d_shape_check with check_input_size);
  // measured: AvgPool3d(3, 2, 1) refuses (2, 3, 3), AvgPool2d/MaxPool3d take the padded size.
  bool input_covers_kernel = false;
};
// A PoolOp with kernel 1 and stride 1 is a padding: max pooling pads with -inf, average pooling with a fixed
// divisor 1 pads with zeros. Plans use it for the -inf / zero padding step before a 'valid' pool.

// Invariants every consumer relies on (vectors of length rank, positive sizes, non-negative pads, dilation 1 for
// average pooling, divisor_override != 0 iff fixed).
Status validate(const PoolOp& op);

// Spatial output size of one axis; an error names the axis size that is too small.
Result<int64_t> pool_output_size(const PoolOp& op, int axis, int64_t in);

// Per-side pads of one axis at input size `in`: the explicit ones, or TF's SAME split.
Result<PadPair> pool_pads(const PoolOp& op, int axis, int64_t in);

// Output shape (N, C, *out) for input (N, C, *spatial).
Result<std::vector<int64_t>> output_shape(const PoolOp& op, std::span<const int64_t> input_shape);

// (kernel - 1) * dilation + 1 of one axis (checked by validate: it fits).
int64_t pool_effective_kernel(const PoolOp& op, int axis);

// Kernel 1, stride 1: the op only pads (see above).
bool pool_is_padding(const PoolOp& op);

// ---- adaptive and global pooling ------------------------------------------------------------------------------

// PyTorch adaptive pooling (aten/src/ATen/native/AdaptivePooling.h): output index i of an axis of size `in` with
// `out` outputs reads [floor(i*in/out), ceil((i+1)*in/out)), windows overlapping when out does not divide in.
// output_size entries of kUnknownSize (PyTorch None) keep the input size. Global pooling is output 1 on every
// axis; keep_dims false (Keras' GlobalAveragePoolingND default) then drops the spatial axes: (N, C).
struct AdaptivePoolOp {
  PoolKind kind = PoolKind::average;
  int rank = 2;
  std::vector<int64_t> output_size;  // [rank], kUnknownSize (-1) keeps the input size
  bool keep_dims = true;             // false only with every output size 1
};

Status validate(const AdaptivePoolOp& op);
Result<std::vector<int64_t>> output_shape(const AdaptivePoolOp& op, std::span<const int64_t> input_shape);

// [start, end) of output index i (AdaptivePooling.h start_index / end_index).
int64_t adaptive_start(int64_t i, int64_t in, int64_t out);
int64_t adaptive_end(int64_t i, int64_t in, int64_t out);

}  // namespace convbridge
