// Naive convolution loops, one place for each semantic, written for obviousness, and the step runners that use
// them or the GEMM kernels (gemm_conv.cpp) that compute the same sums fast. Every tensor is seen as 5-D
// (N, C, D, H, W) with missing spatial dims of size 1, in either channel position, so one loop serves ranks 1-3.
#include <fmt/format.h>

#include <array>

#include "convbridge/checked_math.hpp"
#include "convbridge/engine.hpp"
#include "engine/conv_kernels.hpp"

namespace convbridge {
namespace {

using engine_detail::ConvGeometry;
using engine_detail::Dims3;
using engine_detail::padded_source;
using engine_detail::promote;
using engine_detail::View5;

Tensor pad_spatial(const Tensor& input, int rank, bool channels_last, const std::vector<PadPair>& pads,
                   PaddingFill fill) {
  const View5 in = View5::of(input.shape, channels_last);
  const auto padded = [&] {
    std::vector<PadPair> p3(3 - static_cast<size_t>(rank), PadPair{});
    p3.insert(p3.end(), pads.begin(), pads.end());
    return p3;
  }();
  View5 out = in;
  for (size_t a = 0; a < 3; ++a) out.spatial[a] = in.spatial[a] + padded[a].before + padded[a].after;
  Tensor result{out.shape(rank), std::vector<double>(static_cast<size_t>(out.size()), 0.0)};
  for (int64_t n = 0; n < out.batch; ++n)
    for (int64_t c = 0; c < out.channels; ++c)
      for (int64_t z = 0; z < out.spatial[0]; ++z)
        for (int64_t y = 0; y < out.spatial[1]; ++y)
          for (int64_t x = 0; x < out.spatial[2]; ++x) {
            const int64_t sz = padded_source(z, in.spatial[0], padded[0].before, fill);
            const int64_t sy = padded_source(y, in.spatial[1], padded[1].before, fill);
            const int64_t sx = padded_source(x, in.spatial[2], padded[2].before, fill);
            if (sz < 0 || sy < 0 || sx < 0) continue;
            result.data[static_cast<size_t>(out.at(n, c, z, y, x))] =
                input.data[static_cast<size_t>(in.at(n, c, sz, sy, sx))];
          }
  return result;
}

// An unpadded ('valid') strided, dilated, grouped cross-correlation. weight_at(o, i, kz, ky, kx) reads the weight
// of output channel o and input channel i within o's group, whatever the framework's kernel layout.
template <class WeightAt>
Tensor valid_conv(const Tensor& input, int rank, bool channels_last, int64_t out_channels, int64_t groups,
                  const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                  const std::vector<int64_t>& dilation, WeightAt weight_at, std::span<const double> bias) {
  const View5 in = View5::of(input.shape, channels_last);
  const Dims3 k = promote(kernel, 1), s = promote(stride, 1), d = promote(dilation, 1);
  View5 out = in;
  out.channels = out_channels;
  for (size_t a = 0; a < 3; ++a) out.spatial[a] = (in.spatial[a] - ((k[a] - 1) * d[a] + 1)) / s[a] + 1;
  Tensor result{out.shape(rank), std::vector<double>(static_cast<size_t>(out.size()), 0.0)};
  const int64_t in_per_group = in.channels / groups, out_per_group = out_channels / groups;
  for (int64_t n = 0; n < out.batch; ++n)
    for (int64_t o = 0; o < out_channels; ++o) {
      const int64_t group = o / out_per_group;
      for (int64_t z = 0; z < out.spatial[0]; ++z)
        for (int64_t y = 0; y < out.spatial[1]; ++y)
          for (int64_t x = 0; x < out.spatial[2]; ++x) {
            double sum = bias.empty() ? 0.0 : bias[static_cast<size_t>(o)];
            for (int64_t i = 0; i < in_per_group; ++i)
              for (int64_t kz = 0; kz < k[0]; ++kz)
                for (int64_t ky = 0; ky < k[1]; ++ky)
                  for (int64_t kx = 0; kx < k[2]; ++kx) {
                    const double value = input.data[static_cast<size_t>(
                        in.at(n, group * in_per_group + i, z * s[0] + kz * d[0], y * s[1] + ky * d[1],
                              x * s[2] + kx * d[2]))];
                    sum += value * weight_at(o, i, kz, ky, kx);
                  }
            result.data[static_cast<size_t>(out.at(n, o, z, y, x))] = sum;
          }
    }
  return result;
}

// A transposed convolution as a scatter: input position i with kernel tap k adds to output i*s + k*d - crop, when
// that lies inside `out_spatial`; every output starts at its bias. weight_at(i, o, kz, ky, kx) reads the weight
// from global input channel i to output channel o within i's group.
template <class WeightAt>
Tensor transposed_scatter(const Tensor& input, int rank, bool channels_last, int64_t out_channels, int64_t groups,
                          const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                          const std::vector<int64_t>& dilation, Dims3 out_spatial, Dims3 crop, WeightAt weight_at,
                          std::span<const double> bias) {
  const View5 in = View5::of(input.shape, channels_last);
  const Dims3 k = promote(kernel, 1), s = promote(stride, 1), d = promote(dilation, 1);
  View5 out = in;
  out.channels = out_channels;
  out.spatial = out_spatial;
  Tensor result{out.shape(rank), std::vector<double>(static_cast<size_t>(out.size()), 0.0)};
  const int64_t in_per_group = in.channels / groups, out_per_group = out_channels / groups;
  if (!bias.empty()) {
    for (int64_t n = 0; n < out.batch; ++n)
      for (int64_t o = 0; o < out_channels; ++o)
        for (int64_t z = 0; z < out.spatial[0]; ++z)
          for (int64_t y = 0; y < out.spatial[1]; ++y)
            for (int64_t x = 0; x < out.spatial[2]; ++x)
              result.data[static_cast<size_t>(out.at(n, o, z, y, x))] = bias[static_cast<size_t>(o)];
  }
  for (int64_t n = 0; n < in.batch; ++n)
    for (int64_t i = 0; i < in.channels; ++i) {
      const int64_t group = i / in_per_group;
      for (int64_t z = 0; z < in.spatial[0]; ++z)
        for (int64_t y = 0; y < in.spatial[1]; ++y)
          for (int64_t x = 0; x < in.spatial[2]; ++x) {
            const double value = input.data[static_cast<size_t>(in.at(n, i, z, y, x))];
            for (int64_t o = 0; o < out_per_group; ++o)
              for (int64_t kz = 0; kz < k[0]; ++kz)
                for (int64_t ky = 0; ky < k[1]; ++ky)
                  for (int64_t kx = 0; kx < k[2]; ++kx) {
                    const int64_t oz = z * s[0] + kz * d[0] - crop[0];
                    const int64_t oy = y * s[1] + ky * d[1] - crop[1];
                    const int64_t ox = x * s[2] + kx * d[2] - crop[2];
                    if (oz < 0 || oy < 0 || ox < 0 || oz >= out.spatial[0] || oy >= out.spatial[1] ||
                        ox >= out.spatial[2]) {
                      continue;
                    }
                    result.data[static_cast<size_t>(out.at(n, group * out_per_group + o, oz, oy, ox))] +=
                        value * weight_at(i, o, kz, ky, kx);
                  }
          }
    }
  return result;
}

// Materialised padding: the naive element loop, or the same values copied row by row.
Tensor materialise_padding(ConvAlgorithm algorithm, const Tensor& input, int rank, bool channels_last,
                           const std::vector<PadPair>& pads, PaddingFill fill) {
  if (algorithm == ConvAlgorithm::naive) return pad_spatial(input, rank, channels_last, pads, fill);
  return engine_detail::pad_spatial_by_rows(input, rank, channels_last, pads, fill);
}

ConvGeometry geometry_of(const View5& in, int64_t out_channels, int64_t groups, const std::vector<int64_t>& kernel,
                         const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation) {
  ConvGeometry g;
  g.batch = in.batch;
  g.in_channels = in.channels;
  g.out_channels = out_channels;
  g.groups = groups;
  g.in_spatial = in.spatial;
  g.kernel = promote(kernel, 1);
  g.stride = promote(stride, 1);
  g.dilation = promote(dilation, 1);
  g.channels_last = in.channels_last;
  return g;
}

// A zero-padded, strided, dilated, grouped cross-correlation (`zero_pads` per spatial axis): the naive loop on the
// materialised padding, or the GEMM kernel, which reads the padding as zeros without materialising it.
// `already_packed`: the weight itself when its framework layout is the GEMM kernel's packed one (pack_weight), so
// that it is read in place; empty otherwise.
template <class WeightAt>
Tensor padded_conv(ConvAlgorithm algorithm, const Tensor& input, int rank, bool channels_last,
                   const std::vector<PadPair>& zero_pads, int64_t out_channels, int64_t groups,
                   const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                   const std::vector<int64_t>& dilation, WeightAt weight_at, std::span<const double> bias,
                   std::span<const double> already_packed = {}) {
  if (algorithm == ConvAlgorithm::gemm) {
    const View5 in = View5::of(input.shape, channels_last);
    ConvGeometry g = geometry_of(in, out_channels, groups, kernel, stride, dilation);
    for (size_t a = 0; a < 3; ++a) {
      const PadPair pads = a + zero_pads.size() >= 3 ? zero_pads[a + zero_pads.size() - 3] : PadPair{};
      g.offset[a] = pads.before;
      const int64_t extent = (g.kernel[a] - 1) * g.dilation[a] + 1;
      g.out_spatial[a] = (in.spatial[a] + pads.before + pads.after - extent) / g.stride[a] + 1;
    }
    if (engine_detail::fits_blas(g)) {
      View5 out = in;
      out.channels = out_channels;
      out.spatial = g.out_spatial;
      Tensor result{out.shape(rank), std::vector<double>(static_cast<size_t>(out.size()))};
      std::vector<double> packed;
      if (already_packed.empty()) packed = engine_detail::pack_weight(g, false, weight_at);
      engine_detail::gemm_forward_conv(g, input.data, already_packed.empty() ? packed : already_packed, bias,
                                       result.data);
      return result;
    }
    // Dimensions past BLAS's 32-bit integers (far over any verification budget) take the loops below.
  }
  return valid_conv(pad_spatial(input, rank, channels_last, zero_pads, PaddingFill::zeros), rank, channels_last,
                    out_channels, groups, kernel, stride, dilation, weight_at, bias);
}

// A transposed convolution (transposed_scatter's semantics): the naive scatter, or im2col's inverse on GEMM.
template <class WeightAt>
Tensor transposed_conv(ConvAlgorithm algorithm, const Tensor& input, int rank, bool channels_last,
                       int64_t out_channels, int64_t groups, const std::vector<int64_t>& kernel,
                       const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation, Dims3 out_spatial,
                       Dims3 crop, WeightAt weight_at, std::span<const double> bias) {
  if (algorithm == ConvAlgorithm::gemm) {
    const View5 in = View5::of(input.shape, channels_last);
    ConvGeometry g = geometry_of(in, out_channels, groups, kernel, stride, dilation);
    g.out_spatial = out_spatial;
    g.offset = crop;
    if (engine_detail::fits_blas(g)) {
      View5 out = in;
      out.channels = out_channels;
      out.spatial = out_spatial;
      Tensor result{out.shape(rank), std::vector<double>(static_cast<size_t>(out.size()))};
      engine_detail::gemm_transposed_conv(g, input.data, engine_detail::pack_weight(g, true, weight_at), bias,
                                          result.data);
      return result;
    }
  }
  return transposed_scatter(input, rank, channels_last, out_channels, groups, kernel, stride, dilation, out_spatial,
                            crop, weight_at, bias);
}

Status check_size(const Tensor& t, std::string_view what) {
  auto count = checked_product(t.shape);
  if (!count || static_cast<size_t>(*count) != t.data.size()) {
    return make_error(ErrorCode::invalid_argument, fmt::format("{} has {} values for its shape", what, t.data.size()));
  }
  return Ok{};
}

Status check_shape(const Tensor& t, const std::vector<int64_t>& expected, std::string_view what) {
  CONVBRIDGE_CHECK(check_size(t, what));
  if (t.shape != expected) {
    return make_error(ErrorCode::invalid_argument, fmt::format("{} has the wrong shape", what));
  }
  return Ok{};
}

struct TfStepRunner {
  int rank;
  ConvAlgorithm algorithm;
  std::span<const Tensor> kernels;  // indexed by the steps' `weight`
  std::span<const double> bias;
  Tensor& x;  // channels_last activations, updated in place

  Status operator()(const PadStep& step) const {
    x = materialise_padding(algorithm, x, rank, true, step.pads, step.fill);
    return Ok{};
  }

  Status operator()(const ConvStep& step) const {
    const View5 in = View5::of(x.shape, true);
    std::vector<PadPair> pads(static_cast<size_t>(step.rank));
    for (size_t a = 0; a < pads.size(); ++a) {
      const int64_t size = in.spatial[3 - pads.size() + a];
      if (step.padding == TfPadding::same) {
        CONVBRIDGE_TRY(pads[a], tf_same_padding(size, step.kernel[a], step.strides[a], step.dilation[a]));
      } else if (step.padding == TfPadding::explicit_pads) {
        pads[a] = step.explicit_pads[a];
      }
      // TF accepts an empty output (VALID with size < eff gives 0); PyTorch never plans one, so refuse it here.
      CONVBRIDGE_TRY(int64_t out, tf_conv_output_size(size + pads[a].before + pads[a].after, step.kernel[a],
                                                      step.strides[a], step.dilation[a], TfPadding::valid));
      if (out == 0) return make_error(ErrorCode::input_shape, "the TF convolution would produce an empty output");
    }
    const Tensor& kernel = kernels[static_cast<size_t>(step.weight)];
    const Dims3 k = promote(step.kernel, 1);
    if (step.kind == TfConvKind::depthwise) {
      // kernel (*k, C, M); output channel o = c*M + m.
      const int64_t c_count = step.in_channels, m_count = step.depth_multiplier;
      auto at = [&](int64_t o, int64_t, int64_t kz, int64_t ky, int64_t kx) {
        return kernel.data[static_cast<size_t>((((kz * k[1] + ky) * k[2] + kx) * c_count + o / m_count) * m_count +
                                               o % m_count)];
      };
      x = padded_conv(algorithm, x, step.rank, true, pads, step.out_channels, step.in_channels, step.kernel,
                      step.strides, step.dilation, at, step.use_bias ? bias : std::span<const double>{});
    } else {
      // kernel (*k, C_in/G, C_out).
      const int64_t in_per_group = step.in_channels / step.groups, o_count = step.out_channels;
      auto at = [&](int64_t o, int64_t i, int64_t kz, int64_t ky, int64_t kx) {
        return kernel.data[static_cast<size_t>((((kz * k[1] + ky) * k[2] + kx) * in_per_group + i) * o_count + o)];
      };
      // With one group TF's (*k, C_in, C_out) is the packed channels_last layout.
      x = padded_conv(algorithm, x, step.rank, true, pads, step.out_channels, step.groups, step.kernel,
                      step.strides, step.dilation, at, step.use_bias ? bias : std::span<const double>{},
                      step.groups == 1 ? std::span<const double>(kernel.data) : std::span<const double>{});
    }
    return Ok{};
  }

  Status operator()(const TransposedConvStep& step) const {
    const View5 in = View5::of(x.shape, true);
    Dims3 out_spatial{1, 1, 1}, crop{0, 0, 0};
    for (size_t a = 0; a < step.kernel.size(); ++a) {
      const size_t axis = 3 - step.kernel.size() + a;
      const bool explicit_pads = step.padding == TfPadding::explicit_pads;
      CONVBRIDGE_TRY(TransposedWindow window,
                     tf_conv_transpose_window(in.spatial[axis], step.kernel[a], step.strides[a], step.padding,
                                              explicit_pads ? step.pads[a] : PadPair{},
                                              explicit_pads ? step.extra[a] : 0));
      out_spatial[axis] = window.size;
      crop[axis] = window.crop_before;
    }
    // kernel (*k, C_out/G, C_in), already zero-dilated: TF dilation 1.
    const Tensor& kernel = kernels[static_cast<size_t>(step.weight)];
    const Dims3 k = promote(step.kernel, 1);
    const int64_t out_per_group = step.out_channels / step.groups, i_count = step.in_channels;
    auto at = [&](int64_t i, int64_t o, int64_t kz, int64_t ky, int64_t kx) {
      return kernel.data[static_cast<size_t>((((kz * k[1] + ky) * k[2] + kx) * out_per_group + o) * i_count + i)];
    };
    x = transposed_conv(algorithm, x, step.rank, true, step.out_channels, step.groups, step.kernel, step.strides,
                        std::vector<int64_t>(step.kernel.size(), 1), out_spatial, crop, at,
                        step.use_bias ? bias : std::span<const double>{});
    return Ok{};
  }

  Status operator()(const SubsampleStep& step) const {
    const View5 in = View5::of(x.shape, true);
    const Dims3 s = promote(step.strides, 1);
    View5 out = in;
    for (size_t a = 0; a < 3; ++a) out.spatial[a] = subsample_size(in.spatial[a], s[a]);
    Tensor result{out.shape(rank), std::vector<double>(static_cast<size_t>(out.size()))};
    for (int64_t n = 0; n < out.batch; ++n)
      for (int64_t z = 0; z < out.spatial[0]; ++z)
        for (int64_t y = 0; y < out.spatial[1]; ++y)
          for (int64_t xx = 0; xx < out.spatial[2]; ++xx)
            for (int64_t c = 0; c < out.channels; ++c)
              result.data[static_cast<size_t>(out.at(n, c, z, y, xx))] =
                  x.data[static_cast<size_t>(in.at(n, c, z * s[0], y * s[1], xx * s[2]))];
    x = std::move(result);
    return Ok{};
  }
};

}  // namespace

Result<Tensor> reference_torch_conv(const ConvSpec& spec, const Tensor& input, const Tensor& weight,
                                    std::span<const double> bias, ConvAlgorithm algorithm) {
  CONVBRIDGE_CHECK(validate(spec));
  CONVBRIDGE_TRY(std::vector<int64_t> out_shape, torch_conv_output_shape(spec, input.shape));
  CONVBRIDGE_CHECK(check_size(input, "input"));
  CONVBRIDGE_CHECK(check_shape(weight, torch_weight_shape(spec), "weight"));
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != spec.out_channels) {
    return make_error(ErrorCode::invalid_argument, "bias must have out_channels values");
  }
  if (spec.transposed) {
    // weight (I, O/G, *k); y[x] = z[x + padding] (conv_transpose semantics, ConvUtils.h).
    const Dims3 k = promote(spec.kernel, 1);
    const int64_t out_per_group = spec.out_channels / spec.groups;
    auto at = [&](int64_t i, int64_t o, int64_t kz, int64_t ky, int64_t kx) {
      return weight.data[static_cast<size_t>((((i * out_per_group + o) * k[0] + kz) * k[1] + ky) * k[2] + kx)];
    };
    std::vector<int64_t> spatial_out(out_shape.begin() + 2, out_shape.end());
    std::vector<int64_t> crop;
    for (const PadPair& p : spec.padding) crop.push_back(p.before);
    return transposed_conv(algorithm, input, spec.rank, false, spec.out_channels, spec.groups, spec.kernel,
                           spec.stride, spec.dilation, promote(spatial_out, 1), promote(crop, 0), at, bias);
  }
  // _ConvNd._conv_forward: F.pad with padding_mode, then an unpadded convolution (zeros pad the same way, and
  // padded_conv reads zero padding without materialising it).
  const bool zeros = spec.fill == PaddingFill::zeros;
  const Tensor padded =
      zeros ? Tensor{} : materialise_padding(algorithm, input, spec.rank, false, spec.padding, spec.fill);
  const Dims3 k = promote(spec.kernel, 1);
  const int64_t in_per_group = spec.in_channels / spec.groups;
  auto at = [&](int64_t o, int64_t i, int64_t kz, int64_t ky, int64_t kx) {  // weight (O, I/G, *k)
    return weight.data[static_cast<size_t>((((o * in_per_group + i) * k[0] + kz) * k[1] + ky) * k[2] + kx)];
  };
  Tensor out = padded_conv(algorithm, zeros ? input : padded, spec.rank, false,
                           zeros ? spec.padding : std::vector<PadPair>(spec.padding.size()), spec.out_channels,
                           spec.groups, spec.kernel, spec.stride, spec.dilation, at, bias,
                           weight.data);  // (O, I/G, *k) is the packed channels_first layout
  if (out.shape != out_shape) {
    return make_error(ErrorCode::unsupported, "internal error: the reference engine disagrees with the shape math");
  }
  return out;
}

Result<Tensor> run_tf_steps(std::span<const PlanStep> steps, int rank, const Tensor& input,
                            std::span<const Tensor> kernels, std::span<const double> bias, ConvAlgorithm algorithm) {
  CONVBRIDGE_CHECK(check_size(input, "input"));
  CONVBRIDGE_TRY(std::vector<int64_t> out_shape, tf_steps_output_shape(steps, input.shape));
  Tensor x = input;
  for (const PlanStep& step : steps) CONVBRIDGE_CHECK(std::visit(TfStepRunner{rank, algorithm, kernels, bias, x}, step.op));
  if (x.shape != out_shape) {
    return make_error(ErrorCode::unsupported, "internal error: the step runner disagrees with the shape rules");
  }
  return x;
}

Result<Tensor> run_tf_plan(const Plan& plan, const Tensor& input, const Tensor& kernel, std::span<const double> bias,
                           ConvAlgorithm algorithm) {
  CONVBRIDGE_CHECK(check_shape(kernel, plan.kernel_layout.to_shape, "kernel"));
  if (input.shape.size() != static_cast<size_t>(plan.source.rank) + 2) {
    return make_error(ErrorCode::input_shape, "the input does not have the layer's rank");
  }
  return run_tf_steps(plan.steps, plan.source.rank, input, std::span<const Tensor>(&kernel, 1), bias, algorithm);
}

Result<Tensor> run_torch_plan(const TorchPlan& plan, const Tensor& input, std::span<const Tensor> keras_weights,
                              std::span<const double> bias, ConvAlgorithm algorithm) {
  CONVBRIDGE_CHECK(check_size(input, "input"));
  if (keras_weights.size() != plan.weight_shapes.size()) {
    return make_error(ErrorCode::invalid_argument, "wrong number of weights");
  }
  Tensor x = input;  // (N, C, *spatial)
  const int rank = plan.source.rank;
  for (const TorchPlanStep& step : plan.steps) {
    if (const auto* pad = std::get_if<TorchPadStep>(&step.op)) {
      std::vector<PadPair> pads = pad->pads;
      // TF's 'same' pads for this input. TFSamePad pads the same, except that where the kernel extent is below the
      // stride and TF needs no padding it crops the trailing elements no window reads: the conv output is equal.
      if (pad->tf_same_at_runtime) {
        pads.clear();
        for (size_t i = 0; i < static_cast<size_t>(rank); ++i) {
          CONVBRIDGE_TRY(PadPair p, tf_same_padding(x.shape[i + 2], pad->kernel_extent[i], pad->strides[i], 1));
          pads.push_back(p);
        }
      }
      x = materialise_padding(algorithm, x, rank, false, pads, PaddingFill::zeros);
    } else if (const auto* conv = std::get_if<TorchConvStep>(&step.op)) {
      const Tensor& keras = keras_weights[static_cast<size_t>(conv->weight)];
      CONVBRIDGE_CHECK(check_shape(keras, conv->layout.from_shape, "weight"));
      const Tensor weight{conv->layout.to_shape, apply_layout_change<double>(conv->layout, keras.data)};
      const std::span<const double> conv_bias = conv->takes_bias ? bias : std::span<const double>{};
      CONVBRIDGE_TRY(x, reference_torch_conv(conv->spec, x, weight, conv_bias, algorithm));
    } else if (const auto* crop = std::get_if<TorchCropStep>(&step.op)) {
      View5 in = View5::of(x.shape, false);
      View5 out = in;
      const Dims3 ends = promote(crop->crop_end, 0);
      for (size_t a = 0; a < 3; ++a) out.spatial[a] -= ends[a];
      Tensor result{out.shape(rank), std::vector<double>(static_cast<size_t>(out.size()))};
      for (int64_t n = 0; n < out.batch; ++n)
        for (int64_t c = 0; c < out.channels; ++c)
          for (int64_t z = 0; z < out.spatial[0]; ++z)
            for (int64_t y = 0; y < out.spatial[1]; ++y)
              for (int64_t xx = 0; xx < out.spatial[2]; ++xx)
                result.data[static_cast<size_t>(out.at(n, c, z, y, xx))] =
                    x.data[static_cast<size_t>(in.at(n, c, z, y, xx))];
      x = std::move(result);
    } else if (const auto* activation = std::get_if<TorchActivationStep>(&step.op)) {
      apply_activation(activation->activation, x, /*channels_last=*/false);
    }
  }
  return x;
}

Tensor channels_last_to_first(const Tensor& tensor) {
  std::vector<int> permutation{0, static_cast<int>(tensor.shape.size()) - 1};
  for (int i = 1; i + 1 < static_cast<int>(tensor.shape.size()); ++i) permutation.push_back(i);
  Tensor out;
  for (int axis : permutation) out.shape.push_back(tensor.shape[static_cast<size_t>(axis)]);
  out.data = transpose<double>(tensor.data, tensor.shape, permutation);
  return out;
}

Tensor channels_first_to_last(const Tensor& tensor) {
  std::vector<int> permutation{0};
  for (int i = 2; i < static_cast<int>(tensor.shape.size()); ++i) permutation.push_back(i);
  permutation.push_back(1);
  Tensor out;
  for (int axis : permutation) out.shape.push_back(tensor.shape[static_cast<size_t>(axis)]);
  out.data = transpose<double>(tensor.data, tensor.shape, permutation);
  return out;
}

}  // namespace convbridge
