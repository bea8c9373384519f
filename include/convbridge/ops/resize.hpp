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

// (N, C, *spatial) -> (N, C, *out). out per axis: `size` when given, else floor(in * scale_factor).
// Linear / cubic weights clamp the input index to [0, in - 1] (edge replication, as both frameworks); with
// antialias (downscaling), the kernel is stretched by 1/scale as PyTorch's _upsample_*_aa and TF's
// scale_and_translate do.
struct ResizeOp {
  int rank = 2;                          // 1..3
  ResizeMode mode = ResizeMode::nearest;
  ResizeCoordinates coordinates = ResizeCoordinates::half_pixel;
  NearestRounding rounding = NearestRounding::half_pixel_floor;
  double cubic_a = -0.75;                // -0.75 PyTorch, -0.5 TF (Keys)
  bool antialias = false;
  std::vector<int64_t> size;             // [rank], or empty for scale_factor
  std::vector<double> scale_factor;      // [rank] when size is empty
  bool use_given_scale = false;          // coordinates use 1/scale_factor (torch recompute_scale_factor falsy)
};

Status validate(const ResizeOp& op);
Result<std::vector<int64_t>> output_shape(const ResizeOp& op, std::span<const int64_t> input_shape);

// Interpolation weights of one axis: out x in, row-major, each row the weights output i gives to the inputs.
// The reference engine and the emulation layers apply these along each axis in turn.
Result<std::vector<double>> resize_axis_matrix(const ResizeOp& op, int axis, int64_t in, int64_t out);

}  // namespace convbridge
