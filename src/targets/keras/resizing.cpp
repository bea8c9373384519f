// PyTorch resizing -> Keras. Cheapest exact first:
//   1. nearest with an integer factor per axis (torch 'nearest' and 'nearest-exact' alike): UpSamplingND(size),
//      which is ops.repeat (up_sampling2d.py _resize_images);
//   2. half-pixel grids TF shares (bilinear, 'nearest-exact', antialiased bilinear/bicubic) where the output size
//      is fixed, or is in * factor with an integer factor: UpSampling2D(interpolation='bilinear') or Resizing /
//      tf.image.resize (TF2 resize_images_v2 is half-pixel, scale in / out);
//   3. everything else (torch 'nearest' at non-integer scales, align_corners=True, bicubic A = -0.75 with clamped
//      taps, a given scale_factor whose 1/scale differs from in/out, 1-D linear, 3-D trilinear):
//      convbridge.SeparableResize, which builds the same per-axis matrices as resize_axis_matrix from the dynamic
//      input size and applies them with tf.einsum.
#include <fmt/format.h>

#include <cmath>

#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {


// The op with its per-axis entries spelled out for `rank` axes (a torch 'nearest' op given one int takes the
// input's rank).
ResizeOp concrete(const ResizeOp& op, int rank) {
  ResizeOp out = op;
  out.rank = rank;
  if (out.size.size() == 1 && rank > 1) out.size.assign(static_cast<size_t>(rank), op.size.front());
  if (out.scale_factor.size() == 1 && rank > 1) out.scale_factor.assign(static_cast<size_t>(rank), op.scale_factor.front());
  return out;
}

// The output size per axis when the plan knows it (a fixed size, or the input size known), else empty.
std::vector<int64_t> known_output(const ResizeOp& op, const TargetInput& input) {
  if (!op.size.empty()) return op.size;
  if (!input.sizes_known()) return {};
  auto shape = output_shape(op, input.shape);
  if (!shape) return {};
  return std::vector<int64_t>(shape->begin() + 2, shape->end());
}

// Integer factors when out = in * k for every axis at every input size (a given integral scale_factor), or for
// the known input; empty otherwise.
std::vector<int64_t> integer_factors(const ResizeOp& op, const TargetInput& input) {
  std::vector<int64_t> factors;
  if (!op.scale_factor.empty()) {
    for (const double s : op.scale_factor) {
      if (s != std::floor(s) || s < 1.0) return {};
      factors.push_back(static_cast<int64_t>(s));
    }
    return factors;
  }
  if (!input.sizes_known()) return {};
  for (int axis = 0; axis < op.rank; ++axis) {
    const int64_t in = input.shape[static_cast<size_t>(axis) + 2];
    const int64_t out = op.size[static_cast<size_t>(axis)];
    if (out % in != 0) return {};
    factors.push_back(out / in);
  }
  return factors;
}

// Whether the coordinates the op uses equal TF's in / out: the op uses in / out, or the given scale makes
// out = in * s exactly (then 1 / s and in / out are the same real, rounded alike) for the known input.
bool scale_is_in_over_out(const ResizeOp& op, const TargetInput& input) {
  if (!op.use_given_scale || op.scale_factor.empty()) return true;
  if (!input.sizes_known()) return false;
  for (int axis = 0; axis < op.rank; ++axis) {
    const double product = static_cast<double>(input.shape[static_cast<size_t>(axis) + 2]) *
                           op.scale_factor[static_cast<size_t>(axis)];
    if (product != std::floor(product)) return false;
  }
  return true;
}

// torch 'nearest' picks floor(float(x) * float(1 / k)) (float32, see nearest_row): that is floor(x / k) when
// float(1 / k) is not below 1 / k (k = 2: exact; k = 41: below, so output 41 reads input 0). 'nearest-exact'
// picks floor((x + 0.5) / k) with a margin of 0.5 / k and repeats at every integer k.
bool float_nearest_repeats(const ResizeOp& op, const std::vector<int64_t>& factors) {
  if (op.rounding != NearestRounding::floor) return true;
  for (const int64_t k : factors) {
    if (k > 2 && static_cast<double>(static_cast<float>(1.0 / static_cast<double>(k))) * static_cast<double>(k) < 1.0) {
      return false;
    }
  }
  return true;
}


TargetStep separable_resize_step(const ResizeOp& op, std::string why) {
  std::vector<CallArgument> arguments = separable_resize_arguments(op);
  TargetStep step = keras_step(op, "convbridge.SeparableResize", std::move(arguments), std::move(why));
  step.helpers = {"SeparableResize"};
  return step;
}

// What Resizing / tf.image.resize / UpSampling2D(interpolation) computes, as the Keras front-end describes it.
ResizeOp tf_half_pixel_op(ResizeMode mode, bool antialias) {
  ResizeOp op;
  op.rank = 2;
  op.mode = mode;
  op.coordinates = ResizeCoordinates::half_pixel;
  op.rounding = NearestRounding::half_pixel_floor;
  op.antialias = antialias;
  if (mode == ResizeMode::cubic) {
    op.cubic_a = -0.5;
    op.cubic_edges = CubicEdges::renormalize;
  }
  return op;
}

}  // namespace

Result<TargetPlan> plan_keras(const ResizeOp& source, const TargetInput& input) {
  TargetPlan plan;
  int rank = input.rank();
  if (rank == 0) {
    rank = 2;
    plan.notes.push_back("the layer takes 1-D to 3-D input; planned for 2-D (N, C, H, W): give input_shape for "
                         "another rank");
  }
  if (source.rank != 0 && source.rank != rank) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("the layer resizes {} spatial axes, the input shape has {}", source.rank, rank));
  }
  const ResizeOp op = concrete(source, rank);
  if (op.antialias) {
    // Measured with torch 2.13: _upsample_bilinear2d_aa / _upsample_bicubic2d_aa give every output row the
    // weights of row 0 when the output width is 1 (a 9 -> 2 rows resize to width 1 differs by 0.23 from the same
    // resize to width 3, whose rows are right). That is not an interpolation any target computes: refuse it.
    const std::vector<int64_t> out = known_output(op, input);
    if (out.empty() && op.scale_factor.back() < 2.0) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("antialias=True with scale_factor {} on the width needs the input size: "
                                    "torch 2.13's antialiased resize is wrong when the output width is 1, which "
                                    "this scale gives for narrow inputs; give input_shape",
                                    python_literal(CallValue::of(op.scale_factor.back()))));
    }
    if (!out.empty() && out.back() == 1) {
      return make_error(ErrorCode::unsupported,
                        "antialias=True with an output width of 1 is not translated: torch 2.13's antialiased "
                        "resize then gives every output row the weights of the first (measured), which no Keras "
                        "resize computes");
    }
  }
  const std::vector<int64_t> factors = integer_factors(op, input);
  const bool factors_exact_everywhere = !op.scale_factor.empty();

  // 1. Nearest with integer factors is repetition: floor(x / k) = floor((x + 0.5) / k) for integer k.
  if (op.mode == ResizeMode::nearest && !factors.empty() && float_nearest_repeats(op, factors)) {
    ResizeOp repeat = op;
    repeat.size.clear();
    repeat.scale_factor.assign(factors.begin(), factors.end());
    // What UpSampling computes, exact repetition, written as the Keras front-end writes it.
    repeat.rounding = NearestRounding::half_pixel_floor;
    repeat.coordinates = ResizeCoordinates::half_pixel;
    repeat.use_given_scale = true;
    const std::string callee = fmt::format("keras.layers.UpSampling{}D", rank);
    const CallValue size = rank == 1 ? CallValue::of(factors.front()) : CallValue::ints(factors);
    plan.steps.push_back(keras_step(
        repeat, callee, {arg("size", size)},
        fmt::format("nearest resizing by the integer factor {} repeats each input element: UpSampling{}D repeats "
                    "(ops.repeat), and torch '{}' picks the same inputs at integer factors",
                    factors.size() == 1 ? fmt::format("{}", factors.front()) : python_literal(CallValue::ints(factors)),
                    rank, op.rounding == NearestRounding::floor ? "nearest" : "nearest-exact")));
    plan.exact_for_every_input_size = factors_exact_everywhere;
    return plan;
  }

  // 2. TF's half-pixel resizes.
  const bool half_pixel_nearest = op.mode == ResizeMode::nearest && op.rounding == NearestRounding::half_pixel_floor;
  const bool tf_linear = op.mode == ResizeMode::linear && op.coordinates == ResizeCoordinates::half_pixel;
  const bool tf_antialiased_cubic = op.mode == ResizeMode::cubic && op.antialias && op.cubic_a == -0.5 &&
                                    op.coordinates == ResizeCoordinates::half_pixel;
  if (rank == 2 && (half_pixel_nearest || tf_linear || tf_antialiased_cubic)) {
    if (tf_linear && !op.antialias && !factors.empty() && factors_exact_everywhere) {
      ResizeOp step_op = tf_half_pixel_op(ResizeMode::linear, false);
      step_op.scale_factor.assign(factors.begin(), factors.end());
      step_op.use_given_scale = true;
      TargetStep step = keras_step(
          step_op, "keras.layers.UpSampling2D",
          {arg("size", CallValue::ints(factors)), arg("interpolation", CallValue::str("bilinear"))},
          "bilinear with align_corners=False by an integer factor: UpSampling2D(interpolation='bilinear') calls "
          "tf.image.resize to (H * sh, W * sw), whose half-pixel grid with in / out = 1 / factor is torch's");
      plan.steps.push_back(std::move(step));
      return plan;
    }
    const std::vector<int64_t> out = known_output(op, input);
    if (!out.empty() && scale_is_in_over_out(op, input)) {
      const char* method = half_pixel_nearest ? "nearest" : tf_linear ? "bilinear" : "bicubic";
      ResizeOp step_op = tf_half_pixel_op(op.mode, op.antialias && !half_pixel_nearest);
      step_op.size = out;
      if (op.mode == ResizeMode::cubic) step_op.cubic_table_steps = 0;  // the antialiased path: exact offsets
      std::vector<CallArgument> arguments = {arg("height", CallValue::of(out[0])), arg("width", CallValue::of(out[1])),
                                             arg("interpolation", CallValue::str(method))};
      std::vector<CallArgument> function_arguments = {arg("", CallValue{CallValue::Kind::name, 0, 0.0, false, "x", {}}),
                                                      arg("", CallValue::ints(out)),
                                                      arg("method", CallValue::str(method))};
      if (step_op.antialias) {
        arguments.push_back(arg("antialias", CallValue::flag(true)));
        function_arguments.push_back(arg("antialias", CallValue::flag(true)));
      }
      TargetStep step = keras_step(
          step_op, "keras.layers.Resizing", std::move(arguments),
          half_pixel_nearest
              ? "torch 'nearest-exact' is floor((x + 0.5) * in / out), TF2's half-pixel nearest: Resizing(interpolation="
                "'nearest') to the same output size"
          : tf_linear && !op.antialias
              ? "bilinear with align_corners=False is TF2's half-pixel bilinear: Resizing to the same output size "
                "(tf.image.resize)"
              : "torch's antialiased filters (triangle; cubic A = -0.5) stretched by in / out are TF's "
                "scale_and_translate kernels: Resizing(antialias=True) to the same output size");
      step.function = FrameworkCall{"tf.image.resize", std::move(function_arguments)};
      plan.steps.push_back(std::move(step));
      plan.exact_for_every_input_size = !op.size.empty();
      return plan;
    }
  }

  // 3. Ours.
  std::string why;
  if (op.mode == ResizeMode::nearest) {
    why = op.rounding == NearestRounding::floor
              ? "torch 'nearest' picks floor(x * s) (\"matches buggy OpenCV INTER_NEAREST\"); TF's nearest is half-pixel "
                "and differs at non-integer scales: convbridge.SeparableResize applies torch's selection"
              : "torch 'nearest-exact' with this scale has no TF layer (TF takes in / out, or resizes 2-D only): "
                "convbridge.SeparableResize applies the same selection";
  } else if (op.coordinates == ResizeCoordinates::align_corners) {
    why = "align_corners=True maps corners to corners (x * (in - 1) / (out - 1)); TF2's resize is half-pixel only: "
          "convbridge.SeparableResize interpolates on torch's grid";
  } else if (op.mode == ResizeMode::cubic) {
    why = "torch bicubic uses A = -0.75 with clamped edge taps, TF's bicubic A = -0.5 with renormalized taps: "
          "convbridge.SeparableResize applies torch's kernel";
  } else if (rank != 2) {
    why = fmt::format("{} interpolation has no Keras layer (TF resizes 2-D images): convbridge.SeparableResize "
                      "interpolates each axis in turn",
                      rank == 1 ? "1-D linear" : "3-D trilinear");
  } else if (op.use_given_scale) {
    why = "the given scale_factor is used for the coordinates (recompute_scale_factor is not True) and 1 / scale "
          "differs from in / out here; TF uses in / out: convbridge.SeparableResize uses the given scale";
  } else {
    why = "no Keras layer computes this resize exactly: convbridge.SeparableResize applies the interpolation matrices";
  }
  plan.steps.push_back(separable_resize_step(op, std::move(why)));
  return plan;
}

std::vector<FrameworkWeight> keras_weights(const ResizeOp&, const TargetInput&) { return {}; }

}  // namespace convbridge::targets
