// Spatial resizing, framework-neutral. Like ONNX Resize, the coordinate convention, the nearest rounding and the
// cubic coefficient are data, so PyTorch's interpolate modes and TF's tf.image.resize are each one description.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "convbridge/result.hpp"

namespace convbridge {

enum class ResizeMode { nearest, linear, cubic };

// Output coordinate x -> input coordinate, with scale s = in / out unless `use_given_scale` (then 1 / scale_factor):
//   half_pixel:    (x + 0.5) * s - 0.5     (TF2 tf.image.resize, Keras, torch align_corners=False)
//   align_corners: x * (in - 1) / (out - 1), 0 when out == 1   (torch align_corners=True)
//   asymmetric:    x * s                   (torch 'nearest': floor(x * s), "matches buggy OpenCV INTER_NEAREST")
enum class ResizeCoordinates { half_pixel, align_corners, asymmetric };

// Nearest rounding of the input coordinate: floor (torch 'nearest' with asymmetric), or for half-pixel nearest
// (torch 'nearest-exact' and TF nearest) floor(x_in + 0.5) written as floor((x + 0.5) * s).
enum class NearestRounding { floor, half_pixel_floor };

// How a cubic kernel treats taps outside [0, in - 1]:
//   clamp:       the tap reads the edge sample (torch upsample_bicubic2d, ATen/native/UpSample.h upsample_get_value_bounded)
//   renormalize: the tap is dropped and the others rescaled to sum 1 (TF resize_bicubic with half-pixel centers,
//                tensorflow/core/kernels/image/resize_bicubic_op.cc GetWeightsAndIndices with use_keys_cubic)
enum class CubicEdges { clamp, renormalize };

// (N, C, *spatial) -> (N, C, *out). out per axis: `size` when given, else floor(in * scale_factor).
// Linear weights clamp the input coordinate to >= 0 and the upper tap to in - 1 (edge replication, both
// frameworks). With antialias the separable filter (triangle or cubic) is stretched by in/out when downscaling and
// the weights of the taps inside the input renormalized, as PyTorch's _upsample_*_aa
// (ATen/native/cpu/UpSampleKernel.cpp, _compute_indices_min_size_weights_aa) and TF's scale_and_translate
// (tensorflow/core/kernels/image/scale_and_translate_op.cc ComputeSpansCore) both do.
struct ResizeOp {
  int rank = 2;                          // 1..3, or 0: any (torch 'nearest' given one int, the input decides)
  ResizeMode mode = ResizeMode::nearest;
  ResizeCoordinates coordinates = ResizeCoordinates::half_pixel;
  NearestRounding rounding = NearestRounding::half_pixel_floor;
  double cubic_a = -0.75;                // -0.75 PyTorch, -0.5 TF (Keys) and PyTorch's antialiased bicubic
  CubicEdges cubic_edges = CubicEdges::clamp;
  // TF resize_bicubic reads its weights from a table of 1024 steps per unit: the fractional offset is rounded to
  // a multiple of 1/1024 first (resize_bicubic_op.cc kTableSize, lrintf(delta * kTableSize)). 0: exact offsets.
  int cubic_table_steps = 0;
  bool antialias = false;
  std::vector<int64_t> size;             // [rank] (one entry when rank is 0), or empty for scale_factor
  std::vector<double> scale_factor;      // [rank] (one entry when rank is 0) when size is empty
  bool use_given_scale = false;          // coordinates use 1/scale_factor (torch recompute_scale_factor falsy)
};

Status validate(const ResizeOp& op);
Result<std::vector<int64_t>> output_shape(const ResizeOp& op, std::span<const int64_t> input_shape);

// Interpolation weights of one axis: out x in, row-major, each row the weights output i gives to the inputs.
// The reference engine and the emulation layers apply these along each axis in turn.
Result<std::vector<double>> resize_axis_matrix(const ResizeOp& op, int axis, int64_t in, int64_t out);

}  // namespace convbridge
