// Spatial padding and cropping as a layer (PyTorch nn.ZeroPadNd/ConstantPadNd/ReflectionPadNd/ReplicationPadNd/
// CircularPadNd and F.pad; Keras ZeroPaddingND/CroppingND; tf.pad). Negative pads crop, as F.pad does.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "convbridge/conv_spec.hpp"

namespace convbridge {

enum class PadFill { constant, reflect, replicate, circular, symmetric };  // symmetric: tf.pad SYMMETRIC

// (N, C, *spatial) -> (N, C, *spatial + before + after) per axis; pads are per side and may be negative (crop).
struct PadOp {
  int rank = 2;
  std::vector<PadPair> pads;  // [rank], spatial axes in order (PyTorch's tuple reversed into this order)
  PadFill fill = PadFill::constant;
  double value = 0.0;         // constant fill
};

Status validate(const PadOp& op);
Result<std::vector<int64_t>> output_shape(const PadOp& op, std::span<const int64_t> input_shape);

// Moves between channels and space by blocks of r x r (x r): PyTorch PixelShuffle / PixelUnshuffle (2-D) and TF
// depth_to_space / space_to_depth. The channel index of block offset (i, j) and output channel c is
//   crd (PyTorch, ONNX "CRD"): c * r*r + i * r + j   (block offset in the low-order channel bits)
//   dcr (TF, ONNX "DCR"):      (i * r + j) * C_out + c (block offset in the high-order channel bits)
// (tensorflow/python/ops/gen_array_ops.py depth_to_space; torch/nn/modules/pixelshuffle.py).
enum class ChannelOrder { crd, dcr };

struct PixelShuffleOp {
  int64_t block = 2;
  bool to_space = true;  // PixelShuffle / depth_to_space; false: PixelUnshuffle / space_to_depth
  ChannelOrder order = ChannelOrder::crd;
};

Status validate(const PixelShuffleOp& op);
Result<std::vector<int64_t>> output_shape(const PixelShuffleOp& op, std::span<const int64_t> input_shape);

}  // namespace convbridge
