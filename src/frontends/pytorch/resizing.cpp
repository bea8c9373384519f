// PyTorch resizing: nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d, F.interpolate and F.upsample.
// The checks are torch's own, from torch/nn/functional.py interpolate() (argument consistency) and
// torch/nn/modules/upsampling.py Upsample.__init__ (a falsy scale_factor becomes None); the output-size check of
// ATen/native/UpSample.h runs in output_shape once the input size is known.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

constexpr std::array<std::string_view, 5> kUpsampleParameters = {"size", "scale_factor", "mode", "align_corners",
                                                                 "recompute_scale_factor"};
constexpr std::array<std::string_view, 2> kFixedModeParameters = {"size", "scale_factor"};
constexpr std::array<std::string_view, 7> kInterpolateParameters = {
    "input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias"};
constexpr std::array<std::string_view, 5> kUpsampleFunctionParameters = {"input", "size", "scale_factor", "mode",
                                                                         "align_corners"};

std::string upsample_hint(std::string_view keyword) {
  if (keyword == "interpolation") return " (did you mean 'mode'? 'interpolation' is the Keras name)";
  return closest_name_hint(keyword, kInterpolateParameters);
}

// The resize arguments after binding, before the rank is known.
struct TorchResizeArguments {
  PyValue size;
  PyValue scale_factor;
  std::string mode = "nearest";
  std::optional<bool> align_corners;
  std::optional<bool> recompute_scale_factor;
  bool antialias = false;
  bool module = true;  // nn.Upsample: a falsy scale_factor is None (Upsample.__init__)
};

Result<std::optional<bool>> optional_bool(const PyValue& value, std::string_view name) {
  if (value.kind == PyValue::Kind::none) return std::optional<bool>();
  if (value.kind == PyValue::Kind::boolean) return std::optional<bool>(value.boolean);
  return invalid_argument(fmt::format("{}={} must be True, False or None, not {}", name, value.source,
                                      kind_name(value.kind)));
}

bool is_number(const PyValue& v) { return v.kind == PyValue::Kind::integer || v.kind == PyValue::Kind::number; }
double number_of(const PyValue& v) { return v.kind == PyValue::Kind::integer ? static_cast<double>(v.integer) : v.number; }

// size: an int, or a tuple/list of ints (interpolate: "expected size to be one of int or Tuple[int] ...").
Result<std::vector<int64_t>> parse_size(const PyValue& value) {
  auto one = [&](const PyValue& v) -> Result<int64_t> {
    if (v.kind != PyValue::Kind::integer) {
      return invalid_argument(fmt::format(
          "size={}: expected size to be one of int or Tuple[int] or Tuple[int, int] or Tuple[int, int, int], but "
          "got {}",
          value.source, kind_name(v.kind)));
    }
    if (v.integer > kMaxSizeArgument || v.integer < -kMaxSizeArgument) {
      return invalid_argument(fmt::format("size={} is too large (the limit is {})", v.source, kMaxSizeArgument));
    }
    if (v.integer <= 0) {
      // ATen/native/UpSample.h: "Input and output sizes should be greater than 0".
      return invalid_argument(
          fmt::format("size={}: output sizes should be greater than 0, but got {}", value.source, v.integer));
    }
    return v.integer;
  };
  std::vector<int64_t> out;
  if (value.kind == PyValue::Kind::sequence) {
    if (value.items.empty()) {
      return invalid_argument(fmt::format("size={} is empty: give one int per spatial axis", value.source));
    }
    for (const PyValue& item : value.items) {
      CONVBRIDGE_TRY(int64_t v, one(item));
      out.push_back(v);
    }
    return out;
  }
  CONVBRIDGE_TRY(int64_t v, one(value));
  out.push_back(v);
  return out;
}

Result<std::vector<double>> parse_scale(const PyValue& value) {
  auto one = [&](const PyValue& v) -> Result<double> {
    if (!is_number(v)) {
      return invalid_argument(fmt::format("scale_factor={} must be a float or a tuple of floats, not {}",
                                          value.source, kind_name(v.kind)));
    }
    const double s = number_of(v);
    if (!std::isfinite(s) || s <= 0.0) {
      return invalid_argument(fmt::format(
          "scale_factor={}: output sizes should be greater than 0 (the output is floor(input size * scale_factor))",
          value.source));
    }
    if (s > 1e6) return invalid_argument(fmt::format("scale_factor={} is too large (the limit is 1e6)", value.source));
    return s;
  };
  std::vector<double> out;
  if (value.kind == PyValue::Kind::sequence) {
    if (value.items.empty()) {
      return invalid_argument(fmt::format("scale_factor={} is empty: give one factor per spatial axis", value.source));
    }
    for (const PyValue& item : value.items) {
      CONVBRIDGE_TRY(double v, one(item));
      out.push_back(v);
    }
    return out;
  }
  CONVBRIDGE_TRY(double v, one(value));
  out.push_back(v);
  return out;
}

// The spatial rank a mode demands (interpolate dispatches on input.dim()), 0 for any.
int mode_rank(std::string_view mode) {
  if (mode == "linear") return 1;
  if (mode == "bilinear" || mode == "bicubic") return 2;
  if (mode == "trilinear") return 3;
  return 0;
}

Status build_op(const TorchResizeArguments& a, OpLayer& layer) {
  static constexpr std::array<std::string_view, 8> kModes = {"nearest", "linear", "bilinear",      "bicubic",
                                                             "trilinear", "area", "nearest-exact", "lanczos"};
  if (std::find(kModes.begin(), kModes.end(), a.mode) == kModes.end()) {
    return invalid_argument(fmt::format(
        "mode='{}': Only 3D, 4D and 5D input Tensors supported for the modes: nearest | linear | bilinear | bicubic "
        "| trilinear | lanczos | area | nearest-exact",
        printable_excerpt(a.mode, 40)));
  }
  const bool nearest_like = a.mode == "nearest" || a.mode == "nearest-exact" || a.mode == "area";
  if (nearest_like && a.align_corners) {
    return invalid_argument(fmt::format(
        "align_corners={}: align_corners option can only be set with the interpolating modes: linear | bilinear | "
        "bicubic | trilinear (mode='{}')",
        *a.align_corners ? "True" : "False", a.mode));
  }
  const bool has_size = a.size.kind != PyValue::Kind::none;
  bool has_scale = a.scale_factor.kind != PyValue::Kind::none;
  // Upsample.__init__: `float(scale_factor) if scale_factor else None` (a tuple is kept).
  if (a.module && has_scale && is_number(a.scale_factor) && number_of(a.scale_factor) == 0.0) has_scale = false;
  if (has_size && has_scale) return invalid_argument("only one of size or scale_factor should be defined");
  if (!has_size && !has_scale) return invalid_argument("either size or scale_factor should be defined");
  if (has_size && a.recompute_scale_factor.value_or(false)) {
    return invalid_argument("recompute_scale_factor=True is not meaningful with an explicit size");
  }
  int rank = mode_rank(a.mode);
  if (a.antialias && !(a.mode == "bilinear" || a.mode == "bicubic" || a.mode == "lanczos")) {
    return invalid_argument(fmt::format(
        "antialias=True with mode='{}': Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and "
        "requires a 4-D tensor as input",
        a.mode));
  }
  ResizeOp op;
  if (has_size) {
    CONVBRIDGE_TRY(op.size, parse_size(a.size));
    const bool tuple = a.size.kind == PyValue::Kind::sequence;
    if (tuple && rank > 0 && op.size.size() != static_cast<size_t>(rank)) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("size={}: mode='{}' takes a {}-D input, so size needs {} entries (Input and "
                                    "output must have the same number of spatial dimensions)",
                                    a.size.source, a.mode, rank + 2, rank));
    }
    if (tuple && op.size.size() > 3) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("size={} has {} entries: interpolate takes 1 to 3 spatial axes", a.size.source,
                                    op.size.size()));
    }
    if (tuple) rank = static_cast<int>(op.size.size());
    if (!tuple && rank > 0) op.size.assign(static_cast<size_t>(rank), op.size.front());
  } else {
    CONVBRIDGE_TRY(op.scale_factor, parse_scale(a.scale_factor));
    const bool tuple = a.scale_factor.kind == PyValue::Kind::sequence;
    if (tuple && rank > 0 && op.scale_factor.size() != static_cast<size_t>(rank)) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("scale_factor={}: mode='{}' takes a {}-D input, so scale_factor needs {} "
                                    "entries (Input and scale_factor must have the same number of spatial "
                                    "dimensions)",
                                    a.scale_factor.source, a.mode, rank + 2, rank));
    }
    if (tuple && op.scale_factor.size() > 3) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("scale_factor={} has {} entries: interpolate takes 1 to 3 spatial axes",
                                    a.scale_factor.source, op.scale_factor.size()));
    }
    if (tuple) rank = static_cast<int>(op.scale_factor.size());
    if (!tuple && rank > 0) op.scale_factor.assign(static_cast<size_t>(rank), op.scale_factor.front());
    // interpolate(): a truthy recompute_scale_factor turns the factor into an output size and drops it, so the
    // coordinates use in / out; otherwise the kernels receive the factor and use 1 / scale_factor.
    op.use_given_scale = !a.recompute_scale_factor.value_or(false);
  }
  op.rank = rank;
  if (a.antialias && rank != 2) {
    return invalid_argument("antialias=True: Anti-alias option requires a 4-D tensor as input");
  }
  if (a.mode == "area") {
    return make_error(ErrorCode::unsupported,
                      "mode='area' is adaptive average pooling (interpolate calls adaptive_avg_pool*d): translate "
                      "nn.AdaptiveAvgPool2d(output_size) instead; TF's 'area' resize weighs pixels differently");
  }
  if (a.mode == "lanczos") {
    return make_error(ErrorCode::unsupported, "mode='lanczos' is not translated (no exact TF counterpart)");
  }
  op.antialias = a.antialias;
  if (a.mode == "nearest") {
    // "matches buggy OpenCV INTER_NEAREST" (functional.py): floor(x * s).
    op.mode = ResizeMode::nearest;
    op.rounding = NearestRounding::floor;
    op.coordinates = ResizeCoordinates::asymmetric;
  } else if (a.mode == "nearest-exact") {
    op.mode = ResizeMode::nearest;
    op.rounding = NearestRounding::half_pixel_floor;
    op.coordinates = ResizeCoordinates::half_pixel;
  } else {
    op.mode = a.mode == "bicubic" ? ResizeMode::cubic : ResizeMode::linear;
    op.coordinates = a.align_corners.value_or(false) ? ResizeCoordinates::align_corners : ResizeCoordinates::half_pixel;
    // upsample_bicubic2d uses A = -0.75 (ATen/native/UpSample.h get_cubic_upsample_coefficients) with clamped edge
    // taps; the antialiased kernel uses A = -0.5 (UpSampleKernel.cpp HelperInterpCubic::aa_filter).
    op.cubic_a = a.antialias ? -0.5 : -0.75;
    op.cubic_edges = CubicEdges::clamp;
    if (a.antialias && op.coordinates == ResizeCoordinates::align_corners) {
      return make_error(ErrorCode::unsupported,
                        "antialias=True with align_corners=True is not translated: no TF resize has that grid");
    }
  }
  layer.op = op;
  return Ok{};
}

Result<TorchResizeArguments> common(const BoundArguments& bound, bool has_mode) {
  TorchResizeArguments a;
  a.size = bound.get("size", "None");
  a.scale_factor = bound.get("scale_factor", "None");
  if (has_mode) {
    const PyValue mode = bound.get("mode", "'nearest'");
    if (mode.kind != PyValue::Kind::string) {
      return invalid_argument(fmt::format("mode={} must be a string, not {}", mode.source, kind_name(mode.kind)));
    }
    a.mode = mode.text;
    CONVBRIDGE_TRY(a.align_corners, optional_bool(bound.get("align_corners", "None"), "align_corners"));
  }
  return a;
}

Status parse_upsample(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "Upsample", kUpsampleParameters, 0,
                                      "size=None, scale_factor=None, mode='nearest', align_corners=None, "
                                      "recompute_scale_factor=None",
                                      upsample_hint));
  CONVBRIDGE_TRY(TorchResizeArguments a, common(bound, true));
  CONVBRIDGE_TRY(a.recompute_scale_factor,
                 optional_bool(bound.get("recompute_scale_factor", "None"), "recompute_scale_factor"));
  return build_op(a, layer);
}

template <bool Bilinear>
Status parse_fixed_mode(const PyCall& call, OpLayer& layer) {
  const char* name = Bilinear ? "UpsamplingBilinear2d" : "UpsamplingNearest2d";
  CONVBRIDGE_TRY(BoundArguments bound, BoundArguments::bind(call, name, kFixedModeParameters, 0,
                                                            "size=None, scale_factor=None", upsample_hint));
  CONVBRIDGE_TRY(TorchResizeArguments a, common(bound, false));
  // upsampling.py: UpsamplingNearest2d is Upsample(mode='nearest'); UpsamplingBilinear2d is
  // Upsample(mode='bilinear', align_corners=True). Both are 2-D (4-D input).
  a.mode = Bilinear ? "bilinear" : "nearest";
  if (Bilinear) a.align_corners = true;
  const bool tuple_size = a.size.kind == PyValue::Kind::sequence && a.size.items.size() != 2;
  const bool tuple_scale = a.scale_factor.kind == PyValue::Kind::sequence && a.scale_factor.items.size() != 2;
  if (tuple_size || tuple_scale) {
    return invalid_argument(fmt::format("{}={}: {} takes 2-D (N, C, H, W) input, so it needs an int or 2 values", 
                                        tuple_size ? "size" : "scale_factor",
                                        tuple_size ? a.size.source : a.scale_factor.source, name));
  }
  CONVBRIDGE_CHECK(build_op(a, layer));
  auto& op = std::get<ResizeOp>(layer.op);
  op.rank = 2;
  if (op.size.size() == 1) op.size.assign(2, op.size.front());
  if (op.scale_factor.size() == 1) op.scale_factor.assign(2, op.scale_factor.front());
  return Ok{};
}

Status require_input_name(const BoundArguments& bound, std::string_view function) {
  const PyValue input = bound.get("input", "None");
  if (input.kind != PyValue::Kind::name) {
    return invalid_argument(fmt::format("{}: input={} must be the input tensor, written as a name (x)", function,
                                        input.source));
  }
  return Ok{};
}

Status parse_interpolate(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "interpolate", kInterpolateParameters, 1,
                                      "input, size=None, scale_factor=None, mode='nearest', align_corners=None, "
                                      "recompute_scale_factor=None, antialias=False",
                                      upsample_hint));
  CONVBRIDGE_CHECK(require_input_name(bound, "interpolate"));
  CONVBRIDGE_TRY(TorchResizeArguments a, common(bound, true));
  a.module = false;
  CONVBRIDGE_TRY(a.recompute_scale_factor,
                 optional_bool(bound.get("recompute_scale_factor", "None"), "recompute_scale_factor"));
  const PyValue antialias = bound.get("antialias", "False");
  if (antialias.kind != PyValue::Kind::boolean) {
    return invalid_argument(
        fmt::format("antialias={} must be True or False, not {}", antialias.source, kind_name(antialias.kind)));
  }
  a.antialias = antialias.boolean;
  return build_op(a, layer);
}

// F.upsample: deprecated, "equivalent with nn.functional.interpolate(...)" (functional.py upsample()).
Status parse_upsample_function(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "upsample", kUpsampleFunctionParameters, 1,
                                      "input, size=None, scale_factor=None, mode='nearest', align_corners=None",
                                      upsample_hint));
  CONVBRIDGE_CHECK(require_input_name(bound, "upsample"));
  CONVBRIDGE_TRY(TorchResizeArguments a, common(bound, true));
  a.module = false;
  layer.notes.push_back("F.upsample is deprecated; it is F.interpolate with the same arguments");
  return build_op(a, layer);
}

constexpr std::array<LayerClass, 5> kClasses = {{
    {Framework::pytorch, "Upsample", kUpsampleParameters, parse_upsample},
    {Framework::pytorch, "UpsamplingNearest2d", kFixedModeParameters, parse_fixed_mode<false>},
    {Framework::pytorch, "UpsamplingBilinear2d", kFixedModeParameters, parse_fixed_mode<true>},
    {Framework::pytorch, "interpolate", kInterpolateParameters, parse_interpolate},
    {Framework::pytorch, "upsample", kUpsampleFunctionParameters, parse_upsample_function},
}};

}  // namespace

std::span<const LayerClass> torch_resizing_classes() { return kClasses; }

}  // namespace convbridge::frontends
