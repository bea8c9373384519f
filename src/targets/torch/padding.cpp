// Keras / TensorFlow padding and depth_to_space as PyTorch modules on channels_first tensors.
//   ZeroPaddingND, tf.pad CONSTANT 0  -> nn.ZeroPadNd;  CroppingND -> nn.ZeroPadNd with negative pads (F.pad crops)
//   tf.pad CONSTANT v                 -> nn.ConstantPadNd(padding, v)
//   tf.pad REFLECT                    -> nn.ReflectionPadNd (both mirror without repeating the edge)
//   tf.pad SYMMETRIC                  -> nn.ReplicationPadNd when every pad is at most 1 (mirroring with the edge
//                                        by one entry repeats the edge), else SymmetricPad (ours)
//   tf.nn.depth_to_space / space_to_depth (DCR) -> TFDepthToSpace / TFSpaceToDepth (ours): nn.PixelShuffle is CRD.
#include <fmt/format.h>

#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {

// PyTorch's padding tuple: the last axis first (left, right, top, bottom, front, back).
CallValue torch_padding(const std::vector<PadPair>& pairs) {
  std::vector<int64_t> sides;
  for (auto it = pairs.rbegin(); it != pairs.rend(); ++it) {
    sides.push_back(it->before);
    sides.push_back(it->after);
  }
  return CallValue::ints(sides);
}

}  // namespace

Result<TargetPlan> plan_torch(const PadOp& op, const TargetInput&) {
  TargetPlan plan;
  const std::string nd = fmt::format("{}d", op.rank);
  const std::string order = "PyTorch's tuple lists the last axis first";
  bool crops = false;
  bool at_most_one = true;
  for (const PadPair& p : op.pads) {
    crops = crops || p.before < 0 || p.after < 0;
    at_most_one = at_most_one && p.before <= 1 && p.after <= 1;
  }
  switch (op.fill) {
    case PadFill::constant:
      if (op.value == 0.0) {
        plan.steps.push_back(torch_step(op, fmt::format("nn.ZeroPad{}", nd), {arg("padding", torch_padding(op.pads))},
                                        crops ? fmt::format("cropping as negative pads of nn.ZeroPad{} (F.pad crops "
                                                            "where a pad is negative); {}",
                                                            nd, order)
                                              : fmt::format("zeros: nn.ZeroPad{}; {}", nd, order)));
      } else {
        plan.steps.push_back(torch_step(op, fmt::format("nn.ConstantPad{}", nd),
                                        {arg("padding", torch_padding(op.pads)), arg("value", CallValue::of(op.value))},
                                        fmt::format("tf.pad's constant_values: nn.ConstantPad{}; {}", nd, order)));
      }
      break;
    case PadFill::reflect:
      plan.steps.push_back(torch_step(op, fmt::format("nn.ReflectionPad{}", nd), {arg("padding", torch_padding(op.pads))},
                                      fmt::format("tf.pad REFLECT mirrors without repeating the edge, as "
                                                  "nn.ReflectionPad{} does; {}",
                                                  nd, order)));
      break;
    case PadFill::symmetric:
      if (at_most_one) {
        plan.steps.push_back(torch_step(op, fmt::format("nn.ReplicationPad{}", nd), {arg("padding", torch_padding(op.pads))},
                                        "tf.pad SYMMETRIC mirrors including the edge; by one entry that is the edge "
                                        "itself, which nn.ReplicationPad repeats (PyTorch has no symmetric mode)"));
      } else {
        TargetStep step = torch_step(op, "convbridge.SymmetricPad", {arg("padding", torch_padding(op.pads))},
                                     "tf.pad SYMMETRIC mirrors including the edge; PyTorch has no such mode and "
                                     "replicate differs past one entry, so a module of ours flips edge slices");
        step.helpers = {"SymmetricPad"};
        plan.steps.push_back(std::move(step));
      }
      break;
    case PadFill::replicate:
    case PadFill::circular:
      return make_error(ErrorCode::unsupported, "replicate and circular padding come from PyTorch; they plan to Keras");
  }
  return plan;
}

Result<TargetPlan> plan_torch(const PixelShuffleOp& op, const TargetInput&) {
  if (op.order != ChannelOrder::dcr) {
    return make_error(ErrorCode::unsupported, "PixelShuffle comes from PyTorch; it plans to Keras");
  }
  TargetPlan plan;
  const std::string name = op.to_space ? "TFDepthToSpace" : "TFSpaceToDepth";
  TargetStep step = torch_step(
      op, fmt::format("convbridge.{}", name), {arg("block_size", CallValue::of(op.block))},
      fmt::format("tf.nn.{} puts the block offset in the high-order channel bits (DCR), nn.{} in the low-order "
                  "ones (CRD): the native module would scramble channels, so a module of ours reshapes and permutes "
                  "in TensorFlow's order",
                  op.to_space ? "depth_to_space" : "space_to_depth", op.to_space ? "PixelShuffle" : "PixelUnshuffle"));
  step.helpers = {name};
  plan.steps.push_back(std::move(step));
  return plan;
}

std::vector<FrameworkWeight> torch_weights(const PadOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> torch_weights(const PixelShuffleOp&, const TargetInput&) { return {}; }

}  // namespace convbridge::targets
