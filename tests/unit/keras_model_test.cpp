// The Keras model front-end and the PyTorch model planner on hand-written configs ("convbridge.keras_model/1", as
// python/convbridge/_keras_capture.py writes them, in Keras 3's serialize_keras_object format): what
// parse_keras_model_config builds, the clean errors for malformed or unconvertible models, and what
// plan_torch_model makes of Flatten -> Dense and of a Dense on a channels_first tensor.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <variant>

#include "convbridge/model/graph.hpp"
#include "convbridge/model/torch_model.hpp"
#include "keras_config_builders.hpp"

namespace convbridge::model {
namespace {

using nlohmann::json;
using test_support::input_layer;
using test_support::layer;
using test_support::tensor;
using test_support::weight;

// x (N, 4, 4, 2) -> Conv2D(3, 3, 'same') -> Flatten -> Dense(5)
json conv_flatten_dense() {
  json layers = json::array(
      {input_layer("x", {nullptr, 4, 4, 2}),
       layer("Conv2D", "conv", {{"filters", 3}, {"kernel_size", {3, 3}}, {"padding", "same"}, {"use_bias", true},
                                {"activation", "linear"}, {"kernel_initializer", {{"class_name", "GlorotUniform"}}}},
             json::array({tensor("x", {nullptr, 4, 4, 2})})),
       layer("Flatten", "flat", json::object(), json::array({tensor("conv", {nullptr, 4, 4, 3})})),
       layer("Dense", "fc", {{"units", 5}, {"use_bias", true}, {"activation", "linear"}},
             json::array({tensor("flat", {nullptr, 48})}))});
  return {{"format", "convbridge.keras_model/1"},
          {"model", {{"class_name", "Functional"},
                     {"config", {{"name", "tiny"}, {"layers", layers}, {"input_layers", {"x", 0, 0}},
                                 {"output_layers", {"fc", 0, 0}}}}}},
          {"weights", {{"conv", json::array({weight("kernel", {3, 3, 2, 3}), weight("bias", {3})})},
                       {"fc", json::array({weight("kernel", {48, 5}), weight("bias", {5})})}}},
          {"output_shapes", {{nullptr, 5}}}};
}

TEST(KerasModelConfig, ParsesLayersShapesAndWeights) {
  auto graph = parse_keras_model_config(conv_flatten_dense().dump());
  ASSERT_TRUE(graph) << graph.error().message;
  ASSERT_EQ(graph->nodes.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<KerasConvNode>(graph->nodes[0].op));
  EXPECT_TRUE(std::holds_alternative<ReshapeNode>(graph->nodes[1].op));
  const auto* dense = std::get_if<LinearNode>(&graph->nodes[2].op);
  ASSERT_NE(dense, nullptr);
  EXPECT_EQ(dense->in_features, 48);
  EXPECT_EQ(dense->out_features, 5);
  EXPECT_EQ(graph->nodes[1].output_shapes[0], (std::vector<int64_t>{kUnknownSize, 48}));
  EXPECT_EQ(graph->parameters.size(), 4u);
}

TEST(KerasModelConfig, FlattenBeforeDenseIsFoldedIntoTheWeight) {
  auto graph = parse_keras_model_config(conv_flatten_dense().dump());
  ASSERT_TRUE(graph);
  auto plan = plan_torch_model(*graph);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->runtime_transposes, 0);
  const std::string source = emit_torch_model_source(*plan);
  EXPECT_NE(source.find("torch.flatten(conv, 1)"), std::string::npos) << source;
  EXPECT_NE(source.find("self.fc = nn.Linear(48, 5, bias=True)"), std::string::npos) << source;
  // The Dense kernel (48, 5) = (H, W, C, out) rows -> Linear weight (out, C, H, W) flattened: entry [o][c*16+h*4+w]
  // is kernel[(h*4+w)*3+c][o].
  for (const auto& attribute : plan->attributes) {
    for (const auto& weight : attribute.weights) {
      if (weight.name != "fc.weight") continue;
      std::vector<double> kernel(48 * 5);
      for (size_t i = 0; i < kernel.size(); ++i) kernel[i] = static_cast<double>(i);
      const auto converted = convert_torch_weight(*plan, weight, kernel);
      ASSERT_EQ(converted.size(), kernel.size());
      const int o = 2, c = 1, h = 3, w = 0;
      EXPECT_EQ(converted[static_cast<size_t>(o * 48 + c * 16 + h * 4 + w)], kernel[static_cast<size_t>(((h * 4 + w) * 3 + c) * 5 + o)]);
    }
  }
}

TEST(KerasModelConfig, LambdaAndCustomLayersAreRefusedByName) {
  json model = conv_flatten_dense();
  model["model"]["config"]["layers"][2]["class_name"] = "Lambda";
  auto graph = parse_keras_model_config(model.dump());
  ASSERT_FALSE(graph);
  EXPECT_NE(graph.error().message.find("layer 'flat' (Lambda)"), std::string::npos) << graph.error().message;
  model = conv_flatten_dense();
  model["model"]["config"]["layers"][2]["module"] = "my_project.layers";
  model["model"]["config"]["layers"][2]["class_name"] = "Mystery";
  graph = parse_keras_model_config(model.dump());
  ASSERT_FALSE(graph);
  EXPECT_NE(graph.error().message.find("custom layer (my_project.layers.Mystery)"), std::string::npos)
      << graph.error().message;
}

TEST(KerasModelConfig, MalformedConfigsAreCleanErrors) {
  for (const std::string& text : {std::string("{"), std::string("[]"), std::string(R"({"format": "x"})"),
                                 std::string(R"({"format": "convbridge.keras_model/1"})"),
                                 std::string(R"({"format": "convbridge.keras_model/1", "model": {"class_name": "MyNet", "config": {}}})")}) {
    auto graph = parse_keras_model_config(text);
    EXPECT_FALSE(graph) << text;
  }
  json model = conv_flatten_dense();
  model["model"]["config"]["layers"][3]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = {"nowhere", 0, 0};
  auto graph = parse_keras_model_config(model.dump());
  ASSERT_FALSE(graph);
  EXPECT_NE(graph.error().message.find("layer 'fc'"), std::string::npos) << graph.error().message;
  model = conv_flatten_dense();
  model["weights"]["fc"][0] = weight("kernel", {47, 5});
  graph = parse_keras_model_config(model.dump());
  ASSERT_TRUE(graph);
  auto plan = plan_torch_model(*graph);
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().message.find("layer 'fc'"), std::string::npos) << plan.error().message;
  model = conv_flatten_dense();
  model["model"]["config"]["layers"][1]["config"]["dtype"] = "float16";
  graph = parse_keras_model_config(model.dump());
  ASSERT_FALSE(graph);
  EXPECT_NE(graph.error().message.find("float16"), std::string::npos) << graph.error().message;
}

}  // namespace
}  // namespace convbridge::model
