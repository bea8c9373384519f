// An activation as a layer of its own (nn.LeakyReLU(), keras.layers.ELU(), keras.layers.Activation('gelu'),
// nn.Softmax(dim=1), nn.PReLU(C)). The formula is the neutral Activation; softmax kinds also say their axis, and
// PReLU its learned slopes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "convbridge/activation.hpp"
#include "convbridge/result.hpp"

namespace convbridge {

struct ActivationOp {
  Activation activation;
  // softmax / log_softmax: the reduced axis of the channels_first tensor (1 = channels); negative counts from
  // the end (PyTorch dim=-1), resolved against the input rank.
  int axis = 1;
  // prelu: x >= 0 ? x : a * x with learned a, one per channel (prelu_parameters == C) or shared (1). The weight
  // is (prelu_parameters).
  bool prelu = false;
  int64_t prelu_parameters = 1;
  double prelu_init = 0.25;
};

Status validate(const ActivationOp& op);
Result<std::vector<int64_t>> output_shape(const ActivationOp& op, std::span<const int64_t> input_shape);

}  // namespace convbridge
