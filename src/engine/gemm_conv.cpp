// The fast path of the reference engine: convolutions as matrix products on BLAS (dgemm), in float64.
//
// Forward: per sample and group, output (O/G x P) = weight (O/G x K) * columns (K x P), where P counts output
// positions, K = I/G * taps, and columns[(i, tap), p] is the input that tap reads for output p (im2col; zero where
// it falls in the zero padding, which is therefore never materialised). Channels_last computes the transpose,
// output (P x O/G) = columns (P x K) * weight (K x O/G), with K ordered (tap, i) so that each tap copies I/G
// contiguous channels. A 1x1, stride-1 convolution reads the input itself as the columns.
// Transposed: columns ((O/G * taps) x P_in) = weight * input (I/G x P_in), then every column entry is added to the
// output position it lands on (col2im), the scatter that defines a transposed convolution.
// The column buffer is tiled (kColumnBufferElements) over positions and, for huge kernels, over K: its memory is
// bounded whatever the layer. Grouped convolutions with one input channel per group (depthwise) have K = taps, too
// small for a product to pay: a direct loop over taps runs them instead.
//
// BLAS: the CBLAS interface (cblas_dgemm, row-major), from OpenBLAS or BLIS (CONVBRIDGE_BLAS in CMakeLists.txt).
#include <cblas.h>

#include <climits>
#include <cstring>

#include "engine/conv_kernels.hpp"

namespace convbridge::engine_detail {
namespace {

int blas_int(int64_t value) { return static_cast<int>(value); }  // fits_blas checked it

// C (m x n, ldc) = A (m x k) * B (k x n) + beta * C, all row-major.
void multiply(int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b, int64_t ldb,
              double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blas_int(m), blas_int(n), blas_int(k), 1.0, a,
              blas_int(lda), b, blas_int(ldb), beta, c, blas_int(ldc));
}

// The j in [0, count) for which first + j*step lies in [0, limit): one contiguous range [begin, end).
struct Run {
  int64_t begin = 0, end = 0;
};
Run inside(int64_t first, int64_t step, int64_t limit, int64_t count) {
  Run run;
  run.begin = first >= 0 ? 0 : (-first + step - 1) / step;
  run.end = first >= limit ? 0 : (limit - first + step - 1) / step;
  run.begin = std::min(run.begin, count);
  run.end = std::clamp(run.end, run.begin, count);
  return run;
}

// dst[j] = src[first + j*step] where that lies in [0, limit), else 0, for j < count.
void gather_row(const double* src, int64_t first, int64_t step, int64_t limit, int64_t count, double* dst) {
  const Run run = inside(first, step, limit, count);
  std::fill(dst, dst + run.begin, 0.0);
  if (step == 1) {
    std::copy(src + first + run.begin, src + first + run.end, dst + run.begin);
  } else {
    for (int64_t j = run.begin; j < run.end; ++j) dst[j] = src[first + j * step];
  }
  std::fill(dst + run.end, dst + count, 0.0);
}

// dst[first + j*step] += src[j] where that lies in [0, limit), for j < count.
void scatter_add_row(const double* src, int64_t first, int64_t step, int64_t limit, int64_t count, double* dst) {
  const Run run = inside(first, step, limit, count);
  for (int64_t j = run.begin; j < run.end; ++j) dst[first + j * step] += src[j];
}

Dims3 tap_of(const ConvGeometry& g, int64_t tap) {
  return {tap / (g.kernel[1] * g.kernel[2]), (tap / g.kernel[2]) % g.kernel[1], tap % g.kernel[2]};
}

Dims3 position_of(const Dims3& spatial, int64_t position) {
  return {position / (spatial[1] * spatial[2]), (position / spatial[2]) % spatial[1], position % spatial[2]};
}

// Where `position` (z, y, x) with kernel tap `tap` meets the other side, per axis: forward, the input position it
// reads; transposed, the output position it adds to. Both are position*stride + tap*dilation - offset.
Dims3 partner(const ConvGeometry& g, const Dims3& position, const Dims3& tap) {
  Dims3 out;
  for (size_t a = 0; a < 3; ++a) out[a] = position[a] * g.stride[a] + tap[a] * g.dilation[a] - g.offset[a];
  return out;
}

bool within(const Dims3& position, const Dims3& extent, size_t axes = 3) {
  for (size_t a = 0; a < axes; ++a) {
    if (position[a] < 0 || position[a] >= extent[a]) return false;
  }
  return true;
}

// Every output element starts at its channel's bias (the output arrives zero-filled: nothing to do without one).
void fill_bias(const ConvGeometry& g, std::span<const double> bias, std::span<double> output) {
  if (bias.empty()) return;
  const int64_t positions = volume(g.out_spatial);
  for (int64_t n = 0; n < g.batch; ++n) {
    if (g.channels_last) {
      for (int64_t p = 0; p < positions; ++p) {
        std::copy(bias.begin(), bias.end(), output.data() + (n * positions + p) * g.out_channels);
      }
    } else {
      for (int64_t c = 0; c < g.out_channels; ++c) {
        double* plane = output.data() + (n * g.out_channels + c) * positions;
        std::fill(plane, plane + positions, bias[static_cast<size_t>(c)]);
      }
    }
  }
}

// im2col, channels_first: columns[(k - k_begin) * width + (p - p_begin)] for rows k = (i, tap) of `group` and
// output positions p in [p_begin, p_end), walked as runs along the W axis.
void fill_columns_channels_first(const ConvGeometry& g, const double* sample, int64_t group, int64_t k_begin,
                                 int64_t k_end, int64_t p_begin, int64_t p_end, double* columns) {
  const int64_t width = p_end - p_begin, taps = g.taps(), plane = volume(g.in_spatial);
  for (int64_t k = k_begin; k < k_end; ++k) {
    const Dims3 tap = tap_of(g, k % taps);
    const double* channel = sample + (group * g.in_per_group() + k / taps) * plane;
    double* row = columns + (k - k_begin) * width;
    for (int64_t p = p_begin; p < p_end;) {
      const Dims3 position = position_of(g.out_spatial, p);
      const int64_t run = std::min(g.out_spatial[2] - position[2], p_end - p);
      const Dims3 source = partner(g, position, tap);
      double* dst = row + (p - p_begin);
      if (within(source, g.in_spatial, 2)) {
        gather_row(channel + (source[0] * g.in_spatial[1] + source[1]) * g.in_spatial[2], source[2], g.stride[2],
                   g.in_spatial[2], run, dst);
      } else {
        std::fill(dst, dst + run, 0.0);
      }
      p += run;
    }
  }
}

// im2col, channels_last: columns[(p - p_begin) * width + (k - k_begin)] for output positions p and columns
// k = (tap, i) of `group`; each tap contributes a run of contiguous input channels.
void fill_columns_channels_last(const ConvGeometry& g, const double* sample, int64_t group, int64_t k_begin,
                                int64_t k_end, int64_t p_begin, int64_t p_end, double* columns) {
  const int64_t width = k_end - k_begin, ig = g.in_per_group();
  for (int64_t p = p_begin; p < p_end; ++p) {
    const Dims3 position = position_of(g.out_spatial, p);
    double* row = columns + (p - p_begin) * width;
    for (int64_t k = k_begin; k < k_end;) {
      const int64_t i = k % ig, count = std::min(ig - i, k_end - k);
      const Dims3 source = partner(g, position, tap_of(g, k / ig));
      double* dst = row + (k - k_begin);
      if (within(source, g.in_spatial)) {
        const double* src = sample + ((source[0] * g.in_spatial[1] + source[1]) * g.in_spatial[2] + source[2]) *
                                         g.in_channels + group * ig + i;
        std::copy(src, src + count, dst);
      } else {
        std::fill(dst, dst + count, 0.0);
      }
      k += count;
    }
  }
}

// col2im, channels_first: adds columns[(r - r_begin) * width + (p - p_begin)], rows r = (o, tap) of `group` and
// input positions p, to the output positions they land on.
void add_columns_channels_first(const ConvGeometry& g, const double* columns, int64_t group, int64_t r_begin,
                                int64_t r_end, int64_t p_begin, int64_t p_end, double* sample_out) {
  const int64_t width = p_end - p_begin, taps = g.taps(), plane = volume(g.out_spatial);
  for (int64_t r = r_begin; r < r_end; ++r) {
    const Dims3 tap = tap_of(g, r % taps);
    double* channel = sample_out + (group * g.out_per_group() + r / taps) * plane;
    const double* row = columns + (r - r_begin) * width;
    for (int64_t p = p_begin; p < p_end;) {
      const Dims3 position = position_of(g.in_spatial, p);
      const int64_t run = std::min(g.in_spatial[2] - position[2], p_end - p);
      const Dims3 target = partner(g, position, tap);
      if (within(target, g.out_spatial, 2)) {
        scatter_add_row(row + (p - p_begin), target[2], g.stride[2], g.out_spatial[2], run,
                        channel + (target[0] * g.out_spatial[1] + target[1]) * g.out_spatial[2]);
      }
      p += run;
    }
  }
}

// col2im, channels_last: adds columns[(p - p_begin) * width + (r - r_begin)], columns r = (tap, o) of `group`.
void add_columns_channels_last(const ConvGeometry& g, const double* columns, int64_t group, int64_t r_begin,
                               int64_t r_end, int64_t p_begin, int64_t p_end, double* sample_out) {
  const int64_t width = r_end - r_begin, og = g.out_per_group();
  for (int64_t p = p_begin; p < p_end; ++p) {
    const Dims3 position = position_of(g.in_spatial, p);
    const double* row = columns + (p - p_begin) * width;
    for (int64_t r = r_begin; r < r_end;) {
      const int64_t o = r % og, count = std::min(og - o, r_end - r);
      const Dims3 target = partner(g, position, tap_of(g, r / og));
      if (within(target, g.out_spatial)) {
        double* dst = sample_out + ((target[0] * g.out_spatial[1] + target[1]) * g.out_spatial[2] + target[2]) *
                                       g.out_channels + group * og + o;
        const double* src = row + (r - r_begin);
        for (int64_t j = 0; j < count; ++j) dst[j] += src[j];
      }
      r += count;
    }
  }
}

// One input channel per group: out[o] += w[o][tap] * x[o's channel] at each tap, without a product.
void direct_single_input_conv(const ConvGeometry& g, const double* input, std::span<const double> packed,
                              double* output) {
  const int64_t taps = g.taps(), og = g.out_per_group(), in_positions = volume(g.in_spatial),
                out_positions = volume(g.out_spatial);
  if (!g.channels_last) {
    // packed [g][o][0][t] = weight of output channel c at tap t: packed[c * taps + t].
    for (int64_t n = 0; n < g.batch; ++n)
      for (int64_t c = 0; c < g.out_channels; ++c) {
        const double* in_plane = input + (n * g.in_channels + c / og) * in_positions;
        double* out_plane = output + (n * g.out_channels + c) * out_positions;
        for (int64_t t = 0; t < taps; ++t) {
          const double w = packed[static_cast<size_t>(c * taps + t)];
          const Dims3 tap = tap_of(g, t);
          for (int64_t row = 0; row < g.out_spatial[0] * g.out_spatial[1]; ++row) {
            const Dims3 position{row / g.out_spatial[1], row % g.out_spatial[1], 0};
            const Dims3 source = partner(g, position, tap);
            if (!within(source, g.in_spatial, 2)) continue;
            const double* src = in_plane + (source[0] * g.in_spatial[1] + source[1]) * g.in_spatial[2];
            double* dst = out_plane + row * g.out_spatial[2];
            const Run run = inside(source[2], g.stride[2], g.in_spatial[2], g.out_spatial[2]);
            const double* first = src + source[2];
            if (g.stride[2] == 1) {  // contiguous: the compiler vectorises this form
              for (int64_t j = run.begin; j < run.end; ++j) dst[j] += w * first[j];
            } else {
              for (int64_t j = run.begin; j < run.end; ++j) dst[j] += w * first[j * g.stride[2]];
            }
          }
        }
      }
    return;
  }
  // packed [g][t][0][o]; regrouped as by_tap[t][c] so that each tap is one contiguous row over output channels.
  std::vector<double> by_tap(static_cast<size_t>(taps * g.out_channels));
  for (int64_t group = 0; group < g.groups; ++group)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t o = 0; o < og; ++o)
        by_tap[static_cast<size_t>(t * g.out_channels + group * og + o)] =
            packed[static_cast<size_t>((group * taps + t) * og + o)];
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t p = 0; p < out_positions; ++p) {
      const Dims3 position = position_of(g.out_spatial, p);
      double* dst = output + (n * out_positions + p) * g.out_channels;
      for (int64_t t = 0; t < taps; ++t) {
        const Dims3 source = partner(g, position, tap_of(g, t));
        if (!within(source, g.in_spatial)) continue;
        const double* src =
            input + (n * in_positions + (source[0] * g.in_spatial[1] + source[1]) * g.in_spatial[2] + source[2]) *
                        g.in_channels;
        const double* w = by_tap.data() + t * g.out_channels;
        if (og == 1) {
          for (int64_t c = 0; c < g.out_channels; ++c) dst[c] += w[c] * src[c];
        } else {
          for (int64_t c = 0; c < g.out_channels; ++c) dst[c] += w[c] * src[c / og];
        }
      }
    }
}

}  // namespace

bool fits_blas(const ConvGeometry& g) {
  for (const int64_t value : {g.in_channels, g.out_channels, g.in_per_group() * g.taps(),
                              g.out_per_group() * g.taps(), volume(g.in_spatial), volume(g.out_spatial)}) {
    if (value > INT_MAX) return false;
  }
  return true;
}

void gemm_forward_conv(const ConvGeometry& g, std::span<const double> input, std::span<const double> packed,
                       std::span<const double> bias, std::span<double> output, int64_t column_buffer_elements) {
  fill_bias(g, bias, output);
  if (g.in_per_group() == 1 && g.groups > 1) {
    direct_single_input_conv(g, input.data(), packed, output.data());
    return;
  }
  const int64_t ig = g.in_per_group(), og = g.out_per_group(), k_total = ig * g.taps();
  const int64_t in_positions = volume(g.in_spatial), positions = volume(g.out_spatial);
  const bool pointwise = g.taps() == 1 && g.stride == Dims3{1, 1, 1} && g.offset == Dims3{0, 0, 0} &&
                         g.in_spatial == g.out_spatial;
  const int64_t k_tile = std::min(k_total, column_buffer_elements);
  const int64_t p_tile = std::clamp<int64_t>(column_buffer_elements / k_tile, 1, positions);
  std::vector<double> columns(pointwise ? 0 : static_cast<size_t>(k_tile * p_tile));
  for (int64_t n = 0; n < g.batch; ++n) {
    const double* sample = input.data() + n * in_positions * g.in_channels;
    double* sample_out = output.data() + n * positions * g.out_channels;
    for (int64_t group = 0; group < g.groups; ++group) {
      const double* weight = packed.data() + group * og * k_total;
      if (pointwise && !g.channels_last) {
        multiply(og, positions, ig, weight, ig, sample + group * ig * in_positions, in_positions, 1.0,
                 sample_out + group * og * positions, positions);
        continue;
      }
      if (pointwise) {
        multiply(positions, og, ig, sample + group * ig, g.in_channels, weight, og, 1.0, sample_out + group * og,
                 g.out_channels);
        continue;
      }
      for (int64_t p = 0; p < positions; p += p_tile) {
        const int64_t p_end = std::min(positions, p + p_tile);
        for (int64_t k = 0; k < k_total; k += k_tile) {
          const int64_t k_end = std::min(k_total, k + k_tile);
          if (g.channels_last) {
            fill_columns_channels_last(g, sample, group, k, k_end, p, p_end, columns.data());
            multiply(p_end - p, og, k_end - k, columns.data(), k_end - k, weight + k * og, og, 1.0,
                     sample_out + p * g.out_channels + group * og, g.out_channels);
          } else {
            fill_columns_channels_first(g, sample, group, k, k_end, p, p_end, columns.data());
            multiply(og, p_end - p, k_end - k, weight + k, k_total, columns.data(), p_end - p, 1.0,
                     sample_out + group * og * positions + p, positions);
          }
        }
      }
    }
  }
}

void gemm_transposed_conv(const ConvGeometry& g, std::span<const double> input, std::span<const double> packed,
                          std::span<const double> bias, std::span<double> output, int64_t column_buffer_elements) {
  fill_bias(g, bias, output);
  const int64_t ig = g.in_per_group(), og = g.out_per_group(), r_total = og * g.taps();
  const int64_t in_positions = volume(g.in_spatial), positions = volume(g.out_spatial);
  const int64_t r_tile = std::min(r_total, column_buffer_elements);
  const int64_t p_tile = std::clamp<int64_t>(column_buffer_elements / r_tile, 1, in_positions);
  std::vector<double> columns(static_cast<size_t>(r_tile * p_tile));
  for (int64_t n = 0; n < g.batch; ++n) {
    const double* sample = input.data() + n * in_positions * g.in_channels;
    double* sample_out = output.data() + n * positions * g.out_channels;
    for (int64_t group = 0; group < g.groups; ++group) {
      const double* weight = packed.data() + group * ig * r_total;
      for (int64_t p = 0; p < in_positions; p += p_tile) {
        const int64_t p_end = std::min(in_positions, p + p_tile);
        for (int64_t r = 0; r < r_total; r += r_tile) {
          const int64_t r_end = std::min(r_total, r + r_tile);
          if (g.channels_last) {
            multiply(p_end - p, r_end - r, ig, sample + p * g.in_channels + group * ig, g.in_channels, weight + r,
                     r_total, 0.0, columns.data(), r_end - r);
            add_columns_channels_last(g, columns.data(), group, r, r_end, p, p_end, sample_out);
          } else {
            multiply(r_end - r, p_end - p, ig, weight + r * ig, ig, sample + group * ig * in_positions + p,
                     in_positions, 0.0, columns.data(), p_end - p);
            add_columns_channels_first(g, columns.data(), group, r, r_end, p, p_end, sample_out);
          }
        }
      }
    }
  }
}

Tensor pad_spatial_by_rows(const Tensor& input, int rank, bool channels_last, const std::vector<PadPair>& pads,
                           PaddingFill fill) {
  const View5 in = View5::of(input.shape, channels_last);
  std::vector<PadPair> padded(3 - static_cast<size_t>(rank), PadPair{});
  padded.insert(padded.end(), pads.begin(), pads.end());
  View5 out = in;
  for (size_t a = 0; a < 3; ++a) out.spatial[a] = in.spatial[a] + padded[a].before + padded[a].after;
  Tensor result{out.shape(rank), std::vector<double>(static_cast<size_t>(out.size()), 0.0)};
  const double* src = input.data.data();
  double* dst = result.data.data();
  for (int64_t n = 0; n < out.batch; ++n)
    for (int64_t c = 0; c < (channels_last ? 1 : out.channels); ++c)
      for (int64_t z = 0; z < out.spatial[0]; ++z)
        for (int64_t y = 0; y < out.spatial[1]; ++y) {
          const int64_t sz = padded_source(z, in.spatial[0], padded[0].before, fill);
          const int64_t sy = padded_source(y, in.spatial[1], padded[1].before, fill);
          if (sz < 0 || sy < 0) continue;  // a zero row
          if (channels_last) {
            // Each x copies one contiguous run of C channels.
            for (int64_t x = 0; x < out.spatial[2]; ++x) {
              const int64_t sx = padded_source(x, in.spatial[2], padded[2].before, fill);
              if (sx < 0) continue;
              std::copy_n(src + in.at(n, 0, sz, sy, sx), in.channels, dst + out.at(n, 0, z, y, x));
            }
          } else {
            // The interior is one contiguous copy; the borders map element by element.
            const double* src_row = src + in.at(n, c, sz, sy, 0);
            double* dst_row = dst + out.at(n, c, z, y, 0);
            std::copy_n(src_row, in.spatial[2], dst_row + padded[2].before);
            for (int64_t x = 0; x < out.spatial[2]; ++x) {
              if (x >= padded[2].before && x < padded[2].before + in.spatial[2]) continue;
              const int64_t sx = padded_source(x, in.spatial[2], padded[2].before, fill);
              if (sx >= 0) dst_row[x] = src_row[sx];
            }
          }
        }
  return result;
}

}  // namespace convbridge::engine_detail
