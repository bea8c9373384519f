// Activations in float64 with their textbook formulas (include/convbridge/activation.hpp), written for
// obviousness like the rest of the engine; softmax subtracts the maximum first so large inputs do not overflow.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "convbridge/engine.hpp"

namespace convbridge {
namespace {

double softplus(double x) { return x > 30.0 ? x : std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double relu6(double x) { return std::min(std::max(x, 0.0), 6.0); }

double apply_elementwise(const Activation& a, double x) {
  // SELU's constants (Klambauer et al. 2017), as Keras and PyTorch both define them.
  constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
  constexpr double kSeluScale = 1.0507009873554804934193349852946;
  switch (a.kind) {
    case ActivationKind::relu: return std::max(x, 0.0);
    case ActivationKind::relu6: return relu6(x);
    case ActivationKind::leaky_relu: return x >= 0 ? x : a.alpha * x;
    case ActivationKind::elu: return x > 0 ? x : a.alpha * std::expm1(x);
    case ActivationKind::selu: return kSeluScale * (x > 0 ? x : kSeluAlpha * std::expm1(x));
    case ActivationKind::celu: return std::max(0.0, x) + std::min(0.0, a.alpha * std::expm1(x / a.alpha));
    case ActivationKind::sigmoid: return sigmoid(x);
    case ActivationKind::tanh: return std::tanh(x);
    case ActivationKind::softplus: return softplus(x);
    case ActivationKind::softsign: return x / (1.0 + std::abs(x));
    case ActivationKind::silu: return x * sigmoid(x);
    case ActivationKind::gelu: return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
    case ActivationKind::gelu_tanh: {
      const double c = std::sqrt(2.0 / std::numbers::pi);
      return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
    }
    case ActivationKind::hard_sigmoid: return relu6(x + 3.0) / 6.0;
    case ActivationKind::hard_silu: return x * relu6(x + 3.0) / 6.0;
    case ActivationKind::hard_tanh: return std::min(std::max(x, -1.0), 1.0);
    case ActivationKind::mish: return x * std::tanh(softplus(x));
    case ActivationKind::log_sigmoid: return -softplus(-x);
    case ActivationKind::tanh_shrink: return x - std::tanh(x);
    case ActivationKind::hard_shrink: return std::abs(x) > a.alpha ? x : 0.0;
    case ActivationKind::soft_shrink: return x > a.alpha ? x - a.alpha : x < -a.alpha ? x + a.alpha : 0.0;
    case ActivationKind::softmax:
    case ActivationKind::log_softmax: break;  // not element-wise
  }
  return x;
}

}  // namespace

void apply_activation(const Activation& activation, Tensor& tensor, bool channels_last) {
  if (activation.kind != ActivationKind::softmax && activation.kind != ActivationKind::log_softmax) {
    for (double& x : tensor.data) x = apply_elementwise(activation, x);
    return;
  }
  // Softmax over the channel axis: `channels` values `stride` apart, for every (batch, position).
  const int64_t channels = channels_last ? tensor.shape.back() : tensor.shape[1];
  int64_t positions = 1;  // spatial elements per batch entry
  for (size_t i = channels_last ? 1 : 2; i < (channels_last ? tensor.shape.size() - 1 : tensor.shape.size()); ++i) {
    positions *= tensor.shape[i];
  }
  const int64_t stride = channels_last ? 1 : positions;
  for (int64_t n = 0; n < tensor.shape.front(); ++n) {
    for (int64_t p = 0; p < positions; ++p) {
      const int64_t first = channels_last ? (n * positions + p) * channels : n * channels * positions + p;
      const auto at = [&](int64_t c) -> double& { return tensor.data[static_cast<size_t>(first + c * stride)]; };
      double largest = at(0);
      for (int64_t c = 1; c < channels; ++c) largest = std::max(largest, at(c));
      double sum = 0.0;
      for (int64_t c = 0; c < channels; ++c) sum += std::exp(at(c) - largest);
      for (int64_t c = 0; c < channels; ++c) {
        at(c) = activation.kind == ActivationKind::softmax ? std::exp(at(c) - largest) / sum
                                                           : at(c) - largest - std::log(sum);
      }
    }
  }
}

}  // namespace convbridge
