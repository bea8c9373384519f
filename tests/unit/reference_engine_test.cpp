// The reference engine against hand-computed small cases (no framework, no shared formula).
#include <gtest/gtest.h>

#include "convbridge/engine.hpp"
#include "convbridge/planner.hpp"

namespace convbridge {
namespace {

ConvSpec conv1d(int64_t k, int64_t s, int64_t d, PadPair pad, PaddingFill fill = PaddingFill::zeros) {
  ConvSpec spec;
  spec.rank = 1;
  spec.kernel = {k};
  spec.stride = {s};
  spec.dilation = {d};
  spec.padding = {pad};
  spec.fill = fill;
  spec.bias = false;
  return spec;
}

std::vector<double> run_torch(const ConvSpec& spec, std::vector<double> x, std::vector<double> w,
                              std::vector<double> bias = {}) {
  const Tensor input{{1, 1, static_cast<int64_t>(x.size())}, std::move(x)};
  const Tensor weight{{1, 1, static_cast<int64_t>(w.size())}, std::move(w)};
  auto out = reference_torch_conv(spec, input, weight, bias);
  EXPECT_TRUE(out) << (out ? "" : out.error().message);
  return out ? out->data : std::vector<double>{};
}

TEST(ReferenceTorch, ValidConv) {
  // [1,2,3,4] * [1,0,-1]: 1-3, 2-4
  EXPECT_EQ(run_torch(conv1d(3, 1, 1, {0, 0}), {1, 2, 3, 4}, {1, 0, -1}), (std::vector<double>{-2, -2}));
  ConvSpec with_bias = conv1d(3, 1, 1, {0, 0});
  with_bias.bias = true;
  EXPECT_EQ(run_torch(with_bias, {1, 2, 3, 4}, {1, 0, -1}, {0.5}), (std::vector<double>{-1.5, -1.5}));
}

// Trap 9: replicate is not SYMMETRIC. A 1-tap identity kernel shows the padded signal itself.
TEST(ReferenceTorch, Trap9PaddingModesOnOneToFour) {
  const std::vector<double> x{1, 2, 3, 4};
  EXPECT_EQ(run_torch(conv1d(1, 1, 1, {2, 2}, PaddingFill::replicate), x, {1}),
            (std::vector<double>{1, 1, 1, 2, 3, 4, 4, 4}));
  EXPECT_EQ(run_torch(conv1d(1, 1, 1, {2, 2}, PaddingFill::reflect), x, {1}),
            (std::vector<double>{3, 2, 1, 2, 3, 4, 3, 2}));
  EXPECT_EQ(run_torch(conv1d(1, 1, 1, {2, 2}, PaddingFill::circular), x, {1}),
            (std::vector<double>{3, 4, 1, 2, 3, 4, 1, 2}));
  EXPECT_EQ(run_torch(conv1d(1, 1, 1, {2, 1}, PaddingFill::zeros), x, {1}),
            (std::vector<double>{0, 0, 1, 2, 3, 4, 0}));
  // circular with pad == size wraps exactly once
  EXPECT_EQ(run_torch(conv1d(1, 1, 1, {4, 0}, PaddingFill::circular), x, {1}),
            (std::vector<double>{1, 2, 3, 4, 1, 2, 3, 4}));
}

TEST(ReferenceTorch, StrideAndDilation) {
  // x = 0..9, w = [1, 1] dilated by 2 (taps 0 and 2), stride 2: y[i] = x[2i] + x[2i+2], 4 outputs.
  std::vector<double> x(10);
  for (int i = 0; i < 10; ++i) x[static_cast<size_t>(i)] = i;
  EXPECT_EQ(run_torch(conv1d(2, 2, 2, {0, 0}), x, {1, 1}), (std::vector<double>{2, 6, 10, 14}));
}

TEST(ReferenceTorch, GroupsReadTheirOwnChannels) {
  // Conv1d(2, 4, 1, groups=2): out 0,1 read in 0; out 2,3 read in 1. weight (4, 1, 1) = [1, 2, 3, 4].
  ConvSpec spec = conv1d(1, 1, 1, {0, 0});
  spec.in_channels = 2;
  spec.out_channels = 4;
  spec.groups = 2;
  const Tensor input{{1, 2, 2}, {1, 2, 10, 20}};  // channel 0 = [1, 2], channel 1 = [10, 20]
  const Tensor weight{{4, 1, 1}, {1, 2, 3, 4}};
  auto out = reference_torch_conv(spec, input, weight, {});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->shape, (std::vector<int64_t>{1, 4, 2}));
  EXPECT_EQ(out->data, (std::vector<double>{1, 2, 2, 4, 30, 60, 40, 80}));
}

TEST(ReferenceTf, SameAtStride2PadsAfter) {
  // TF SAME, x = [1,2,3,4], k = 3 of ones, s = 2: out 2, need 1 -> pads (0, 1): [1+2+3, 3+4+0] = [6, 7].
  Plan plan;
  plan.source = conv1d(3, 2, 1, {1, 1});
  ConvStep conv;
  conv.rank = 1;
  conv.kernel = {3};
  conv.strides = {2};
  conv.dilation = {1};
  conv.padding = TfPadding::same;
  conv.use_bias = false;
  plan.steps.push_back({conv, ""});
  plan.kernel_layout.to_shape = {3, 1, 1};
  const Tensor input{{1, 4, 1}, {1, 2, 3, 4}};
  const Tensor kernel{{3, 1, 1}, {1, 1, 1}};
  auto out = run_tf_plan(plan, input, kernel, {});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->data, (std::vector<double>{6, 7}));
  // PyTorch padding=1 on the same data gives [0+1+2, 2+3+4] = [3, 9]: same shape, shifted windows (trap 1).
  EXPECT_EQ(run_torch(conv1d(3, 2, 1, {1, 1}), {1, 2, 3, 4}, {1, 1, 1}), (std::vector<double>{3, 9}));
}

TEST(ReferenceTf, DepthwiseKernelLayout) {
  // DepthwiseConv1D, C=2, M=2, k=1, kernel (1, C, M) = [[a, b], [c, d]]: out channel c*M+m = x[c] * k[c][m].
  Plan plan;
  plan.source = conv1d(1, 1, 1, {0, 0});
  ConvStep conv;
  conv.kind = TfConvKind::depthwise;
  conv.rank = 1;
  conv.in_channels = 2;
  conv.out_channels = 4;
  conv.depth_multiplier = 2;
  conv.kernel = {1};
  conv.strides = {1};
  conv.dilation = {1};
  conv.use_bias = false;
  plan.steps.push_back({conv, ""});
  plan.kernel_layout.to_shape = {1, 2, 2};
  const Tensor input{{1, 1, 2}, {10, 100}};  // channels_last (N, W, C)
  const Tensor kernel{{1, 2, 2}, {1, 2, 3, 4}};
  auto out = run_tf_plan(plan, input, kernel, {});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->data, (std::vector<double>{10, 20, 300, 400}));
}

TEST(ReferenceTf, SubsampleKeepsEveryStrideth) {
  Plan plan;
  plan.source = conv1d(1, 1, 1, {0, 0});
  plan.steps.push_back({SubsampleStep{{3}}, ""});
  plan.kernel_layout.to_shape = {1, 1, 1};
  const Tensor input{{1, 7, 1}, {0, 1, 2, 3, 4, 5, 6}};
  auto out = run_tf_plan(plan, input, Tensor{{1, 1, 1}, {1}}, {});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->data, (std::vector<double>{0, 3, 6}));
}

TEST(ReferenceTorch, TransposedScatterCropsAndAddsBiasEverywhere) {
  // ConvTranspose1d(1, 1, 2, stride=2, padding=1, output_padding=1), x = [1, 2], w = [10, 1], bias 0.5.
  // Full z (L = 4): [10, 1, 20, 2]; y[x] = z[x + 1] for out = 4 - 2 + 1 = 3: [1, 20, 2]; + bias.
  ConvSpec spec = conv1d(2, 2, 1, {1, 1});
  spec.transposed = true;
  spec.output_padding = {1};
  spec.bias = true;
  EXPECT_EQ(run_torch(spec, {1, 2}, {10, 1}, {0.5}), (std::vector<double>{1.5, 20.5, 2.5}));
  // padding 0, output_padding 1: the last output lies past L and holds only the bias (trap 6).
  spec.padding = {{0, 0}};
  EXPECT_EQ(run_torch(spec, {1, 2}, {10, 1}, {0.5}), (std::vector<double>{10.5, 1.5, 20.5, 2.5, 0.5}));
}

TEST(Verification, ReportsPassOnSeveralSizes) {
  auto layer = parse_pytorch_layer("nn.Conv2d(3, 4, 3, stride=2, padding=1)");
  ASSERT_TRUE(layer);
  auto plan = plan_torch_to_tf(*layer, std::nullopt);
  ASSERT_TRUE(plan);
  auto report = verify_plan(*plan, 0);
  ASSERT_TRUE(report);
  EXPECT_GE(report->cases.size(), 3u);
  EXPECT_TRUE(report->passed());
}

TEST(Verification, CatchesAWrongPlan) {
  // Replace PyTorch's explicit (1, 1) by TF 'same' at an even size: the engine must report a difference.
  auto layer = parse_pytorch_layer("nn.Conv2d(3, 4, 3, stride=2, padding=1)");
  ASSERT_TRUE(layer);
  auto plan = plan_torch_to_tf(*layer, std::vector<int64_t>{1, 3, 8, 8});
  ASSERT_TRUE(plan);
  std::get<ConvStep>(plan->steps.back().op).padding = TfPadding::same;
  auto report = verify_plan(*plan, 0);
  ASSERT_TRUE(report);
  EXPECT_FALSE(report->passed());
  EXPECT_GT(report->cases.front().max_abs_diff, 1e-3);
}

TEST(Verification, SkipsWorkOverTheBudget) {
  auto layer = parse_pytorch_layer("nn.Conv2d(512, 512, 3, padding=1)");
  ASSERT_TRUE(layer);
  auto plan = plan_torch_to_tf(*layer, std::vector<int64_t>{8, 512, 512, 512});
  ASSERT_TRUE(plan);
  auto report = verify_plan(*plan, 0);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->cases.empty());
  EXPECT_NE(report->skipped_reason.find("budget"), std::string::npos);
}

}  // namespace
}  // namespace convbridge
