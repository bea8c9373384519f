// PyTorch padding and pixel shuffle as Keras layers on channels_last tensors.
//   zeros           -> ZeroPaddingND; negative pads (crops) -> CroppingND first
//   constant v != 0 -> TorchConstantPad (ours: keras.ops.pad with constant_values; Keras has no such layer)
//   reflect         -> TorchReflectPad (tf.pad REFLECT = PyTorch reflect), then CroppingND for negative pads
//   replicate       -> TorchEdgePad(mode='replicate'), then CroppingND   (tf.pad has no edge mode)
//   circular        -> CroppingND first, then TorchEdgePad(mode='circular')
// The order matters for mixed signs on one axis (measured with torch 2.13 on [1, 2, 3, 4, 5]): reflect and
// replicate mirror about the ORIGINAL edges (pad (-1, 3) -> [2, 3, 4, 5, 4, 3, 2]), circular wraps around what is
// left after cropping (pad (-1, 3) -> [2, 3, 4, 5, 2, 3, 4]).
// PixelShuffle uses the CRD channel order and tf.nn.depth_to_space the DCR one, so it is a layer of ours.
#include <fmt/format.h>

#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {

// The tensor argument of a tf function form: the name x.
CallValue tensor_x() {
  static const CallValue x = [] {
    CallValue name = CallValue::str(std::string(1, 'x'));
    name.kind = CallValue::Kind::name;
    return name;
  }();
  return x;
}

// Keras' own form: (before, after) for 1-D, ((before, after), ...) otherwise.
CallValue keras_pairs(const std::vector<PadPair>& pairs) {
  if (pairs.size() == 1) return CallValue::ints(std::vector<int64_t>{pairs[0].before, pairs[0].after});
  return CallValue::pairs(pairs);
}

// tf.pad's paddings: a pair for every axis of the channels_last tensor, batch and channels unpadded.
CallValue tf_paddings(const std::vector<PadPair>& pairs) {
  std::vector<PadPair> all{PadPair{}};
  all.insert(all.end(), pairs.begin(), pairs.end());
  all.push_back(PadPair{});
  return CallValue::pairs(all);
}

std::string letters(const std::vector<PadPair>& pairs, int rank) {
  static constexpr std::string_view kNames[3][3] = {{"L"}, {"H", "W"}, {"D", "H", "W"}};
  std::string out;
  for (size_t axis = 0; axis < pairs.size(); ++axis) {
    out += fmt::format("{}{} ({}, {})", axis == 0 ? "" : " ", kNames[rank - 1][axis], pairs[axis].before,
                       pairs[axis].after);
  }
  return out;
}

bool any_nonzero(const std::vector<PadPair>& pairs) {
  for (const PadPair& p : pairs) {
    if (p.before != 0 || p.after != 0) return true;
  }
  return false;
}

TargetStep crop_step(const PadOp& op, const std::vector<PadPair>& crops, std::string why) {
  PadOp crop{op.rank, {}, PadFill::constant, 0.0};
  std::vector<PadPair> amounts;
  for (const PadPair& c : crops) {
    crop.pads.push_back({-c.before, -c.after});
    amounts.push_back(c);
  }
  return keras_step(crop, fmt::format("keras.layers.Cropping{}D", op.rank), {arg("cropping", keras_pairs(amounts))},
                    std::move(why));
}

TargetStep pad_step(const PadOp& op, const std::vector<PadPair>& pads) {
  PadOp pad{op.rank, pads, op.fill, op.value};
  const std::string where = letters(pads, op.rank);
  switch (op.fill) {
    case PadFill::constant: {
      if (op.value == 0.0) {
        TargetStep step = keras_step(pad, fmt::format("keras.layers.ZeroPadding{}D", op.rank),
                                     {arg("padding", keras_pairs(pads))},
                                     fmt::format("zeros on {}: Keras' ZeroPadding{}D, (before, after) per axis in "
                                                 "axis order (PyTorch's tuple lists the last axis first)",
                                                 where, op.rank));
        step.function = FrameworkCall{"tf.pad", {arg("", tensor_x()), arg("", tf_paddings(pads))}};
        return step;
      }
      TargetStep step = keras_step(
          pad, "convbridge.TorchConstantPad",
          {arg("pads", CallValue::pairs(pads)), arg("value", CallValue::of(op.value))},
          fmt::format("the constant {} on {}: Keras has no constant-padding layer other than zeros, so a layer of "
                      "ours calls keras.ops.pad with constant_values",
                      python_literal(CallValue::of(op.value)), where));
      step.helpers = {"padded_shape", "TorchConstantPad"};
      step.function = FrameworkCall{"tf.pad", {arg("", tensor_x()), arg("", tf_paddings(pads)),
                                               arg("constant_values", CallValue::of(op.value))}};
      return step;
    }
    case PadFill::reflect: {
      TargetStep step = keras_step(pad, "convbridge.TorchReflectPad", {arg("pads", CallValue::pairs(pads))},
                                   fmt::format("reflect on {}: tf.pad REFLECT mirrors without repeating the edge, "
                                               "as PyTorch's reflect does; Keras has no layer for it",
                                               where));
      step.helpers = {"padded_shape", "TorchReflectPad"};
      step.function = FrameworkCall{"tf.pad", {arg("", tensor_x()), arg("", tf_paddings(pads)),
                                               arg("mode", CallValue::str("REFLECT"))}};
      return step;
    }
    case PadFill::replicate:
    case PadFill::circular: {
      const std::string mode = op.fill == PadFill::replicate ? "replicate" : "circular";
      TargetStep step = keras_step(
          pad, "convbridge.TorchEdgePad", {arg("pads", CallValue::pairs(pads)), arg("mode", CallValue::str(mode))},
          fmt::format("{} on {}: tf.pad has no {} mode (SYMMETRIC repeats the edge only for pad 1), so a layer of "
                      "ours concatenates edge slices",
                      mode, where, mode));
      step.helpers = {"padded_shape", "TorchEdgePad"};
      return step;
    }
    case PadFill::symmetric: break;  // tf.pad SYMMETRIC is a TensorFlow source, never planned to Keras
  }
  return keras_step(pad, "keras.layers.Identity", {}, "unreachable");
}

}  // namespace

Result<TargetPlan> plan_keras(const PadOp& op, const TargetInput&) {
  if (op.fill == PadFill::symmetric) {
    return make_error(ErrorCode::unsupported, "SYMMETRIC padding comes from TensorFlow; it plans to PyTorch");
  }
  std::vector<PadPair> crops(op.pads.size());
  std::vector<PadPair> pads(op.pads.size());
  for (size_t axis = 0; axis < op.pads.size(); ++axis) {
    crops[axis] = {std::max<int64_t>(-op.pads[axis].before, 0), std::max<int64_t>(-op.pads[axis].after, 0)};
    pads[axis] = {std::max<int64_t>(op.pads[axis].before, 0), std::max<int64_t>(op.pads[axis].after, 0)};
  }
  TargetPlan plan;
  const bool crop_first = op.fill == PadFill::constant || op.fill == PadFill::circular;
  const std::string crop_why =
      op.fill == PadFill::constant
          ? "PyTorch's negative pads crop: Keras' Cropping layer removes those entries"
          : op.fill == PadFill::circular
                ? "PyTorch's negative pads crop first, and circular padding wraps around what is left: crop, then pad"
                : fmt::format("PyTorch's {} takes its values from the edges of the uncropped input: pad first, then "
                              "crop the negative pads",
                              op.fill == PadFill::reflect ? "reflect" : "replicate");
  if (crop_first && any_nonzero(crops)) plan.steps.push_back(crop_step(op, crops, crop_why));
  if (any_nonzero(pads) || !any_nonzero(crops)) plan.steps.push_back(pad_step(op, pads));
  if (!crop_first && any_nonzero(crops)) plan.steps.push_back(crop_step(op, crops, crop_why));
  return plan;
}

Result<TargetPlan> plan_keras(const PixelShuffleOp& op, const TargetInput&) {
  if (op.order != ChannelOrder::crd) {
    return make_error(ErrorCode::unsupported, "depth_to_space comes from TensorFlow; it plans to PyTorch");
  }
  TargetPlan plan;
  if (op.block == 1) {
    plan.steps.push_back(keras_step(op, "keras.layers.Identity", {},
                                    "a factor of 1 moves nothing (tf.nn.depth_to_space would refuse block_size=1)"));
    return plan;
  }
  const std::string name = op.to_space ? "TorchPixelShuffle" : "TorchPixelUnshuffle";
  TargetStep step = keras_step(
      op, fmt::format("convbridge.{}", name), {arg(op.to_space ? "upscale_factor" : "downscale_factor", CallValue::of(op.block))},
      fmt::format("PyTorch's {} puts the block offset in the low-order channel bits (CRD), tf.nn.{} in the "
                  "high-order ones (DCR): the native op would scramble channels, so a layer of ours reshapes and "
                  "transposes in PyTorch's order",
                  op.to_space ? "PixelShuffle" : "PixelUnshuffle", op.to_space ? "depth_to_space" : "space_to_depth"));
  step.helpers = {name};
  plan.steps.push_back(std::move(step));
  return plan;
}

std::vector<FrameworkWeight> keras_weights(const PadOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> keras_weights(const PixelShuffleOp&, const TargetInput&) { return {}; }

}  // namespace convbridge::targets
