// Padding and pixel shuffle in float64, element by element from the neutral definitions (convbridge/ops/pad.hpp).
#include <fmt/format.h>

#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {
namespace {

// The input index an output index reads along one axis of `size` entries, or -1 for the constant fill. `start`
// is where the output begins in the input's coordinates (-before); `low`/`high` bound the entries that remain
// after cropping (circular wraps inside them, the other modes mirror or clamp at the input's own edges).
int64_t source_index(PadFill fill, int64_t position, int64_t size, int64_t low, int64_t high) {
  if (position >= low && position < high) return position;
  switch (fill) {
    case PadFill::constant: return -1;
    case PadFill::replicate: return position < 0 ? 0 : position >= size ? size - 1 : position;
    case PadFill::reflect:  // mirror about the edge entry: -1 -> 1, size -> size - 2
      if (position < 0) return -position;
      if (position >= size) return 2 * (size - 1) - position;
      return position;
    case PadFill::symmetric:  // mirror including the edge: -1 -> 0, size -> size - 1
      if (position < 0) return -position - 1;
      if (position >= size) return 2 * size - 1 - position;
      return position;
    case PadFill::circular: {
      const int64_t kept = high - low;
      int64_t offset = (position - low) % kept;
      if (offset < 0) offset += kept;
      return low + offset;
    }
  }
  return -1;
}

}  // namespace

Result<Tensor> run(const PadOp& op, const Tensor& input, std::span<const Tensor>) {
  CONVBRIDGE_TRY(const std::vector<int64_t> out_shape, output_shape(op, input.shape));
  Tensor out{out_shape, std::vector<double>(static_cast<size_t>(element_count(out_shape)), op.value)};
  const auto in_strides = strides_of(input.shape);
  const size_t axes = input.shape.size();
  std::vector<int64_t> index(axes, 0);
  for (size_t flat = 0; flat < out.data.size(); ++flat) {
    int64_t offset = 0;
    bool inside = true;
    for (size_t a = 0; a < axes && inside; ++a) {
      int64_t i = index[a];
      if (a >= 2) {
        const PadPair& pad = op.pads[a - 2];
        const int64_t size = input.shape[a];
        // Entries kept after cropping: [max(0, -before), size - max(0, -after)).
        const int64_t low = std::max<int64_t>(0, -pad.before);
        const int64_t high = size - std::max<int64_t>(0, -pad.after);
        i = source_index(op.fill, index[a] - pad.before, size, low, high);
        if (i < 0) inside = false;
      }
      offset += i * in_strides[a];
    }
    if (inside) out.data[flat] = input.data[static_cast<size_t>(offset)];
    for (size_t a = axes; a-- > 0;) {  // next output index, row-major
      if (++index[a] < out_shape[a]) break;
      index[a] = 0;
    }
  }
  return out;
}

// Output (n, c, h * r + i, w * r + j) reads input channel
//   crd: c * r * r + i * r + j      dcr: (i * r + j) * C_out + c
// and pixel unshuffle is the inverse map.
Result<Tensor> run(const PixelShuffleOp& op, const Tensor& input, std::span<const Tensor>) {
  CONVBRIDGE_TRY(const std::vector<int64_t> out_shape, output_shape(op, input.shape));
  Tensor out{out_shape, std::vector<double>(static_cast<size_t>(element_count(out_shape)), 0.0)};
  const int64_t r = op.block;
  // Work on the (space-side) shape: the big image (N, C, H*r, W*r) and the deep one (N, C*r*r, H, W).
  const auto& deep = op.to_space ? input.shape : out_shape;
  const auto& wide = op.to_space ? out_shape : input.shape;
  const int64_t channels = wide[1];
  const auto deep_strides = strides_of(deep);
  const auto wide_strides = strides_of(wide);
  for (int64_t n = 0; n < wide[0]; ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t y = 0; y < wide[2]; ++y) {
        for (int64_t x = 0; x < wide[3]; ++x) {
          const int64_t i = y % r;
          const int64_t j = x % r;
          const int64_t deep_channel = op.order == ChannelOrder::crd ? c * r * r + i * r + j : (i * r + j) * channels + c;
          const int64_t deep_offset = n * deep_strides[0] + deep_channel * deep_strides[1] + (y / r) * deep_strides[2] +
                                      (x / r) * deep_strides[3];
          const int64_t wide_offset = n * wide_strides[0] + c * wide_strides[1] + y * wide_strides[2] + x * wide_strides[3];
          if (op.to_space) {
            out.data[static_cast<size_t>(wide_offset)] = input.data[static_cast<size_t>(deep_offset)];
          } else {
            out.data[static_cast<size_t>(deep_offset)] = input.data[static_cast<size_t>(wide_offset)];
          }
        }
      }
    }
  }
  return out;
}

}  // namespace convbridge::engine
