// Shape math, checks and descriptions for PadOp and PixelShuffleOp. The run-time checks are the source
// frameworks' own, measured with torch 2.13 and tensorflow 2.21 (messages quoted where they name the rule):
//   reflect:   every pad smaller than its axis (torch: "Padding size should be less than the corresponding input
//              dimension"; tf.pad REFLECT: "paddings must be less than the dimension size")
//   symmetric: every pad at most its axis (tf.pad SYMMETRIC: "paddings must be no greater than the dimension size")
//   circular:  every pad at most its axis (torch: "Padding value causes wrapping around more than once")
//   any fill:  an output size below zero (torch: "narrow(): length must be non-negative")
#include <fmt/format.h>

#include <cmath>

#include "convbridge/checked_math.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {
namespace {

constexpr std::string_view kAxisLetters[3][3] = {{"L"}, {"H", "W"}, {"D", "H", "W"}};

std::string_view axis_letter(int rank, size_t axis) {
  return rank >= 1 && rank <= 3 ? kAxisLetters[rank - 1][axis] : std::string_view("?");
}

std::string_view fill_name(PadFill fill) {
  switch (fill) {
    case PadFill::constant: return "constant";
    case PadFill::reflect: return "reflect";
    case PadFill::replicate: return "replicate";
    case PadFill::circular: return "circular";
    case PadFill::symmetric: return "symmetric";
  }
  return "?";
}

}  // namespace

Status validate(const PadOp& op) {
  if (op.rank < 1 || op.rank > 3) {
    return make_error(ErrorCode::invalid_argument, fmt::format("padding rank {} is not 1, 2 or 3", op.rank));
  }
  if (op.pads.size() != static_cast<size_t>(op.rank)) {
    return make_error(ErrorCode::invalid_argument,
                      fmt::format("padding has {} (before, after) pairs for {} spatial axes", op.pads.size(), op.rank));
  }
  for (const PadPair& pad : op.pads) {
    for (const int64_t side : {pad.before, pad.after}) {
      if (side > kMaxSizeArgument || side < -kMaxSizeArgument) {
        return make_error(ErrorCode::invalid_argument,
                          fmt::format("padding {} is too large (the limit is {})", side, kMaxSizeArgument));
      }
    }
  }
  if (op.fill != PadFill::constant && op.value != 0.0) {
    return make_error(ErrorCode::invalid_argument,
                      fmt::format("{} padding takes no value (PyTorch: \"Padding mode \\\"{}\\\" doesn't take in "
                                  "value argument\")",
                                  fill_name(op.fill), fill_name(op.fill)));
  }
  return Ok{};
}

Result<std::vector<int64_t>> output_shape(const PadOp& op, std::span<const int64_t> input_shape) {
  CONVBRIDGE_CHECK(validate(op));
  CONVBRIDGE_CHECK(ops::check_input_rank(input_shape, op.rank, fmt::format("{} padding", fill_name(op.fill))));
  std::vector<int64_t> out(input_shape.begin(), input_shape.end());
  for (size_t axis = 0; axis < op.pads.size(); ++axis) {
    const int64_t size = input_shape[axis + 2];
    const PadPair& pad = op.pads[axis];
    const std::string_view letter = axis_letter(op.rank, axis);
    // Overflow cannot happen below kMaxSizeArgument, but the sizes come from users: check anyway.
    const auto before = checked_add(size, pad.before);
    const auto padded = before ? checked_add(*before, pad.after) : std::nullopt;
    if (!padded) return make_error(ErrorCode::overflow, fmt::format("padding {} overflows", letter));
    if (*padded < 0) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("padding {} ({}, {}) crops more than the {} input entries along {} (PyTorch: "
                                    "\"narrow(): length must be non-negative\")",
                                    letter, pad.before, pad.after, size, letter));
    }
    if (*padded == 0) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("padding {} ({}, {}) crops all {} input entries along {}: an empty output is "
                                    "not translated (Keras' Cropping refuses it)",
                                    letter, pad.before, pad.after, size, letter));
    }
    const int64_t largest = std::max(pad.before, pad.after);
    switch (op.fill) {
      case PadFill::constant: break;
      case PadFill::replicate: break;
      case PadFill::reflect:
        if (largest >= size) {
          return make_error(ErrorCode::input_shape,
                            fmt::format("reflect padding {} ({}, {}) needs each pad smaller than the input size {} "
                                        "along {} (PyTorch: \"Padding size should be less than the corresponding "
                                        "input dimension\")",
                                        letter, pad.before, pad.after, size, letter));
        }
        break;
      case PadFill::symmetric:
        if (largest > size) {
          return make_error(ErrorCode::input_shape,
                            fmt::format("SYMMETRIC padding {} ({}, {}) needs each pad at most the input size {} "
                                        "along {} (TensorFlow: \"paddings must be no greater than the dimension "
                                        "size\")",
                                        letter, pad.before, pad.after, size, letter));
        }
        break;
      case PadFill::circular: {
        if (largest > size) {
          return make_error(ErrorCode::input_shape,
                            fmt::format("circular padding {} ({}, {}) needs each pad at most the input size {} "
                                        "along {} (PyTorch: \"Padding value causes wrapping around more than "
                                        "once\")",
                                        letter, pad.before, pad.after, size, letter));
        }
        // PyTorch crops first and wraps around what is left (measured: [1..5] pad (-1, 3) -> [2,3,4,5,2,3,4]).
        const int64_t cropped = size + std::min<int64_t>(pad.before, 0) + std::min<int64_t>(pad.after, 0);
        if (largest > cropped) {
          return make_error(ErrorCode::unsupported,
                            fmt::format("circular padding {} ({}, {}) wraps by more than the {} entries left after "
                                        "cropping along {}: PyTorch reads outside them there",
                                        letter, pad.before, pad.after, cropped, letter));
        }
        break;
      }
    }
    out[axis + 2] = *padded;
  }
  return out;
}

Status validate(const PixelShuffleOp& op) {
  if (op.block <= 0) {
    return make_error(ErrorCode::invalid_argument,
                      fmt::format("{}={} must be positive (PyTorch: \"pixel_shuffle expects a positive "
                                  "upscale_factor, but got {}\")",
                                  op.to_space ? "upscale_factor" : "downscale_factor", op.block, op.block));
  }
  if (op.block > kMaxSizeArgument) {
    return make_error(ErrorCode::invalid_argument,
                      fmt::format("block size {} is too large (the limit is {})", op.block, kMaxSizeArgument));
  }
  return Ok{};
}

Result<std::vector<int64_t>> output_shape(const PixelShuffleOp& op, std::span<const int64_t> input_shape) {
  CONVBRIDGE_CHECK(validate(op));
  const std::string_view what = op.to_space ? "pixel shuffle" : "pixel unshuffle";
  CONVBRIDGE_CHECK(ops::check_input_rank(input_shape, 2, what));
  std::vector<int64_t> out(input_shape.begin(), input_shape.end());
  const auto block_area = checked_mul(op.block, op.block);
  if (!block_area) return make_error(ErrorCode::overflow, fmt::format("{} block {} overflows", what, op.block));
  if (op.to_space) {
    if (input_shape[1] % *block_area != 0) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("pixel shuffle by {} needs the channel count divisible by {}, got {} (PyTorch: "
                                    "\"input's 'channel' dimension to be divisible by the square of "
                                    "upscale_factor\")",
                                    op.block, *block_area, input_shape[1]));
    }
    const auto height = checked_mul(input_shape[2], op.block);
    const auto width = checked_mul(input_shape[3], op.block);
    if (!height || !width) return make_error(ErrorCode::overflow, "pixel shuffle output size overflows");
    out[1] = input_shape[1] / *block_area;
    out[2] = *height;
    out[3] = *width;
  } else {
    for (size_t axis = 2; axis < 4; ++axis) {
      if (input_shape[axis] % op.block != 0) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("pixel unshuffle by {} needs {} divisible by {}, got {} (PyTorch: "
                                      "\"pixel_unshuffle expects {} to be divisible by downscale_factor\")",
                                      op.block, axis == 2 ? "H" : "W", op.block, input_shape[axis],
                                      axis == 2 ? "height" : "width"));
      }
      out[axis] = input_shape[axis] / op.block;
    }
    const auto channels = checked_mul(input_shape[1], *block_area);
    if (!channels) return make_error(ErrorCode::overflow, "pixel unshuffle channel count overflows");
    out[1] = *channels;
  }
  return out;
}

namespace ops {

std::string describe(const PadOp& op) {
  std::string sides;
  bool crops = false;
  bool pads = false;
  for (size_t axis = 0; axis < op.pads.size(); ++axis) {
    sides += fmt::format("{}{} ({}, {})", axis == 0 ? "" : " ", axis_letter(op.rank, axis), op.pads[axis].before,
                         op.pads[axis].after);
    for (const int64_t side : {op.pads[axis].before, op.pads[axis].after}) {
      crops = crops || side < 0;
      pads = pads || side > 0;
    }
  }
  std::string fill;
  switch (op.fill) {
    case PadFill::constant:
      fill = op.value == 0.0 ? "zero" : fmt::format("constant {}", python_literal(CallValue::of(op.value)));
      break;
    case PadFill::reflect: fill = "reflect (mirror without the edge)"; break;
    case PadFill::replicate: fill = "replicate (repeat the edge)"; break;
    case PadFill::circular: fill = "circular (wrap around)"; break;
    case PadFill::symmetric: fill = "symmetric (mirror with the edge)"; break;
  }
  if (!pads) return fmt::format("cropping {} (before, after)", sides);
  return fmt::format("{} padding {} (before, after){}", fill, sides, crops ? "; negative pads crop" : "");
}

std::vector<OpWeight> weights_of(const PadOp&, std::span<const int64_t>) { return {}; }
int rank_of(const PadOp& op) { return op.rank; }

std::string describe(const PixelShuffleOp& op) {
  const std::string order = op.order == ChannelOrder::crd ? "CRD: block offset in the low-order channel bits"
                                                          : "DCR: block offset in the high-order channel bits";
  return fmt::format("{} by {} ({})", op.to_space ? "pixel shuffle (depth to space)" : "pixel unshuffle (space to depth)",
                     op.block, order);
}

std::vector<OpWeight> weights_of(const PixelShuffleOp&, std::span<const int64_t>) { return {}; }
int rank_of(const PixelShuffleOp&) { return 2; }

}  // namespace ops
}  // namespace convbridge
