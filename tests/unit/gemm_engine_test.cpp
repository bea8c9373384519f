// The GEMM engine (ConvAlgorithm::gemm, src/engine/gemm_conv.cpp) against the naive loops (ConvAlgorithm::naive),
// which read as the definition of each convolution, on seeded random configurations: forward and transposed,
// ranks 1-3, groups (depthwise included), stride, dilation, per-side padding in every fill, with and without bias,
// in PyTorch's layout (reference_torch_conv) and TF's (run_tf_plan on the planner's plan).
//
// Both compute the same sums of products in float64 and differ only in the order of the additions, so they agree
// to a few units of round-off of the magnitudes summed: |gemm - naive| <= 1e-12 * sum |x * w| (+ |bias|) for each
// output, the sum itself computed by the naive engine on |x|, |w| and |bias|.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "convbridge/checked_math.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/planner.hpp"
#include "engine/conv_kernels.hpp"

namespace convbridge {
namespace {

constexpr double kRelativeTolerance = 1e-12;

int64_t pick(std::mt19937_64& rng, int64_t low, int64_t high) {
  return std::uniform_int_distribution<int64_t>(low, high)(rng);
}

Tensor random_tensor(std::vector<int64_t> shape, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  Tensor t{std::move(shape), {}};
  t.data.resize(static_cast<size_t>(*checked_product(t.shape)));
  for (double& v : t.data) v = uniform(rng);
  return t;
}

Tensor absolute(Tensor t) {
  for (double& v : t.data) v = std::abs(v);
  return t;
}

struct Case {
  ConvSpec spec;
  std::vector<int64_t> input_shape;  // PyTorch layout
};

// A configuration PyTorch accepts, drawn until one is: small channel counts (so a case runs in microseconds) but
// every kind of geometry, including depthwise (one input channel per group) and asymmetric padding.
Case random_case(std::mt19937_64& rng) {
  for (;;) {
    Case c;
    ConvSpec& s = c.spec;
    s.rank = static_cast<int>(pick(rng, 1, 3));
    s.transposed = pick(rng, 0, 2) == 0;
    s.groups = std::array<int64_t, 5>{1, 1, 2, 3, 4}[static_cast<size_t>(pick(rng, 0, 4))];
    const bool one_input_per_group = pick(rng, 0, 3) == 0;
    s.in_channels = s.groups * (one_input_per_group ? 1 : pick(rng, 1, 4));
    s.out_channels = s.groups * pick(rng, 1, 3);
    s.bias = pick(rng, 0, 1) == 1;
    s.fill = s.transposed ? PaddingFill::zeros
                          : std::array<PaddingFill, 5>{PaddingFill::zeros, PaddingFill::zeros, PaddingFill::reflect,
                                                       PaddingFill::replicate,
                                                       PaddingFill::circular}[static_cast<size_t>(pick(rng, 0, 4))];
    c.input_shape = {pick(rng, 1, 2), s.in_channels};
    for (int a = 0; a < s.rank; ++a) {
      s.kernel.push_back(pick(rng, 1, s.rank == 3 ? 3 : 4));
      s.stride.push_back(pick(rng, 1, 3));
      s.dilation.push_back(pick(rng, 1, 3));
      if (s.transposed) {
        const int64_t pad = pick(rng, 0, 2);
        s.padding.push_back({pad, pad});
        s.output_padding.push_back(pick(rng, 0, std::max(s.stride.back(), s.dilation.back()) - 1));
      } else {
        s.padding.push_back({pick(rng, 0, 3), pick(rng, 0, 3)});
      }
      c.input_shape.push_back(pick(rng, 1, s.rank == 3 ? 6 : 11));
    }
    if (validate(s) && torch_conv_output_shape(s, c.input_shape)) return c;
  }
}

std::string describe(const Case& c) {
  const ConvSpec& s = c.spec;
  std::string text = torch_class_name(s) + "(in=" + std::to_string(s.in_channels) +
                     ", out=" + std::to_string(s.out_channels) + ", groups=" + std::to_string(s.groups) +
                     ", fill=" + std::string(padding_fill_name(s.fill)) + ", bias=" + (s.bias ? "1" : "0");
  for (int a = 0; a < s.rank; ++a) {
    const size_t i = static_cast<size_t>(a);
    text += std::string(", ") + spatial_letters(s.rank)[i] + ": k" + std::to_string(s.kernel[i]) + " s" + std::to_string(s.stride[i]) + " d" +
            std::to_string(s.dilation[i]) + " p(" + std::to_string(s.padding[i].before) + "," +
            std::to_string(s.padding[i].after) + ")";
    if (s.transposed) text += " op" + std::to_string(s.output_padding[i]);
  }
  text += ") input (";
  for (int64_t v : c.input_shape) text += std::to_string(v) + ",";
  return text + ")";
}

// gemm within round-off of naive, element by element; `scale` holds each output's sum of |terms|.
void expect_agreement(const Tensor& gemm, const Tensor& naive, const Tensor& scale, const std::string& what) {
  ASSERT_EQ(gemm.shape, naive.shape) << what;
  ASSERT_EQ(gemm.data.size(), naive.data.size()) << what;
  for (size_t i = 0; i < naive.data.size(); ++i) {
    ASSERT_LE(std::abs(gemm.data[i] - naive.data[i]), kRelativeTolerance * scale.data[i])
        << what << ": element " << i << " gemm " << gemm.data[i] << " naive " << naive.data[i];
  }
}

TEST(GemmEngine, TorchSemanticsAgreeWithTheNaiveLoops) {
  std::mt19937_64 rng(20240615);
  for (int trial = 0; trial < 600; ++trial) {
    const Case c = random_case(rng);
    const Tensor input = random_tensor(c.input_shape, rng);
    const Tensor weight = random_tensor(torch_weight_shape(c.spec), rng);
    std::vector<double> bias;
    if (c.spec.bias) bias = random_tensor({c.spec.out_channels}, rng).data;
    std::vector<double> abs_bias = bias;
    for (double& v : abs_bias) v = std::abs(v);

    auto gemm = reference_torch_conv(c.spec, input, weight, bias, ConvAlgorithm::gemm);
    auto naive = reference_torch_conv(c.spec, input, weight, bias, ConvAlgorithm::naive);
    auto scale = reference_torch_conv(c.spec, absolute(input), absolute(weight), abs_bias, ConvAlgorithm::naive);
    ASSERT_TRUE(gemm && naive && scale) << describe(c);
    expect_agreement(*gemm, *naive, *scale, describe(c));
  }
}

TEST(GemmEngine, TfPlansAgreeWithTheNaiveLoops) {
  // The planner's TF steps: explicit and SAME padding, pad steps in every fill, depthwise and grouped kernels,
  // subsampling, zero-dilated transposed kernels, in channels_last.
  std::mt19937_64 rng(7);
  int planned = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const Case c = random_case(rng);
    const TorchConvLayer layer{c.spec, torch_class_name(c.spec), "generated", "generated"};
    const bool sized = pick(rng, 0, 1) == 1;
    auto plan = plan_torch_to_tf(layer, sized ? std::optional(c.input_shape) : std::nullopt);
    if (!plan) continue;  // a configuration the planner refuses is the planner's test, not this one
    ++planned;
    const Tensor input = channels_first_to_last(random_tensor(c.input_shape, rng));
    const Tensor kernel = random_tensor(plan->kernel_layout.to_shape, rng);
    std::vector<double> bias;
    if (c.spec.bias) bias = random_tensor({c.spec.out_channels}, rng).data;
    std::vector<double> abs_bias = bias;
    for (double& v : abs_bias) v = std::abs(v);

    auto gemm = run_tf_plan(*plan, input, kernel, bias, ConvAlgorithm::gemm);
    auto naive = run_tf_plan(*plan, input, kernel, bias, ConvAlgorithm::naive);
    auto scale = run_tf_plan(*plan, absolute(input), absolute(kernel), abs_bias, ConvAlgorithm::naive);
    ASSERT_TRUE(gemm && naive && scale) << describe(c);
    expect_agreement(*gemm, *naive, *scale, describe(c) + " (TF plan)");
  }
  EXPECT_GT(planned, 300);
}

// The kernels with column buffers far smaller than one im2col row: tiles over positions and over K (forward) or
// over output rows (transposed) must add up to the untiled result.
TEST(GemmEngine, TiledColumnBuffersAddUpToTheWholeProduct) {
  using engine_detail::ConvGeometry;
  std::mt19937_64 rng(99);
  for (int trial = 0; trial < 200; ++trial) {
    const Case c = random_case(rng);
    if (c.spec.fill != PaddingFill::zeros) continue;  // the kernels read zero padding only
    const ConvSpec& s = c.spec;
    const Tensor input = random_tensor(c.input_shape, rng);
    const Tensor weight = random_tensor(torch_weight_shape(s), rng);
    auto expected = reference_torch_conv(s, input, weight, {}, ConvAlgorithm::naive);
    auto scale = reference_torch_conv(s, absolute(input), absolute(weight), {}, ConvAlgorithm::naive);
    ASSERT_TRUE(expected && scale);
    const auto k = engine_detail::promote(s.kernel, 1);
    const int64_t in_pg = s.in_channels / s.groups, out_pg = s.out_channels / s.groups;
    auto at = [&](int64_t a, int64_t b, int64_t kz, int64_t ky, int64_t kx) {
      const int64_t inner = s.transposed ? out_pg : in_pg;  // (O, I/G, *k) or (I, O/G, *k)
      return weight.data[static_cast<size_t>((((a * inner + b) * k[0] + kz) * k[1] + ky) * k[2] + kx)];
    };
    for (const bool channels_last : {false, true}) {
      ConvGeometry g;
      g.batch = c.input_shape[0];
      g.in_channels = s.in_channels;
      g.out_channels = s.out_channels;
      g.groups = s.groups;
      g.channels_last = channels_last;
      g.in_spatial = engine_detail::promote(std::span<const int64_t>(c.input_shape).subspan(2), 1);
      g.out_spatial = engine_detail::promote(std::span<const int64_t>(expected->shape).subspan(2), 1);
      g.kernel = k;
      g.stride = engine_detail::promote(s.stride, 1);
      g.dilation = engine_detail::promote(s.dilation, 1);
      std::vector<int64_t> before;
      for (const PadPair& p : s.padding) before.push_back(p.before);
      g.offset = engine_detail::promote(before, 0);
      const std::vector<double> packed = engine_detail::pack_weight(g, s.transposed, at);
      const Tensor x = channels_last ? channels_first_to_last(input) : input;
      for (const int64_t buffer : {int64_t{1}, int64_t{5}, int64_t{64}}) {
        Tensor y{channels_last ? channels_first_to_last(*expected).shape : expected->shape,
                 std::vector<double>(expected->data.size())};
        if (s.transposed) {
          engine_detail::gemm_transposed_conv(g, x.data, packed, {}, y.data, buffer);
        } else {
          engine_detail::gemm_forward_conv(g, x.data, packed, {}, y.data, buffer);
        }
        expect_agreement(channels_last ? channels_last_to_first(y) : y, *expected, *scale,
                         describe(c) + (channels_last ? " channels_last" : "") + " buffer " +
                             std::to_string(buffer));
      }
    }
  }
}

TEST(GemmEngine, PaddingByRowsEqualsThePaddingDefinition) {
  // Every fill, both channel positions, pads as large as each fill allows: bit-identical copies.
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    const int rank = static_cast<int>(pick(rng, 1, 3));
    const bool channels_last = pick(rng, 0, 1) == 1;
    const PaddingFill fill = std::array<PaddingFill, 4>{PaddingFill::zeros, PaddingFill::reflect,
                                                        PaddingFill::replicate,
                                                        PaddingFill::circular}[static_cast<size_t>(pick(rng, 0, 3))];
    std::vector<int64_t> shape{pick(rng, 1, 2)};
    if (!channels_last) shape.push_back(pick(rng, 1, 3));
    std::vector<PadPair> pads;
    for (int a = 0; a < rank; ++a) {
      const int64_t size = pick(rng, 1, 7);
      shape.push_back(size);
      const int64_t most = fill == PaddingFill::reflect ? size - 1 : fill == PaddingFill::circular ? size : 4;
      pads.push_back({pick(rng, 0, most), pick(rng, 0, most)});
    }
    if (channels_last) shape.push_back(pick(rng, 1, 3));
    const Tensor input = random_tensor(shape, rng);
    // The naive padding is the one reference_torch_conv(naive) uses; reach it through a 1x1 identity conv.
    ConvSpec spec;
    spec.rank = rank;
    spec.kernel.assign(static_cast<size_t>(rank), 1);
    spec.stride.assign(static_cast<size_t>(rank), 1);
    spec.dilation.assign(static_cast<size_t>(rank), 1);
    spec.padding = pads;
    spec.fill = fill;
    spec.bias = false;
    const Tensor channels_first = channels_last ? channels_last_to_first(input) : input;
    spec.in_channels = spec.out_channels = spec.groups = channels_first.shape[1];
    const Tensor identity{torch_weight_shape(spec), std::vector<double>(static_cast<size_t>(spec.out_channels), 1.0)};
    auto expected = reference_torch_conv(spec, channels_first, identity, {}, ConvAlgorithm::naive);
    ASSERT_TRUE(expected) << expected.error().message;
    const Tensor padded = engine_detail::pad_spatial_by_rows(input, rank, channels_last, pads, fill);
    EXPECT_EQ((channels_last ? channels_last_to_first(padded) : padded).data, expected->data);
  }
}

}  // namespace
}  // namespace convbridge
