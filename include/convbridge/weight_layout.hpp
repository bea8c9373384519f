// Weight re-layout between frameworks, named by layout letters. A change is an optional reshape followed by a
// transpose, applied bit-for-bit (elements are moved, never recomputed), and for transposed convs an optional
// zero-insertion on the leading spatial axes (dilation, and trailing zero taps).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/conv_spec.hpp"
#include "convbridge/result.hpp"

namespace convbridge {

struct WeightLayoutChange {
  std::string from_layout;               // e.g. "OIHW" (PyTorch), letters name the axes of from_shape
  std::string to_layout;                 // e.g. "HWIO" (Keras / tf.nn)
  std::vector<int64_t> from_shape;
  std::vector<int64_t> reshape;          // empty: no reshape before the transpose
  std::vector<int> permutation;          // numpy.transpose axes applied after the reshape
  // After the transpose, spatial axis i (the first `rank` axes) becomes (k-1)*dilate[i] + 1 + append_zeros[i]
  // long: tap j moves to j*dilate[i], every other entry is 0. Empty when nothing is inserted.
  std::vector<int64_t> dilate;
  std::vector<int64_t> append_zeros;
  std::vector<int64_t> to_shape;  // when it differs from the transposed shape, the data is only re-viewed
};

// PyTorch conv weight (O, I/G, *k) -> TF conv kernel (*k, I/G, O): OIW->WIO, OIHW->HWIO, OIDHW->DHWIO.
WeightLayoutChange torch_conv_weight_to_tf_conv(const ConvSpec& spec);

// PyTorch depthwise weight (C*M, 1, *k) -> TF depthwise kernel (*k, C, M): reshape to (C, M, *k), then transpose.
WeightLayoutChange torch_conv_weight_to_tf_depthwise(const ConvSpec& spec);

// PyTorch transposed weight (I, O/G, *k) -> TF transposed kernel (*k_eff, O/G, I): IOHW->HWOI, zero-dilated by
// the layer's dilation, with `append_zeros` zero taps added at the end of each spatial axis.
WeightLayoutChange torch_conv_transpose_weight_to_tf(const ConvSpec& spec, const std::vector<int64_t>& append_zeros);

// Keras -> PyTorch. Conv/transposed kernel (*k, a, b) -> (b, a, *k): HWIO->OIHW (and HWOI->IOHW).
WeightLayoutChange keras_kernel_to_torch(int rank, const std::vector<int64_t>& keras_shape, std::string_view letters_from,
                                         std::string_view letters_to);
// Keras depthwise kernel (*k, C, M) -> PyTorch (C*M, 1, *k): transpose to (C, M, *k), then view.
WeightLayoutChange keras_depthwise_kernel_to_torch(int rank, const std::vector<int64_t>& keras_shape);
// Keras kernel -> itself (and, for a dilated transposed kernel, zero-spread to what TF's CPU step reads).
WeightLayoutChange keras_kernel_identity(const std::vector<int64_t>& keras_shape, const std::vector<int64_t>& dilate,
                                         std::string_view letters);

// Moves the elements of a row-major tensor of shape change.from_shape into change.to_shape order. A cache-blocked
// copy (threaded for large tensors), bit for bit equal to reference_apply_layout_change. Aborts when `change` is
// not well-formed or `source` does not hold product(from_shape) elements (callers check user shapes first, e.g.
// with layout_change_output_size).
template <class T>
std::vector<T> apply_layout_change(const WeightLayoutChange& change, std::span<const T> source);

// The same into a caller's buffer of layout_change_output_size(change) elements, which need not be initialised
// (the Python bindings hand numpy a buffer no one zero-filled). `destination` must not overlap `source`.
template <class T>
void apply_layout_change_into(const WeightLayoutChange& change, std::span<const T> source, std::span<T> destination);

// The number of elements apply_layout_change produces, once every size in `change` is checked: the permutation is
// one, the reshape keeps the element count, the zero taps give to_shape, and no product overflows int64.
Result<int64_t> layout_change_output_size(const WeightLayoutChange& change);

// Generic row-major transpose (numpy.transpose semantics), cache-blocked like apply_layout_change.
template <class T>
std::vector<T> transpose(std::span<const T> source, std::span<const int64_t> shape, std::span<const int> permutation);

// The obviously-correct references the blocked path is tested against bit for bit (tests/unit/weight_layout_test.cpp)
// and measured against (bench/): one odometer loop over the destination, then the zero taps as a second pass.
template <class T>
std::vector<T> reference_apply_layout_change(const WeightLayoutChange& change, std::span<const T> source);
template <class T>
std::vector<T> reference_transpose(std::span<const T> source, std::span<const int64_t> shape,
                                   std::span<const int> permutation);

}  // namespace convbridge
