// Padding, cropping and pixel shuffle: parsing (PyTorch's tuple order, Keras' forms, tf.pad), shape math and the
// reference engine on hand-computed cases, and the plans for both directions.
#include <gtest/gtest.h>

#include "convbridge/engine.hpp"
#include <cmath>

#include "convbridge/layer_plan.hpp"
#include "engine/ops/run_ops.hpp"

namespace convbridge {
namespace {

PadOp pad_of(std::string_view text) {
  auto layer = parse_op_layer(text);
  EXPECT_TRUE(layer.ok()) << text << ": " << (layer.ok() ? "" : layer.error().message);
  return std::get<PadOp>(layer->op);
}

std::vector<std::string> callees(const LayerPlan& plan) {
  std::vector<std::string> out;
  for (const TargetStep& step : plan.steps) out.push_back(step.call.callee);
  return out;
}

TEST(PaddingParse, TorchTupleListsTheLastAxisFirst) {
  const PadOp op = pad_of("nn.ZeroPad2d((1, 2, 3, 4))");  // left, right, top, bottom
  ASSERT_EQ(op.pads.size(), 2u);
  EXPECT_EQ(op.pads[0], (PadPair{3, 4}));  // H
  EXPECT_EQ(op.pads[1], (PadPair{1, 2}));  // W
  const PadOp f = pad_of("F.pad(x, (1, 2), mode='reflect')");
  EXPECT_EQ(f.rank, 1);
  EXPECT_EQ(f.fill, PadFill::reflect);
  const PadOp c = pad_of("nn.ConstantPad3d(padding=2, value=-1.5)");
  EXPECT_EQ(c.pads, (std::vector<PadPair>{{2, 2}, {2, 2}, {2, 2}}));
  EXPECT_EQ(c.value, -1.5);
  // Constant padding with fewer pairs pads the last axes only (measured: ZeroPad2d((1, 1)) on (1, 2, 3, 4) -> W 6).
  EXPECT_EQ(pad_of("nn.ZeroPad2d((1, 1))").pads, (std::vector<PadPair>{{0, 0}, {1, 1}}));
}

TEST(PaddingParse, KerasFormsAndCroppingAsNegativePads) {
  EXPECT_EQ(pad_of("keras.layers.ZeroPadding2D((1, 2))").pads, (std::vector<PadPair>{{1, 1}, {2, 2}}));
  EXPECT_EQ(pad_of("keras.layers.ZeroPadding2D(((1, 2), (3, 4)))").pads, (std::vector<PadPair>{{1, 2}, {3, 4}}));
  EXPECT_EQ(pad_of("keras.layers.ZeroPadding1D()").pads, (std::vector<PadPair>{{1, 1}}));
  EXPECT_EQ(pad_of("keras.layers.Cropping2D(((1, 2), (0, 3)))").pads, (std::vector<PadPair>{{-1, -2}, {0, -3}}));
  EXPECT_EQ(pad_of("keras.layers.Cropping1D()").pads, (std::vector<PadPair>{{-1, -1}}));
  // get_config() keys parse
  EXPECT_TRUE(parse_op_layer("keras.layers.ZeroPadding2D(padding=((1, 1), (1, 1)), data_format='channels_last', "
                             "name='zp', trainable=True, dtype='float32')")
                  .ok());
  const PadOp tf = pad_of("tf.pad(x, [[0, 0], [1, 2], [3, 4], [0, 0]], mode='symmetric')");  // mode upper-cased
  EXPECT_EQ(tf.fill, PadFill::symmetric);
  EXPECT_EQ(tf.pads, (std::vector<PadPair>{{1, 2}, {3, 4}}));
}

TEST(PaddingParse, Rejections) {
  const std::pair<const char*, const char*> cases[] = {
      {"nn.ZeroPad2d((1, 2, 3))", "Padding length must be divisible by 2"},
      {"nn.ReflectionPad2d((1, 1))", "Padding size 2 is not supported for 4D input tensor"},
      {"F.pad(x, (1, 1), mode='replicate', value=2)", "doesn't take in value argument"},
      {"keras.layers.ZeroPadding2D(((1, 2), (3, -1)))", "must not be negative"},
      {"tf.pad(x, [[1, 0], [1, 1], [1, 1], [0, 0]])", "pads the batch axis"},
      {"tf.nn.depth_to_space(x, 1)", "block_size=1 must be at least 2"},
      {"nn.PixelShuffle(0)", "upscale_factor=0 must be positive"},
  };
  for (const auto& [text, fragment] : cases) {
    auto layer = parse_op_layer(text);
    ASSERT_FALSE(layer.ok()) << text;
    EXPECT_NE(layer.error().message.find(fragment), std::string::npos) << text << ": " << layer.error().message;
  }
}

TEST(PaddingShape, HandComputed) {
  const std::vector<int64_t> in{1, 2, 3, 4};
  EXPECT_EQ(*output_shape(pad_of("nn.ZeroPad2d((1, 2, -1, 3))"), in), (std::vector<int64_t>{1, 2, 5, 7}));
  EXPECT_FALSE(output_shape(pad_of("nn.ReflectionPad2d(3)"), in).ok());            // 3 is not < H=3
  EXPECT_TRUE(output_shape(pad_of("nn.CircularPad2d((4, 4, 3, 3))"), in).ok());    // pad <= size
  EXPECT_FALSE(output_shape(pad_of("nn.CircularPad2d((5, 4, 3, 3))"), in).ok());
  const PixelShuffleOp shuffle{2, true, ChannelOrder::crd};
  EXPECT_EQ(*output_shape(shuffle, std::vector<int64_t>{2, 8, 3, 5}), (std::vector<int64_t>{2, 2, 6, 10}));
  const PixelShuffleOp unshuffle{3, false, ChannelOrder::dcr};
  EXPECT_EQ(*output_shape(unshuffle, std::vector<int64_t>{1, 2, 6, 9}), (std::vector<int64_t>{1, 18, 2, 3}));
}

Tensor line(std::vector<double> values) {
  return Tensor{{1, 1, static_cast<int64_t>(values.size())}, std::move(values)};
}

TEST(PaddingEngine, ModesOnOneLine) {
  // Expected values measured with torch 2.13 F.pad on [1, 2, 3, 4, 5] and tf.pad SYMMETRIC on [0, 3, 6].
  const Tensor x = line({1, 2, 3, 4, 5});
  auto run = [&](PadFill fill, PadPair pad, const Tensor& input) {
    return engine::run(PadOp{1, {pad}, fill, 0.0}, input, {})->data;
  };
  EXPECT_EQ(run(PadFill::reflect, {-1, 3}, x), (std::vector<double>{2, 3, 4, 5, 4, 3, 2}));
  EXPECT_EQ(run(PadFill::reflect, {2, -3}, x), (std::vector<double>{3, 2, 1, 2}));
  EXPECT_EQ(run(PadFill::replicate, {3, -1}, x), (std::vector<double>{1, 1, 1, 1, 2, 3, 4}));
  EXPECT_EQ(run(PadFill::circular, {-1, 3}, x), (std::vector<double>{2, 3, 4, 5, 2, 3, 4}));
  EXPECT_EQ(run(PadFill::circular, {3, -1}, x), (std::vector<double>{2, 3, 4, 1, 2, 3, 4}));
  EXPECT_EQ(run(PadFill::symmetric, {2, 2}, line({0, 3, 6})), (std::vector<double>{3, 0, 0, 3, 6, 6, 3}));
  EXPECT_EQ(engine::run(PadOp{1, {{-1, -1}}, PadFill::constant, 7.0}, x, {})->data, (std::vector<double>{2, 3, 4}));
  EXPECT_EQ(engine::run(PadOp{1, {{1, 0}}, PadFill::constant, 7.0}, x, {})->data,
            (std::vector<double>{7, 1, 2, 3, 4, 5}));
}

TEST(PixelShuffleEngine, CrdAndDcrOrders) {
  // Input (1, 4, 1, 1) holding channels 0..3; r = 2, one output channel: 2x2.
  const Tensor x{{1, 4, 1, 1}, {0, 1, 2, 3}};
  // CRD: (i, j) reads channel i*2 + j; with C_out = 1 DCR reads (i*2 + j)*1 + 0: the same for one output channel.
  EXPECT_EQ(engine::run(PixelShuffleOp{2, true, ChannelOrder::crd}, x, {})->data, (std::vector<double>{0, 1, 2, 3}));
  // Two output channels from 8: CRD channel c*4 + i*2 + j, DCR (i*2 + j)*2 + c.
  Tensor y{{1, 8, 1, 1}, {0, 1, 2, 3, 4, 5, 6, 7}};
  EXPECT_EQ(engine::run(PixelShuffleOp{2, true, ChannelOrder::crd}, y, {})->data,
            (std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(engine::run(PixelShuffleOp{2, true, ChannelOrder::dcr}, y, {})->data,
            (std::vector<double>{0, 2, 4, 6, 1, 3, 5, 7}));
  // Unshuffle inverts shuffle.
  auto wide = engine::run(PixelShuffleOp{2, true, ChannelOrder::dcr}, y, {});
  EXPECT_EQ(engine::run(PixelShuffleOp{2, false, ChannelOrder::dcr}, *wide, {})->data, y.data);
}

TEST(PaddingPlan, TorchToKeras) {
  auto plan = [](std::string_view text) { return *plan_op_layer(*parse_op_layer(text), std::nullopt); };
  EXPECT_EQ(callees(plan("nn.ZeroPad2d(1)")), (std::vector<std::string>{"keras.layers.ZeroPadding2D"}));
  EXPECT_EQ(callees(plan("nn.ZeroPad2d((1, -2, 0, 0))")),
            (std::vector<std::string>{"keras.layers.Cropping2D", "keras.layers.ZeroPadding2D"}));
  EXPECT_EQ(callees(plan("nn.ConstantPad1d(2, 0.5)")), (std::vector<std::string>{"convbridge.TorchConstantPad"}));
  EXPECT_EQ(callees(plan("nn.ReflectionPad2d((1, 2, -1, 3))")),
            (std::vector<std::string>{"convbridge.TorchReflectPad", "keras.layers.Cropping2D"}));
  EXPECT_EQ(callees(plan("nn.CircularPad1d((-1, 3))")),
            (std::vector<std::string>{"keras.layers.Cropping1D", "convbridge.TorchEdgePad"}));
  EXPECT_EQ(callees(plan("nn.PixelShuffle(2)")), (std::vector<std::string>{"convbridge.TorchPixelShuffle"}));
  const LayerPlan zero = plan("nn.ZeroPad2d((1, 2, 3, 4))");
  EXPECT_EQ(python_call_text(zero.steps[0].call), "keras.layers.ZeroPadding2D(padding=((3, 4), (1, 2)))");
  ASSERT_TRUE(zero.steps[0].function.has_value());
  EXPECT_EQ(python_call_text(*zero.steps[0].function), "tf.pad(x, ((0, 0), (3, 4), (1, 2), (0, 0)))");
}

TEST(PaddingPlan, KerasToTorch) {
  auto plan = [](std::string_view text) { return *plan_op_layer(*parse_op_layer(text), std::nullopt); };
  const LayerPlan crop = plan("keras.layers.Cropping2D(((1, 2), (0, 3)))");
  EXPECT_EQ(python_call_text(crop.steps[0].call), "nn.ZeroPad2d(padding=(0, -3, -1, -2))");
  EXPECT_EQ(callees(plan("tf.pad(x, [[0, 0], [1, 1], [1, 0], [0, 0]], mode='SYMMETRIC')")),
            (std::vector<std::string>{"nn.ReplicationPad2d"}));  // pad 1 mirrors the edge itself
  EXPECT_EQ(callees(plan("tf.pad(x, [[0, 0], [2, 1], [1, 0], [0, 0]], mode='SYMMETRIC')")),
            (std::vector<std::string>{"convbridge.SymmetricPad"}));
  EXPECT_EQ(callees(plan("tf.pad(x, [[0, 0], [2, 1], [1, 0], [0, 0]], mode='REFLECT')")),
            (std::vector<std::string>{"nn.ReflectionPad2d"}));
  EXPECT_EQ(callees(plan("tf.nn.depth_to_space(x, 2)")), (std::vector<std::string>{"convbridge.TFDepthToSpace"}));
}

TEST(PaddingPlan, VerifiesInTheReferenceEngine) {
  for (const char* text : {"nn.ReflectionPad2d((1, 2, -1, 3))", "nn.CircularPad2d((-1, 2, 1, -1))",
                           "nn.ReplicationPad3d((1, -1, 0, 2, 2, 0))", "nn.ConstantPad2d((-1, 2, 1, 1), 3.5)",
                           "nn.PixelShuffle(3)", "tf.nn.depth_to_space(x, 2)", "keras.layers.Cropping3D(((1, 0), (0, 1), (1, 1)))",
                           "tf.pad(x, [[0, 0], [3, 1], [0, 2], [0, 0]], mode='SYMMETRIC')"}) {
    auto plan = plan_op_layer(*parse_op_layer(text), std::nullopt);
    ASSERT_TRUE(plan.ok()) << text << ": " << plan.error().message;
    auto report = verify_plan(*plan, 7);
    ASSERT_TRUE(report.ok()) << text;
    EXPECT_TRUE(report->passed()) << text << " " << report->skipped_reason;
    EXPECT_FALSE(report->cases.empty()) << text;
  }
  // Space to depth needs sizes divisible by the block; the verifier's sampled sizes without a shape are not all.
  const std::pair<const char*, std::vector<int64_t>> sized[] = {{"nn.PixelUnshuffle(2)", {2, 3, 4, 6}},
                                                                {"tf.nn.space_to_depth(x, 3)", {2, 6, 9, 2}}};
  for (const auto& [text, shape] : sized) {
    auto plan = plan_op_layer(*parse_op_layer(text), shape);
    ASSERT_TRUE(plan.ok()) << text << ": " << plan.error().message;
    auto report = verify_plan(*plan, 7);
    ASSERT_TRUE(report.ok()) << text;
    EXPECT_TRUE(report->passed() && !report->cases.empty()) << text << " " << report->skipped_reason;
  }
}

}  // namespace
}  // namespace convbridge
