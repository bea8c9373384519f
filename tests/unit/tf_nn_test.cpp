// tf.nn front-end (parse_tf_nn_call) and its PyTorch plans (plan_tf_nn_to_torch). The rules are TensorFlow 2.21's;
// tests/python/test_tf_nn.py proves each against real TensorFlow. Every plan here is checked by the reference
// engine.
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "convbridge/emit.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/planner.hpp"

namespace convbridge {
namespace {

constexpr int64_t kAny = kUnknownSize;

KerasConvLayer call_ok(const std::string& text, const std::vector<int64_t>& filters_shape) {
  auto call = parse_tf_nn_call(text, filters_shape);
  EXPECT_TRUE(call) << text << ": " << (call ? "" : call.error().message);
  return call ? *call : KerasConvLayer{};
}

void call_error(const std::string& text, const std::vector<int64_t>& filters_shape, ErrorCode code,
                const std::string& fragment) {
  auto call = parse_tf_nn_call(text, filters_shape);
  ASSERT_FALSE(call) << text << " parsed but TensorFlow rejects it";
  EXPECT_EQ(call.error().code, code) << call.error().message;
  EXPECT_NE(call.error().message.find(fragment), std::string::npos) << call.error().message;
}

TorchPlan plan_ok(const std::string& text, const std::vector<int64_t>& filters_shape,
                  const std::optional<std::vector<int64_t>>& input_shape) {
  auto plan = plan_tf_nn_to_torch(call_ok(text, filters_shape), input_shape);
  EXPECT_TRUE(plan) << text << ": " << (plan ? "" : plan.error().message);
  if (!plan) return TorchPlan{};
  auto report = verify_plan(*plan, 5);
  EXPECT_TRUE(report && !report->cases.empty() && report->passed())
      << text << (report ? describe_verification(*report) : report.error().message);
  return *plan;
}

std::string plan_error(const std::string& text, const std::vector<int64_t>& filters_shape,
                       const std::vector<int64_t>& input_shape) {
  auto plan = plan_tf_nn_to_torch(call_ok(text, filters_shape), input_shape);
  EXPECT_FALSE(plan) << text << " was planned";
  return plan ? std::string() : plan.error().message;
}

const TorchConvStep& conv_of(const TorchPlan& plan) {
  for (const TorchPlanStep& step : plan.steps) {
    if (const auto* conv = std::get_if<TorchConvStep>(&step.op)) return *conv;
  }
  static const TorchConvStep none;
  ADD_FAILURE() << "no convolution step";
  return none;
}

TEST(TfNnCallArgs, ParsesEveryFunctionAndSpelling) {
  const KerasConvLayer conv2d = call_ok("tf.nn.conv2d(x, w, strides=2, padding='SAME')", {3, 3, 4, 8});
  EXPECT_TRUE(conv2d.is_tf_nn);
  EXPECT_EQ(conv2d.class_name, "tf.nn.conv2d");
  EXPECT_EQ(conv2d.rank, 2);
  EXPECT_EQ(conv2d.kernel, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(conv2d.strides, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(conv2d.filters, 8);
  EXPECT_EQ(conv2d.filters_in_depth, 4);
  EXPECT_EQ(conv2d.padding, KerasPadding::same);
  EXPECT_FALSE(conv2d.use_bias);
  EXPECT_EQ(call_ok("tensorflow.nn.conv2d(input=x, filters=w, strides=[1, 2, 1, 1], padding='VALID', "
                    "data_format='NHWC', dilations=[1, 3], name='c')",
                    {3, 3, 4, 8})
                .strides,
            (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(call_ok("tf.nn.conv1d(x, w, [1, 3, 1], 'VALID', dilations=2)", {3, 4, 8}).dilation,
            (std::vector<int64_t>{2}));
  EXPECT_EQ(call_ok("tf.nn.conv3d(x, w, (1, 2, 1, 2, 1), 'SAME')", {1, 2, 3, 4, 8}).strides,
            (std::vector<int64_t>{2, 1, 2}));
  const KerasConvLayer depthwise = call_ok("tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], 'VALID', dilations=[2, 1])",
                                           {3, 3, 4, 2});
  EXPECT_EQ(depthwise.kind, KerasLayerKind::depthwise);
  EXPECT_EQ(depthwise.depth_multiplier, 2);
  EXPECT_EQ(depthwise.dilation, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(call_ok("tf.nn.convolution(x, w)", {3, 3, 3, 4, 8}).rank, 3);  // rank from the filters
  EXPECT_EQ(call_ok("tf.nn.convolution(x, w)", {3, 4, 8}).padding, KerasPadding::valid);
  EXPECT_TRUE(names_tf_nn_call("tf.nn.conv2d(x, w, 1, 'SAME')"));
  EXPECT_FALSE(names_tf_nn_call("nn.Conv2d(3, 16, 3)"));
  EXPECT_FALSE(names_tf_nn_call("keras.layers.Conv2D(16, 3)"));
  EXPECT_FALSE(names_tf_nn_call("tf.math.add(x, y)"));
}

TEST(TfNnCallArgs, ExplicitPaddingList) {
  const KerasConvLayer call =
      call_ok("tf.nn.conv2d(x, w, 1, [[0, 0], [1, 2], [0, 3], [0, 0]])", {3, 3, 4, 8});
  EXPECT_EQ(call.padding, KerasPadding::explicit_pads);
  EXPECT_EQ(call.explicit_padding, (std::vector<PadPair>{{1, 2}, {0, 3}}));
  call_error("tf.nn.conv2d(x, w, 1, [[1, 0], [1, 2], [0, 3], [0, 0]])", {3, 3, 4, 8}, ErrorCode::invalid_argument,
             "pads the batch dimension");
  call_error("tf.nn.conv2d(x, w, 1, [[0, 0], [1, 2], [0, 3], [0, 1]])", {3, 3, 4, 8}, ErrorCode::invalid_argument,
             "pads the channel dimension");
  call_error("tf.nn.conv2d(x, w, 1, [[0, 0], [-1, 2], [0, 3], [0, 0]])", {3, 3, 4, 8}, ErrorCode::invalid_argument,
             "negative pad -1");
  call_error("tf.nn.conv2d(x, w, 1, [[1, 2], [0, 3]])", {3, 3, 4, 8}, ErrorCode::invalid_argument, "has 2 pairs");
  call_error("tf.nn.conv2d(x, w, 1, [[0, 0], [1, 2, 3], [0, 1], [0, 0]])", {3, 3, 4, 8},
             ErrorCode::invalid_argument, "[before, after] pair");
  call_error("tf.nn.conv1d(x, w, 1, [[0, 0], [1, 2], [0, 0]])", {3, 4, 8}, ErrorCode::invalid_argument,
             "tf.nn.conv1d takes 'SAME' or 'VALID' only");
  call_error("tf.nn.conv2d(x, w, 1, 'EXPLICIT')", {3, 3, 4, 8}, ErrorCode::invalid_argument, "must be a list");
}

TEST(TfNnCallArgs, RejectsWhatTensorFlowRejects) {
  call_error("tf.nn.conv2d(x, w, 1, 'same')", {3, 3, 4, 8}, ErrorCode::invalid_argument, "padding='same' must be");
  call_error("tf.nn.conv2d(x, w, [2, 1, 1], 'SAME')", {3, 3, 4, 8}, ErrorCode::invalid_argument,
             "strides=[2, 1, 1] has 3 entries");
  call_error("tf.nn.conv2d(x, w, [2, 1, 1, 1], 'SAME')", {3, 3, 4, 8}, ErrorCode::invalid_argument,
             "batch or channel entry");
  call_error("tf.nn.conv2d(x, w, 0, 'SAME')", {3, 3, 4, 8}, ErrorCode::invalid_argument, "Stride must be > 0");
  call_error("tf.nn.conv2d(x, w, 1, 'SAME', dilations=0)", {3, 3, 4, 8}, ErrorCode::invalid_argument,
             "Dilated rates should be larger than 0");
  call_error("tf.nn.conv3d(x, w, 2, 'SAME')", {3, 3, 3, 4, 8}, ErrorCode::invalid_argument,
             "strides=2 must be a list of 5 ints");
  call_error("tf.nn.conv3d(x, w, [1, 1, 1, 1, 1], 'VALID', dilations=[2, 2, 2])", {3, 3, 3, 4, 8},
             ErrorCode::invalid_argument, "tf.nn.conv3d takes 5");
  call_error("tf.nn.depthwise_conv2d(x, k, 2, 'SAME')", {3, 3, 4, 2}, ErrorCode::invalid_argument,
             "must be a list of 4 ints");
  call_error("tf.nn.depthwise_conv2d(x, k, [1, 2, 2, 1], 'SAME', dilations=[2, 2])", {3, 3, 4, 2},
             ErrorCode::invalid_argument, "all values of strides must be 1");
  call_error("tf.nn.convolution(x, w, 2, 'SAME', dilations=2)", {3, 3, 4, 8}, ErrorCode::invalid_argument,
             "all values of strides must be 1");
  call_error("tf.nn.conv2d(x, w, 1, 'SAME', data_format='NCHW')", {3, 3, 4, 8}, ErrorCode::unsupported,
             "data_format='NCHW' is not supported yet");
  call_error("tf.nn.conv2d(x, w, 1, 'SAME', data_format='NWC')", {3, 3, 4, 8}, ErrorCode::invalid_argument,
             "data_format='NWC' must be 'NHWC' or 'NCHW'");
  call_error("tf.nn.conv2d(x, w, stride=2, padding='SAME')", {3, 3, 4, 8}, ErrorCode::unknown_argument,
             "did you mean 'strides'?");
  // Each function's own spelling: conv1d takes 'stride', depthwise_conv2d 'filter'.
  call_error("tf.nn.conv1d(x, w, strides=1, padding='SAME')", {3, 4, 8}, ErrorCode::unknown_argument,
             "did you mean 'stride'?");
  call_error("tf.nn.depthwise_conv2d(x, filters=w, strides=[1, 1, 1, 1], padding='SAME')", {3, 3, 4, 2},
             ErrorCode::unknown_argument, "did you mean 'filter'?");
  call_error("tf.nn.conv2d(x, w, 2)", {3, 3, 4, 8}, ErrorCode::invalid_argument, "missing the required argument 'padding'");
  call_error("tf.nn.conv2d(x, w, 1, 'SAME')", {3, 3, 4}, ErrorCode::input_shape,
             "the filters shape (3, 3, 4) has 3 entries");
  call_error("tf.nn.convolution(x, w)", {3, 3}, ErrorCode::input_shape, "3-D to 5-D filters");
  call_error("tf.nn.conv2d(x, w, 1, 'SAME')", {3, 0, 4, 8}, ErrorCode::input_shape,
             "the filters shape (3, 0, 4, 8) has the size 0");
  call_error("tf.nn.max_pool2d(x, 2, 2, 'SAME')", {3, 3, 4, 8}, ErrorCode::unknown_argument,
             "unknown TensorFlow function");
  EXPECT_TRUE(names_tf_nn_call("tf.nn.max_pool2d(x, 2, 2, 'SAME')"));  // so the error names the function
}

// TF's Python layers route some lists so that their batch or channel entries never reach a kernel check.
TEST(TfNnCallArgs, OuterStrideEntriesWhereTensorFlowIgnoresThem) {
  // conv1d: [b, s, c] becomes Conv2D's [1, b, s, c]: b strides the size-1 axis conv1d adds; c must still be 1.
  EXPECT_EQ(call_ok("tf.nn.conv1d(x, w, [2, 3, 1], 'VALID', dilations=[3, 2, 1])", {3, 4, 8}).strides,
            (std::vector<int64_t>{3}));
  call_error("tf.nn.conv1d(x, w, [1, 3, 2], 'VALID')", {3, 4, 8}, ErrorCode::invalid_argument,
             "batch or channel entry");
  EXPECT_EQ(call_ok("tf.nn.convolution(x, w, [2, 3, 1], 'VALID')", {3, 4, 8}).strides, (std::vector<int64_t>{3}));
  // convolution's dilated path keeps only the spatial entries, and takes a 2-D padding list.
  const KerasConvLayer dilated =
      call_ok("tf.nn.convolution(x, w, [2, 1, 1, 2], [[0, 0], [1, 0], [0, 2], [0, 0]], dilations=[3, 1, 1, 1])",
              {3, 3, 4, 8});
  EXPECT_EQ(dilated.strides, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(dilated.dilation, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(dilated.explicit_padding, (std::vector<PadPair>{{1, 0}, {0, 2}}));
  call_error("tf.nn.convolution(x, w, [2, 1, 1, 1], 'VALID')", {3, 3, 4, 8}, ErrorCode::invalid_argument,
             "batch or channel entry");
  call_error("tf.nn.convolution(x, w, 1, [[0, 0], [1, 0], [0, 2], [0, 0]])", {3, 3, 4, 8},
             ErrorCode::invalid_argument, "explicit padding lists are for");
  plan_ok("tf.nn.convolution(x, w, 1, [[0, 0], [1, 0], [0, 2], [0, 0]], dilations=2)", {3, 3, 4, 8},
          std::vector<int64_t>{1, 9, 9, 4});
}

TEST(TfNnCallPlan, VerifiesExplicitPaddingSmallerThanTheKernelAtUnknownSizes) {
  // The check samples sizes from the kernel extent less the pads, not from 1 (found by test_tf_nn.py).
  plan_ok("tf.nn.conv2d(x, w, 1, [[0, 0], [0, 0], [0, 0], [0, 0]])", {5, 5, 1, 1}, std::nullopt);
  plan_ok("tf.nn.conv2d(x, w, 2, [[0, 0], [1, 2], [0, 0], [0, 0]])", {7, 4, 1, 1}, std::nullopt);
}

TEST(TfNnCallPlan, TheInputRankIsCheckedBeforeItsChannels) {
  EXPECT_NE(plan_error("tf.nn.conv2d(x, w, 1, 'VALID')", {3, 3, 4, 8}, {1, 9, 9}).find("--input-shape has 3 dimensions"),
            std::string::npos);
}

TEST(TfNnCallArgs, WithoutTheFiltersShapeTheTextsOwnFaultComesFirst) {
  EXPECT_NE(tf_nn_call_needs_filters_shape("tf.nn.conv2d(x, w, 2, 'SAME')").message.find("filters_shape="),
            std::string::npos);
  EXPECT_NE(tf_nn_call_needs_filters_shape("tf.nn.conv2d(x, w, 2, 'SAME', stride=1)").message.find("stride"),
            std::string::npos);
  EXPECT_EQ(tf_nn_call_needs_filters_shape("tf.nn.conv2d(x, w, 2, 'SAME'").code, ErrorCode::syntax);
  EXPECT_NE(tf_nn_call_needs_filters_shape("tf.nn.avg_pool(x)").message.find("unknown TensorFlow function"),
            std::string::npos);
}

TEST(TfNnCallPlan, SameAtStrideTwoIsComputedAtRunTimeWhenTheSizeIsUnknown) {
  const TorchPlan unknown = plan_ok("tf.nn.conv2d(x, w, 2, 'SAME')", {3, 3, 4, 8}, std::nullopt);
  EXPECT_TRUE(unknown.exact_for_every_input_size);
  ASSERT_EQ(unknown.steps.size(), 2u);
  EXPECT_TRUE(std::get<TorchPadStep>(unknown.steps[0].op).tf_same_at_runtime);
  // Known sizes: even input pads (0, 1) (a ConstantPad step), odd input pads (1, 1) (the conv's own padding).
  const TorchPlan even = plan_ok("tf.nn.conv2d(x, w, 2, 'SAME')", {3, 3, 4, 8}, std::vector<int64_t>{1, 8, 8, 4});
  EXPECT_FALSE(even.exact_for_every_input_size);
  ASSERT_EQ(even.steps.size(), 2u);
  EXPECT_EQ(std::get<TorchPadStep>(even.steps[0].op).pads, (std::vector<PadPair>{{0, 1}, {0, 1}}));
  const TorchPlan odd = plan_ok("tf.nn.conv2d(x, w, 2, 'SAME')", {3, 3, 4, 8}, std::vector<int64_t>{1, 9, 9, 4});
  ASSERT_EQ(odd.steps.size(), 1u);
  EXPECT_EQ(conv_of(odd).spec.padding, (std::vector<PadPair>{{1, 1}, {1, 1}}));
  // None sizes keep the run-time padding.
  const TorchPlan partly = plan_ok("tf.nn.conv2d(x, w, 2, 'SAME')", {3, 3, 4, 8}, std::vector<int64_t>{kAny, kAny, 9, 4});
  EXPECT_TRUE(partly.exact_for_every_input_size);
}

TEST(TfNnCallPlan, ExplicitPaddingBecomesConvPaddingOrAConstantPad) {
  const TorchPlan symmetric =
      plan_ok("tf.nn.conv2d(x, w, 2, [[0, 0], [1, 1], [2, 2], [0, 0]])", {3, 5, 4, 8}, std::nullopt);
  ASSERT_EQ(symmetric.steps.size(), 1u);
  EXPECT_EQ(conv_of(symmetric).spec.padding, (std::vector<PadPair>{{1, 1}, {2, 2}}));
  const TorchPlan asymmetric =
      plan_ok("tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], [[0, 0], [2, 0], [0, 1], [0, 0]], dilations=[2, 1])",
              {3, 3, 4, 2}, std::nullopt);
  ASSERT_EQ(asymmetric.steps.size(), 2u);
  EXPECT_EQ(std::get<TorchPadStep>(asymmetric.steps[0].op).pads, (std::vector<PadPair>{{2, 0}, {0, 1}}));
  EXPECT_EQ(conv_of(asymmetric).spec.groups, 4);
  EXPECT_EQ(asymmetric.weight_names, (std::vector<std::string>{"filter"}));
}

TEST(TfNnCallPlan, GroupsFollowFromTheShapes) {
  const TorchPlan grouped = plan_ok("tf.nn.conv2d(x, w, 1, 'VALID')", {3, 3, 2, 6}, std::vector<int64_t>{1, 7, 7, 4});
  EXPECT_EQ(conv_of(grouped).spec.groups, 2);
  EXPECT_EQ(conv_of(grouped).spec.in_channels, 4);
  EXPECT_EQ(grouped.weight_names, (std::vector<std::string>{"filters"}));
  // Without the input's channels the filters' depth is the channel count: one group.
  EXPECT_EQ(conv_of(plan_ok("tf.nn.conv2d(x, w, 1, 'VALID')", {3, 3, 2, 6}, std::nullopt)).spec.groups, 1);
  EXPECT_NE(plan_error("tf.nn.conv2d(x, w, 1, 'VALID')", {3, 3, 3, 6}, {1, 7, 7, 4})
                .find("input depth must be evenly divisible by filter depth: 4 vs 3"),
            std::string::npos);
  EXPECT_NE(plan_error("tf.nn.conv2d(x, w, 1, 'VALID')", {3, 3, 2, 5}, {1, 7, 7, 4})
                .find("output depth must be evenly divisible by number of groups: 5 vs 2"),
            std::string::npos);
  EXPECT_NE(plan_error("tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], 'VALID')", {3, 3, 2, 2}, {1, 7, 7, 4})
                .find("the input has 4 channels but the tf.nn.depthwise_conv2d filter has in_channels 2"),
            std::string::npos);
}

TEST(TfNnCallPlan, RejectsInputsSmallerThanThePaddedKernel) {
  EXPECT_NE(plan_error("tf.nn.conv2d(x, w, 1, 'VALID')", {5, 5, 4, 8}, {1, 4, 8, 4}).find("empty output"),
            std::string::npos);
  EXPECT_NE(plan_error("tf.nn.conv2d(x, w, 1, [[0, 0], [0, 0], [1, 1], [0, 0]])", {3, 5, 4, 8}, {1, 2, 2, 4})
                .find("empty output"),
            std::string::npos);
  plan_ok("tf.nn.conv2d(x, w, 1, [[0, 0], [1, 0], [1, 1], [0, 0]])", {3, 4, 4, 8}, std::vector<int64_t>{1, 2, 2, 4});
}

TEST(TfNnCallPlan, EveryRankAndFunction) {
  plan_ok("tf.nn.conv1d(x, w, 2, 'SAME', dilations=2)", {3, 4, 8}, std::vector<int64_t>{2, 11, 4});
  plan_ok("tf.nn.conv1d(x, w, [1, 2, 1], 'SAME')", {4, 2, 6}, std::nullopt);
  plan_ok("tf.nn.conv3d(x, w, [1, 2, 1, 2, 1], 'SAME')", {3, 2, 3, 4, 8}, std::vector<int64_t>{1, 5, 6, 7, 4});
  plan_ok("tf.nn.conv3d(x, w, [1, 2, 2, 2, 1], 'VALID', dilations=[1, 2, 1, 1, 1])", {2, 2, 2, 4, 8}, std::nullopt);
  plan_ok("tf.nn.convolution(x, w, 1, 'SAME', dilations=[2, 3])", {3, 2, 4, 8}, std::vector<int64_t>{1, 9, 9, 4});
  plan_ok("tf.nn.conv2d(x, w, [2, 3], 'SAME', dilations=[2, 1])", {3, 3, 4, 8}, std::vector<int64_t>{2, 10, 11, 4});
}

TEST(TfNnCallArgs, TransposedCallsTakeTheirOutputShape) {
  const KerasConvLayer call = call_ok("tf.nn.conv2d_transpose(x, w, [batch, 10, 9, 6], [2, 1], 'VALID')", {3, 3, 6, 4});
  EXPECT_EQ(call.kind, KerasLayerKind::conv_transpose);
  EXPECT_EQ(call.filters, 6);           // (*kernel, out_channels, in_channels)
  EXPECT_EQ(call.filters_in_depth, 4);
  EXPECT_EQ(call.output_shape, (std::vector<int64_t>{kAny, 10, 9, 6}));
  EXPECT_EQ(call_ok("tf.nn.conv_transpose(x, w, [1, 8, 6], 2)", {3, 6, 4}).rank, 1);  // rank from output_shape
  EXPECT_EQ(call_ok("tf.nn.conv3d_transpose(x, w, [1, 4, 4, 4, 6], 2)", {2, 2, 2, 6, 4}).strides,
            (std::vector<int64_t>{2, 2, 2}));  // an int, unlike conv3d
  EXPECT_EQ(call_ok("tf.nn.conv2d_transpose(x, w, [1, 8, 8, 6], 2)", {3, 3, 6, 4}).padding,
            KerasPadding::same);  // the default
  call_error("tf.nn.conv2d_transpose(x, w, [1, 8, 8, 5], 2)", {3, 3, 6, 4}, ErrorCode::invalid_argument,
             "output_shape=[1, 8, 8, 5] has 5 channels, not a multiple of the filters' 6");
  call_error("tf.nn.conv2d_transpose(x, w, out_shape, 2)", {3, 3, 6, 4}, ErrorCode::invalid_argument,
             "output_shape=out_shape must be a list of 4 sizes");
  call_error("tf.nn.conv2d_transpose(x, w, [1, 0, 8, 6], 2)", {3, 3, 6, 4}, ErrorCode::invalid_argument,
             "output_shape=[1, 0, 8, 6] has the entry 0");
  call_error("tf.nn.conv1d_transpose(x, w, [1, 8, 6], 2, [[0, 0], [1, 1], [0, 0]])", {3, 6, 4},
             ErrorCode::invalid_argument, "takes 'SAME' or 'VALID' only");
  call_error("tf.nn.conv_transpose(x, w, [1, 6], 2)", {3, 6, 4}, ErrorCode::invalid_argument,
             "must be a list of 3, 4 or 5 sizes");
}

TEST(TfNnCallPlan, TransposedOutputShapeFixesTheInput) {
  const auto implied = [](const std::string& text, const std::vector<int64_t>& filters) {
    auto shape = tf_nn_transpose_input_shape(call_ok(text, filters));
    EXPECT_TRUE(shape) << (shape ? "" : shape.error().message);
    return shape ? *shape : std::vector<int64_t>{};
  };
  // SAME: in = ceil(out / s); VALID: in = (out - eff) / s + 1; a padding list: (out + pads - eff) / s + 1.
  EXPECT_EQ(implied("tf.nn.conv2d_transpose(x, w, [2, 10, 9, 6], 2)", {3, 3, 6, 4}),
            (std::vector<int64_t>{2, 5, 5, 4}));
  EXPECT_EQ(implied("tf.nn.conv2d_transpose(x, w, [2, 12, 11, 6], 2, 'VALID')", {3, 3, 6, 4}),
            (std::vector<int64_t>{2, 5, 5, 4}));
  EXPECT_EQ(implied("tf.nn.conv2d_transpose(x, w, [n, 10, 10, 6], 2, [[0, 0], [1, 1], [0, 2], [0, 0]])", {3, 3, 6, 4}),
            (std::vector<int64_t>{kAny, 5, 5, 4}));
  const TorchPlan same = plan_ok("tf.nn.conv2d_transpose(x, w, [2, 10, 10, 6], 2)", {3, 3, 6, 4}, std::nullopt);
  EXPECT_FALSE(same.exact_for_every_input_size);
  EXPECT_EQ(same.weight_names, (std::vector<std::string>{"filters"}));
  ASSERT_EQ(same.steps.size(), 2u);  // TF pads (0, 1): PyTorch starts at z[0] and drops the last output
  EXPECT_EQ(std::get<TorchCropStep>(same.steps[1].op).crop_end, (std::vector<int64_t>{1, 1}));
  // The module is for that size only: its code refuses any other, naming output_shape as the reason.
  const std::string code = emit_torch(same);
  EXPECT_NE(code.find("        ExpectInputSize((5, 5), \"the call's output_shape allows only this input size\"),\n"
                      "        conv0,\n        CropEnd((1, 1)),\n"),
            std::string::npos)
      << code;
  const TorchPlan odd = plan_ok("tf.nn.conv2d_transpose(x, w, [2, 9, 9, 6], 2)", {3, 3, 6, 4}, std::nullopt);
  ASSERT_EQ(odd.steps.size(), 1u);  // TF pads (1, 1): padding=1
  EXPECT_EQ(conv_of(odd).spec.padding, (std::vector<PadPair>{{1, 1}, {1, 1}}));
  plan_ok("tf.nn.conv2d_transpose(x, w, [2, 14, 13, 6], 2, 'SAME', dilations=[2, 1])", {3, 2, 6, 4}, std::nullopt);
  plan_ok("tf.nn.conv3d_transpose(x, w, [2, 6, 7, 5, 6], [2, 2, 1])", {2, 3, 2, 6, 4}, std::nullopt);
  plan_ok("tf.nn.conv1d_transpose(x, w, [2, 11, 6], 3, 'VALID')", {4, 6, 4}, std::vector<int64_t>{kAny, kAny, 4});
}

TEST(TfNnCallPlan, TransposedGroupsFollowFromOutputShape) {
  // Filters (3, 3, 2, 4) under an output of 4 channels: the gradient of a 2-group conv (TF's oneDNN and XLA run it).
  const TorchPlan grouped =
      plan_ok("tf.nn.conv2d_transpose(x, w, [1, 7, 7, 4], 2, 'VALID')", {3, 3, 2, 4}, std::nullopt);
  EXPECT_EQ(conv_of(grouped).spec.groups, 2);
  EXPECT_EQ(conv_of(grouped).spec.out_channels, 4);
  call_error("tf.nn.conv2d_transpose(x, w, [1, 7, 7, 4], 2, 'VALID')", {3, 3, 2, 3}, ErrorCode::invalid_argument,
             "makes 2 groups");
  // The batch entry may be computed (a subscript), but not None (TF cannot convert it).
  EXPECT_EQ(call_ok("tf.nn.conv2d_transpose(x, w, [tf.shape(x)[0], 8, 8, 3], 2)", {3, 3, 3, 4}).output_shape.front(),
            kAny);
  call_error("tf.nn.conv2d_transpose(x, w, [None, 8, 8, 3], 2)", {3, 3, 3, 4}, ErrorCode::invalid_argument,
             "has the entry None");
}

TEST(TfNnCallPlan, TransposedRejections) {
  EXPECT_NE(plan_error("tf.nn.conv2d_transpose(x, w, [2, 10, 10, 6], 2)", {3, 3, 6, 4}, {2, 6, 5, 4})
                .find("the input shape (2, 6, 5, 4) does not fit output_shape (2, 10, 10, 6)"),
            std::string::npos);
  auto small = plan_tf_nn_to_torch(call_ok("tf.nn.conv2d_transpose(x, w, [2, 2, 2, 6], 1, 'VALID')", {3, 3, 6, 4}),
                                   std::nullopt);
  ASSERT_FALSE(small);
  EXPECT_NE(small.error().message.find("smaller than the kernel extent 3"), std::string::npos);
  // z[3 : 8] of an 8-long output: PyTorch would need output_padding 3 at stride 1.
  auto late = plan_tf_nn_to_torch(
      call_ok("tf.nn.conv2d_transpose(x, w, [2, 5, 5, 6], 1, [[0, 0], [3, 0], [0, 0], [0, 0]])", {1, 1, 6, 4}),
      std::nullopt);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::unsupported);
  EXPECT_NE(late.error().message.find("pads 3 before and 0 after on axis H"), std::string::npos);
}

}  // namespace
}  // namespace convbridge
