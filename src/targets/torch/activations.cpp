// Keras / TF activations as PyTorch modules, the defaults passed where they differ (LeakyReLU: Keras 0.3,
// tf.nn.leaky_relu 0.2, PyTorch 0.01), softmax axes moved from channels_last to channels_first, Keras PReLU
// shared over space as nn.PReLU(C) with alpha (1, ..., 1, C) -> weight (C).
#include <fmt/format.h>

#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {

struct TorchModule {
  std::string_view name;
  std::vector<CallArgument> arguments;
};

TorchModule torch_module(const Activation& a) {
  using K = ActivationKind;
  switch (a.kind) {
    case K::relu: return {"ReLU", {}};
    case K::relu6: return {"ReLU6", {}};
    case K::leaky_relu: return {"LeakyReLU", {arg("negative_slope", CallValue::of(a.alpha))}};
    case K::elu: return {"ELU", {arg("alpha", CallValue::of(a.alpha))}};
    case K::selu: return {"SELU", {}};
    case K::celu: return {"CELU", {arg("alpha", CallValue::of(a.alpha))}};
    case K::sigmoid: return {"Sigmoid", {}};
    case K::tanh: return {"Tanh", {}};
    case K::softplus: return {"Softplus", {}};
    case K::softsign: return {"Softsign", {}};
    case K::silu: return {"SiLU", {}};
    case K::gelu: return {"GELU", {}};
    case K::gelu_tanh: return {"GELU", {arg("approximate", CallValue::str("tanh"))}};
    case K::hard_sigmoid: return {"Hardsigmoid", {}};
    case K::hard_silu: return {"Hardswish", {}};
    case K::hard_tanh: return {"Hardtanh", {}};
    case K::mish: return {"Mish", {}};
    case K::log_sigmoid: return {"LogSigmoid", {}};
    case K::tanh_shrink: return {"Tanhshrink", {}};
    case K::hard_shrink: return {"Hardshrink", {arg("lambd", CallValue::of(a.alpha))}};
    case K::soft_shrink: return {"Softshrink", {arg("lambd", CallValue::of(a.alpha))}};
    case K::softmax: return {"Softmax", {}};
    case K::log_softmax: return {"LogSoftmax", {}};
  }
  return {"Identity", {}};
}

}  // namespace

Result<TargetPlan> plan_torch(const ActivationOp& op, const TargetInput& input) {
  TargetPlan plan;
  const int ndim = input.shape.empty() ? 0 : static_cast<int>(input.shape.size());
  if (op.prelu) {
    if (ndim != 0 && ndim - 2 != op.axis) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("PReLU shares its slopes over {} axes of a {}-D input: nn.PReLU shares over "
                                    "all spatial axes ({}) only",
                                    op.axis, ndim, ndim - 2));
    }
    const int64_t channels = ndim == 0 ? 0 : input.shape[1];
    if (channels <= 0) {
      return make_error(ErrorCode::input_shape,
                        "PReLU needs the channel count (the input shape or a built layer): nn.PReLU(num_parameters=C)");
    }
    ActivationOp step_op = op;
    step_op.prelu_parameters = channels;
    TargetStep step = torch_step(step_op, "nn.PReLU", {arg("num_parameters", CallValue::of(channels))},
                                 "Keras' PReLU shared over the spatial axes has one slope per channel: "
                                 "nn.PReLU(C); alpha (1, ..., 1, C) becomes weight (C)");
    step.weights = {per_channel_weight("weight", "prelu_slope", 0, channels)};
    plan.steps.push_back(std::move(step));
    return plan;
  }
  TorchModule module = torch_module(op.activation);
  std::string why = describe_activation(op.activation);
  ActivationOp step_op = op;
  if (op.activation.kind == ActivationKind::softmax || op.activation.kind == ActivationKind::log_softmax) {
    int dim = 1;
    if (op.axis == -1) {
      dim = 1;  // the channels, whatever the rank
    } else {
      if (ndim == 0) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("axis={} is not the channels: its PyTorch dim needs the input rank (give the "
                                      "input shape)",
                                      op.axis));
      }
      CONVBRIDGE_TRY(dim, resolved_axis(op, ndim));
    }
    step_op.axis = dim;
    step_op.axis_channels_last = false;
    module.arguments.push_back(arg("dim", CallValue::of(int64_t{dim})));
    why = fmt::format("channels_last axis {} is PyTorch's dim {}", op.axis, dim);
  } else if (op.activation.kind == ActivationKind::leaky_relu) {
    why += "; the slope is passed: PyTorch's LeakyReLU defaults to 0.01";
  } else if (op.activation.kind == ActivationKind::softplus) {
    why += "; nn.Softplus returns x above 20, where log(1 + exp(x)) - x < 2.1e-9, below float32 resolution";
  }
  plan.steps.push_back(torch_step(step_op, fmt::format("nn.{}", module.name), std::move(module.arguments), why));
  return plan;
}

std::vector<FrameworkWeight> torch_weights(const ActivationOp& op, const TargetInput& input) {
  if (!op.prelu) return {};
  int64_t count = op.prelu_parameters;
  if (count == 0 && input.shape.size() >= 2) count = input.shape[1];
  return {per_channel_weight("weight", "prelu_slope", 0, count)};
}

}  // namespace convbridge::targets
