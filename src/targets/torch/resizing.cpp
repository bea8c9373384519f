// Keras / TF resizing -> PyTorch. Cheapest exact first:
//   1. UpSampling nearest (repetition): nn.Upsample(scale_factor=k, mode='nearest'), floor(x / k);
//   2. TF nearest (half-pixel): nn.Upsample(size, mode='nearest-exact'); TF bilinear: nn.Upsample(size or
//      scale_factor, mode='bilinear', align_corners=False) (both half-pixel, clamped edges);
//   3. antialiased bilinear / bicubic: convbridge.Interpolate, F.interpolate(antialias=True), whose filters
//      (triangle; cubic A = -0.5) are TF's scale_and_translate kernels (nn.Upsample has no antialias argument);
//   4. TF bicubic without antialias (A = -0.5, taps outside dropped and renormalized, offsets on a 1/1024 table,
//      resize_bicubic_op.cc): convbridge.SeparableResize with those conventions.
#include <fmt/format.h>

#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {



// size=... or scale_factor=... as nn.Upsample takes them (floats: Upsample stores float factors).
CallArgument size_or_scale(const ResizeOp& op) {
  if (!op.size.empty()) return arg("size", op.rank == 1 ? CallValue::of(op.size.front()) : CallValue::ints(op.size));
  return arg("scale_factor", op.rank == 1 ? CallValue::of(op.scale_factor.front()) : float_tuple(op.scale_factor));
}

// Whether torch 'nearest' (float32 floor(x * float(1 / k)), see nearest_row in src/ops/resizing.cpp) repeats by
// each integer factor k: float(1 / k) must not be below 1 / k (k = 41 is: output 41 would read input 0).
bool nearest_repeats(const ResizeOp& op) {
  for (const double k : op.scale_factor) {
    if (k > 2.0 && static_cast<double>(static_cast<float>(1.0 / k)) * k < 1.0) return false;
  }
  return true;
}

// Keras UpSampling's repetition: integer factors, used as given.
bool is_repetition(const ResizeOp& op) {
  if (op.scale_factor.empty() || !op.use_given_scale) return false;
  for (const double k : op.scale_factor) {
    if (k != static_cast<double>(static_cast<int64_t>(k))) return false;
  }
  return true;
}

}  // namespace

Result<TargetPlan> plan_torch(const ResizeOp& op, const TargetInput&) {
  TargetPlan plan;
  if (op.mode == ResizeMode::nearest && is_repetition(op)) {
    // UpSampling1D/2D/3D: ops.repeat by integer k. torch 'nearest' with scale_factor k picks floor(x * float(1 / k)),
    // the same element when float(1 / k) is not below 1 / k (k = 2, 3, ...); 'nearest-exact' picks
    // floor((x + 0.5) / k), which repeats at every integer k.
    ResizeOp torch_op = op;
    const bool plain = nearest_repeats(op);
    torch_op.rounding = plain ? NearestRounding::floor : NearestRounding::half_pixel_floor;
    torch_op.coordinates = plain ? ResizeCoordinates::asymmetric : ResizeCoordinates::half_pixel;
    TargetStep step = torch_step(
        torch_op, "nn.Upsample", {size_or_scale(op), arg("mode", CallValue::str(plain ? "nearest" : "nearest-exact"))},
        plain ? "UpSampling repeats each element k times (ops.repeat); torch 'nearest' with the integer scale_factor k "
                "picks input floor(x * float(1 / k)), the same element"
              : "UpSampling repeats each element k times; at this k torch 'nearest' computes floor(x * float(1 / k)) "
                "with float(1 / k) below 1 / k and skips elements, while 'nearest-exact', floor((x + 0.5) / k), "
                "repeats");
    plan.steps.push_back(std::move(step));
    return plan;
  }
  if (op.mode == ResizeMode::nearest) {
    TargetStep step =
        torch_step(op, "nn.Upsample", {size_or_scale(op), arg("mode", CallValue::str("nearest-exact"))},
                   "TF2's nearest is half-pixel, floor((x + 0.5) * in / out): torch 'nearest-exact', not 'nearest' "
                   "(floor(x * in / out), which differs at non-integer scales)");
    plan.steps.push_back(std::move(step));
    return plan;
  }
  if (op.mode == ResizeMode::linear && !op.antialias) {
    TargetStep step = torch_step(op, "nn.Upsample",
                                 {size_or_scale(op), arg("mode", CallValue::str("bilinear")),
                                  arg("align_corners", CallValue::flag(false))},
                                 "TF2's bilinear resize uses half-pixel centers with clamped edges: torch 'bilinear' "
                                 "with align_corners=False");
    plan.steps.push_back(std::move(step));
    return plan;
  }
  // torch 2.13's antialiased kernels are wrong when the output width is 1 (every row gets row 0's weights,
  // measured): TF's antialiased resize to width 1 goes to SeparableResize below.
  const bool torch_antialias_exact = op.size.empty() || op.size.back() != 1;
  if (op.antialias && torch_antialias_exact) {
    std::vector<CallArgument> arguments = {size_or_scale(op),
                                           arg("mode", CallValue::str(op.mode == ResizeMode::linear ? "bilinear"
                                                                                                    : "bicubic")),
                                           arg("align_corners", CallValue::flag(false)),
                                           arg("antialias", CallValue::flag(true))};
    TargetStep step = torch_step(
        op, "convbridge.Interpolate", std::move(arguments),
        "TF's antialiased resize (scale_and_translate: triangle or Keys cubic A = -0.5, stretched by in / out when "
        "downscaling) is F.interpolate(antialias=True); nn.Upsample has no antialias argument, so a module of ours "
        "calls F.interpolate");
    step.helpers = {"Interpolate"};
    plan.steps.push_back(std::move(step));
    return plan;
  }
  std::vector<CallArgument> arguments = separable_resize_arguments(op);
  TargetStep step = torch_step(
      op, "convbridge.SeparableResize", std::move(arguments),
      op.antialias
          ? "TF's antialiased resize to an output width of 1: F.interpolate(antialias=True) is wrong there in torch "
            "2.13 (every row gets the first row's weights), so convbridge.SeparableResize applies TF's filter"
          : "TF's bicubic uses Keys A = -0.5, drops taps outside the image and renormalizes, with offsets rounded "
            "to a 1/1024 table; torch's bicubic uses A = -0.75 with clamped taps: convbridge.SeparableResize "
            "applies TF's weights");
  step.helpers = {"SeparableResize"};
  plan.steps.push_back(std::move(step));
  return plan;
}

std::vector<FrameworkWeight> torch_weights(const ResizeOp&, const TargetInput&) { return {}; }

}  // namespace convbridge::targets
