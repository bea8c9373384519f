// The simple re-layout loops, kept as the obviously-correct reference for the cache-blocked path in
// weight_layout.cpp: one destination element per step of an odometer, no blocking, no threads.
#include <algorithm>
#include <cassert>

#include "convbridge/checked_math.hpp"
#include "convbridge/weight_layout.hpp"

namespace convbridge {

namespace {

// Spreads the first `rank` axes of a row-major tensor: tap j of axis i goes to j*dilate[i]; the rest are zeros.
template <class T>
std::vector<T> insert_zero_taps(std::span<const T> source, const std::vector<int64_t>& shape,
                                const std::vector<int64_t>& out_shape, const std::vector<int64_t>& dilate) {
  const size_t rank = dilate.size();
  std::vector<T> out(static_cast<size_t>(*checked_product(out_shape)), T(0));
  int64_t inner = 1;  // elements per spatial position (the non-spatial trailing axes)
  for (size_t i = rank; i < shape.size(); ++i) inner *= shape[i];
  if (inner == 0) return out;
  std::vector<int64_t> index(rank, 0);
  const int64_t positions = static_cast<int64_t>(source.size()) / inner;
  for (int64_t p = 0; p < positions; ++p) {
    int64_t target = 0;
    for (size_t i = 0; i < rank; ++i) target = target * out_shape[i] + index[i] * dilate[i];
    std::copy_n(source.begin() + p * inner, inner, out.begin() + target * inner);
    for (size_t i = rank; i-- > 0;) {
      if (++index[i] < shape[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

}  // namespace

template <class T>
std::vector<T> reference_transpose(std::span<const T> source, std::span<const int64_t> shape,
                                   std::span<const int> permutation) {
  const size_t rank = shape.size();
  assert(permutation.size() == rank);
  // Row-major strides of the source, read in the order of the destination's axes.
  std::vector<int64_t> source_strides(rank, 1);
  for (size_t i = rank; i-- > 1;) source_strides[i - 1] = source_strides[i] * shape[i];
  std::vector<int64_t> out_shape(rank), out_strides(rank);
  for (size_t i = 0; i < rank; ++i) {
    out_shape[i] = shape[static_cast<size_t>(permutation[i])];
    out_strides[i] = source_strides[static_cast<size_t>(permutation[i])];
  }
  std::vector<T> out(source.size());
  std::vector<int64_t> index(rank, 0);
  for (size_t linear = 0; linear < out.size(); ++linear) {
    int64_t offset = 0;
    for (size_t i = 0; i < rank; ++i) offset += index[i] * out_strides[i];
    out[linear] = source[static_cast<size_t>(offset)];
    for (size_t i = rank; i-- > 0;) {  // odometer increment over the destination shape
      if (++index[i] < out_shape[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

template <class T>
std::vector<T> reference_apply_layout_change(const WeightLayoutChange& change, std::span<const T> source) {
  // A row-major reshape moves no data: only the shape the transpose reads changes.
  const std::vector<int64_t>& shape = change.reshape.empty() ? change.from_shape : change.reshape;
  std::vector<T> moved = reference_transpose<T>(source, shape, change.permutation);
  if (change.dilate.empty()) return moved;
  std::vector<int64_t> moved_shape;
  for (int axis : change.permutation) moved_shape.push_back(shape[static_cast<size_t>(axis)]);
  return insert_zero_taps<T>(moved, moved_shape, change.to_shape, change.dilate);
}

template std::vector<float> reference_transpose<float>(std::span<const float>, std::span<const int64_t>,
                                                       std::span<const int>);
template std::vector<double> reference_transpose<double>(std::span<const double>, std::span<const int64_t>,
                                                         std::span<const int>);
template std::vector<float> reference_apply_layout_change<float>(const WeightLayoutChange&, std::span<const float>);
template std::vector<double> reference_apply_layout_change<double>(const WeightLayoutChange&, std::span<const double>);

}  // namespace convbridge
