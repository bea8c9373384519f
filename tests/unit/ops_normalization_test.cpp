// The normalization family: parsing (accepted forms, rejected forms and their messages), shape math, the reference
// engine on hand-computed cases, plans in both directions, and every entry of tests/hostile/catalogue_normalization.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"

#ifndef CONVBRIDGE_NORMALIZATION_CATALOGUE
#error "CONVBRIDGE_NORMALIZATION_CATALOGUE must name tests/hostile/catalogue_normalization.json"
#endif

namespace convbridge {
namespace {

OpLayer parsed(const std::string& text) {
  auto layer = parse_op_layer(text);
  EXPECT_TRUE(layer.ok()) << text << ": " << (layer.ok() ? "" : layer.error().message);
  return layer.ok() ? *layer : OpLayer{};
}

void expect_rejected(const std::string& text, ErrorCode code, const std::string& fragment) {
  auto layer = parse_op_layer(text);
  ASSERT_FALSE(layer.ok()) << text << " was accepted";
  EXPECT_EQ(layer.error().code, code) << text << ": " << layer.error().message;
  EXPECT_NE(layer.error().message.find(fragment), std::string::npos)
      << text << ": '" << layer.error().message << "' lacks '" << fragment << "'";
}

// ---- parsing ----------------------------------------------------------------------------------------------------

TEST(NormalizationParse, BatchNormDefaultsAndPositionalForms) {
  const auto bn = std::get<BatchNormOp>(parsed("nn.BatchNorm2d(16)").op);
  EXPECT_EQ(bn.channels, 16);
  EXPECT_EQ(bn.epsilon, 1e-5);
  EXPECT_EQ(bn.momentum_torch, 0.1);
  EXPECT_TRUE(bn.scale && bn.center);
  EXPECT_FALSE(bn.use_batch_statistics);
  EXPECT_EQ(bn.rank, 2);
  const auto all = std::get<BatchNormOp>(parsed("torch.nn.BatchNorm3d(8, 0.001, None, False, False, 'cpu', torch.float32)").op);
  EXPECT_EQ(all.rank, 3);
  EXPECT_EQ(all.epsilon, 1e-3);
  EXPECT_TRUE(all.cumulative_average);
  EXPECT_FALSE(all.scale || all.center);
  EXPECT_TRUE(all.use_batch_statistics);
  const auto keywords = std::get<BatchNormOp>(
      parsed("BatchNorm1d(num_features=4, eps=0, momentum=1, affine=True, track_running_stats=True)").op);
  EXPECT_EQ(keywords.epsilon, 0.0);
  EXPECT_EQ(keywords.momentum_torch, 1.0);
}

TEST(NormalizationParse, InstanceNormIsGroupPerChannelOrBatchNormWithRunningStats) {
  const auto in = std::get<NormOp>(parsed("nn.InstanceNorm2d(6)").op);
  EXPECT_EQ(in.axes, NormAxes::group);
  EXPECT_EQ(in.groups, 0);
  EXPECT_FALSE(in.scale || in.center);  // affine=False by default
  const auto tracked = parsed("nn.InstanceNorm1d(6, 1e-3, 0.2, True, True)");
  const auto bn = std::get<BatchNormOp>(tracked.op);
  EXPECT_EQ(bn.momentum_torch, 0.2);
  EXPECT_TRUE(bn.scale);
  EXPECT_FALSE(tracked.notes.empty());
}

TEST(NormalizationParse, GroupNormAndLayerNorm) {
  const auto gn = std::get<NormOp>(parsed("nn.GroupNorm(4, 12, 1e-6, False)").op);
  EXPECT_EQ(gn.groups, 4);
  EXPECT_EQ(gn.channels, 12);
  EXPECT_EQ(gn.epsilon, 1e-6);
  EXPECT_FALSE(gn.scale);
  const auto ln = std::get<NormOp>(parsed("nn.LayerNorm([3, 4, 5], elementwise_affine=True, bias=False)").op);
  EXPECT_EQ(ln.axes, NormAxes::trailing);
  EXPECT_EQ(ln.normalized_shape, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_TRUE(ln.scale);
  EXPECT_FALSE(ln.center);
  EXPECT_EQ(std::get<NormOp>(parsed("nn.LayerNorm(7)").op).normalized_shape, std::vector<int64_t>{7});
}

TEST(NormalizationParse, KerasLayersAndTheirConfigKeys) {
  const auto bn = std::get<BatchNormOp>(parsed("keras.layers.BatchNormalization()").op);
  EXPECT_EQ(bn.channels, 0);
  EXPECT_EQ(bn.epsilon, 1e-3);
  EXPECT_EQ(bn.momentum_torch, 0.01);  // 1 - 0.99, as a decimal
  EXPECT_EQ(bn.rank, 0);
  // What BatchNormalization.get_config() returns, minus the dicts the adapter drops.
  const auto config = parsed(
      "keras.layers.BatchNormalization(axis=-1, momentum=0.9, epsilon=1.001e-05, center=True, scale=False, "
      "beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, synchronized=False, "
      "renorm=False, renorm_clipping=None, renorm_momentum=0.99, beta_initializer=keras.initializers.Zeros())");
  EXPECT_EQ(std::get<BatchNormOp>(config.op).epsilon, 1.001e-05);
  EXPECT_FALSE(std::get<BatchNormOp>(config.op).scale);
  EXPECT_EQ(std::get<BatchNormOp>(parsed("layers.BatchNormalization(3)").op).rank, 2);  // axis=3: 4-D input
  const auto gn = std::get<NormOp>(parsed("keras.layers.GroupNormalization(groups=-1, axis=-1, epsilon=0.001, "
                                          "center=True, scale=True, beta_regularizer=None, gamma_regularizer=None, "
                                          "beta_constraint=None, gamma_constraint=None)").op);
  EXPECT_EQ(gn.groups, 0);
  const auto ln = std::get<NormOp>(parsed("keras.layers.LayerNormalization(axis=[-1], epsilon=0.001, center=True, "
                                          "scale=True, rms_scaling=False, beta_regularizer=None, "
                                          "gamma_regularizer=None, beta_constraint=None, gamma_constraint=None)").op);
  EXPECT_EQ(ln.axes, NormAxes::channel);
  const auto declared = parsed("keras.layers.BatchNormalization(input_shape=(None, 5, 3))");
  EXPECT_EQ(declared.declared_input_shape, (std::vector<int64_t>{kUnknownSize, 5, 3}));
}

TEST(NormalizationParse, RejectedForms) {
  expect_rejected("nn.BatchNorm2d()", ErrorCode::invalid_argument, "missing the required argument 'num_features'");
  expect_rejected("nn.BatchNorm2d(0)", ErrorCode::invalid_argument, "num_features=0 must be a positive int");
  expect_rejected("nn.BatchNorm2d(3.0)", ErrorCode::invalid_argument, "num_features=3.0 must be an int");
  expect_rejected("nn.BatchNorm2d(4, eps='a')", ErrorCode::invalid_argument, "eps='a' must be a float");
  expect_rejected("nn.BatchNorm2d(4, eps=-1.0)", ErrorCode::unsupported, "eps=-1");
  expect_rejected("nn.BatchNorm2d(4, affine=1)", ErrorCode::invalid_argument, "affine=1 must be True or False");
  expect_rejected("nn.BatchNorm2d(4, epsilon=1e-3)", ErrorCode::unknown_argument, "did you mean 'eps'?");
  expect_rejected("nn.BatchNorm2d(4, dtype=torch.float64)", ErrorCode::unsupported, "dtype=torch.float64");
  expect_rejected("nn.GroupNorm(4, 6)", ErrorCode::invalid_argument, "num_channels must be divisible by num_groups");
  expect_rejected("nn.GroupNorm(0, 6)", ErrorCode::invalid_argument, "num_groups=0 must be a positive int");
  expect_rejected("nn.LayerNorm((4, 0))", ErrorCode::invalid_argument, "normalized_shape=(4, 0) must hold positive");
  expect_rejected("nn.LayerNorm('a')", ErrorCode::invalid_argument, "normalized_shape='a' must be an int or a tuple");
  expect_rejected("keras.layers.GroupNormalization(groups=0)", ErrorCode::invalid_argument,
                  "Received: groups=0");
  expect_rejected("keras.layers.BatchNormalization(axis=1)", ErrorCode::unsupported, "BatchNormalization(axis=1)");
  expect_rejected("keras.layers.BatchNormalization(renorm=True)", ErrorCode::unsupported, "renorm=True");
  expect_rejected("keras.layers.LayerNormalization(rms_scaling=True)", ErrorCode::unsupported, "rms_scaling=True");
  expect_rejected("keras.layers.LayerNormalization(axis=[1, 2, 3])", ErrorCode::unsupported,
                  "LayerNormalization(axis=[1, 2, 3])");
  expect_rejected("keras.layers.LayerNormalization(eps=1e-5)", ErrorCode::unknown_argument,
                  "did you mean 'epsilon'?");
}

// ---- shape math ---------------------------------------------------------------------------------------------------

TEST(NormalizationShapes, RanksChannelsAndTrailingSizes) {
  BatchNormOp bn;
  bn.channels = 3;
  bn.rank = 2;
  EXPECT_EQ(*output_shape(bn, std::vector<int64_t>{2, 3, 5, 7}), (std::vector<int64_t>{2, 3, 5, 7}));
  auto wrong_rank = output_shape(bn, std::vector<int64_t>{2, 3, 5});
  ASSERT_FALSE(wrong_rank.ok());
  EXPECT_NE(wrong_rank.error().message.find("expected 4D input (got 3D input)"), std::string::npos);
  EXPECT_FALSE(output_shape(bn, std::vector<int64_t>{2, 4, 5, 7}).ok());
  bn.rank = 1;  // BatchNorm1d: (N, C) or (N, C, L)
  EXPECT_TRUE(output_shape(bn, std::vector<int64_t>{2, 3}).ok());
  EXPECT_TRUE(output_shape(bn, std::vector<int64_t>{2, 3, 9}).ok());
  EXPECT_FALSE(output_shape(bn, std::vector<int64_t>{2, 3, 9, 9}).ok());

  NormOp ln;
  ln.axes = NormAxes::trailing;
  ln.normalized_shape = {5, 7};
  EXPECT_TRUE(output_shape(ln, std::vector<int64_t>{1, 3, 5, 7}).ok());
  auto mismatch = output_shape(ln, std::vector<int64_t>{1, 3, 7, 5});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message.find("expected input with shape [*, 5, 7]"), std::string::npos);

  NormOp gn;
  gn.groups = 32;  // Keras GroupNormalization() on 16 channels
  auto too_many = output_shape(gn, std::vector<int64_t>{1, 16, 4, 4});
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message.find("Number of groups (32) cannot be more than the number of channels (16)"),
            std::string::npos);
  gn.groups = 3;
  EXPECT_FALSE(output_shape(gn, std::vector<int64_t>{1, 16, 4, 4}).ok());
  auto huge = output_shape(gn, std::vector<int64_t>{int64_t{1} << 40, 3, int64_t{1} << 40, 4});
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().message.find("64 bits"), std::string::npos);
}

// ---- engine -------------------------------------------------------------------------------------------------------

Tensor tensor(std::vector<int64_t> shape, std::vector<double> data) { return Tensor{std::move(shape), std::move(data)}; }

void expect_near_all(const Tensor& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.data.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(actual.data[i], expected[i], 1e-12) << "at " << i;
}

TEST(NormalizationEngine, BatchNormWithRunningStatistics) {
  BatchNormOp bn;
  bn.channels = 2;
  bn.epsilon = 0.0;
  // x: (1, 2, 2): channel 0 [1, 3], channel 1 [2, 6]; mean (1, 2), var (4, 16), gamma (2, 1), beta (0, 1).
  const Tensor x = tensor({1, 2, 2}, {1, 3, 2, 6});
  const std::vector<Tensor> w = {tensor({2}, {2, 1}), tensor({2}, {0, 1}), tensor({2}, {1, 2}), tensor({2}, {4, 16})};
  auto y = run_op(bn, x, w);
  ASSERT_TRUE(y.ok()) << y.error().message;
  // channel 0: (1-1)/2*2 = 0, (3-1)/2*2 = 2; channel 1: (2-2)/4+1 = 1, (6-2)/4+1 = 2.
  expect_near_all(*y, {0, 2, 1, 2});
}

TEST(NormalizationEngine, BatchStatisticsUseBiasedVarianceOverBatchAndPositions) {
  BatchNormOp bn;
  bn.channels = 1;
  bn.epsilon = 0.0;
  bn.scale = bn.center = false;
  bn.use_batch_statistics = true;
  // values 0, 2 (sample 0) and 4, 6 (sample 1): mean 3, biased var (9+1+1+9)/4 = 5.
  auto y = run_op(bn, tensor({2, 1, 2}, {0, 2, 4, 6}), {});
  ASSERT_TRUE(y.ok()) << y.error().message;
  const double s = std::sqrt(5.0);
  expect_near_all(*y, {-3 / s, -1 / s, 1 / s, 3 / s});
}

TEST(NormalizationEngine, GroupNormContiguousGroups) {
  NormOp gn;
  gn.groups = 2;
  gn.channels = 4;
  gn.epsilon = 0.0;
  gn.scale = gn.center = false;
  // (1, 4, 1): channels [0, 2 | 10, 30]: group 0 mean 1 var 1, group 1 mean 20 var 100.
  auto y = run_op(gn, tensor({1, 4, 1}, {0, 2, 10, 30}), {});
  ASSERT_TRUE(y.ok()) << y.error().message;
  expect_near_all(*y, {-1, 1, -1, 1});
}

TEST(NormalizationEngine, InstanceChannelAndTrailing) {
  NormOp instance;
  instance.groups = 0;
  instance.epsilon = 0.0;
  instance.scale = instance.center = false;
  // (1, 2, 2): channel 0 [1, 3] -> [-1, 1]; channel 1 [5, 5] -> var 0, eps 0: 0/0. Use eps 1 for channel 1 sanity.
  instance.epsilon = 1.0;
  auto yi = run_op(instance, tensor({1, 2, 2}, {1, 3, 5, 5}), {});
  ASSERT_TRUE(yi.ok());
  expect_near_all(*yi, {-1 / std::sqrt(2.0), 1 / std::sqrt(2.0), 0, 0});

  NormOp channel;
  channel.axes = NormAxes::channel;
  channel.epsilon = 0.0;
  // (1, 2, 2): position 0 holds channels (0, 4), position 1 (1, 1)+eps... use (2, 6): mean 4, var 4.
  const std::vector<Tensor> w = {tensor({2}, {1, 3}), tensor({2}, {0, 10})};
  auto yc = run_op(channel, tensor({1, 2, 2}, {0, 2, 4, 6}), w);
  ASSERT_TRUE(yc.ok()) << yc.error().message;
  // position 0: (0, 4) -> (-1, 1) -> gamma/beta (-1, 13); position 1: (2, 6) -> (-1, 1) -> (-1, 13).
  expect_near_all(*yc, {-1, -1, 13, 13});

  NormOp trailing;
  trailing.axes = NormAxes::trailing;
  trailing.normalized_shape = {2};
  trailing.epsilon = 0.0;
  const std::vector<Tensor> wt = {tensor({2}, {1, 2}), tensor({2}, {0, 0})};
  // (1, 2, 2): over W per (n, c): [0, 2] -> (-1, 1) -> (-1, 2); [4, 6] -> (-1, 2).
  auto yt = run_op(trailing, tensor({1, 2, 2}, {0, 2, 4, 6}), wt);
  ASSERT_TRUE(yt.ok()) << yt.error().message;
  expect_near_all(*yt, {-1, 2, -1, 2});
}

// ---- plans --------------------------------------------------------------------------------------------------------

LayerPlan plan_of(const std::string& text, std::optional<std::vector<int64_t>> shape = std::nullopt) {
  auto layer = parse_op_layer(text);
  EXPECT_TRUE(layer.ok()) << text << ": " << (layer.ok() ? "" : layer.error().message);
  auto plan = plan_op_layer(*layer, shape);
  EXPECT_TRUE(plan.ok()) << text << ": " << (plan.ok() ? "" : plan.error().message);
  return plan.ok() ? *plan : LayerPlan{};
}

void expect_verified(const LayerPlan& plan) {
  auto report = verify_plan(plan, 0, int64_t{1} << 26);
  ASSERT_TRUE(report.ok()) << report.error().message;
  ASSERT_FALSE(report->cases.empty()) << report->skipped_reason;
  for (const auto& c : report->cases) {
    EXPECT_TRUE(c.shapes_match);
    EXPECT_LT(c.max_abs_diff, 1e-12);
  }
}

std::string argument_text(const FrameworkCall& call, const std::string& keyword) {
  for (const auto& a : call.arguments) {
    if (a.keyword == keyword) return python_literal(a.value);
  }
  return "<absent>";
}

TEST(NormalizationPlans, KerasBatchNormalizationWithoutShapeIsBatchNorm2d) {
  const LayerPlan plan = plan_of("keras.layers.BatchNormalization()");
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(python_call_text(plan.steps[0].call),
            "nn.BatchNorm2d(channels, eps=0.001, momentum=0.01, affine=True, track_running_stats=True)");
  ASSERT_EQ(plan.source_weights.size(), 4u);
  EXPECT_EQ(plan.source_weights[3].name, "moving_variance");
  EXPECT_EQ(plan.steps[0].weights[3].name, "running_var");
  expect_verified(plan);
}

TEST(NormalizationPlans, KerasCenterOnlyNeedsAFrozenUnitWeight) {
  const LayerPlan plan = plan_of("keras.layers.BatchNormalization(center=True, scale=False)", std::vector<int64_t>{2, 5, 3});
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(plan.steps[0].call.callee, "nn.BatchNorm1d");
  EXPECT_EQ(argument_text(plan.steps[0].call, "affine"), "True");
  const auto& weight = plan.steps[0].weights[0];
  EXPECT_EQ(weight.name, "weight");
  EXPECT_EQ(weight.neutral_index, -1);
  EXPECT_EQ(weight.fill, 1.0);
  bool noted = false;
  for (const auto& note : plan.notes) noted |= note.find("requires_grad_(False)") != std::string::npos;
  EXPECT_TRUE(noted);
  expect_verified(plan);
}

TEST(NormalizationPlans, TorchBatchNormToKerasCopiesEpsAndMapsMomentum) {
  const LayerPlan plan = plan_of("nn.BatchNorm2d(8, eps=1.001e-05, momentum=0.1)");
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(python_call_text(plan.steps[0].call),
            "keras.layers.BatchNormalization(axis=-1, momentum=0.9, epsilon=1.001e-05, center=True, scale=True)");
  ASSERT_TRUE(plan.steps[0].function.has_value());
  EXPECT_EQ(python_call_text(*plan.steps[0].function),
            "tf.nn.batch_normalization(x, mean=moving_mean, variance=moving_variance, offset=beta, scale=gamma, "
            "variance_epsilon=1.001e-05)");
  const std::vector<std::string> names = {"gamma", "beta", "moving_mean", "moving_variance"};
  ASSERT_EQ(plan.steps[0].weights.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(plan.steps[0].weights[i].name, names[i]);
  expect_verified(plan);
}

TEST(NormalizationPlans, CumulativeMomentumIsRefusedForKeras) {
  auto layer = parse_op_layer("nn.BatchNorm2d(8, momentum=None)");
  ASSERT_TRUE(layer.ok());
  auto plan = plan_op_layer(*layer, std::nullopt);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::unsupported);
  EXPECT_NE(plan.error().message.find("momentum=None"), std::string::npos);
}

TEST(NormalizationPlans, BatchStatisticsUseOurKerasLayer) {
  const LayerPlan plan = plan_of("nn.BatchNorm2d(3, track_running_stats=False)");
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(plan.steps[0].call.callee, "convbridge.BatchStatisticsNormalization");
  EXPECT_EQ(plan.steps[0].helpers, std::vector<std::string>{"BatchStatisticsNormalization"});
  expect_verified(plan);
}

TEST(NormalizationPlans, LayerNormOverChwNeedsTheShapeAndPermutesGamma) {
  auto layer = parse_op_layer("nn.LayerNorm((4, 5, 6))");
  ASSERT_TRUE(layer.ok());
  auto without = plan_op_layer(*layer, std::nullopt);
  ASSERT_FALSE(without.ok());
  EXPECT_EQ(without.error().code, ErrorCode::input_shape);
  EXPECT_NE(without.error().message.find("needs the input shape"), std::string::npos);
  const LayerPlan plan = plan_of("nn.LayerNorm((4, 5, 6))", std::vector<int64_t>{2, 4, 5, 6});
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(argument_text(plan.steps[0].call, "axis"), "(1, 2, 3)");
  const auto& gamma = plan.steps[0].weights[0].from_neutral;
  EXPECT_EQ(gamma.permutation, (std::vector<int>{1, 2, 0}));
  EXPECT_EQ(gamma.to_shape, (std::vector<int64_t>{5, 6, 4}));
  EXPECT_FALSE(plan.exact_for_every_input_size);
  expect_verified(plan);
  const LayerPlan w_only = plan_of("nn.LayerNorm(6)", std::vector<int64_t>{2, 4, 5, 6});
  EXPECT_EQ(argument_text(w_only.steps[0].call, "axis"), "(2,)");
  expect_verified(w_only);
}

TEST(NormalizationPlans, GroupInstanceAndChannelNorms) {
  const LayerPlan gn = plan_of("nn.GroupNorm(2, 6)");
  EXPECT_EQ(python_call_text(gn.steps[0].call),
            "keras.layers.GroupNormalization(groups=2, axis=-1, epsilon=1e-05, center=True, scale=True)");
  expect_verified(gn);
  const LayerPlan in = plan_of("nn.InstanceNorm2d(6, affine=True)");
  EXPECT_EQ(argument_text(in.steps[0].call, "groups"), "-1");
  expect_verified(in);
  const LayerPlan keras_in = plan_of("keras.layers.GroupNormalization(groups=-1)", std::vector<int64_t>{1, 4, 4, 5});
  EXPECT_EQ(python_call_text(keras_in.steps[0].call), "nn.GroupNorm(5, 5, eps=0.001, affine=True)");
  expect_verified(keras_in);
  const LayerPlan channel = plan_of("keras.layers.LayerNormalization(center=False)");
  EXPECT_EQ(channel.steps[0].call.callee, "convbridge.ChannelsLayerNorm");
  EXPECT_EQ(argument_text(channel.steps[0].call, "bias"), "False");
  expect_verified(channel);
  const LayerPlan flat = plan_of("keras.layers.LayerNormalization()", std::vector<int64_t>{3, 7});
  EXPECT_EQ(flat.steps[0].call.callee, "nn.LayerNorm");
  expect_verified(flat);
}

// ---- the hostile catalogue ----------------------------------------------------------------------------------------

ErrorCode code_named(const std::string& name) {
  if (name == "syntax") return ErrorCode::syntax;
  if (name == "unknown_argument") return ErrorCode::unknown_argument;
  if (name == "invalid_argument") return ErrorCode::invalid_argument;
  if (name == "input_shape") return ErrorCode::input_shape;
  if (name == "overflow") return ErrorCode::overflow;
  if (name == "unsupported") return ErrorCode::unsupported;
  ADD_FAILURE() << "unknown error code " << name;
  return ErrorCode::syntax;
}

// Found by fuzz_op_layer: epsilon=0 over one channel is 0/0 = NaN in the source and in the target alike; the
// reference engine must count equal NaNs as agreement, not as an infinite difference.
TEST(NormalizationPlans, EpsilonZeroOverOneChannelIsNanOnBothSidesAndVerifies) {
  const LayerPlan plan = plan_of("keras.layers.LayerNormalization(epsilon=0e-6)",
                                 std::vector<int64_t>{kUnknownSize, kUnknownSize, kUnknownSize, 1});
  expect_verified(plan);
}

TEST(NormalizationCatalogue, EveryEntryIsRejectedAsItSays) {
  std::ifstream file(CONVBRIDGE_NORMALIZATION_CATALOGUE);
  ASSERT_TRUE(file) << CONVBRIDGE_NORMALIZATION_CATALOGUE;
  const auto entries = nlohmann::json::parse(file);
  ASSERT_GE(entries.size(), 20u);
  for (const auto& entry : entries) {
    const std::string name = entry.at("name");
    const std::string stage = entry.at("stage");
    SCOPED_TRACE(name);
    auto layer = parse_op_layer(entry.at("layer").get<std::string>());
    Error error{ErrorCode::syntax, ""};
    bool rejected = false;
    if (stage == "parse") {
      rejected = !layer.ok();
      if (rejected) error = layer.error();
    } else {
      ASSERT_EQ(stage, "plan");
      ASSERT_TRUE(layer.ok()) << layer.error().message;
      std::optional<std::vector<int64_t>> shape;
      if (entry.contains("input_shape")) {
        auto parsed_shape = parse_input_shape(entry.at("input_shape").get<std::string>(), /*allow_unknown=*/true);
        ASSERT_TRUE(parsed_shape.ok()) << parsed_shape.error().message;
        shape = *parsed_shape;
      }
      auto plan = plan_op_layer(*layer, shape);
      rejected = !plan.ok();
      if (rejected) error = plan.error();
    }
    ASSERT_TRUE(rejected) << "accepted";
    EXPECT_EQ(error.code, code_named(entry.at("code"))) << error.message;
    EXPECT_NE(error.message.find(entry.at("fragment").get<std::string>()), std::string::npos)
        << "'" << error.message << "' lacks '" << entry.at("fragment").get<std::string>() << "'";
  }
}

}  // namespace
}  // namespace convbridge
