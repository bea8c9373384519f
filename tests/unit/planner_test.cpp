// Planner cases: which TF construct each PyTorch configuration becomes, and for which input sizes it is exact.
#include <gtest/gtest.h>

#include "convbridge/engine.hpp"
#include "convbridge/emit.hpp"
#include "convbridge/planner.hpp"
#include "plan_for.hpp"

namespace convbridge {
namespace {

using testing::plan_for;

const ConvStep& conv_of(const Plan& plan) {
  for (const PlanStep& step : plan.steps) {
    if (const auto* conv = std::get_if<ConvStep>(&step.op)) return *conv;
  }
  ADD_FAILURE() << "plan has no conv step";
  static ConvStep none;
  return none;
}

void expect_verified(const Plan& plan) {
  auto report = verify_plan(plan, 7);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->passed()) << plan.source_text;
}

TEST(Planner, NoPaddingIsValid) {
  const Plan plan = plan_for("nn.Conv2d(3, 16, 3)");
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(conv_of(plan).padding, TfPadding::valid);
  EXPECT_TRUE(plan.exact_for_every_input_size);
  expect_verified(plan);
}

TEST(Planner, SameAtStride1IsTfSameForEverySize) {
  for (const char* text : {"nn.Conv2d(3, 16, 3, padding='same')", "nn.Conv2d(3, 16, 4, padding='same')",
                           "nn.Conv2d(3, 16, 3, padding=1)"}) {
    const Plan plan = plan_for(text);
    EXPECT_EQ(conv_of(plan).padding, TfPadding::same) << text;
    EXPECT_TRUE(plan.exact_for_every_input_size) << text;
    expect_verified(plan);
  }
}

// Trap 2: padding=k//2 with an even kernel is not 'same' (in+1 outputs): explicit padding.
TEST(Planner, Trap2EvenKernelHalfPaddingIsExplicit) {
  const Plan plan = plan_for("nn.Conv2d(3, 16, 4, padding=2)");
  EXPECT_EQ(conv_of(plan).padding, TfPadding::explicit_pads);
  EXPECT_EQ(conv_of(plan).explicit_pads, (std::vector<PadPair>{{2, 2}, {2, 2}}));
  expect_verified(plan);
}

// Trap 1: stride 2, padding 1: explicit for unknown sizes and at 224; TF 'same' is exact at 225 (pads (1, 1)).
TEST(Planner, Trap1Stride2PaddingDependsOnKnownSize) {
  const std::string text = "nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)";
  const Plan any_size = plan_for(text);
  EXPECT_EQ(conv_of(any_size).padding, TfPadding::explicit_pads);
  EXPECT_TRUE(any_size.exact_for_every_input_size);

  const Plan at_224 = plan_for(text, std::vector<int64_t>{1, 3, 224, 224});
  EXPECT_EQ(conv_of(at_224).padding, TfPadding::explicit_pads);
  EXPECT_NE(at_224.steps.back().why.find("H=224: TF 'same' pads (0, 1)"), std::string::npos) << at_224.steps.back().why;

  const Plan at_225 = plan_for(text, std::vector<int64_t>{1, 3, 225, 225});
  EXPECT_EQ(conv_of(at_225).padding, TfPadding::same);
  EXPECT_FALSE(at_225.exact_for_every_input_size);
  expect_verified(at_224);
  expect_verified(at_225);
}

// Equal start and equal output count is enough, even when TF's unused trailing pad differs.
TEST(Planner, SameAtKnownSizeNeedsOnlyEqualStartAndCount) {
  // in 10, k 4, s 2, p 1: PyTorch floor((10+2-4)/2)+1 = 5; TF 'same' out 5, need 4*2+4-10 = 2 -> (1, 1).
  const Plan plan = plan_for("nn.Conv1d(2, 2, 4, stride=2, padding=1)", std::vector<int64_t>{1, 2, 10});
  EXPECT_EQ(conv_of(plan).padding, TfPadding::same);
  expect_verified(plan);
  // in 9: PyTorch floor(7/2)+1 = 4 outputs; TF 'same' gives 5: different shape, explicit.
  const Plan other = plan_for("nn.Conv1d(2, 2, 4, stride=2, padding=1)", std::vector<int64_t>{1, 2, 9});
  EXPECT_EQ(conv_of(other).padding, TfPadding::explicit_pads);
  expect_verified(other);
}

// Grouped and dilated convs run as tf_conv (one raw tf.nn op), with PyTorch's pads folded in as explicit padding,
// exact for every size: 'same' would be exact here too, but conv2d with a grouped kernel is faster with explicit
// pads (bench/tf_plans_vs_handwritten.py).
TEST(Planner, GroupedAndDilatedRunAsTfConvWithFoldedPads) {
  for (const char* text : {"nn.Conv2d(8, 8, 3, padding=1, groups=4)", "nn.Conv1d(3, 16, 4, padding='same', dilation=3)",
                           "nn.Conv3d(4, 8, 3, padding=1, groups=2)", "nn.Conv2d(4, 8, 3, padding=2, dilation=2)"}) {
    const Plan plan = plan_for(text);
    ASSERT_EQ(plan.steps.size(), 1u) << text;
    EXPECT_EQ(conv_of(plan).implementation, ConvImplementation::tf_conv) << text;
    EXPECT_EQ(conv_of(plan).padding, TfPadding::explicit_pads) << text;
    EXPECT_EQ(conv_of(plan).explicit_pads, plan.source.padding) << text;
    EXPECT_TRUE(plan.exact_for_every_input_size) << text;
    EXPECT_NE(plan.steps[0].why.find("Runs as tf_conv"), std::string::npos) << plan.steps[0].why;
    expect_verified(plan);
  }
  // Plain and depthwise convs stay Keras layers: measured as fast as any raw op.
  for (const char* text : {"nn.Conv2d(3, 16, 3, padding=1)", "nn.Conv2d(8, 8, 3, groups=8, dilation=2)",
                           "nn.Conv2d(8, 8, 3, groups=8, padding=1)"}) {
    EXPECT_EQ(conv_of(plan_for(text)).implementation, ConvImplementation::keras_layer) << text;
  }
  // ... except a depthwise conv with explicit zero pads: they are folded into tf.nn.depthwise_conv2d.
  const Plan depthwise = plan_for("nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)");
  ASSERT_EQ(depthwise.steps.size(), 1u);
  EXPECT_EQ(conv_of(depthwise).kind, TfConvKind::depthwise);
  EXPECT_EQ(conv_of(depthwise).implementation, ConvImplementation::tf_conv);
  EXPECT_EQ(conv_of(depthwise).padding, TfPadding::explicit_pads);
  const std::string keras = emit_keras(depthwise);
  EXPECT_NE(keras.find("conv = TfDepthwiseConv((3, 3), strides=(2, 2), dilation_rate=(1, 1), padding=((1, 1), (1, 1)), "
                       "depth_multiplier=1, use_bias=True)"),
            std::string::npos)
      << keras;
  EXPECT_EQ(keras.find("keras.layers.ZeroPadding2D("), std::string::npos) << keras;
  expect_verified(depthwise);
}

// Stride with dilation: one tf_conv step where one op is right for it; stride-1 conv + subsample where it is not
// (depthwise_conv2d ignores such strides; one input channel per group takes oneDNN's wrong path).
TEST(Planner, StrideWithDilationIsOneOpWhereTfIsRightForIt) {
  const Plan plan = plan_for("nn.Conv2d(4, 8, 3, stride=2, dilation=2, padding=2)");
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(conv_of(plan).strides, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(conv_of(plan).dilation, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(conv_of(plan).implementation, ConvImplementation::tf_conv);
  EXPECT_EQ(conv_of(plan).padding, TfPadding::explicit_pads);
  expect_verified(plan);
  const Plan mixed = plan_for("nn.Conv2d(4, 8, 3, stride=(2, 1), dilation=(1, 2))");
  EXPECT_EQ(mixed.steps.size(), 1u);
  expect_verified(mixed);

  for (const char* text : {"nn.Conv2d(4, 4, 3, stride=2, dilation=2, padding=2, groups=4)",
                           "nn.Conv2d(1, 8, 3, stride=2, dilation=2, padding=2)",
                           "nn.Conv2d(4, 8, 3, stride=2, dilation=2, padding=2, groups=4)"}) {
    const Plan split = plan_for(text);
    ASSERT_EQ(split.steps.size(), 2u) << text;
    EXPECT_EQ(conv_of(split).strides, (std::vector<int64_t>{1, 1})) << text;
    const auto* subsample = std::get_if<SubsampleStep>(&split.steps.back().op);
    ASSERT_NE(subsample, nullptr) << text;
    EXPECT_EQ(subsample->strides, (std::vector<int64_t>{2, 2})) << text;
    expect_verified(split);
  }
}

TEST(Planner, DepthwiseAndGroups) {
  const Plan depthwise = plan_for("nn.Conv2d(8, 24, 3, groups=8)");
  EXPECT_EQ(conv_of(depthwise).kind, TfConvKind::depthwise);
  EXPECT_EQ(conv_of(depthwise).depth_multiplier, 3);
  EXPECT_EQ(depthwise.kernel_layout.to_shape, (std::vector<int64_t>{3, 3, 8, 3}));
  expect_verified(depthwise);

  const Plan depthwise1d = plan_for("nn.Conv1d(4, 4, 3, groups=4, stride=2, dilation=2)");
  EXPECT_EQ(conv_of(depthwise1d).kind, TfConvKind::depthwise);
  expect_verified(depthwise1d);

  const Plan depthwise3d = plan_for("nn.Conv3d(4, 8, 3, groups=4)");  // no DepthwiseConv3D in Keras
  EXPECT_EQ(conv_of(depthwise3d).kind, TfConvKind::conv);
  EXPECT_EQ(conv_of(depthwise3d).groups, 4);
  expect_verified(depthwise3d);

  const Plan grouped = plan_for("nn.Conv2d(4, 6, 3, groups=2, padding=1)");
  EXPECT_EQ(conv_of(grouped).kind, TfConvKind::conv);
  EXPECT_EQ(conv_of(grouped).groups, 2);
  EXPECT_EQ(grouped.kernel_layout.to_shape, (std::vector<int64_t>{3, 3, 2, 6}));
  expect_verified(grouped);

  const Plan single_channel = plan_for("nn.Conv2d(1, 4, 3, groups=1)");  // groups == in == 1 is a plain conv
  EXPECT_EQ(conv_of(single_channel).kind, TfConvKind::conv);
}

TEST(Planner, PaddingModesBecomeAPadStep) {
  for (const char* mode : {"reflect", "replicate", "circular"}) {
    const Plan plan = plan_for(std::string("nn.Conv2d(3, 5, 4, padding='same', padding_mode='") + mode + "')");
    ASSERT_EQ(plan.steps.size(), 2u) << mode;
    const auto* pad = std::get_if<PadStep>(&plan.steps.front().op);
    ASSERT_NE(pad, nullptr);
    EXPECT_EQ(padding_fill_name(pad->fill), mode);
    EXPECT_EQ(pad->pads, (std::vector<PadPair>{{1, 2}, {1, 2}}));
    EXPECT_EQ(conv_of(plan).padding, TfPadding::valid);
    expect_verified(plan);
  }
  // Trap 9: the reason says why SYMMETRIC is not used for replicate.
  const Plan replicate = plan_for("nn.Conv1d(1, 1, 3, padding=1, padding_mode='replicate')");
  EXPECT_NE(replicate.steps.front().why.find("SYMMETRIC"), std::string::npos);
  // A non-zeros mode with zero padding pads nothing.
  EXPECT_EQ(plan_for("nn.Conv1d(1, 1, 3, padding_mode='reflect')").steps.size(), 1u);
}

const TransposedConvStep& transposed_of(const Plan& plan) {
  const auto* step = std::get_if<TransposedConvStep>(&plan.steps.front().op);
  if (step == nullptr) ADD_FAILURE() << "plan has no transposed step";
  static TransposedConvStep none;
  return step ? *step : none;
}

TEST(Planner, TransposedSameOnlyWhereItIsExact) {
  // k 4, s 2, p 1: D = 2, Keras 'same' starts at 1 and gives in*2 outputs, like PyTorch.
  EXPECT_EQ(transposed_of(plan_for("nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)")).padding, TfPadding::same);
  // k 2, s 3, op 1: D = -1, Keras 'same' gives in*3 = L + 1 outputs, like PyTorch's output_padding=1.
  EXPECT_EQ(transposed_of(plan_for("nn.ConvTranspose1d(2, 2, 2, stride=3, output_padding=1)")).padding,
            TfPadding::same);
  // Trap 3: k 3, s 2, p 1, op 1: same shape as Keras 'same' but shifted by one: explicit crop (1, 0).
  const Plan trap3 = plan_for("nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)");
  const TransposedConvStep& step = transposed_of(trap3);
  EXPECT_EQ(step.padding, TfPadding::explicit_pads);
  EXPECT_EQ(step.pads, (std::vector<PadPair>{{1, 0}, {1, 0}}));
  EXPECT_EQ(step.extra, (std::vector<int64_t>{0, 0}));
  expect_verified(trap3);
  // k 3, s 3, op 2 > p 0: two outputs past L, within TF's extra < stride.
  const Plan beyond_plan = plan_for("nn.ConvTranspose1d(2, 2, 3, stride=3, output_padding=2)");
  const TransposedConvStep& beyond = transposed_of(beyond_plan);
  EXPECT_EQ(beyond.pads, (std::vector<PadPair>{{0, 0}}));
  EXPECT_EQ(beyond.extra, (std::vector<int64_t>{2}));
}

// Trap 5: PyTorch allows output_padding up to dilation-1; TF only up to stride-1: zero taps supply the rest.
TEST(Planner, TransposedOutputPaddingBeyondStrideUsesZeroTaps) {
  const Plan plan = plan_for("nn.ConvTranspose1d(2, 3, 3, stride=1, dilation=3, output_padding=2)");
  EXPECT_EQ(plan.kernel_layout.to_shape, (std::vector<int64_t>{9, 3, 2}));  // 7 dilated taps + 2 zeros
  EXPECT_EQ(transposed_of(plan).extra, (std::vector<int64_t>{0}));
  expect_verified(plan);
}

TEST(Planner, TransposedGroupsAndDilation) {
  const Plan plan = plan_for("nn.ConvTranspose3d(4, 6, (3, 2, 1), stride=(2, 1, 3), padding=(1, 0, 0), "
                             "output_padding=(1, 0, 2), groups=2, dilation=(1, 2, 1))");
  EXPECT_EQ(transposed_of(plan).groups, 2);
  EXPECT_EQ(plan.kernel_layout.to_shape, (std::vector<int64_t>{3, 3, 1, 3, 4}));  // (*k_eff, out/G, in)
  expect_verified(plan);
  EXPECT_FALSE(plan_torch_to_tf(*parse_pytorch_layer("nn.ConvTranspose1d(1, 1, 3, padding=3)"),
                                std::vector<int64_t>{1, 1, 2}));  // output size 1 - 6 + 2 + 1 <= 0
}

TEST(Planner, InputShapeIsValidated) {
  auto layer = parse_pytorch_layer("nn.Conv2d(3, 16, 5)");
  ASSERT_TRUE(layer);
  EXPECT_FALSE(plan_torch_to_tf(*layer, std::vector<int64_t>{1, 3, 4, 4}));   // kernel larger than input
  EXPECT_FALSE(plan_torch_to_tf(*layer, std::vector<int64_t>{1, 4, 8, 8}));   // channels
  EXPECT_FALSE(plan_torch_to_tf(*layer, std::vector<int64_t>{1, 3, 8}));      // rank
  auto reflect = parse_pytorch_layer("nn.Conv2d(3, 16, 3, padding=3, padding_mode='reflect')");
  ASSERT_TRUE(reflect);
  EXPECT_FALSE(plan_torch_to_tf(*reflect, std::vector<int64_t>{1, 3, 3, 8}));  // reflect pad >= size
}

}  // namespace
}  // namespace convbridge
