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
  // Keras / TF softmax axes count in channels_last order (-1 = channels); axis_channels_last says `axis` is such
  // an index, resolved against the input rank by resolved_axis.
  bool axis_channels_last = false;
  // prelu: x >= 0 ? x : a * x with learned a, one per channel or shared by all. The weight is
  // (prelu_parameters); 0 means one per channel, the count taken from the input (Keras PReLU(shared_axes=spatial)).
  bool prelu = false;
  int64_t prelu_parameters = 1;
  double prelu_init = 0.25;
};

// The reduced axis of a softmax op for a channels_first input of `ndim` dimensions, in [0, ndim).
Result<int> resolved_axis(const ActivationOp& op, int ndim);

Status validate(const ActivationOp& op);
Result<std::vector<int64_t>> output_shape(const ActivationOp& op, std::span<const int64_t> input_shape);

}  // namespace convbridge
