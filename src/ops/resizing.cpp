// ResizeOp: validation, output shape, per-axis interpolation matrices and descriptions.
//
// Every mode both frameworks offer here is separable: the output is the input multiplied along each spatial axis
// by an (out x in) matrix. resize_axis_matrix builds that matrix from the op's conventions; the reference engine
// applies it, and convbridge.SeparableResize (keras_layers.py, torch_modules.py) builds the same matrix in the
// target framework from the dynamic input size.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "convbridge/checked_math.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {
namespace {

// Largest scale factor accepted: beyond it any input of a few elements gives an output no framework can hold, and
// the products below stay far from double's integer precision.
constexpr double kMaxScaleFactor = 1e6;

size_t entry(const std::vector<int64_t>& values, int axis) {
  return values.size() == 1 ? 0 : static_cast<size_t>(axis);
}
size_t entry(const std::vector<double>& values, int axis) {
  return values.size() == 1 ? 0 : static_cast<size_t>(axis);
}

const char* axis_letters(int rank) { return rank == 1 ? "L" : rank == 2 ? "H, W" : "D, H, W"; }

std::string axis_name(int rank, int axis) {
  static constexpr const char* kNames3[] = {"D", "H", "W"};
  static constexpr const char* kNames2[] = {"H", "W"};
  if (rank == 1) return "L";
  if (rank == 2) return kNames2[axis];
  return kNames3[axis];
}

// Keys' cubic convolution kernel with parameter a (Keys 1981; torch cubic_convolution1/2 in ATen/native/UpSample.h,
// TF's table in resize_bicubic_op.cc): the weight of a tap at distance |x|.
double cubic_weight(double x, double a) {
  x = std::fabs(x);
  if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  return 0.0;
}

double triangle_weight(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// in / out for the axis, or 1 / scale_factor when the op uses the given scale (torch area_pixel_compute_scale).
double coordinate_scale(const ResizeOp& op, int axis, int64_t in, int64_t out) {
  if (op.use_given_scale && !op.scale_factor.empty()) return 1.0 / op.scale_factor[entry(op.scale_factor, axis)];
  return static_cast<double>(in) / static_cast<double>(out);
}

// The input coordinate of output x for linear and cubic (both frameworks' area_pixel_compute_source_index).
double source_coordinate(const ResizeOp& op, double scale, int64_t x, int64_t in, int64_t out) {
  switch (op.coordinates) {
    case ResizeCoordinates::align_corners:
      return out > 1 ? static_cast<double>(x) * static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
    case ResizeCoordinates::asymmetric:
      return static_cast<double>(x) * scale;
    case ResizeCoordinates::half_pixel:
      break;
  }
  return (static_cast<double>(x) + 0.5) * scale - 0.5;
}

// Both frameworks pick the nearest input in float32: the scale is float(in) / out or float(1 / scale_factor)
// (torch compute_scales_value<float>, TF CalculateResizeScale), the position x * scale or (x + 0.5) * scale rounded
// to float, then floored (torch nearest_neighbor_compute_source_index / ..._exact_..., TF's LegacyScaler /
// HalfPixelScalerForNN). Rounding matters: at scale_factor 41, float(1 / 41) is below 1/41 and torch 'nearest'
// reads input 0 for output 41, so it is not repetition there.
void nearest_row(const ResizeOp& op, int axis, int64_t x, int64_t in, int64_t out, double* row) {
  const float scale = op.use_given_scale && !op.scale_factor.empty()
                          ? static_cast<float>(1.0 / op.scale_factor[entry(op.scale_factor, axis)])
                          : static_cast<float>(in) / static_cast<float>(out);
  int64_t index = 0;
  if (op.rounding == NearestRounding::floor) {
    // nearest_idx: the same size and twice the size are exact shortcuts.
    if (out == in) {
      index = x;
    } else if (out == 2 * in) {
      index = x / 2;
    } else {
      index = static_cast<int64_t>(std::floor(static_cast<float>(x) * scale));
    }
  } else {
    index = static_cast<int64_t>(std::floor((static_cast<float>(x) + 0.5f) * scale));
  }
  row[std::clamp<int64_t>(index, 0, in - 1)] = 1.0;
}

void linear_row(const ResizeOp& op, int axis, int64_t x, int64_t in, int64_t out, double* row) {
  double source = source_coordinate(op, coordinate_scale(op, axis, in, out), x, in, out);
  if (source < 0.0) source = 0.0;
  const auto low = std::min<int64_t>(static_cast<int64_t>(source), in - 1);
  const int64_t high = std::min<int64_t>(low + 1, in - 1);
  const double lambda = source - static_cast<double>(low);
  row[low] += 1.0 - lambda;
  row[high] += lambda;
}

void cubic_row(const ResizeOp& op, int axis, int64_t x, int64_t in, int64_t out, double* row) {
  const double source = source_coordinate(op, coordinate_scale(op, axis, in, out), x, in, out);
  const double base = std::floor(source);
  double t = source - base;
  if (op.cubic_table_steps > 0) t = std::nearbyint(t * op.cubic_table_steps) / op.cubic_table_steps;
  const auto first = static_cast<int64_t>(base) - 1;
  double weights[4] = {cubic_weight(1.0 + t, op.cubic_a), cubic_weight(t, op.cubic_a),
                       cubic_weight(1.0 - t, op.cubic_a), cubic_weight(2.0 - t, op.cubic_a)};
  if (op.cubic_edges == CubicEdges::renormalize) {
    double total = 0.0;
    for (int k = 0; k < 4; ++k) {
      if (first + k < 0 || first + k > in - 1) weights[k] = 0.0;
      total += weights[k];
    }
    // resize_bicubic_op.cc divides only when the total is not ~0 (1000 * float epsilon).
    if (std::fabs(total) >= 1000.0 * 1.1920929e-7) {
      for (double& w : weights) w /= total;
    }
  }
  for (int k = 0; k < 4; ++k) row[std::clamp<int64_t>(first + k, 0, in - 1)] += weights[k];
}

// The antialiased filters of both frameworks: support stretched by the scale when downscaling, taps outside the
// input dropped, weights renormalized (torch _compute_indices_min_size_weights_aa; TF ComputeSpansCore).
void antialias_row(const ResizeOp& op, int axis, int64_t x, int64_t in, int64_t out, double* row) {
  const double scale = coordinate_scale(op, axis, in, out);
  const double half_width = op.mode == ResizeMode::cubic ? 2.0 : 1.0;
  const double support = scale >= 1.0 ? half_width * scale : half_width;
  const double inverse = scale >= 1.0 ? 1.0 / scale : 1.0;
  const double center = scale * (static_cast<double>(x) + 0.5);
  const int64_t low = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
  const int64_t high = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
  double total = 0.0;
  for (int64_t j = low; j < high; ++j) {
    const double distance = (static_cast<double>(j) - center + 0.5) * inverse;
    const double w = op.mode == ResizeMode::cubic ? cubic_weight(distance, op.cubic_a) : triangle_weight(distance);
    row[j] = w;
    total += w;
  }
  if (total != 0.0) {
    for (int64_t j = low; j < high; ++j) row[j] /= total;
  }
}

std::string list_text(const std::vector<int64_t>& values) { return fmt::format("({})", fmt::join(values, ", ")); }

std::string number_text(double value) {
  return python_literal(CallValue::of(value));
}

}  // namespace

Status validate(const ResizeOp& op) {
  if (op.rank < 0 || op.rank > 3) {
    return make_error(ErrorCode::invalid_argument, fmt::format("resize takes 1 to 3 spatial axes, not {}", op.rank));
  }
  const size_t entries = op.rank == 0 ? 1 : static_cast<size_t>(op.rank);
  if (op.size.empty() == op.scale_factor.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      op.size.empty() ? "either size or scale_factor should be defined"
                                      : "only one of size or scale_factor should be defined");
  }
  if (!op.size.empty()) {
    if (op.size.size() != entries) {
      return make_error(ErrorCode::invalid_argument,
                        fmt::format("size={} has {} entries for {} spatial axes", list_text(op.size),
                                    op.size.size(), entries));
    }
    for (const int64_t v : op.size) {
      if (v <= 0) {
        return make_error(ErrorCode::invalid_argument,
                          fmt::format("size={}: output sizes should be greater than 0", list_text(op.size)));
      }
      if (v > kMaxSizeArgument) {
        return make_error(ErrorCode::invalid_argument,
                          fmt::format("size={} is too large (the limit is {})", v, kMaxSizeArgument));
      }
    }
  } else {
    if (op.scale_factor.size() != entries) {
      return make_error(ErrorCode::invalid_argument,
                        fmt::format("scale_factor has {} entries for {} spatial axes", op.scale_factor.size(),
                                    entries));
    }
    for (const double s : op.scale_factor) {
      if (!std::isfinite(s) || s <= 0.0) {
        return make_error(ErrorCode::invalid_argument,
                          fmt::format("scale_factor={}: output sizes should be greater than 0", number_text(s)));
      }
      if (s > kMaxScaleFactor) {
        return make_error(ErrorCode::invalid_argument,
                          fmt::format("scale_factor={} is too large (the limit is {})", number_text(s),
                                      number_text(kMaxScaleFactor)));
      }
    }
  }
  if (op.mode == ResizeMode::nearest && op.coordinates == ResizeCoordinates::align_corners) {
    return make_error(ErrorCode::invalid_argument,
                      "align_corners option can only be set with the interpolating modes: linear | bilinear | "
                      "bicubic | trilinear");
  }
  if (op.antialias && op.mode == ResizeMode::nearest) {
    return make_error(ErrorCode::invalid_argument, "antialias applies to linear and cubic resizing only");
  }
  if (op.cubic_table_steps < 0 || op.cubic_table_steps > (1 << 20)) {
    return make_error(ErrorCode::invalid_argument, "cubic_table_steps must be 0 to 2^20");
  }
  return Ok{};
}

Result<std::vector<int64_t>> output_shape(const ResizeOp& op, std::span<const int64_t> input_shape) {
  CONVBRIDGE_CHECK(validate(op));
  CONVBRIDGE_CHECK(ops::check_input_rank(input_shape, op.rank, "resize"));
  const int rank = static_cast<int>(input_shape.size()) - 2;
  if (rank < 1 || rank > 3) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("resize takes a 3-D, 4-D or 5-D input (N, C, *spatial), got a {}-D shape",
                                  input_shape.size()));
  }
  std::vector<int64_t> out(input_shape.begin(), input_shape.end());
  bool positive = true;
  for (int axis = 0; axis < rank; ++axis) {
    const int64_t in = input_shape[static_cast<size_t>(axis) + 2];
    int64_t size = 0;
    if (!op.size.empty()) {
      size = op.size[entry(op.size, axis)];
    } else {
      // torch upsample_compute_output_size: static_cast<int64_t>(in * scale) in double (floor for positives).
      const double product = std::floor(static_cast<double>(in) * op.scale_factor[entry(op.scale_factor, axis)]);
      if (product > static_cast<double>(kMaxSizeArgument)) {
        return make_error(ErrorCode::overflow,
                          fmt::format("resize: output size {} of axis {} ({} x {}) is too large", product,
                                      axis_name(rank, axis), in,
                                      number_text(op.scale_factor[entry(op.scale_factor, axis)])));
      }
      size = static_cast<int64_t>(product);
    }
    positive = positive && size > 0;
    out[static_cast<size_t>(axis) + 2] = size;
  }
  if (!positive) {
    // torch's own wording (ATen/native/UpSample.h upsample_compute_output_size).
    std::vector<std::string> ins, outs;
    for (int axis = 0; axis < rank; ++axis) {
      ins.push_back(fmt::format("{}: {}", axis_name(rank, axis), input_shape[static_cast<size_t>(axis) + 2]));
      outs.push_back(fmt::format("{}: {}", axis_name(rank, axis), out[static_cast<size_t>(axis) + 2]));
    }
    return make_error(ErrorCode::input_shape,
                      fmt::format("Input and output sizes should be greater than 0, but got input ({}) output ({})",
                                  fmt::join(ins, ", "), fmt::join(outs, ", ")));
  }
  if (!checked_product(out)) {
    return make_error(ErrorCode::overflow, "resize: the output has more elements than 64 bits count");
  }
  return out;
}

Result<std::vector<double>> resize_axis_matrix(const ResizeOp& op, int axis, int64_t in, int64_t out) {
  CONVBRIDGE_CHECK(validate(op));
  if (in <= 0 || out <= 0) {
    return make_error(ErrorCode::input_shape, fmt::format("resize axis {} -> {}: sizes must be positive", in, out));
  }
  const auto cells = checked_mul(in, out);
  if (!cells || *cells > (int64_t{1} << 28)) {
    return make_error(ErrorCode::overflow,
                      fmt::format("resize axis {} -> {}: the interpolation matrix is too large", in, out));
  }
  std::vector<double> matrix(static_cast<size_t>(*cells), 0.0);
  for (int64_t x = 0; x < out; ++x) {
    double* row = matrix.data() + x * in;
    if (op.mode == ResizeMode::nearest) {
      nearest_row(op, axis, x, in, out, row);
    } else if (op.antialias) {
      antialias_row(op, axis, x, in, out, row);
    } else if (op.mode == ResizeMode::linear) {
      linear_row(op, axis, x, in, out, row);
    } else {
      cubic_row(op, axis, x, in, out, row);
    }
  }
  return matrix;
}

namespace ops {

std::string describe(const ResizeOp& op) {
  const std::string dims = op.rank == 0 ? "any-D" : fmt::format("{}-D ({})", op.rank, axis_letters(op.rank));
  std::string target;
  if (!op.size.empty()) {
    target = fmt::format("to {}", list_text(op.size));
  } else {
    std::vector<std::string> factors;
    for (const double s : op.scale_factor) factors.push_back(number_text(s));
    target = fmt::format("by scale ({}) (output floor(in * s))", fmt::join(factors, ", "));
  }
  std::string how;
  switch (op.mode) {
    case ResizeMode::nearest:
      how = op.rounding == NearestRounding::floor ? "nearest, input index floor(x * s) (torch 'nearest')"
                                                  : "nearest, input index floor((x + 0.5) * s) (half-pixel: torch "
                                                    "'nearest-exact', TF nearest)";
      break;
    case ResizeMode::linear:
      how = "linear";
      break;
    case ResizeMode::cubic:
      how = fmt::format("cubic A = {}{}{}", number_text(op.cubic_a),
                        op.cubic_edges == CubicEdges::renormalize ? ", taps outside dropped and renormalized"
                                                                  : ", edge taps clamped",
                        op.cubic_table_steps > 0 ? fmt::format(", offsets rounded to 1/{}", op.cubic_table_steps)
                                                 : std::string());
      break;
  }
  if (op.mode != ResizeMode::nearest) {
    how += op.coordinates == ResizeCoordinates::align_corners ? ", align_corners (x * (in - 1) / (out - 1))"
           : op.coordinates == ResizeCoordinates::half_pixel  ? ", half-pixel centers ((x + 0.5) * s - 0.5)"
                                                              : ", asymmetric (x * s)";
  }
  if (op.antialias) how += ", antialiased (filter stretched by in/out when downscaling)";
  const std::string scale_used =
      op.coordinates == ResizeCoordinates::align_corners ? ""
      : op.use_given_scale                               ? ", s = 1 / scale_factor"
                                                         : ", s = in / out";
  return fmt::format("resize {} {}, {}{}", dims, target, how, scale_used);
}

std::vector<OpWeight> weights_of(const ResizeOp&, std::span<const int64_t>) { return {}; }

int rank_of(const ResizeOp& op) { return op.rank; }

}  // namespace ops
}  // namespace convbridge
