#include "convbridge/activation.hpp"

#include <fmt/format.h>

namespace convbridge {

std::string describe_activation(const Activation& activation) {
  switch (activation.kind) {
    case ActivationKind::relu: return "relu: max(x, 0)";
    case ActivationKind::relu6: return "relu6: min(max(x, 0), 6)";
    case ActivationKind::leaky_relu: return fmt::format("leaky_relu with slope {} for x < 0", activation.alpha);
    case ActivationKind::elu: return fmt::format("elu with alpha {}", activation.alpha);
    case ActivationKind::selu: return "selu";
    case ActivationKind::celu: return fmt::format("celu with alpha {}", activation.alpha);
    case ActivationKind::sigmoid: return "sigmoid";
    case ActivationKind::tanh: return "tanh";
    case ActivationKind::softplus: return "softplus: log(1 + exp(x))";
    case ActivationKind::softsign: return "softsign: x / (1 + |x|)";
    case ActivationKind::silu: return "silu (swish): x * sigmoid(x)";
    case ActivationKind::gelu: return "gelu, exact (erf) form";
    case ActivationKind::gelu_tanh: return "gelu, tanh approximation";
    case ActivationKind::hard_sigmoid: return "hard_sigmoid: relu6(x + 3) / 6";
    case ActivationKind::hard_silu: return "hard_silu (hard swish): x * relu6(x + 3) / 6";
    case ActivationKind::hard_tanh: return "hard_tanh: clamp(x, -1, 1)";
    case ActivationKind::mish: return "mish: x * tanh(softplus(x))";
    case ActivationKind::log_sigmoid: return "log_sigmoid";
    case ActivationKind::tanh_shrink: return "tanh_shrink: x - tanh(x)";
    case ActivationKind::hard_shrink: return fmt::format("hard_shrink with threshold {}", activation.alpha);
    case ActivationKind::soft_shrink: return fmt::format("soft_shrink with threshold {}", activation.alpha);
    case ActivationKind::softmax: return "softmax over the channels";
    case ActivationKind::log_softmax: return "log_softmax over the channels";
  }
  return "?";
}

}  // namespace convbridge
