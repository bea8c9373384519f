// Weight re-layout between frameworks, named by layout letters. A change is an optional reshape followed by a
// transpose, applied bit-for-bit (elements are moved, never recomputed).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convbridge/conv_spec.hpp"

namespace convbridge {

struct WeightLayoutChange {
  std::string from_layout;               // e.g. "OIHW" (PyTorch), letters name the axes of from_shape
  std::string to_layout;                 // e.g. "HWIO" (Keras / tf.nn)
  std::vector<int64_t> from_shape;
  std::vector<int64_t> reshape;          // empty: no reshape before the transpose
  std::vector<int> permutation;          // numpy.transpose axes applied after the reshape
  std::vector<int64_t> to_shape;
};

// PyTorch conv weight (O, I/G, *k) -> TF conv kernel (*k, I/G, O): OIW->WIO, OIHW->HWIO, OIDHW->DHWIO.
WeightLayoutChange torch_conv_weight_to_tf_conv(const ConvSpec& spec);

// PyTorch depthwise weight (C*M, 1, *k) -> TF depthwise kernel (*k, C, M): reshape to (C, M, *k), then transpose.
WeightLayoutChange torch_conv_weight_to_tf_depthwise(const ConvSpec& spec);

// Moves the elements of a row-major tensor of shape change.from_shape into change.to_shape order.
template <class T>
std::vector<T> apply_layout_change(const WeightLayoutChange& change, std::span<const T> source);

// Generic row-major transpose (numpy.transpose semantics).
template <class T>
std::vector<T> transpose(std::span<const T> source, std::span<const int64_t> shape, std::span<const int> permutation);

}  // namespace convbridge
