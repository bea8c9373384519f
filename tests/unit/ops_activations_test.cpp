// Activation layers: parsing with each framework's defaults, softmax axes, PReLU weights, plans.
#include <gtest/gtest.h>

#include "convbridge/engine.hpp"
#include <cmath>

#include "convbridge/layer_plan.hpp"
#include "engine/ops/run_ops.hpp"

namespace convbridge {
namespace {

ActivationOp act_of(std::string_view text) {
  auto layer = parse_op_layer(text);
  EXPECT_TRUE(layer.ok()) << text << ": " << (layer.ok() ? "" : layer.error().message);
  return std::get<ActivationOp>(layer->op);
}

std::string first_call(std::string_view text, std::optional<std::vector<int64_t>> shape = std::nullopt) {
  auto plan = plan_op_layer(*parse_op_layer(text), shape);
  EXPECT_TRUE(plan.ok()) << text << ": " << (plan.ok() ? "" : plan.error().message);
  return python_call_text(plan->steps.front().call);
}

TEST(ActivationParse, LeakySlopeDefaultsDiffer) {
  EXPECT_EQ(act_of("nn.LeakyReLU()").activation.alpha, 0.01);
  EXPECT_EQ(act_of("keras.layers.LeakyReLU()").activation.alpha, 0.3);
  EXPECT_EQ(act_of("tf.nn.leaky_relu(x)").activation.alpha, 0.2);
  EXPECT_EQ(act_of("keras.layers.Activation('leaky_relu')").activation.alpha, 0.2);
  EXPECT_EQ(act_of("keras.layers.ReLU(negative_slope=0.1)").activation.kind, ActivationKind::leaky_relu);
  EXPECT_EQ(act_of("keras.layers.ReLU(max_value=6.0)").activation.kind, ActivationKind::relu6);
  EXPECT_EQ(act_of("nn.Hardtanh(0.0, 6.0)").activation.kind, ActivationKind::relu6);
  EXPECT_EQ(act_of("nn.GELU(approximate='tanh')").activation.kind, ActivationKind::gelu_tanh);
  EXPECT_EQ(act_of("tf.nn.gelu(x, approximate=True)").activation.kind, ActivationKind::gelu_tanh);
  EXPECT_EQ(act_of("keras.layers.Activation(keras.activations.hard_silu)").activation.kind, ActivationKind::hard_silu);
  // get_config() keys parse
  EXPECT_TRUE(parse_op_layer("keras.layers.ReLU(max_value=None, negative_slope=0.0, threshold=0.0, name='r')").ok());
  EXPECT_TRUE(parse_op_layer("keras.layers.PReLU(alpha_initializer=keras.initializers.Zeros(), alpha_regularizer=None, "
                             "alpha_constraint=None, shared_axes=[1, 2])")
                  .ok());
}

TEST(ActivationShape, SoftmaxAxisAndPrelu) {
  EXPECT_EQ(*resolved_axis(act_of("nn.Softmax(dim=-1)"), 4), 3);
  EXPECT_EQ(*resolved_axis(act_of("keras.layers.Softmax()"), 4), 1);      // channels_last -1: the channels
  EXPECT_EQ(*resolved_axis(act_of("keras.layers.Softmax(axis=1)"), 4), 2);  // H
  EXPECT_FALSE(resolved_axis(act_of("nn.Softmax(dim=4)"), 4).ok());
  EXPECT_FALSE(output_shape(act_of("nn.PReLU(3)"), std::vector<int64_t>{1, 4, 2, 2}).ok());
  EXPECT_TRUE(output_shape(act_of("nn.PReLU()"), std::vector<int64_t>{1, 4, 2, 2}).ok());
}

TEST(ActivationEngine, HandComputed) {
  Tensor x{{1, 2, 1, 2}, {-2.0, 1.0, 0.0, -1.0}};  // channel 0: (-2, 1), channel 1: (0, -1)
  ActivationOp prelu = act_of("nn.PReLU(2)");
  const Tensor slopes{{2}, {0.5, 0.25}};
  EXPECT_EQ(engine::run(prelu, x, std::span<const Tensor>(&slopes, 1))->data, (std::vector<double>{-1.0, 1.0, 0.0, -0.25}));
  // softmax over channels of (-2, 0) and (1, -1)
  auto soft = engine::run(act_of("nn.Softmax(dim=1)"), x, {});
  EXPECT_NEAR(soft->data[0], 1.0 / (1.0 + std::exp(2.0)), 1e-15);
  EXPECT_NEAR(soft->data[0] + soft->data[2], 1.0, 1e-15);
  // Hardsigmoid relu6(x + 3) / 6 at -2 is 1/6
  EXPECT_NEAR(engine::run(act_of("nn.Hardsigmoid()"), x, {})->data[0], 1.0 / 6.0, 1e-15);
}

TEST(ActivationPlan, BothDirections) {
  EXPECT_EQ(first_call("nn.LeakyReLU()"), "keras.layers.LeakyReLU(negative_slope=0.01)");
  EXPECT_EQ(first_call("keras.layers.LeakyReLU()"), "nn.LeakyReLU(negative_slope=0.3)");
  EXPECT_EQ(first_call("nn.Hardsigmoid()"), "keras.layers.Activation('hard_sigmoid')");
  EXPECT_EQ(first_call("nn.Hardswish()"), "keras.layers.Activation('hard_silu')");
  EXPECT_EQ(first_call("nn.Softmax(dim=1)"), "keras.layers.Softmax(axis=-1)");
  EXPECT_EQ(first_call("nn.Softmax(dim=-1)", std::vector<int64_t>{1, 3, 4, 5}), "keras.layers.Softmax(axis=2)");
  EXPECT_EQ(first_call("keras.layers.Softmax(axis=1)", std::vector<int64_t>{1, 4, 5, 3}), "nn.Softmax(dim=2)");
  EXPECT_EQ(first_call("nn.PReLU(3)", std::vector<int64_t>{1, 3, 4, 5}), "keras.layers.PReLU(shared_axes=(1, 2))");
  auto plan = plan_op_layer(*parse_op_layer("keras.layers.PReLU(shared_axes=[1, 2])"), std::vector<int64_t>{1, 4, 5, 3});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(python_call_text(plan->steps[0].call), "nn.PReLU(num_parameters=3)");
  ASSERT_EQ(plan->source_weights.size(), 1u);
  EXPECT_EQ(plan->source_weights[0].name, "alpha");
  EXPECT_EQ(plan->source_weights[0].from_neutral.to_shape, (std::vector<int64_t>{1, 1, 3}));
  EXPECT_EQ(plan->steps[0].weights[0].from_neutral.to_shape, (std::vector<int64_t>{3}));
  auto report = verify_plan(*plan, 3);
  EXPECT_TRUE(report.ok() && report->passed());
}

}  // namespace
}  // namespace convbridge
