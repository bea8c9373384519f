// PyTorch activation modules as Keras layers. Native layers first: ReLU (relu, relu6 as max_value=6), LeakyReLU
// with PyTorch's slope passed (Keras' default is 0.3, PyTorch's 0.01), ELU(alpha), Softmax(axis), PReLU with
// shared_axes over space; the rest as Activation('name') with Keras 3's activation of the same formula
// (keras/src/activations/activations.py: hard_sigmoid is relu6(x + 3) / 6 in Keras 3, hard_silu is Hardswish).
#include <fmt/format.h>

#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {

CallValue tensor_x() {
  static const CallValue x = [] {
    CallValue name = CallValue::str(std::string(1, 'x'));
    name.kind = CallValue::Kind::name;
    return name;
  }();
  return x;
}

std::optional<FrameworkCall> tf_function(std::string callee, std::vector<CallArgument> extra = {}) {
  FrameworkCall call{std::move(callee), {arg("", tensor_x())}};
  call.arguments.insert(call.arguments.end(), extra.begin(), extra.end());
  return call;
}

// Keras 3 activation names with the same formula and default parameters as the neutral kind.
std::string_view keras_name(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::selu: return "selu";
    case ActivationKind::celu: return "celu";
    case ActivationKind::sigmoid: return "sigmoid";
    case ActivationKind::tanh: return "tanh";
    case ActivationKind::softplus: return "softplus";
    case ActivationKind::softsign: return "softsign";
    case ActivationKind::silu: return "silu";
    case ActivationKind::gelu: return "gelu";
    case ActivationKind::hard_sigmoid: return "hard_sigmoid";
    case ActivationKind::hard_silu: return "hard_silu";
    case ActivationKind::hard_tanh: return "hard_tanh";
    case ActivationKind::mish: return "mish";
    case ActivationKind::log_sigmoid: return "log_sigmoid";
    case ActivationKind::tanh_shrink: return "tanh_shrink";
    case ActivationKind::hard_shrink: return "hard_shrink";
    case ActivationKind::soft_shrink: return "soft_shrink";
    case ActivationKind::log_softmax: return "log_softmax";
    default: return "";
  }
}

}  // namespace

Result<TargetPlan> plan_keras(const ActivationOp& op, const TargetInput& input) {
  TargetPlan plan;
  const Activation& a = op.activation;
  const int ndim = input.shape.empty() ? 0 : static_cast<int>(input.shape.size());
  if (op.prelu) {
    if (ndim == 0) {
      return make_error(ErrorCode::input_shape,
                        "PReLU needs the input shape: Keras' PReLU shares its slopes over listed axes "
                        "(shared_axes=[1, ..., rank]), so the input rank must be known");
    }
    const int64_t channels = input.shape[1];
    const bool per_channel = op.prelu_parameters != 1;
    std::vector<int64_t> shared;
    for (int axis = 1; axis <= ndim - 2 + (per_channel ? 0 : 1); ++axis) shared.push_back(axis);
    TargetStep step = keras_step(op, "keras.layers.PReLU", {arg("shared_axes", CallValue::ints(shared))},
                                 per_channel ? "one slope per channel: Keras' PReLU shares alpha over the spatial "
                                               "axes; its alpha is (1, ..., 1, C), PyTorch's weight (C)"
                                             : "one slope for the whole tensor: Keras' PReLU shares alpha over "
                                               "every axis");
    FrameworkWeight alpha;
    alpha.name = "alpha";
    alpha.role = "prelu_slope";
    alpha.neutral_index = 0;
    const int64_t count = per_channel ? channels : 1;
    alpha.from_neutral = identity_layout({count});
    alpha.from_neutral.to_layout = "alpha";
    alpha.from_neutral.to_shape.assign(static_cast<size_t>(ndim - 1), 1);
    alpha.from_neutral.to_shape.back() = count;
    step.weights = {alpha};
    plan.steps.push_back(std::move(step));
    return plan;
  }
  switch (a.kind) {
    case ActivationKind::relu: {
      TargetStep step = keras_step(op, "keras.layers.ReLU", {}, "max(x, 0)");
      step.function = tf_function("tf.nn.relu");
      plan.steps.push_back(std::move(step));
      return plan;
    }
    case ActivationKind::relu6: {
      TargetStep step = keras_step(op, "keras.layers.ReLU", {arg("max_value", CallValue::of(6.0))},
                                   "min(max(x, 0), 6): Keras' ReLU with max_value=6");
      step.function = tf_function("tf.nn.relu6");
      plan.steps.push_back(std::move(step));
      return plan;
    }
    case ActivationKind::leaky_relu: {
      TargetStep step = keras_step(op, "keras.layers.LeakyReLU", {arg("negative_slope", CallValue::of(a.alpha))},
                                   "the slope is passed: Keras' LeakyReLU defaults to 0.3 (and tf.nn.leaky_relu to "
                                   "0.2), PyTorch's to 0.01");
      step.function = tf_function("tf.nn.leaky_relu", {arg("alpha", CallValue::of(a.alpha))});
      plan.steps.push_back(std::move(step));
      return plan;
    }
    case ActivationKind::elu: {
      TargetStep step = keras_step(op, "keras.layers.ELU", {arg("alpha", CallValue::of(a.alpha))},
                                   "x > 0 ? x : alpha * (exp(x) - 1), alpha passed");
      if (a.alpha == 1.0) step.function = tf_function("tf.nn.elu");
      plan.steps.push_back(std::move(step));
      return plan;
    }
    case ActivationKind::softmax:
    case ActivationKind::log_softmax: {
      if (ndim == 0 && op.axis < 0) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("dim={} counts from the end: the input rank is needed to name the channels_last "
                                      "axis (give the input shape)",
                                      op.axis));
      }
      const int rank = ndim == 0 ? std::max(op.axis + 1, 2) : ndim;  // dim >= 0 keeps its place below dim 2
      if (ndim == 3 && op.axis == 1 && !input.source.notes.empty() &&
          input.source.notes.front().starts_with("dim=None")) {
        return make_error(ErrorCode::unsupported, "dim=None on a 3-D input is PyTorch's implicit dim 0 (the batch): "
                                                  "give dim explicitly");
      }
      CONVBRIDGE_TRY(const int first, resolved_axis(op, std::max(rank, 2)));
      // channels_first dim -> channels_last axis: 0 stays, 1 (channels) is last, spatial d is d - 1.
      const int last = first == 0 ? 0 : first == 1 ? -1 : first - 1;
      if (ndim == 0 && first >= 2) {
        return make_error(ErrorCode::input_shape,
                          fmt::format("dim={} is a spatial axis: its channels_last position needs the input rank "
                                      "(give the input shape)",
                                      op.axis));
      }
      const std::string why = fmt::format("PyTorch's dim {} is channels_last axis {}", first, last);
      if (a.kind == ActivationKind::softmax) {
        TargetStep step = keras_step(op, "keras.layers.Softmax", {arg("axis", CallValue::of(int64_t{last}))}, why);
        step.function = tf_function("tf.nn.softmax", {arg("axis", CallValue::of(int64_t{last}))});
        plan.steps.push_back(std::move(step));
      } else {
        if (last != -1) {
          return make_error(ErrorCode::unsupported,
                            "LogSoftmax over a dim other than the channels: Keras' log_softmax activation takes "
                            "axis -1 only");
        }
        TargetStep step = keras_step(op, "keras.layers.Activation", {arg("", CallValue::str("log_softmax"))},
                                     why + ": Keras' log_softmax activation (axis -1)");
        step.function = tf_function("tf.nn.log_softmax", {arg("axis", CallValue::of(int64_t{-1}))});
        plan.steps.push_back(std::move(step));
      }
      return plan;
    }
    case ActivationKind::gelu_tanh: {
      TargetStep step = keras_step(op, "convbridge.TanhGelu", {},
                                   "GELU(approximate='tanh'): Keras' 'gelu' activation is the exact (erf) form; a "
                                   "layer of ours calls keras.activations.gelu(x, approximate=True)");
      step.helpers = {"TanhGelu"};
      step.function = tf_function("tf.nn.gelu", {arg("approximate", CallValue::flag(true))});
      plan.steps.push_back(std::move(step));
      return plan;
    }
    case ActivationKind::celu:
      if (a.alpha != 1.0) {
        return make_error(ErrorCode::unsupported, "CELU with alpha other than 1: Keras' celu activation takes alpha=1");
      }
      break;
    case ActivationKind::hard_shrink:
    case ActivationKind::soft_shrink:
      if (a.alpha != 0.5) {
        return make_error(ErrorCode::unsupported,
                          "lambd other than 0.5: Keras' hard_shrink/soft_shrink activations take threshold=0.5");
      }
      break;
    default: break;
  }
  const std::string_view name = keras_name(a.kind);
  TargetStep step = keras_step(op, "keras.layers.Activation", {arg("", CallValue::str(std::string(name)))},
                               fmt::format("Keras 3's '{}' activation computes {}", name, describe_activation(a)));
  static constexpr std::pair<ActivationKind, std::string_view> kTfNames[] = {
      {ActivationKind::selu, "tf.nn.selu"},         {ActivationKind::sigmoid, "tf.nn.sigmoid"},
      {ActivationKind::tanh, "tf.nn.tanh"},         {ActivationKind::softplus, "tf.nn.softplus"},
      {ActivationKind::softsign, "tf.nn.softsign"}, {ActivationKind::silu, "tf.nn.silu"},
      {ActivationKind::gelu, "tf.nn.gelu"}};
  for (const auto& [kind, callee] : kTfNames) {
    if (kind == a.kind) step.function = tf_function(std::string(callee));
  }
  plan.steps.push_back(std::move(step));
  return plan;
}

// Keras PReLU's alpha: (1, ..., 1, C), shared over the spatial axes.
std::vector<FrameworkWeight> keras_weights(const ActivationOp& op, const TargetInput& input) {
  if (!op.prelu) return {};
  const int64_t channels = input.shape.size() >= 2 ? input.shape[1] : 0;
  FrameworkWeight alpha;
  alpha.name = "alpha";
  alpha.role = "prelu_slope";
  alpha.neutral_index = 0;
  alpha.from_neutral = identity_layout({channels});
  alpha.from_neutral.to_layout = "alpha";
  alpha.from_neutral.to_shape.assign(static_cast<size_t>(op.axis) + 1, 1);
  alpha.from_neutral.to_shape.back() = channels;
  return {alpha};
}

}  // namespace convbridge::targets
