// Keras front-end and the Keras -> PyTorch planner: which PyTorch modules each Keras configuration becomes.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "convbridge/emit.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/planner.hpp"

namespace convbridge {
namespace {

KerasConvLayer keras_ok(const std::string& text) {
  auto layer = parse_keras_layer(text);
  EXPECT_TRUE(layer) << text << ": " << (layer ? "" : layer.error().message);
  return layer ? *layer : KerasConvLayer{};
}

void keras_error(const std::string& text, const std::string& fragment) {
  auto layer = parse_keras_layer(text);
  ASSERT_FALSE(layer) << text << " parsed but Keras rejects it";
  EXPECT_NE(layer.error().message.find(fragment), std::string::npos) << layer.error().message;
}

TorchPlan plan_for(const std::string& text, std::vector<int64_t> input_shape) {
  auto plan = plan_keras_to_torch(keras_ok(text), input_shape.back(), input_shape);
  EXPECT_TRUE(plan) << text << ": " << (plan ? "" : plan.error().message);
  auto report = verify_plan(*plan, 3);
  EXPECT_TRUE(report && report->passed()) << text;
  return *plan;
}

constexpr int64_t kAny = kUnknownSize;

TEST(KerasArgs, ParsesEveryClass) {
  const KerasConvLayer conv = keras_ok("keras.layers.Conv2D(16, 3, strides=2, padding='SAME', use_bias=False, "
                                       "kernel_initializer=keras.initializers.HeNormal(seed=1), name='c1')");
  EXPECT_EQ(conv.kind, KerasLayerKind::conv);
  EXPECT_EQ(conv.filters, 16);
  EXPECT_EQ(conv.kernel, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(conv.padding, KerasPadding::same);  // Keras lower-cases padding
  EXPECT_FALSE(conv.use_bias);
  EXPECT_EQ(keras_ok("layers.DepthwiseConv2D(3, depth_multiplier=2)").depth_multiplier, 2);
  EXPECT_EQ(keras_ok("tf.keras.layers.SeparableConv1D(8, 5, padding='same')").kind, KerasLayerKind::separable);
  const KerasConvLayer transposed = keras_ok("Conv3DTranspose(4, (3, 2, 1), strides=2, output_padding=(1, 0, 1))");
  EXPECT_TRUE(transposed.has_output_padding);
  EXPECT_EQ(transposed.output_padding, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(keras_ok("keras.layers.Conv1D(4, 3, padding='causal')").padding, KerasPadding::causal);
  EXPECT_TRUE(names_keras_layer("keras.layers.Conv2D(16, 3)"));
  EXPECT_FALSE(names_keras_layer("nn.Conv2d(3, 16, 3)"));
}

TEST(KerasArgs, RejectsWhatKerasRejects) {
  keras_error("keras.layers.Conv2D(16, 3, strides=2, dilation_rate=2)", "strides > 1 together with dilation_rate");
  keras_error("keras.layers.Conv2D(10, 3, groups=4)", "filters=10 must be divisible by groups=4");
  keras_error("keras.layers.Conv2D(16, 3, padding='causal')", "padding='causal' is not a Conv2D padding");
  keras_error("keras.layers.Conv2DTranspose(4, 3, strides=2, output_padding=2)", "smaller than strides");
  keras_error("keras.layers.Conv2D(16, 3, activation='exponential')", "activation='exponential' is not supported yet");
  keras_error("keras.layers.Conv2D(16, 3, activation='Relu')", "activation='Relu' is not a Keras activation");
  keras_error("keras.layers.Conv2D(16, 3, activation=keras.layers.ReLU())", "is not a Keras activation");
  keras_error("keras.layers.Conv2D(16, 3, input_shape=(32, 32))", "input_shape=(32, 32) must be the input's shape");
  keras_error("keras.layers.Conv2D(16, 3, input_shape=(32, 32, None))", "the channel count given");
  keras_error("keras.layers.Conv2D(16, 3, data_format='channels_first')", "channels_last");
  keras_error("keras.layers.Conv2D(16, 3, stride=2)", "did you mean 'strides'?");
  keras_error("keras.layers.Conv2D(16)", "missing the required argument 'kernel_size'");
  keras_error("keras.layers.Conv2D(0, 3)", "filters=0 must be a positive int");
  keras_error("keras.layers.DepthwiseConv3D(3)", "unknown Keras layer");
}

TEST(KerasToTorch, SameAtStride1IsPytorchSame) {
  const TorchPlan plan = plan_for("keras.layers.Conv2D(8, 4, padding='same')", {kAny, kAny, kAny, 3});
  ASSERT_EQ(plan.steps.size(), 1u);
  const auto& conv = std::get<TorchConvStep>(plan.steps[0].op);
  EXPECT_TRUE(conv.padding_same);  // (1, 2): the odd unit after, as PyTorch's 'same'
  EXPECT_TRUE(plan.exact_for_every_input_size);
}

TEST(KerasToTorch, SameAtStride2DependsOnTheSize) {
  // Unknown sizes: padding computed at run time.
  const TorchPlan any = plan_for("keras.layers.Conv2D(8, 3, strides=2, padding='same')", {kAny, kAny, kAny, 3});
  ASSERT_EQ(any.steps.size(), 2u);
  EXPECT_TRUE(std::get<TorchPadStep>(any.steps[0].op).tf_same_at_runtime);
  // 225: TF pads (1, 1): nn.Conv2d(padding=1) alone.
  const TorchPlan odd = plan_for("keras.layers.Conv2D(8, 3, strides=2, padding='same')", {1, 225, 225, 3});
  ASSERT_EQ(odd.steps.size(), 1u);
  EXPECT_EQ(std::get<TorchConvStep>(odd.steps[0].op).spec.padding, (std::vector<PadPair>{{1, 1}, {1, 1}}));
  EXPECT_FALSE(odd.exact_for_every_input_size);
  // 224: TF pads (0, 1): a ConstantPad2d first.
  const TorchPlan even = plan_for("keras.layers.Conv2D(8, 3, strides=2, padding='same')", {1, 224, 224, 3});
  ASSERT_EQ(even.steps.size(), 2u);
  EXPECT_EQ(std::get<TorchPadStep>(even.steps[0].op).pads, (std::vector<PadPair>{{0, 1}, {0, 1}}));
}

TEST(KerasToTorch, SizeSpecificCodeStartsWithTheSizeGuard) {
  // Exact for (224, 224) only: make_module's nn.Sequential refuses other sizes before padding anything.
  const std::string even = emit_torch(plan_for("keras.layers.Conv2D(8, 3, strides=2, padding='same')", {1, 224, 224, 3}));
  EXPECT_NE(even.find("class ExpectInputSize(nn.Module):"), std::string::npos) << even;
  EXPECT_NE(even.find("    return nn.Sequential(\n        ExpectInputSize((224, 224)),\n        nn.ConstantPad2d("),
            std::string::npos)
      << even;
  // A single-module plan becomes a Sequential too, so that the guard comes first.
  const std::string odd = emit_torch(plan_for("keras.layers.Conv2D(8, 3, strides=2, padding='same')", {1, 225, 225, 3}));
  EXPECT_NE(odd.find("    return nn.Sequential(\n        ExpectInputSize((225, 225)),\n        conv0,\n    )"),
            std::string::npos)
      << odd;
  // Exact at every size: no guard, and no helper classes when no module needs them.
  const std::string any = emit_torch(plan_for("keras.layers.Conv2D(8, 3, padding='same')", {1, 224, 224, 3}));
  EXPECT_EQ(any.find("ExpectInputSize"), std::string::npos) << any;
  EXPECT_NE(any.find("    return conv0\n"), std::string::npos) << any;
  const std::string runtime = emit_torch(plan_for("keras.layers.Conv2D(8, 3, strides=2, padding='same')",
                                                  {kAny, kAny, kAny, 3}));
  EXPECT_EQ(runtime.find("ExpectInputSize(("), std::string::npos) << runtime;
  EXPECT_NE(runtime.find("        TFSamePad((3, 3), (2, 2)),\n"), std::string::npos) << runtime;
}

TEST(KerasToTorch, CausalSeparableDepthwise) {
  const TorchPlan causal = plan_for("keras.layers.Conv1D(4, 3, padding='causal', dilation_rate=2)", {2, kAny, 3});
  EXPECT_EQ(std::get<TorchPadStep>(causal.steps[0].op).pads, (std::vector<PadPair>{{4, 0}}));
  // Trap 7: SeparableConv has no depthwise bias.
  const TorchPlan separable = plan_for("keras.layers.SeparableConv2D(6, 3, depth_multiplier=2)", {1, 9, 9, 4});
  ASSERT_EQ(separable.steps.size(), 2u);
  EXPECT_FALSE(std::get<TorchConvStep>(separable.steps[0].op).spec.bias);
  EXPECT_EQ(std::get<TorchConvStep>(separable.steps[0].op).spec.groups, 4);
  EXPECT_TRUE(std::get<TorchConvStep>(separable.steps[1].op).takes_bias);
  EXPECT_EQ(separable.weight_names, (std::vector<std::string>{"depthwise_kernel", "pointwise_kernel"}));
  const TorchPlan depthwise = plan_for("keras.layers.DepthwiseConv2D(3, strides=(1, 2), depth_multiplier=3)",
                                       {kAny, kAny, kAny, 2});
  EXPECT_EQ(std::get<TorchConvStep>(depthwise.steps[0].op).layout.to_shape, (std::vector<int64_t>{6, 1, 3, 3}));
}

TEST(KerasToTorch, TransposedPaddingAndCrop) {
  // 'same', k 4, s 2: crop (4-2)/2 = 1 and in*2 outputs: ConvTranspose2d(padding=1, output_padding=0).
  const TorchPlan same = plan_for("keras.layers.Conv2DTranspose(4, 4, strides=2, padding='same')", {kAny, kAny, kAny, 3});
  const auto& conv = std::get<TorchConvStep>(same.steps[0].op);
  EXPECT_EQ(conv.spec.padding, (std::vector<PadPair>{{1, 1}, {1, 1}}));
  EXPECT_EQ(conv.spec.output_padding, (std::vector<int64_t>{0, 0}));
  // 'same', k 3, s 2: L - out = 1: start 0, one output fewer than L: padding 0 and the last output dropped.
  const TorchPlan odd = plan_for("keras.layers.Conv1DTranspose(2, 3, strides=2, padding='same')", {kAny, kAny, 3});
  ASSERT_EQ(odd.steps.size(), 2u);
  EXPECT_EQ(std::get<TorchCropStep>(odd.steps[1].op).crop_end, (std::vector<int64_t>{1}));
  // 'valid' with stride > kernel and output_padding None: in*s outputs, s - k past the full result.
  const TorchPlan valid = plan_for("keras.layers.Conv1DTranspose(2, 2, strides=3)", {kAny, kAny, 3});
  EXPECT_EQ(std::get<TorchConvStep>(valid.steps[0].op).spec.output_padding, (std::vector<int64_t>{1}));
  plan_for("keras.layers.Conv2DTranspose(3, 3, dilation_rate=2, padding='same', output_padding=0)", {1, 5, 6, 2});
}

TEST(KerasToTorch, InputShapeChecks) {
  EXPECT_FALSE(plan_keras_to_torch(keras_ok("keras.layers.Conv2D(8, 5)"), 3, std::vector<int64_t>{1, 4, 4, 3}));
  EXPECT_FALSE(plan_keras_to_torch(keras_ok("keras.layers.Conv2D(8, 3, groups=2)"), 3,
                                   std::vector<int64_t>{1, 8, 8, 3}));
  EXPECT_FALSE(plan_keras_to_torch(keras_ok("keras.layers.Conv2D(8, 3)"), 3, std::vector<int64_t>{1, 8, 3}));
  EXPECT_EQ(*parse_input_shape("None,None,None,3", true), (std::vector<int64_t>{kAny, kAny, kAny, 3}));
  EXPECT_FALSE(parse_input_shape("None,None,None,3", false));
}

}  // namespace
}  // namespace convbridge

namespace convbridge {
namespace {

TEST(KerasActivation, EveryTranslatedNameBecomesItsModuleAfterTheConv) {
  // name -> (nn module, its arguments as the emitters write them)
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"'relu'", "nn.ReLU()"},
      {"'leaky_relu'", "nn.LeakyReLU(negative_slope=0.2)"},  // Keras' slope, not PyTorch's 0.01
      {"'elu'", "nn.ELU(alpha=1)"},
      {"'gelu'", "nn.GELU()"},
      {"'swish'", "nn.SiLU()"},
      {"'hard_swish'", "nn.Hardswish()"},
      {"'hard_sigmoid'", "nn.Hardsigmoid()"},
      {"'soft_shrink'", "nn.Softshrink(lambd=0.5)"},
      {"'softmax'", "nn.Softmax(dim=1)"},  // Keras' axis -1 is the channels: dim 1 in channels_first
      {"keras.activations.relu6", "nn.ReLU6()"},
      {"tf.nn.leaky_relu", "nn.LeakyReLU(negative_slope=0.2)"},
  };
  for (const auto& [activation, module] : cases) {
    const std::string text = fmt::format("keras.layers.Conv2D(4, 3, strides=2, padding='same', activation={})",
                                         activation);
    const TorchPlan plan = plan_for(text, {2, 7, 8, 3});  // verify_plan runs the activation on both sides
    ASSERT_TRUE(std::holds_alternative<TorchActivationStep>(plan.steps.back().op)) << text;
    const std::string code = emit_torch(plan);
    EXPECT_NE(code.find("        " + module + ",\n"), std::string::npos) << text << "\n" << code;
  }
  EXPECT_FALSE(keras_ok("keras.layers.Conv2D(4, 3, activation='linear')").activation);
  EXPECT_FALSE(keras_ok("keras.layers.Conv2D(4, 3, activation=None)").activation);
}

TEST(KerasActivation, EngineComputesTheFormulas) {
  Tensor t{{1, 2, 1, 1}, {-1.0, 2.0}};  // channels_first: two channels at one position
  apply_activation(Activation{ActivationKind::leaky_relu, 0.2}, t, false);
  EXPECT_DOUBLE_EQ(t.data[0], -0.2);
  EXPECT_DOUBLE_EQ(t.data[1], 2.0);
  Tensor s{{1, 1, 1, 2}, {0.0, std::log(3.0)}};  // channels_last: softmax over the last axis
  apply_activation(Activation{ActivationKind::softmax}, s, true);
  EXPECT_NEAR(s.data[0], 0.25, 1e-15);
  EXPECT_NEAR(s.data[1], 0.75, 1e-15);
  Tensor h{{1, 3}, {-3.0, 0.0, 3.0}};
  apply_activation(Activation{ActivationKind::hard_sigmoid}, h, true);
  EXPECT_EQ(h.data, (std::vector<double>{0.0, 0.5, 1.0}));
}

TEST(KerasDeclaredInputShape, GivesTheChannelsAndMustAgree) {
  const KerasConvLayer layer = keras_ok("keras.layers.Conv2D(8, 3, strides=2, padding='same', input_shape=(None, 32, 3))");
  EXPECT_EQ(layer.declared_input_shape, (std::vector<int64_t>{kAny, 32, 3}));
  auto alone = plan_keras_to_torch(layer, 3, std::nullopt);
  ASSERT_TRUE(alone) << alone.error().message;
  EXPECT_TRUE(alone->exact_for_every_input_size);  // H unknown
  auto merged = plan_keras_to_torch(layer, 3, std::vector<int64_t>{1, 31, kAny, 3});
  ASSERT_TRUE(merged) << merged.error().message;
  EXPECT_EQ(merged->input_shape, (std::vector<int64_t>{1, 31, 32, 3}));  // the known sizes of both
  auto contradiction = plan_keras_to_torch(layer, 3, std::vector<int64_t>{1, 31, 30, 3});
  ASSERT_FALSE(contradiction);
  EXPECT_NE(contradiction.error().message.find("contradicts the layer's own input_shape=(None, 32, 3)"),
            std::string::npos);
  auto channels = plan_keras_to_torch(layer, 4, std::nullopt);
  ASSERT_FALSE(channels);
  EXPECT_NE(channels.error().message.find("gives 3 channels but the input has 4"), std::string::npos);
}

TEST(KerasInputShape, PytorchLayoutByMistakeWarns) {
  auto mistaken = plan_keras_to_torch(keras_ok("keras.layers.Conv2D(8, 3)"), 224, std::vector<int64_t>{1, 3, 224, 224});
  ASSERT_TRUE(mistaken);
  ASSERT_EQ(mistaken->warnings.size(), 1u);
  EXPECT_NE(mistaken->warnings[0].find("give (1, 224, 224, 3) instead"), std::string::npos) << mistaken->warnings[0];
  auto fine = plan_keras_to_torch(keras_ok("keras.layers.Conv2D(8, 3)"), 3, std::vector<int64_t>{1, 224, 224, 3});
  ASSERT_TRUE(fine);
  EXPECT_TRUE(fine->warnings.empty());
}

}  // namespace
}  // namespace convbridge
