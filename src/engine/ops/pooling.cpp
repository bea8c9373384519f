// Reference pooling in float64 on channels_first tensors, straight from the PoolOp / AdaptivePoolOp descriptions
// (convbridge/ops/pool.hpp): every output element visits its window element by element.
#include <cmath>
#include <limits>
#include <vector>

#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {
namespace {

// Visits every multi-index of `extent` (row-major order), calling f(index).
template <class F>
void for_each_index(const std::vector<int64_t>& extent, F&& f) {
  std::vector<int64_t> index(extent.size(), 0);
  for (int64_t e : extent) {
    if (e <= 0) return;
  }
  while (true) {
    f(index);
    size_t axis = extent.size();
    while (axis > 0) {
      --axis;
      if (++index[axis] < extent[axis]) break;
      index[axis] = 0;
      if (axis == 0) return;
    }
    if (extent.empty()) return;
  }
}

}  // namespace

Result<Tensor> run(const PoolOp& op, const Tensor& input, std::span<const Tensor>) {
  CONVBRIDGE_TRY(std::vector<int64_t> out_shape, output_shape(op, input.shape));
  const auto rank = static_cast<size_t>(op.rank);
  std::vector<PadPair> pads(rank);
  std::vector<int64_t> in_size(rank), out_size(rank);
  for (size_t a = 0; a < rank; ++a) {
    in_size[a] = input.shape[a + 2];
    out_size[a] = out_shape[a + 2];
    CONVBRIDGE_TRY(pads[a], pool_pads(op, static_cast<int>(a), in_size[a]));
  }
  const std::vector<int64_t> in_strides = strides_of(input.shape);
  Tensor out{out_shape, std::vector<double>(static_cast<size_t>(element_count(out_shape)), 0.0)};
  size_t written = 0;
  const int64_t planes = input.shape[0] * input.shape[1];
  for (int64_t plane = 0; plane < planes; ++plane) {
    const int64_t plane_offset = plane * in_strides[1];
    for_each_index(out_size, [&](const std::vector<int64_t>& o) {
      std::vector<int64_t> start(rank);
      int64_t clipped_window = 1;  // count_include_pad=True divisor: the window clipped to the padded input
      for (size_t a = 0; a < rank; ++a) {
        start[a] = o[a] * op.stride[a] - pads[a].before;
        const int64_t end = std::min(start[a] + pool_effective_kernel(op, static_cast<int>(a)),
                                     in_size[a] + pads[a].after);
        clipped_window *= end - start[a];
      }
      double best = -std::numeric_limits<double>::infinity();
      double sum = 0.0;
      int64_t inside = 0;
      for_each_index(op.kernel, [&](const std::vector<int64_t>& k) {
        int64_t offset = plane_offset;
        for (size_t a = 0; a < rank; ++a) {
          const int64_t position = start[a] + k[a] * op.dilation[a];
          if (position < 0 || position >= in_size[a]) return;  // padding: -inf for max, 0 for average
          offset += position * in_strides[a + 2];
        }
        const double v = input.data[static_cast<size_t>(offset)];
        best = std::max(best, v);
        sum += v;
        ++inside;
      });
      double value = best;
      if (op.kind == PoolKind::average) {
        switch (op.divisor) {
          case AverageDivisor::window_clipped_to_padding: value = sum / static_cast<double>(clipped_window); break;
          case AverageDivisor::valid_elements:
            // TF and PyTorch never form a window without an input element (pads are below the kernel size).
            value = inside > 0 ? sum / static_cast<double>(inside) : std::nan("");
            break;
          case AverageDivisor::fixed: value = sum / static_cast<double>(op.divisor_override); break;
        }
      }
      out.data[written++] = value;
    });
  }
  return out;
}

Result<Tensor> run(const AdaptivePoolOp& op, const Tensor& input, std::span<const Tensor>) {
  CONVBRIDGE_TRY(std::vector<int64_t> out_shape, output_shape(op, input.shape));
  const auto rank = static_cast<size_t>(op.rank);
  std::vector<int64_t> in_size(rank), out_size(rank);
  for (size_t a = 0; a < rank; ++a) {
    in_size[a] = input.shape[a + 2];
    out_size[a] = op.output_size[a] == kUnknownSize ? in_size[a] : op.output_size[a];
  }
  const std::vector<int64_t> in_strides = strides_of(input.shape);
  Tensor out{out_shape, {}};
  out.data.reserve(static_cast<size_t>(element_count(out_shape)));
  const int64_t planes = input.shape[0] * input.shape[1];
  for (int64_t plane = 0; plane < planes; ++plane) {
    for_each_index(out_size, [&](const std::vector<int64_t>& o) {
      std::vector<int64_t> start(rank), extent(rank);
      for (size_t a = 0; a < rank; ++a) {
        start[a] = adaptive_start(o[a], in_size[a], out_size[a]);
        extent[a] = adaptive_end(o[a], in_size[a], out_size[a]) - start[a];
      }
      double best = -std::numeric_limits<double>::infinity();
      double sum = 0.0;
      int64_t count = 0;
      for_each_index(extent, [&](const std::vector<int64_t>& k) {
        int64_t offset = plane * in_strides[1];
        for (size_t a = 0; a < rank; ++a) offset += (start[a] + k[a]) * in_strides[a + 2];
        const double v = input.data[static_cast<size_t>(offset)];
        best = std::max(best, v);
        sum += v;
        ++count;
      });
      out.data.push_back(op.kind == PoolKind::max ? best : sum / static_cast<double>(count));
    });
  }
  return out;
}

}  // namespace convbridge::engine
