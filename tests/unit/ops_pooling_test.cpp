// The pooling family: parsing (PyTorch, Keras, tf.nn), shape math and the reference engine on hand-computed cases,
// the plans of the issue's examples (and each plan kind), and the hostile catalogue tests/hostile/
// catalogue_pooling.json. Expected values are worked out by hand in the comments, not taken from the code.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"

#ifndef CONVBRIDGE_POOLING_CATALOGUE
#error "CONVBRIDGE_POOLING_CATALOGUE must name tests/hostile/catalogue_pooling.json"
#endif

namespace convbridge {
namespace {

OpLayer parsed(const std::string& text) {
  auto layer = parse_op_layer(text);
  EXPECT_TRUE(layer.ok()) << text << ": " << (layer.ok() ? "" : layer.error().message);
  return layer.ok() ? *layer : OpLayer{};
}

PoolOp pool_of(const std::string& text) { return std::get<PoolOp>(parsed(text).op); }

std::string error_of(const std::string& text) {
  auto layer = parse_op_layer(text);
  EXPECT_FALSE(layer.ok()) << text << " parsed";
  return layer.ok() ? "" : layer.error().message;
}

std::optional<std::vector<int64_t>> shape(std::vector<int64_t> s) { return s; }

LayerPlan plan_of(const std::string& text, std::optional<std::vector<int64_t>> input = std::nullopt) {
  auto plan = plan_op_layer(parsed(text), input);
  EXPECT_TRUE(plan.ok()) << text << ": " << (plan.ok() ? "" : plan.error().message);
  if (!plan.ok()) return LayerPlan{};
  auto report = verify_plan(*plan, 7);
  EXPECT_TRUE(report.ok() && report->passed()) << text << ": the reference engine disagrees with the plan";
  return *plan;
}

std::vector<std::string> callees(const LayerPlan& plan) {
  std::vector<std::string> out;
  for (const TargetStep& step : plan.steps) out.push_back(step.call.callee);
  return out;
}

std::string call_of(const TargetStep& step) { return python_call_text(step.call); }

Tensor tensor(std::vector<int64_t> s, std::vector<double> data) { return Tensor{std::move(s), std::move(data)}; }

std::vector<double> run(const Op& op, const Tensor& input) {
  auto out = run_op(op, input, {});
  EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.error().message);
  return out.ok() ? out->data : std::vector<double>{};
}

// ---- parsing ----------------------------------------------------------------------------------------------------

TEST(PoolingParse, MaxPoolPositionalAndKeywordForms) {
  const PoolOp a = pool_of("nn.MaxPool2d(3, 2, 1, 1, False, True)");
  EXPECT_EQ(a.kernel, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(a.stride, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a.pads, (std::vector<PadPair>{{1, 1}, {1, 1}}));
  EXPECT_TRUE(a.ceil_mode);
  const PoolOp b = pool_of("torch.nn.MaxPool2d(kernel_size=(3, 2), stride=None, padding=(1, 0), dilation=(2, 1))");
  EXPECT_EQ(b.stride, (std::vector<int64_t>{3, 2}));  // stride=None: the kernel size
  EXPECT_EQ(b.dilation, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(b.pads, (std::vector<PadPair>{{1, 1}, {0, 0}}));
  EXPECT_EQ(pool_of("nn.MaxPool1d(4, stride=())").stride, (std::vector<int64_t>{4}));  // stride=() also the kernel
  EXPECT_EQ(pool_of("nn.MaxPool3d((2,))").kernel, (std::vector<int64_t>{2, 2, 2}));   // a 1-tuple broadcasts
  const PoolOp f = pool_of("F.max_pool2d(x, 3, 2, 1, 1, True)");  // functional: ceil_mode before return_indices
  EXPECT_TRUE(f.ceil_mode);
}

TEST(PoolingParse, AvgPoolDivisors) {
  EXPECT_EQ(pool_of("nn.AvgPool2d(3)").divisor, AverageDivisor::window_clipped_to_padding);  // default True
  EXPECT_EQ(pool_of("nn.AvgPool2d(3, 1, 1, False, False)").divisor, AverageDivisor::valid_elements);
  const PoolOp fixed = pool_of("nn.AvgPool3d(2, divisor_override=-3)");  // PyTorch accepts negative divisors
  EXPECT_EQ(fixed.divisor, AverageDivisor::fixed);
  EXPECT_EQ(fixed.divisor_override, -3);
  EXPECT_EQ(pool_of("F.avg_pool1d(x, 3, count_include_pad=False)").divisor, AverageDivisor::valid_elements);
}

TEST(PoolingParse, AdaptiveAndGlobal) {
  const auto a = std::get<AdaptivePoolOp>(parsed("nn.AdaptiveAvgPool2d((None, 3))").op);
  EXPECT_EQ(a.output_size, (std::vector<int64_t>{kUnknownSize, 3}));
  const auto b = std::get<AdaptivePoolOp>(parsed("nn.AdaptiveMaxPool3d(2, return_indices=False)").op);
  EXPECT_EQ(b.output_size, (std::vector<int64_t>{2, 2, 2}));
  const auto g = std::get<AdaptivePoolOp>(parsed("keras.layers.GlobalAveragePooling2D()").op);
  EXPECT_FALSE(g.keep_dims);
  EXPECT_EQ(g.output_size, (std::vector<int64_t>{1, 1}));
  const auto k = std::get<AdaptivePoolOp>(parsed("keras.layers.AdaptiveMaxPooling1D(output_size=(5,))").op);
  EXPECT_EQ(k.output_size, (std::vector<int64_t>{5}));
}

TEST(PoolingParse, KerasAndTfForms) {
  const PoolOp k = pool_of("keras.layers.MaxPooling2D()");  // pool_size defaults to 2, strides to pool_size
  EXPECT_EQ(k.kernel, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(k.stride, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(pool_of("layers.AvgPool1D(3, 1, padding='SAME')").padding, PoolPadding::tf_same);  // case-insensitive
  // get_config() of a live layer, minus name/trainable/dtype dicts the Python side drops.
  const PoolOp c = pool_of("keras.layers.AveragePooling2D(pool_size=(3, 3), padding='valid', strides=(2, 2), "
                           "data_format='channels_last', name='pool', trainable=True)");
  EXPECT_EQ(c.divisor, AverageDivisor::valid_elements);
  const PoolOp t = pool_of("tf.nn.max_pool(x, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding='SAME')");
  EXPECT_EQ(t.rank, 2);
  EXPECT_EQ(t.kernel, (std::vector<int64_t>{3, 3}));
  const PoolOp p = pool_of("tf.nn.pool(x, [3], 'MAX', padding='VALID', dilations=[2])");
  EXPECT_EQ(p.dilation, (std::vector<int64_t>{2}));
  EXPECT_EQ(pool_of("tf.nn.avg_pool3d(x, 2, 2, 'VALID')").rank, 3);
}

TEST(PoolingParse, RejectionsNameTheArgument) {
  EXPECT_NE(error_of("nn.MaxPool2d(3, 1, 2)").find("pad should be at most half of effective kernel size"),
            std::string::npos);
  EXPECT_NE(error_of("nn.MaxPool2d(3, return_indices=True)").find("return_indices=True"), std::string::npos);
  EXPECT_NE(error_of("nn.AvgPool2d(3, divisor_override=0)").find("divisor must be not zero"), std::string::npos);
  EXPECT_NE(error_of("nn.AvgPool2d(2, pool_size=2)").find("'pool_size' is the Keras name"), std::string::npos);
  EXPECT_NE(error_of("keras.layers.MaxPooling2D(2, stride=2)").find("did you mean 'strides'"), std::string::npos);
  EXPECT_NE(error_of("keras.layers.MaxPooling2D(2, dilation=2)").find("tf.nn.pool"), std::string::npos);
  EXPECT_NE(error_of("tf.nn.pool(x, [2, 2], 'AVG', dilations=[2, 2])").find("no dilation"), std::string::npos);
}

// ---- shape math -------------------------------------------------------------------------------------------------

TEST(PoolingShapes, CeilModeLastWindowRule) {
  // MaxPool2d(3, 2, 1, ceil_mode=True): 55 -> floor((55 + 2 - 3 + 1) / 2) + 1 = 28 (the floor mode also gives 28);
  // 56 -> floor(57 / 2) + 1 = 29, the 29th window starts at 56 in padded coordinates < 56 + 1: kept.
  const PoolOp op = pool_of("nn.MaxPool2d(3, 2, 1, ceil_mode=True)");
  EXPECT_EQ(*pool_output_size(op, 0, 55), 28);
  EXPECT_EQ(*pool_output_size(op, 0, 56), 29);
  // pytorch#45357: MaxPool1d(2, 2, 1, ceil_mode=True) at 5: floor((5 + 2 - 2 + 1) / 2) + 1 = 4, but the 4th window
  // starts at 6 >= 5 + 1 (inside the right padding only): dropped -> 3.
  EXPECT_EQ(*pool_output_size(pool_of("nn.MaxPool1d(2, 2, 1, ceil_mode=True)"), 0, 5), 3);
  // Without padding: MaxPool1d(2, ceil_mode=True) at 5 -> ceil(3 / 2) + 1 = 3 (the last window holds one element).
  EXPECT_EQ(*pool_output_size(pool_of("nn.MaxPool1d(2, ceil_mode=True)"), 0, 5), 3);
  EXPECT_EQ(*pool_output_size(pool_of("nn.MaxPool1d(2)"), 0, 5), 2);
}

TEST(PoolingShapes, TfSameAndDilation) {
  const PoolOp same = pool_of("keras.layers.MaxPooling1D(3, 2, padding='same')");
  EXPECT_EQ(*pool_output_size(same, 0, 5), 3);  // ceil(5 / 2)
  // need = (3 - 1) * 2 + 3 - 5 = 2 -> (1, 1); at 6: need = 2 * 2 + 3 - 6 = 1 -> (0, 1), the odd one after.
  EXPECT_EQ(*pool_pads(same, 0, 5), (PadPair{1, 1}));
  EXPECT_EQ(*pool_pads(same, 0, 6), (PadPair{0, 1}));
  // MaxPool1d(3, 1, dilation=2): extent 5, 7 -> 3.
  EXPECT_EQ(*pool_output_size(pool_of("nn.MaxPool1d(3, 1, dilation=2)"), 0, 7), 3);
  auto too_small = output_shape(pool_of("nn.MaxPool2d(3, dilation=3)"), std::vector<int64_t>{1, 1, 6, 9});
  ASSERT_FALSE(too_small.ok());
  EXPECT_NE(too_small.error().message.find("axis H of size 6"), std::string::npos);  // extent 7 > 6
}

TEST(PoolingShapes, AdaptiveWindowsOverlap) {
  // 5 -> 3: [0, 2), [1, 4), [3, 5) (floor(i*5/3), ceil((i+1)*5/3)).
  EXPECT_EQ(adaptive_start(1, 5, 3), 1);
  EXPECT_EQ(adaptive_end(1, 5, 3), 4);
  EXPECT_EQ(adaptive_start(2, 5, 3), 3);
  EXPECT_EQ(adaptive_end(2, 5, 3), 5);
  const auto op = std::get<AdaptivePoolOp>(parsed("nn.AdaptiveAvgPool2d((None, 3))").op);
  EXPECT_EQ(*output_shape(op, std::vector<int64_t>{2, 4, 9, 10}), (std::vector<int64_t>{2, 4, 9, 3}));
  const auto global = std::get<AdaptivePoolOp>(parsed("keras.layers.GlobalMaxPooling3D()").op);
  EXPECT_EQ(*output_shape(global, std::vector<int64_t>{2, 4, 3, 3, 3}), (std::vector<int64_t>{2, 4}));
}

// ---- reference engine -------------------------------------------------------------------------------------------

TEST(PoolingEngine, MaxPoolPadsWithMinusInfinity) {
  // MaxPool1d(3, 2, 1, ceil_mode=True) on [1, -2, 3, -4, 5, -6]: 4 windows starting at -1, 1, 3, 5:
  // max(1, -2) = 1, max(-2, 3, -4) = 3, max(-4, 5, -6) = 5, max(-6) = -6 (zero padding would give 0).
  const Tensor x = tensor({1, 1, 6}, {1, -2, 3, -4, 5, -6});
  EXPECT_EQ(run(pool_of("nn.MaxPool1d(3, 2, 1, ceil_mode=True)"), x), (std::vector<double>{1, 3, 5, -6}));
  // Dilated: MaxPool1d(2, 1, dilation=3) on 6 elements: pairs (0, 3), (1, 4), (2, 5) -> 1, 5, 3.
  EXPECT_EQ(run(pool_of("nn.MaxPool1d(2, 1, dilation=3)"), x), (std::vector<double>{1, 5, 3}));
}

TEST(PoolingEngine, AverageDivisors) {
  // AvgPool1d(3, 2, 1, ceil_mode=True) on [1..6]: windows start -1, 1, 3, 5.
  const Tensor x = tensor({1, 1, 6}, {1, 2, 3, 4, 5, 6});
  // count_include_pad=True: (0+1+2)/3, (2+3+4)/3, (4+5+6)/3, and the tail [5, 8) clipped to 6 + 1: (6+0)/2.
  EXPECT_EQ(run(pool_of("nn.AvgPool1d(3, 2, 1, ceil_mode=True)"), x), (std::vector<double>{1, 3, 5, 3}));
  // count_include_pad=False: 3/2, 9/3, 15/3, 6/1.
  EXPECT_EQ(run(pool_of("nn.AvgPool1d(3, 2, 1, ceil_mode=True, count_include_pad=False)"), x),
            (std::vector<double>{1.5, 3, 5, 6}));
  // divisor_override=3 on a 2x2 window of 1, 2, 3, 4: 10 / 3.
  const auto fixed = run(pool_of("nn.AvgPool2d(2, divisor_override=3)"), tensor({1, 1, 2, 2}, {1, 2, 3, 4}));
  ASSERT_EQ(fixed.size(), 1u);
  EXPECT_DOUBLE_EQ(fixed[0], 10.0 / 3.0);
  // TF 'SAME' average, k 3, s 2 on [1, 2, 3, 4]: pads (0, 1): (1+2+3)/3 = 2, (3+4)/2 = 3.5 (padding excluded).
  EXPECT_EQ(run(pool_of("keras.layers.AveragePooling1D(3, 2, padding='same')"), tensor({1, 1, 4}, {1, 2, 3, 4})),
            (std::vector<double>{2, 3.5}));
}

TEST(PoolingEngine, AdaptiveAndGlobal) {
  // 5 -> 3 on [1..5]: mean[1, 2] = 1.5, mean[2, 3, 4] = 3, mean[4, 5] = 4.5; max: 2, 4, 5.
  const Tensor x = tensor({1, 1, 5}, {1, 2, 3, 4, 5});
  EXPECT_EQ(run(parsed("nn.AdaptiveAvgPool1d(3)").op, x), (std::vector<double>{1.5, 3, 4.5}));
  EXPECT_EQ(run(parsed("nn.AdaptiveMaxPool1d(3)").op, x), (std::vector<double>{2, 4, 5}));
  EXPECT_EQ(run(parsed("keras.layers.GlobalAveragePooling1D()").op, x), (std::vector<double>{3}));
}

// ---- plans ------------------------------------------------------------------------------------------------------

TEST(PoolingPlans, IssueExamples) {
  // 55 with pads (1, 1): TF 'same' at 55 pads need = 27 * 2 + 3 - 55 = 2 -> (1, 1), 28 outputs = PyTorch's.
  const LayerPlan a = plan_of("nn.MaxPool2d(3, 2, 1, ceil_mode=True)", shape({1, 64, 55, 55}));
  EXPECT_EQ(callees(a), (std::vector<std::string>{"keras.layers.MaxPooling2D"}));
  EXPECT_EQ(call_of(a.steps[0]), "keras.layers.MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding='same')");
  EXPECT_FALSE(a.exact_for_every_input_size);
  const LayerPlan b = plan_of("nn.AvgPool2d(3, 1, 1)");
  EXPECT_EQ(callees(b), (std::vector<std::string>{"keras.layers.ZeroPadding2D", "keras.layers.AveragePooling2D"}));
  EXPECT_TRUE(b.exact_for_every_input_size);
  const LayerPlan c = plan_of("keras.layers.AveragePooling2D(3, 1, padding='same')",
                              shape({kUnknownSize, kUnknownSize, kUnknownSize, 8}));
  EXPECT_EQ(call_of(c.steps[0]),
            "nn.AvgPool2d(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), count_include_pad=False)");
  EXPECT_TRUE(c.exact_for_every_input_size);
}

TEST(PoolingPlans, TorchToKerasChoices) {
  EXPECT_EQ(callees(plan_of("nn.MaxPool2d(2)")), (std::vector<std::string>{"keras.layers.MaxPooling2D"}));
  EXPECT_EQ(call_of(plan_of("nn.MaxPool2d(3, 1, 1)").steps[0]),
            "keras.layers.MaxPooling2D(pool_size=(3, 3), strides=(1, 1), padding='same')");
  EXPECT_EQ(call_of(plan_of("nn.AvgPool1d(3, 1, 1, count_include_pad=False)").steps[0]),
            "keras.layers.AveragePooling1D(pool_size=(3,), strides=(1,), padding='same')");
  const LayerPlan padded = plan_of("nn.MaxPool2d(3, 2, 1)");
  EXPECT_EQ(callees(padded), (std::vector<std::string>{"convbridge.NegInfPadding", "keras.layers.MaxPooling2D"}));
  EXPECT_TRUE(padded.exact_for_every_input_size);
  // 56: 29 outputs need (29 - 1) * 2 + 3 = 59 elements; 56 + 1 + 1 = 58: one more -inf after.
  const LayerPlan tail = plan_of("nn.MaxPool2d(3, 2, 1, ceil_mode=True)", shape({1, 3, 56, 56}));
  EXPECT_EQ(call_of(tail.steps[0]), "convbridge.NegInfPadding(padding=((1, 2), (1, 2)))");
  EXPECT_FALSE(tail.exact_for_every_input_size);
  EXPECT_EQ(callees(plan_of("nn.MaxPool2d(3, 2, 1, ceil_mode=True)")),
            (std::vector<std::string>{"convbridge.TorchPool"}));
  EXPECT_EQ(callees(plan_of("nn.MaxPool2d(3, 2, dilation=2)")),
            (std::vector<std::string>{"convbridge.DilatedMaxPool"}));
  EXPECT_EQ(callees(plan_of("nn.AvgPool2d(2, divisor_override=3)")),
            (std::vector<std::string>{"convbridge.TorchPool"}));
  EXPECT_EQ(callees(plan_of("nn.AvgPool2d(2, divisor_override=4)")),  // = the window size: plain 'valid'
            (std::vector<std::string>{"keras.layers.AveragePooling2D"}));
  EXPECT_EQ(callees(plan_of("nn.AvgPool2d(3, 2, 1, count_include_pad=False)")),
            (std::vector<std::string>{"convbridge.TorchPool"}));
  EXPECT_EQ(callees(plan_of("nn.AvgPool2d(3, 2, 1, ceil_mode=True)", shape({1, 3, 56, 56}))),
            (std::vector<std::string>{"convbridge.TorchPool"}));  // the tail window divides by 2, not 3
  EXPECT_EQ(callees(plan_of("nn.AdaptiveAvgPool2d(1)")),
            (std::vector<std::string>{"keras.layers.GlobalAveragePooling2D"}));
  EXPECT_EQ(callees(plan_of("nn.AdaptiveAvgPool2d(7)", shape({1, 3, 30, 30}))),
            (std::vector<std::string>{"keras.layers.AdaptiveAveragePooling2D"}));
  EXPECT_EQ(callees(plan_of("nn.AdaptiveMaxPool2d((None, 3))")),
            (std::vector<std::string>{"convbridge.TorchAdaptivePool"}));
  EXPECT_EQ(callees(plan_of("F.adaptive_avg_pool2d(x, 3)")),
            (std::vector<std::string>{"convbridge.TorchAdaptivePool"}));
}

TEST(PoolingPlans, KerasToTorchChoices) {
  EXPECT_EQ(call_of(plan_of("keras.layers.MaxPooling2D(2)").steps[0]), "nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))");
  EXPECT_EQ(callees(plan_of("keras.layers.MaxPooling2D(2, padding='same')")),
            (std::vector<std::string>{"convbridge.TFSamePool"}));
  // 4 at stride 2, pool 2: need = 1 * 2 + 2 - 4 = 0: no padding at this size.
  const LayerPlan known = plan_of("keras.layers.MaxPooling2D(2, padding='same')", shape({1, 4, 4, 3}));
  EXPECT_EQ(call_of(known.steps[0]), "nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))");
  EXPECT_FALSE(known.exact_for_every_input_size);
  // 5: need = 2 * 2 + 2 - 5 = 1 -> (0, 1), asymmetric.
  EXPECT_EQ(callees(plan_of("keras.layers.MaxPooling2D(2, padding='same')", shape({1, 5, 5, 3}))),
            (std::vector<std::string>{"convbridge.TFSamePool"}));
  EXPECT_EQ(callees(plan_of("keras.layers.GlobalAveragePooling2D()")),
            (std::vector<std::string>{"nn.AdaptiveAvgPool2d", "nn.Flatten"}));
  EXPECT_EQ(callees(plan_of("keras.layers.GlobalMaxPooling1D(keepdims=True)")),
            (std::vector<std::string>{"nn.AdaptiveMaxPool1d"}));
  EXPECT_EQ(call_of(plan_of("tf.nn.pool(x, [3, 3], 'MAX', dilations=[2, 2])").steps[0]),
            "nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 1), dilation=(2, 2))");
  EXPECT_EQ(call_of(plan_of("keras.layers.AdaptiveAveragePooling2D((4, 5))").steps[0]),
            "nn.AdaptiveAvgPool2d(output_size=(4, 5))");
}

// ---- hostile catalogue ------------------------------------------------------------------------------------------

std::string code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::syntax: return "syntax";
    case ErrorCode::unknown_argument: return "unknown_argument";
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::input_shape: return "input_shape";
    case ErrorCode::overflow: return "overflow";
    case ErrorCode::unsupported: return "unsupported";
  }
  return "?";
}

TEST(PoolingCatalogue, EveryEntryIsRejectedAsItSays) {
  std::ifstream file(CONVBRIDGE_POOLING_CATALOGUE);
  ASSERT_TRUE(file) << CONVBRIDGE_POOLING_CATALOGUE;
  const auto entries = nlohmann::json::parse(file);
  ASSERT_GE(entries.size(), 20u);
  for (const auto& entry : entries) {
    const std::string name = entry.at("name");
    const std::string stage = entry.at("stage");
    auto layer = parse_op_layer(entry.at("layer").get<std::string>());
    std::optional<Error> error;
    if (!layer.ok()) {
      error = layer.error();
      EXPECT_EQ(stage, "parse") << name << ": rejected while parsing: " << layer.error().message;
    } else {
      EXPECT_EQ(stage, "plan") << name << ": parsed";
      std::optional<std::vector<int64_t>> input;
      if (entry.contains("input_shape")) {
        auto parsed_shape = parse_input_shape(entry.at("input_shape").get<std::string>(), true);
        ASSERT_TRUE(parsed_shape.ok()) << name;
        input = *parsed_shape;
      }
      auto plan = plan_op_layer(*layer, input);
      if (plan.ok()) {
        ADD_FAILURE() << name << ": planned";
        continue;
      }
      error = plan.error();
    }
    EXPECT_EQ(code_name(error->code), entry.at("code").get<std::string>()) << name << ": " << error->message;
    EXPECT_NE(error->message.find(entry.at("fragment").get<std::string>()), std::string::npos)
        << name << ": " << error->message;
  }
}

}  // namespace
}  // namespace convbridge
