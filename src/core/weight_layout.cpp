#include "convbridge/weight_layout.hpp"

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
  return transpose<T>(source, shape, change.permutation);
}

template std::vector<float> transpose<float>(std::span<const float>, std::span<const int64_t>, std::span<const int>);
template std::vector<double> transpose<double>(std::span<const double>, std::span<const int64_t>, std::span<const int>);
template std::vector<float> apply_layout_change<float>(const WeightLayoutChange&, std::span<const float>);
template std::vector<double> apply_layout_change<double>(const WeightLayoutChange&, std::span<const double>);

}  // namespace convbridge
