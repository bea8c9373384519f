// The arguments of convbridge.SeparableResize, which both targets use: the Keras layer (keras_layers.py) and the
// PyTorch module (torch_modules.py) of that name take the same ones, so the two plans spell them once.
#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {

const char* mode_text(ResizeMode mode) {
  return mode == ResizeMode::nearest ? "nearest" : mode == ResizeMode::linear ? "linear" : "cubic";
}
const char* coordinates_text(ResizeCoordinates c) {
  return c == ResizeCoordinates::half_pixel ? "half_pixel" : c == ResizeCoordinates::align_corners ? "align_corners"
                                                                                                  : "asymmetric";
}

}  // namespace

CallValue float_tuple(const std::vector<double>& values) {
  std::vector<CallValue> items;
  for (const double v : values) items.push_back(CallValue::of(v));
  return CallValue::tuple(std::move(items));
}

// convbridge.SeparableResize's arguments: only those the mode reads (the others keep their defaults).
std::vector<CallArgument> separable_resize_arguments(const ResizeOp& op) {
  std::vector<CallArgument> out = {arg("mode", CallValue::str(mode_text(op.mode)))};
  if (op.mode == ResizeMode::nearest) {
    out.push_back(arg("rounding", CallValue::str(op.rounding == NearestRounding::floor ? "floor" : "half_pixel_floor")));
  } else if (!op.antialias) {
    out.push_back(arg("coordinates", CallValue::str(coordinates_text(op.coordinates))));
  }
  if (op.mode == ResizeMode::cubic) {
    out.push_back(arg("cubic_a", CallValue::of(op.cubic_a)));
    if (!op.antialias) {
      out.push_back(arg("cubic_edges", CallValue::str(op.cubic_edges == CubicEdges::clamp ? "clamp" : "renormalize")));
    }
    if (op.cubic_table_steps > 0) {
      out.push_back(arg("cubic_table_steps", CallValue::of(static_cast<int64_t>(op.cubic_table_steps))));
    }
  }
  if (op.antialias) out.push_back(arg("antialias", CallValue::flag(true)));
  if (!op.size.empty()) {
    out.push_back(arg("size", CallValue::ints(op.size)));
  } else {
    out.push_back(arg("scale_factor", float_tuple(op.scale_factor)));
    out.push_back(arg("use_given_scale", CallValue::flag(op.use_given_scale)));
  }
  return out;
}

}  // namespace convbridge::targets
