// Internal to the reference engine: the 5-D view every convolution loop uses, and the GEMM-based kernels
// (gemm_conv.cpp) that verification runs. The naive loops in reference_conv.cpp stay the obviously-correct
// reference; tests/unit/gemm_engine_test.cpp checks these kernels against them.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "convbridge/conv_spec.hpp"
#include "convbridge/engine.hpp"

namespace convbridge::engine_detail {

using Dims3 = std::array<int64_t, 3>;

// Rank 1-3 values right-aligned into (D, H, W), the missing leading axes set to `fill`.
inline Dims3 promote(std::span<const int64_t> values, int64_t fill) {
  Dims3 out{fill, fill, fill};
  std::copy(values.begin(), values.end(), out.end() - static_cast<std::ptrdiff_t>(values.size()));
  return out;
}

inline int64_t volume(const Dims3& dims) { return dims[0] * dims[1] * dims[2]; }

// A row-major activation tensor seen as (N, C, D, H, W).
struct View5 {
  int64_t batch = 1, channels = 1;
  Dims3 spatial{1, 1, 1};
  bool channels_last = false;

  static View5 of(const std::vector<int64_t>& shape, bool channels_last) {
    View5 v;
    v.channels_last = channels_last;
    v.batch = shape.front();
    v.channels = channels_last ? shape.back() : shape[1];
    const auto first = shape.begin() + (channels_last ? 1 : 2);
    v.spatial = promote(std::span<const int64_t>(&*first, shape.size() - 2), 1);
    return v;
  }
  int64_t at(int64_t n, int64_t c, int64_t z, int64_t y, int64_t x) const {
    if (channels_last) return (((n * spatial[0] + z) * spatial[1] + y) * spatial[2] + x) * channels + c;
    return (((n * channels + c) * spatial[0] + z) * spatial[1] + y) * spatial[2] + x;
  }
  std::vector<int64_t> shape(int rank) const {
    std::vector<int64_t> s{batch};
    if (!channels_last) s.push_back(channels);
    for (int i = 3 - rank; i < 3; ++i) s.push_back(spatial[static_cast<size_t>(i)]);
    if (channels_last) s.push_back(channels);
    return s;
  }
  int64_t size() const { return batch * channels * volume(spatial); }
};

// Where padded position i of an axis of length n (with `before` elements added in front) reads from, or -1 for a
// zero. reflect mirrors around the edge element, replicate clamps, circular wraps (at most once, as PyTorch allows).
inline int64_t padded_source(int64_t i, int64_t n, int64_t before, PaddingFill fill) {
  const int64_t j = i - before;
  if (j >= 0 && j < n) return j;
  switch (fill) {
    case PaddingFill::zeros: return -1;
    case PaddingFill::reflect: return j < 0 ? -j : 2 * (n - 1) - j;
    case PaddingFill::replicate: return j < 0 ? 0 : n - 1;
    case PaddingFill::circular: return j < 0 ? j + n : j - n;
  }
  return -1;
}

// One grouped, strided, dilated convolution (forward or transposed) on a 5-D view, in either channel position.
// Forward: output position o reads input position o*stride + tap*dilation - offset (outside the input: zero, which
// is how zero padding enters without being materialised). Transposed: input position i adds to output position
// i*stride + tap*dilation - offset (the crop), when that lies in the output.
struct ConvGeometry {
  int64_t batch = 1, in_channels = 1, out_channels = 1, groups = 1;
  Dims3 in_spatial{1, 1, 1}, out_spatial{1, 1, 1};
  Dims3 kernel{1, 1, 1}, stride{1, 1, 1}, dilation{1, 1, 1};
  Dims3 offset{0, 0, 0};
  bool channels_last = false;

  int64_t in_per_group() const { return in_channels / groups; }
  int64_t out_per_group() const { return out_channels / groups; }
  int64_t taps() const { return volume(kernel); }
};

// The packed weight the GEMM kernels read, per group g (outermost), with t the kernel tap (kz, ky, kx) row-major:
//   forward, channels_first:    [g][o][i][t]  (the GEMM's A, O/G x (I/G * taps)): PyTorch's (O, I/G, *k) as it is
//   forward, channels_last:     [g][t][i][o]  (the GEMM's B, (taps * I/G) x O/G): TF's (*k, I, O) as it is for G = 1
//   transposed, channels_first: [g][o][t][i]  (A, (O/G * taps) x I/G)
//   transposed, channels_last:  [g][i][t][o]  (B, I/G x (taps * O/G))
// where i and o index the input and output channels within group g. pack_weight fills it from a framework-layout
// accessor: forward weight_at(o_global, i, kz, ky, kx), transposed weight_at(i_global, o, kz, ky, kx), the same
// accessors the naive loops read. It walks the source in PyTorch's order (forward o, i, t; transposed i, o, t).
template <class WeightAt>
std::vector<double> pack_weight(const ConvGeometry& g, bool transposed, WeightAt weight_at) {
  const int64_t ig = g.in_per_group(), og = g.out_per_group(), taps = g.taps();
  int64_t o_stride = 0, i_stride = 0, t_stride = 0;
  if (!transposed && !g.channels_last) {
    o_stride = ig * taps, i_stride = taps, t_stride = 1;
  } else if (!transposed) {
    t_stride = ig * og, i_stride = og, o_stride = 1;
  } else if (!g.channels_last) {
    o_stride = taps * ig, t_stride = ig, i_stride = 1;
  } else {
    i_stride = taps * og, t_stride = og, o_stride = 1;
  }
  const int64_t outer_count = transposed ? ig : og, inner_count = transposed ? og : ig;
  const int64_t outer_stride = transposed ? i_stride : o_stride, inner_stride = transposed ? o_stride : i_stride;
  std::vector<double> packed(static_cast<size_t>(g.groups * ig * og * taps));
  for (int64_t group = 0; group < g.groups; ++group)
    for (int64_t outer = 0; outer < outer_count; ++outer)
      for (int64_t inner = 0; inner < inner_count; ++inner) {
        double* dst = packed.data() + group * ig * og * taps + outer * outer_stride + inner * inner_stride;
        const int64_t global = group * outer_count + outer;  // o_global forward, i_global transposed
        for (int64_t kz = 0; kz < g.kernel[0]; ++kz)
          for (int64_t ky = 0; ky < g.kernel[1]; ++ky)
            for (int64_t kx = 0; kx < g.kernel[2]; ++kx, dst += t_stride) *dst = weight_at(global, inner, kz, ky, kx);
      }
  return packed;
}

// Whether every matrix dimension and leading dimension of this convolution fits BLAS's 32-bit integers.
bool fits_blas(const ConvGeometry& geometry);

// Elements of the column buffer the GEMM kernels hold at once (16 MiB of float64): im2col and col2im are tiled to it.
inline constexpr int64_t kColumnBufferElements = int64_t{1} << 21;

// output (N, C_out, *out_spatial) or channels_last, zero-filled on entry (as a new std::vector is), holds the bias
// plus the convolution on return. Tests pass a tiny column buffer to exercise the tiling.
void gemm_forward_conv(const ConvGeometry& geometry, std::span<const double> input, std::span<const double> packed,
                       std::span<const double> bias, std::span<double> output,
                       int64_t column_buffer_elements = kColumnBufferElements);
void gemm_transposed_conv(const ConvGeometry& geometry, std::span<const double> input,
                          std::span<const double> packed, std::span<const double> bias, std::span<double> output,
                          int64_t column_buffer_elements = kColumnBufferElements);

// pad_spatial's result, computed row by row (contiguous copies) instead of element by element.
Tensor pad_spatial_by_rows(const Tensor& input, int rank, bool channels_last, const std::vector<PadPair>& pads,
                           PaddingFill fill);

}  // namespace convbridge::engine_detail
