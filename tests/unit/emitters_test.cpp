// Emitters: the generated source uses the intended TF constructs; the JSON is well-formed and complete.
// Whether the generated code computes PyTorch's numbers is tested in tests/python against the real frameworks.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "convbridge/emit.hpp"
#include "convbridge/planner.hpp"
#include "plan_for.hpp"

namespace convbridge {
namespace {

using testing::plan_for;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(KerasEmitter, ExplicitPaddingBecomesZeroPadding) {
  const std::string code = emit_keras(plan_for("nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)"));
  EXPECT_TRUE(contains(code, "keras.layers.ZeroPadding2D(((1, 1), (1, 1)))")) << code;
  EXPECT_TRUE(contains(code, "keras.layers.Conv2D(16, (3, 3), strides=(2, 2), padding=\"valid\"")) << code;
  EXPECT_TRUE(contains(code, "np.transpose(weight, (2, 3, 1, 0))")) << code;
  EXPECT_TRUE(contains(code, "def make_layer(weight, bias=None):")) << code;
}

TEST(KerasEmitter, SingleLayerWhenNothingElseIsNeeded) {
  const std::string code = emit_keras(plan_for("nn.Conv1d(3, 16, 4, padding='same', bias=False)"));
  EXPECT_TRUE(contains(code, "padding=\"same\"")) << code;
  EXPECT_TRUE(contains(code, "    return conv\n")) << code;
  EXPECT_TRUE(contains(code, "conv.set_weights([kernel])")) << code;
  EXPECT_TRUE(contains(code, "pass bias=None")) << code;
}

TEST(KerasEmitter, DepthwiseSubsampleAndPadModes) {
  const std::string depthwise = emit_keras(plan_for("nn.Conv2d(4, 8, 3, groups=4, stride=2, dilation=2)"));
  EXPECT_TRUE(contains(depthwise, "keras.layers.DepthwiseConv2D((3, 3), strides=(1, 1)")) << depthwise;
  EXPECT_TRUE(contains(depthwise, "depth_multiplier=2")) << depthwise;
  EXPECT_TRUE(contains(depthwise, "AveragePooling2D(pool_size=1, strides=(2, 2)")) << depthwise;
  EXPECT_TRUE(contains(depthwise, "weight.reshape((4, 2, 3, 3))")) << depthwise;
  const std::string replicate = emit_keras(plan_for("nn.Conv1d(2, 2, 3, padding=1, padding_mode='replicate')"));
  EXPECT_TRUE(contains(replicate, "class TorchEdgePad")) << replicate;
  EXPECT_TRUE(contains(replicate, "TorchEdgePad(((1, 1),), \"replicate\")")) << replicate;
  EXPECT_FALSE(contains(replicate, "symmetric")) << replicate;
  const std::string reflect = emit_keras(plan_for("nn.Conv1d(2, 2, 3, padding=1, padding_mode='reflect')"));
  EXPECT_TRUE(contains(reflect, "TorchReflectPad(((1, 1),))")) << reflect;
}

TEST(KerasEmitter, SizeSpecificPlansSaySo) {
  const std::string code = emit_keras(plan_for("nn.Conv2d(3, 16, 3, stride=2, padding=1)", std::vector<int64_t>{1, 3, 225, 225}));
  EXPECT_TRUE(contains(code, "Exact only for inputs of spatial size (225, 225)")) << code;
}

TEST(TfNnEmitter, Conv2dTakesExplicitPaddingDirectly) {
  const std::string code = emit_tf_nn(plan_for("nn.Conv2d(3, 16, 3, stride=2, padding=(1, 2))"));
  EXPECT_TRUE(contains(code, "tf.nn.conv2d(x, kernel, strides=(1, 2, 2, 1), padding=[[0, 0], [1, 1], [2, 2], [0, 0]]"))
      << code;
  EXPECT_TRUE(contains(code, "def conv(x, weight, bias=None):")) << code;
}

TEST(TfNnEmitter, Rank1And3PadFirstAndGroups3dAreSplit) {
  const std::string conv1 = emit_tf_nn(plan_for("nn.Conv1d(3, 6, 3, stride=2, padding=1)"));
  EXPECT_TRUE(contains(conv1, "x = tf.pad(x, [[0, 0], [1, 1], [0, 0]])")) << conv1;
  EXPECT_TRUE(contains(conv1, "padding=\"VALID\"")) << conv1;
  // Grouped 3-D: tf_conv, whose portable form convolves group by group (TF has no grouped Conv3D CPU kernel).
  const std::string conv3 = emit_tf_nn(plan_for("nn.Conv3d(4, 6, 3, groups=2)"));
  EXPECT_TRUE(contains(conv3, "y = tf_conv(x, kernel, strides=(1, 1, 1), dilations=(1, 1, 1), padding=\"VALID\", "
                              "groups=2)")) << conv3;
  EXPECT_TRUE(contains(conv3, "tf.split(x, groups, axis=-1)")) << conv3;
}

// The tf code must run on tensors and tf.Variables and be differentiable (tests/python/test_tf_code_training.py):
// no numpy and no tf.constant between the weights and the output.
TEST(TfNnEmitter, WeightsStayTensorsSoGradientsFlow) {
  for (const char* text : {"nn.Conv2d(4, 8, 3, groups=4, padding=1)", "nn.Conv3d(4, 6, 3, groups=2)",
                           "nn.ConvTranspose2d(4, 6, 3, stride=2, dilation=(2, 1), groups=2)",
                           "nn.Conv1d(2, 2, 3, padding=1, padding_mode='replicate')"}) {
    const std::string code = emit_tf_nn(plan_for(text));
    EXPECT_FALSE(contains(code, "np.")) << code;
    EXPECT_FALSE(contains(code, "tf.constant")) << code;
    EXPECT_TRUE(contains(code, "weight = tf.convert_to_tensor(weight)")) << code;
    EXPECT_TRUE(contains(code, "if tuple(weight.shape) != ")) << code;
    EXPECT_TRUE(contains(code, "kernel = tf.cast(kernel, x.dtype)")) << code;
  }
  const std::string depthwise = emit_tf_nn(plan_for("nn.Conv2d(4, 8, 3, groups=4)"));
  EXPECT_TRUE(contains(depthwise, "kernel = tf.transpose(tf.reshape(weight, (4, 2, 3, 3)), (2, 3, 0, 1))")) << depthwise;
  EXPECT_TRUE(contains(depthwise, "y = tf.nn.bias_add(y, tf.cast(bias, y.dtype))")) << depthwise;
  EXPECT_TRUE(contains(depthwise, "raise ValueError(f\"bias has shape {tuple(bias.shape)}; expected (8,)\")")) << depthwise;
}

TEST(TfNnEmitter, DilatedTransposedKernelsAreSpreadWithTfOps) {
  const std::string code = emit_tf_nn(plan_for("nn.ConvTranspose1d(2, 2, 3, dilation=3, output_padding=2)"));
  EXPECT_TRUE(contains(code, "def spread_taps(kernel, axis, dilation, trailing_zeros):")) << code;
  EXPECT_TRUE(contains(code, "kernel = spread_taps(kernel, 0, 3, 2)\n")) << code;
  const std::string two_axes = emit_tf_nn(plan_for("nn.ConvTranspose2d(4, 6, 3, stride=2, dilation=(1, 3))"));
  EXPECT_FALSE(contains(two_axes, "spread_taps(kernel, 0,")) << two_axes;  // nothing to insert on that axis
  EXPECT_TRUE(contains(two_axes, "kernel = spread_taps(kernel, 1, 3, 0)\n")) << two_axes;
  const std::string plain = emit_tf_nn(plan_for("nn.ConvTranspose2d(4, 6, 3, stride=2)"));
  EXPECT_FALSE(contains(plain, "spread_taps")) << plain;
}

TEST(TfNnEmitter, ConstructsWithCpuGradients) {
  // Strided and dilated: one tf_conv step with the pads folded in; its gradient is the portable form's
  // (tf.nn.convolution: TF's CPU conv kernels have no dilated gradient in float64 / with explicit padding).
  const std::string dilated = emit_tf_nn(plan_for("nn.Conv2d(3, 4, 3, stride=2, dilation=2, padding=1)"));
  EXPECT_TRUE(contains(dilated, "y = tf_conv(x, kernel, strides=(2, 2), dilations=(2, 2), padding=[(1, 1), (1, 1)], "
                                "groups=1)")) << dilated;
  EXPECT_TRUE(contains(dilated, "@tf.custom_gradient")) << dilated;
  EXPECT_TRUE(contains(dilated, "return tf.nn.convolution(xg, kg, strides=conv_strides")) << dilated;
  EXPECT_FALSE(contains(dilated, "class TfConv")) << dilated;  // the function only: tf code needs no Keras
  // Grouped 2-D: one conv2d with the grouped kernel forward, one conv per group in the gradient.
  const std::string grouped = emit_tf_nn(plan_for("nn.Conv2d(4, 6, 3, groups=2)"));
  EXPECT_TRUE(contains(grouped, "y = tf_conv(x, kernel, strides=(1, 1), dilations=(1, 1), padding=\"VALID\", groups=2)"))
      << grouped;
  // Depthwise 1-D: a height-1 depthwise_conv2d, explicit padding on the width only.
  const std::string depthwise1d = emit_tf_nn(plan_for("nn.Conv1d(4, 8, 3, stride=2, groups=4, padding=1)"));
  EXPECT_TRUE(contains(depthwise1d, "y = tf.nn.depthwise_conv2d(tf.expand_dims(x, 1), tf.expand_dims(kernel, 0), "
                                    "strides=(1, 1, 2, 1), padding=[[0, 0], [0, 0], [1, 1], [0, 0]], dilations=(1, 1))"))
      << depthwise1d;
  EXPECT_TRUE(contains(depthwise1d, "y = tf.squeeze(y, axis=1)")) << depthwise1d;
}

TEST(JsonEmitter, IsCompleteAndParses) {
  const Plan plan = plan_for("nn.Conv2d(4, 8, 3, stride=2, dilation=2, padding_mode='circular', padding=1)",
                             std::vector<int64_t>{2, 4, 11, 10});
  const auto json = nlohmann::json::parse(emit_json(plan));
  EXPECT_EQ(json["source"]["padding_mode"], "circular");
  EXPECT_EQ(json["exact_for"], "every_input_size");
  EXPECT_EQ(json["input_shape"], (std::vector<int64_t>{2, 4, 11, 10}));
  EXPECT_EQ(json["output_shape"], (std::vector<int64_t>{2, 8, 5, 4}));  // floor((11+2-5)/2)+1, floor((10+2-5)/2)+1
  ASSERT_EQ(json["steps"].size(), 2u);  // stride with dilation in the one conv op
  EXPECT_EQ(json["steps"][0]["op"], "pad");
  EXPECT_EQ(json["steps"][1]["op"], "conv");
  EXPECT_EQ(json["steps"][1]["implementation"], "tf_conv");
  EXPECT_EQ(json["steps"][1]["strides"], (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(json["weights"]["kernel"]["to_layout"], "HWIO");
  EXPECT_FALSE(json["steps"][0]["why"].get<std::string>().empty());
}

TEST(JsonEmitter, InvalidUtf8InTheLayerTextDoesNotThrow) {
  const Plan plan = plan_for("nn.Conv1d(1, 1, 1, device='\xff\xfe')");
  EXPECT_TRUE(nlohmann::json::accept(emit_json(plan)));  // valid JSON: the bytes were replaced, not passed through
  EXPECT_FALSE(contains(emit_keras(plan), "\xff"));
}

TEST(Explain, NamesPaddingShapesAndWeights) {
  const std::string text = explain_plan(plan_for("nn.Conv2d(3, 16, 3, stride=2, padding=1)", std::vector<int64_t>{1, 3, 224, 224}));
  EXPECT_TRUE(contains(text, "padding per side: H (1, 1), W (1, 1)")) << text;
  EXPECT_TRUE(contains(text, "input (1, 3, 224, 224) -> output (1, 16, 112, 112)")) << text;
  EXPECT_TRUE(contains(text, "OIHW (16, 3, 3, 3) -> HWIO (3, 3, 3, 16)")) << text;
  EXPECT_TRUE(contains(text, "TF 'same' pads (0, 1)")) << text;
}

}  // namespace
}  // namespace convbridge
