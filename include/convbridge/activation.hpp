// Element-wise activations (and softmax over the channels), framework-neutral: each kind names one formula and
// carries its parameters explicitly, so a front-end maps its framework's names and defaults onto it (Keras'
// leaky_relu has slope 0.2, PyTorch's LeakyReLU 0.01) and a target writes its own module or function for it.
#pragma once

#include <string>

namespace convbridge {

enum class ActivationKind {
  relu,          // max(x, 0)
  relu6,         // min(max(x, 0), 6)
  leaky_relu,    // x >= 0 ? x : alpha * x
  elu,           // x > 0 ? x : alpha * (exp(x) - 1)
  selu,          // scale * elu(x, alpha) with SELU's fixed constants
  celu,          // max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
  sigmoid,       // 1 / (1 + exp(-x))
  tanh,
  softplus,      // log(1 + exp(x))
  softsign,      // x / (1 + |x|)
  silu,          // x * sigmoid(x)
  gelu,          // x * Phi(x), the exact (erf) form
  gelu_tanh,     // the tanh approximation of gelu
  hard_sigmoid,  // relu6(x + 3) / 6
  hard_silu,     // x * hard_sigmoid(x)
  hard_tanh,     // clamp(x, -1, 1)
  mish,          // x * tanh(softplus(x))
  log_sigmoid,   // -softplus(-x)
  tanh_shrink,   // x - tanh(x)
  hard_shrink,   // |x| > alpha ? x : 0
  soft_shrink,   // x > alpha ? x - alpha : x < -alpha ? x + alpha : 0
  softmax,       // over the channel axis
  log_softmax,   // over the channel axis
};

struct Activation {
  ActivationKind kind = ActivationKind::relu;
  double alpha = 0.0;  // leaky_relu slope, elu/celu alpha, shrink threshold; unused otherwise
};

// Its formula in words, for explanations: "leaky_relu (slope 0.2)".
std::string describe_activation(const Activation& activation);

}  // namespace convbridge
