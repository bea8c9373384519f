// The resizing family: parsing (PyTorch, Keras, TF), shape math, the per-axis interpolation matrices and the
// reference engine on hand-computed cases, the plans of the issue's examples, and every entry of
// tests/hostile/catalogue_resizing.json. Expected numbers are worked out by hand (or measured with the real
// frameworks, as noted), never copied from convbridge's output.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "engine/ops/run_ops.hpp"

#ifndef CONVBRIDGE_RESIZING_CATALOGUE
#error "CONVBRIDGE_RESIZING_CATALOGUE must name tests/hostile/catalogue_resizing.json"
#endif

namespace convbridge {
namespace {

ResizeOp parsed(const std::string& text) {
  auto layer = parse_op_layer(text);
  EXPECT_TRUE(layer.ok()) << text << ": " << (layer.ok() ? "" : layer.error().message);
  if (!layer.ok()) return {};
  EXPECT_TRUE(std::holds_alternative<ResizeOp>(layer->op)) << text;
  return std::get<ResizeOp>(layer->op);
}

LayerPlan planned(const std::string& text, std::optional<std::vector<int64_t>> shape = std::nullopt) {
  auto layer = parse_op_layer(text);
  EXPECT_TRUE(layer.ok()) << text;
  auto plan = plan_op_layer(*layer, shape);
  EXPECT_TRUE(plan.ok()) << text << ": " << (plan.ok() ? "" : plan.error().message);
  auto report = verify_plan(*plan, 7);
  EXPECT_TRUE(report.ok() && report->passed()) << text;
  return *plan;
}

std::vector<double> matrix(const ResizeOp& op, int64_t in, int64_t out, int axis = 0) {
  auto m = resize_axis_matrix(op, axis, in, out);
  EXPECT_TRUE(m.ok());
  return m.ok() ? *m : std::vector<double>();
}

void expect_matrix(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "entry " << i;
}

// ---- parsing ----

TEST(ResizingParse, UpsampleForms) {
  const ResizeOp a = parsed("nn.Upsample(scale_factor=2)");
  EXPECT_EQ(a.rank, 0);  // nearest with one number takes any rank
  EXPECT_EQ(a.mode, ResizeMode::nearest);
  EXPECT_EQ(a.rounding, NearestRounding::floor);
  EXPECT_TRUE(a.use_given_scale);
  const ResizeOp b = parsed("torch.nn.Upsample(None, (2, 3), 'bilinear', True)");
  EXPECT_EQ(b.rank, 2);
  EXPECT_EQ(b.mode, ResizeMode::linear);
  EXPECT_EQ(b.coordinates, ResizeCoordinates::align_corners);
  EXPECT_EQ(b.scale_factor, (std::vector<double>{2.0, 3.0}));
  const ResizeOp c = parsed("nn.Upsample(size=(5, 6, 7), mode='trilinear')");
  EXPECT_EQ(c.rank, 3);
  EXPECT_EQ(c.size, (std::vector<int64_t>{5, 6, 7}));
  const ResizeOp d = parsed("nn.Upsample(scale_factor=1.5, mode='bicubic', recompute_scale_factor=True)");
  EXPECT_FALSE(d.use_given_scale);  // interpolate() turns the factor into a size, then uses in / out
  EXPECT_DOUBLE_EQ(d.cubic_a, -0.75);
  EXPECT_EQ(parsed("nn.Upsample(scale_factor=1.5, mode='bicubic', recompute_scale_factor=False)").use_given_scale,
            true);
  const ResizeOp e = parsed("nn.Upsample(size=4, mode='nearest-exact')");
  EXPECT_EQ(e.rounding, NearestRounding::half_pixel_floor);
  EXPECT_EQ(e.size, (std::vector<int64_t>{4}));
  EXPECT_EQ(parsed("nn.Upsample(scale_factor=2, mode='linear', align_corners=False)").rank, 1);
}

TEST(ResizingParse, FixedModeModulesAndFunctions) {
  const ResizeOp a = parsed("nn.UpsamplingBilinear2d(scale_factor=2)");
  EXPECT_EQ(a.coordinates, ResizeCoordinates::align_corners);  // upsampling.py: align_corners=True
  EXPECT_EQ(a.scale_factor, (std::vector<double>{2.0, 2.0}));
  const ResizeOp b = parsed("nn.UpsamplingNearest2d((4, 5))");
  EXPECT_EQ(b.size, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(b.rounding, NearestRounding::floor);
  const ResizeOp c = parsed("F.interpolate(x, None, 0.5, 'bilinear', False, None, True)");
  EXPECT_TRUE(c.antialias);
  const ResizeOp d = parsed("F.interpolate(x, size=(3, 4), mode='bicubic', antialias=True)");
  EXPECT_DOUBLE_EQ(d.cubic_a, -0.5);  // UpSampleKernel.cpp: the antialiased bicubic uses A = -0.5
  EXPECT_EQ(parsed("torch.nn.functional.upsample(x, scale_factor=2)").rank, 0);
}

TEST(ResizingParse, KerasAndTf) {
  const ResizeOp a = parsed("keras.layers.UpSampling1D(3)");
  EXPECT_EQ(a.rank, 1);
  EXPECT_EQ(a.scale_factor, (std::vector<double>{3.0}));
  const ResizeOp b = parsed("keras.layers.UpSampling2D(size=(2, 3), data_format='channels_last', "
                            "interpolation='BILINEAR', name='up', trainable=True, dtype='float32')");
  EXPECT_EQ(b.mode, ResizeMode::linear);  // interpolation is lowercased (UpSampling2D.__init__)
  EXPECT_EQ(b.coordinates, ResizeCoordinates::half_pixel);
  const ResizeOp c = parsed("layers.UpSampling3D(2)");
  EXPECT_EQ(c.scale_factor, (std::vector<double>{2.0, 2.0, 2.0}));
  // Every get_config() key of Keras 3.15's Resizing (minus name/trainable/dtype).
  const ResizeOp d = parsed("keras.layers.Resizing(height=4, width=5, interpolation='bicubic', "
                            "crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, fill_mode='constant', "
                            "fill_value=0.0, antialias=False, data_format='channels_last')");
  EXPECT_EQ(d.mode, ResizeMode::cubic);
  EXPECT_EQ(d.cubic_edges, CubicEdges::renormalize);
  EXPECT_EQ(d.cubic_table_steps, 1024);
  const ResizeOp e = parsed("tf.image.resize(x, (6, 7), method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)");
  EXPECT_EQ(e.rounding, NearestRounding::half_pixel_floor);
  const ResizeOp f = parsed("tf.image.resize(images, [6, 7], 'bicubic', False, True, 'r')");
  EXPECT_TRUE(f.antialias);
  EXPECT_EQ(f.cubic_table_steps, 0);  // scale_and_translate: exact offsets
}

// ---- shape math ----

TEST(ResizingShape, HandComputed) {
  const ResizeOp scale = parsed("nn.Upsample(scale_factor=1.7, mode='bilinear')");
  // floor(5 * 1.7) = 8, floor(7 * 1.7) = floor(11.9) = 11.
  EXPECT_EQ(*output_shape(scale, std::vector<int64_t>{2, 3, 5, 7}), (std::vector<int64_t>{2, 3, 8, 11}));
  const ResizeOp any = parsed("nn.Upsample(scale_factor=3)");
  EXPECT_EQ(*output_shape(any, std::vector<int64_t>{1, 2, 4}), (std::vector<int64_t>{1, 2, 12}));
  EXPECT_EQ(*output_shape(any, std::vector<int64_t>{1, 2, 1, 2, 3}), (std::vector<int64_t>{1, 2, 3, 6, 9}));
  const ResizeOp size = parsed("nn.Upsample(size=(3, 4))");
  EXPECT_EQ(*output_shape(size, std::vector<int64_t>{1, 2, 10, 10}), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_FALSE(output_shape(size, std::vector<int64_t>{1, 2, 10}).ok());
  const ResizeOp shrink = parsed("nn.Upsample(scale_factor=0.3)");
  const auto zero = output_shape(shrink, std::vector<int64_t>{1, 1, 3, 4});  // floor(0.9) = 0
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("output (H: 0, W: 1)"), std::string::npos) << zero.error().message;
  const ResizeOp huge = parsed("nn.Upsample(scale_factor=1000000)");
  EXPECT_EQ(output_shape(huge, std::vector<int64_t>{1, 1, 1 << 20}).error().code, ErrorCode::overflow);
}

// ---- interpolation matrices ----

TEST(ResizingMatrix, LinearHalfPixel2To4) {
  // s = 0.5, source (x + 0.5) * 0.5 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (upper tap clamped).
  expect_matrix(matrix(parsed("nn.Upsample(size=4, mode='linear')"), 2, 4),
                {1, 0, 0.75, 0.25, 0.25, 0.75, 0, 1});
}

TEST(ResizingMatrix, LinearAlignCorners2To4) {
  expect_matrix(matrix(parsed("nn.Upsample(size=4, mode='linear', align_corners=True)"), 2, 4),
                {1, 0, 2.0 / 3, 1.0 / 3, 1.0 / 3, 2.0 / 3, 0, 1});
}

TEST(ResizingMatrix, NearestFloorAndHalfPixel3To5) {
  // floor(x * 0.6): 0, 0, 1, 1, 2; floor((x + 0.5) * 0.6): 0, 0, 1, 2, 2.
  expect_matrix(matrix(parsed("nn.Upsample(size=5)"), 3, 5), {1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1});
  expect_matrix(matrix(parsed("nn.Upsample(size=5, mode='nearest-exact')"), 3, 5),
                {1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1});
}

TEST(ResizingMatrix, TorchNearestAtFactor41IsNotRepetition) {
  // Measured with torch 2.13: F.interpolate(arange(5), scale_factor=41, mode='nearest')[41] reads input 0
  // (float(1 / 41) * 41 < 1), while 'nearest-exact' and Keras UpSampling1D(41) read input 1.
  const auto floor_rows = matrix(parsed("nn.Upsample(scale_factor=41)"), 2, 82);
  EXPECT_EQ(floor_rows[41 * 2 + 0], 1.0);
  const auto repeat_rows = matrix(parsed("keras.layers.UpSampling1D(41)"), 2, 82);
  EXPECT_EQ(repeat_rows[41 * 2 + 1], 1.0);
}

TEST(ResizingMatrix, TorchCubicClampsEdgeTaps) {
  // in 4 -> out 8, x = 0: source -0.25, t = 0.75, taps -2..1 clamped to 0, 0, 0, 1; A = -0.75:
  // W(1.75) = -0.03515625, W(0.75) = 0.26171875, W(0.25) = 0.87890625, W(1.25) = -0.10546875.
  const auto m = matrix(parsed("nn.Upsample(size=(8, 8), mode='bicubic')"), 4, 8);
  EXPECT_NEAR(m[0], -0.03515625 + 0.26171875 + 0.87890625, 1e-12);
  EXPECT_NEAR(m[1], -0.10546875, 1e-12);
  EXPECT_NEAR(m[2], 0.0, 1e-12);
}

TEST(ResizingMatrix, TfCubicRenormalizesEdgeTaps) {
  // The same row with A = -0.5 and the taps outside dropped: W(0.25) = 0.8671875, W(1.25) = -0.0703125,
  // renormalized by their sum 0.796875.
  const auto m = matrix(parsed("keras.layers.Resizing(8, 8, interpolation='bicubic')"), 4, 8);
  EXPECT_NEAR(m[0], 0.8671875 / 0.796875, 1e-12);
  EXPECT_NEAR(m[1], -0.0703125 / 0.796875, 1e-12);
}

TEST(ResizingMatrix, AntialiasedTriangle4To2) {
  // s = 2, support 2, distances (j - center + 0.5) / 2: row 0 taps 0..2 weigh 0.75, 0.75, 0.25 (/ 1.75).
  expect_matrix(matrix(parsed("keras.layers.Resizing(2, 2, antialias=True)"), 4, 2),
                {3.0 / 7, 3.0 / 7, 1.0 / 7, 0, 0, 1.0 / 7, 3.0 / 7, 3.0 / 7});
}

// ---- engine ----

TEST(ResizingEngine, BilinearRowAndSeparableAxes) {
  const ResizeOp op = parsed("nn.Upsample(size=(2, 4), mode='bilinear')");
  // Input 1x1x1x2 = [1, 2]: H 1 -> 2 repeats the row; W 2 -> 4 gives [1, 1.25, 1.75, 2].
  const Tensor input{{1, 1, 1, 2}, {1.0, 2.0}};
  auto out = engine::run(op, input, {});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->shape, (std::vector<int64_t>{1, 1, 2, 4}));
  const std::vector<double> want = {1, 1.25, 1.75, 2, 1, 1.25, 1.75, 2};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(out->data[i], want[i], 1e-12);
}

TEST(ResizingEngine, RepeatIn3D) {
  const ResizeOp op = parsed("keras.layers.UpSampling3D((1, 2, 1))");
  const Tensor input{{1, 1, 1, 2, 1}, {3.0, 4.0}};
  auto out = engine::run(op, input, {});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->data, (std::vector<double>{3, 3, 4, 4}));
}

// ---- plans ----

std::string callee(const LayerPlan& plan) { return plan.steps.back().call.callee; }

TEST(ResizingPlan, IssueExampleAlignCornersNeedsOurLayer) {
  for (auto shape : {std::optional<std::vector<int64_t>>(), std::optional<std::vector<int64_t>>({2, 3, 5, 7})}) {
    const LayerPlan plan = planned("nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)", shape);
    EXPECT_EQ(callee(plan), "convbridge.SeparableResize");
    EXPECT_EQ(plan.steps.back().helpers, (std::vector<std::string>{"SeparableResize"}));
    EXPECT_TRUE(plan.exact_for_every_input_size);
  }
}

TEST(ResizingPlan, TorchToKerasNativeChoices) {
  EXPECT_EQ(callee(planned("nn.Upsample(scale_factor=2)")), "keras.layers.UpSampling2D");
  EXPECT_EQ(callee(planned("nn.Upsample(scale_factor=3, mode='nearest-exact')", std::vector<int64_t>{1, 2, 4})),
            "keras.layers.UpSampling1D");
  EXPECT_EQ(callee(planned("nn.Upsample(scale_factor=41)")), "convbridge.SeparableResize");
  const LayerPlan bilinear = planned("nn.Upsample(scale_factor=2, mode='bilinear')");
  EXPECT_EQ(callee(bilinear), "keras.layers.UpSampling2D");
  EXPECT_EQ(python_literal(bilinear.steps[0].call.arguments[1].value), "'bilinear'");
  const LayerPlan sized = planned("nn.Upsample(size=(8, 9), mode='bilinear')");
  EXPECT_EQ(callee(sized), "keras.layers.Resizing");
  ASSERT_TRUE(sized.steps[0].function.has_value());
  EXPECT_EQ(sized.steps[0].function->callee, "tf.image.resize");
  EXPECT_EQ(callee(planned("nn.Upsample(size=(8, 9))")), "convbridge.SeparableResize");  // torch 'nearest'
  EXPECT_EQ(callee(planned("nn.Upsample(size=(8, 9), mode='nearest-exact')")), "keras.layers.Resizing");
  EXPECT_EQ(callee(planned("nn.Upsample(size=(8, 9), mode='bicubic')")), "convbridge.SeparableResize");
  EXPECT_EQ(callee(planned("F.interpolate(x, size=(3, 4), mode='bicubic', antialias=True)")),
            "keras.layers.Resizing");
  // 1.5 on 6 rows and 4 columns gives 9 x 6 exactly, so 1 / 1.5 is in / out: Resizing, for that size only.
  const LayerPlan known = planned("nn.Upsample(scale_factor=1.5, mode='bilinear')", std::vector<int64_t>{1, 2, 6, 4});
  EXPECT_EQ(callee(known), "keras.layers.Resizing");
  EXPECT_FALSE(known.exact_for_every_input_size);
  EXPECT_EQ(callee(planned("nn.Upsample(scale_factor=1.5, mode='bilinear')", std::vector<int64_t>{1, 2, 5, 4})),
            "convbridge.SeparableResize");
  EXPECT_EQ(callee(planned("nn.Upsample(scale_factor=2, mode='trilinear')")), "convbridge.SeparableResize");
}

TEST(ResizingPlan, KerasToTorchChoices) {
  EXPECT_EQ(callee(planned("keras.layers.UpSampling2D()")), "nn.Upsample");
  const LayerPlan far = planned("keras.layers.UpSampling1D(41)");
  EXPECT_EQ(python_literal(far.steps[0].call.arguments[1].value), "'nearest-exact'");
  const LayerPlan nearest = planned("tf.image.resize(x, (8, 9), method='nearest')");
  EXPECT_EQ(python_literal(nearest.steps[0].call.arguments[1].value), "'nearest-exact'");
  EXPECT_EQ(callee(planned("keras.layers.Resizing(4, 5)")), "nn.Upsample");
  EXPECT_EQ(callee(planned("keras.layers.Resizing(4, 5, antialias=True)")), "convbridge.Interpolate");
  EXPECT_EQ(callee(planned("keras.layers.UpSampling2D(interpolation='bicubic')")), "convbridge.SeparableResize");
}

TEST(ResizingPlan, DescribeSaysTheConvention) {
  const std::string text = describe_op(parsed("nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)"));
  EXPECT_NE(text.find("align_corners (x * (in - 1) / (out - 1))"), std::string::npos) << text;
  EXPECT_NE(describe_op(parsed("tf.image.resize(x, (3, 3), 'bicubic')")).find("A = -0.5"), std::string::npos);
}

// ---- the hostile catalogue ----

ErrorCode code_of(const std::string& name) {
  if (name == "syntax") return ErrorCode::syntax;
  if (name == "unknown_argument") return ErrorCode::unknown_argument;
  if (name == "invalid_argument") return ErrorCode::invalid_argument;
  if (name == "input_shape") return ErrorCode::input_shape;
  if (name == "overflow") return ErrorCode::overflow;
  return ErrorCode::unsupported;
}

TEST(ResizingCatalogue, EveryEntryIsRejectedAsWritten) {
  std::ifstream file(CONVBRIDGE_RESIZING_CATALOGUE);
  ASSERT_TRUE(file) << CONVBRIDGE_RESIZING_CATALOGUE;
  const nlohmann::json entries = nlohmann::json::parse(file);
  ASSERT_GE(entries.size(), 20u);
  for (const auto& entry : entries) {
    const std::string name = entry.at("name");
    const std::string stage = entry.at("stage");
    auto layer = parse_op_layer(entry.at("layer").get<std::string>());
    std::optional<Error> error;
    if (stage == "parse") {
      if (!layer.ok()) error = layer.error();
    } else {
      ASSERT_TRUE(layer.ok()) << name << ": " << layer.error().message;
      std::optional<std::vector<int64_t>> shape;
      if (entry.contains("input_shape")) {
        auto parsed_shape = parse_input_shape(entry["input_shape"].get<std::string>(), /*allow_unknown=*/true);
        ASSERT_TRUE(parsed_shape.ok()) << name;
        shape = *parsed_shape;
      }
      auto plan = plan_op_layer(*layer, shape);
      if (!plan.ok()) error = plan.error();
    }
    ASSERT_TRUE(error.has_value()) << name << " was accepted";
    EXPECT_EQ(error->code, code_of(entry.at("code"))) << name << ": " << error->message;
    EXPECT_NE(error->message.find(entry.at("fragment").get<std::string>()), std::string::npos)
        << name << ": " << error->message;
  }
}

}  // namespace
}  // namespace convbridge
