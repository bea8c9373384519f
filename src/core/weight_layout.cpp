#include "convbridge/weight_layout.hpp"

#include "convbridge/checked_math.hpp"

#include <algorithm>
#include <cassert>
#include <string>

namespace convbridge {

WeightLayoutChange torch_conv_weight_to_tf_conv(const ConvSpec& spec) {
  const std::string spatial(spatial_letters(spec.rank));
  WeightLayoutChange change;
  change.from_layout = "OI" + spatial;
  change.to_layout = spatial + "IO";
  change.from_shape = {spec.out_channels, spec.in_channels / spec.groups};
  change.from_shape.insert(change.from_shape.end(), spec.kernel.begin(), spec.kernel.end());
  for (int i = 0; i < spec.rank; ++i) change.permutation.push_back(i + 2);
  change.permutation.push_back(1);
  change.permutation.push_back(0);
  for (int axis : change.permutation) change.to_shape.push_back(change.from_shape[static_cast<size_t>(axis)]);
  return change;
}

WeightLayoutChange torch_conv_weight_to_tf_depthwise(const ConvSpec& spec) {
  // PyTorch output channel c*M + m reads input channel c (groups == C), so (C*M, 1, *k) reshapes to (C, M, *k)
  // without moving data; Keras DepthwiseConv kernels are (*k, C, M) with the same c*M + m output order.
  const std::string spatial(spatial_letters(spec.rank));
  const int64_t multiplier = spec.out_channels / spec.in_channels;
  WeightLayoutChange change;
  change.from_layout = "OI" + spatial;
  change.to_layout = spatial + "CM";
  change.from_shape = {spec.out_channels, 1};
  change.from_shape.insert(change.from_shape.end(), spec.kernel.begin(), spec.kernel.end());
  change.reshape = {spec.in_channels, multiplier};
  change.reshape.insert(change.reshape.end(), spec.kernel.begin(), spec.kernel.end());
  for (int i = 0; i < spec.rank; ++i) change.permutation.push_back(i + 2);
  change.permutation.push_back(0);
  change.permutation.push_back(1);
  for (int axis : change.permutation) change.to_shape.push_back(change.reshape[static_cast<size_t>(axis)]);
  return change;
}

WeightLayoutChange torch_conv_transpose_weight_to_tf(const ConvSpec& spec, const std::vector<int64_t>& append_zeros) {
  const std::string spatial(spatial_letters(spec.rank));
  WeightLayoutChange change;
  change.from_layout = "IO" + spatial;
  change.to_layout = spatial + "OI";
  change.from_shape = torch_weight_shape(spec);
  for (int i = 0; i < spec.rank; ++i) change.permutation.push_back(i + 2);
  change.permutation.push_back(1);
  change.permutation.push_back(0);
  for (int axis : change.permutation) change.to_shape.push_back(change.from_shape[static_cast<size_t>(axis)]);
  bool inserts = false;
  for (size_t i = 0; i < static_cast<size_t>(spec.rank); ++i) {
    inserts = inserts || spec.dilation[i] > 1 || append_zeros[i] > 0;
  }
  if (inserts) {
    change.dilate = spec.dilation;
    change.append_zeros = append_zeros;
    for (size_t i = 0; i < static_cast<size_t>(spec.rank); ++i) {
      change.to_shape[i] = (spec.kernel[i] - 1) * spec.dilation[i] + 1 + append_zeros[i];
    }
  }
  return change;
}

WeightLayoutChange keras_kernel_to_torch(int rank, const std::vector<int64_t>& keras_shape, std::string_view letters_from,
                                         std::string_view letters_to) {
  WeightLayoutChange change;
  change.from_layout = std::string(letters_from);
  change.to_layout = std::string(letters_to);
  change.from_shape = keras_shape;
  change.permutation = {rank + 1, rank};
  for (int i = 0; i < rank; ++i) change.permutation.push_back(i);
  for (int axis : change.permutation) change.to_shape.push_back(keras_shape[static_cast<size_t>(axis)]);
  return change;
}

WeightLayoutChange keras_depthwise_kernel_to_torch(int rank, const std::vector<int64_t>& keras_shape) {
  const std::string spatial(spatial_letters(rank));
  WeightLayoutChange change;
  change.from_layout = spatial + "CM";
  change.to_layout = "OI" + spatial;
  change.from_shape = keras_shape;
  change.permutation = {rank, rank + 1};
  for (int i = 0; i < rank; ++i) change.permutation.push_back(i);
  // (C, M, *k) viewed as (C*M, 1, *k): output channel c*M + m, PyTorch's depthwise order.
  change.to_shape = {keras_shape[static_cast<size_t>(rank)] * keras_shape[static_cast<size_t>(rank) + 1], 1};
  for (int i = 0; i < rank; ++i) change.to_shape.push_back(keras_shape[static_cast<size_t>(i)]);
  return change;
}

WeightLayoutChange keras_kernel_identity(const std::vector<int64_t>& keras_shape, const std::vector<int64_t>& dilate,
                                         std::string_view letters) {
  WeightLayoutChange change;
  change.from_layout = change.to_layout = std::string(letters);
  change.from_shape = change.to_shape = keras_shape;
  for (int i = 0; i < static_cast<int>(keras_shape.size()); ++i) change.permutation.push_back(i);
  if (std::any_of(dilate.begin(), dilate.end(), [](int64_t d) { return d > 1; })) {
    change.dilate = dilate;
    change.append_zeros.assign(dilate.size(), 0);
    for (size_t i = 0; i < dilate.size(); ++i) change.to_shape[i] = (keras_shape[i] - 1) * dilate[i] + 1;
  }
  return change;
}

namespace {

// Spreads the first `rank` axes of a row-major tensor: tap j of axis i goes to j*dilate[i]; the rest are zeros.
template <class T>
std::vector<T> insert_zero_taps(std::span<const T> source, const std::vector<int64_t>& shape,
                                const std::vector<int64_t>& out_shape, const std::vector<int64_t>& dilate) {
  const size_t rank = dilate.size();
  std::vector<T> out(static_cast<size_t>(*checked_product(out_shape)), T(0));
  int64_t inner = 1;  // elements per spatial position (the non-spatial trailing axes)
  for (size_t i = rank; i < shape.size(); ++i) inner *= shape[i];
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
std::vector<T> transpose(std::span<const T> source, std::span<const int64_t> shape, std::span<const int> permutation) {
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
std::vector<T> apply_layout_change(const WeightLayoutChange& change, std::span<const T> source) {
  // A row-major reshape moves no data: only the shape the transpose reads changes.
  const std::vector<int64_t>& shape = change.reshape.empty() ? change.from_shape : change.reshape;
  std::vector<T> moved = transpose<T>(source, shape, change.permutation);
  if (change.dilate.empty()) return moved;
  std::vector<int64_t> moved_shape;
  for (int axis : change.permutation) moved_shape.push_back(shape[static_cast<size_t>(axis)]);
  return insert_zero_taps<T>(moved, moved_shape, change.to_shape, change.dilate);
}

template std::vector<float> transpose<float>(std::span<const float>, std::span<const int64_t>, std::span<const int>);
template std::vector<double> transpose<double>(std::span<const double>, std::span<const int64_t>, std::span<const int>);
template std::vector<float> apply_layout_change<float>(const WeightLayoutChange&, std::span<const float>);
template std::vector<double> apply_layout_change<double>(const WeightLayoutChange&, std::span<const double>);

}  // namespace convbridge
