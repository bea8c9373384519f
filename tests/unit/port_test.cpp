// plan_port on hand-written Keras configs and checkpoints given as (name, shape) lists: where the state_dict is
// found, which module each Keras layer takes, where every element moves (checked against the index formulas of the
// two layouts, written out here), and what the lint reports. tests/python/test_port.py runs the same against real
// PyTorch and Keras models end to end.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>

#include "convbridge/model/graph.hpp"
#include "convbridge/port/weight_port.hpp"
#include "keras_config_builders.hpp"
#include "port/checkpoint_groups.hpp"

namespace convbridge::port {
namespace {

using nlohmann::json;
using test_support::input_layer;
using test_support::layer;
using test_support::tensor;
using test_support::weight;

json model(const std::string& name, json layers, const std::string& input, const std::string& output, json weights) {
  return {{"format", "convbridge.keras_model/1"},
          {"model", {{"class_name", "Functional"},
                     {"config", {{"name", name}, {"layers", std::move(layers)}, {"input_layers", {input, 0, 0}},
                                 {"output_layers", {output, 0, 0}}}}}},
          {"weights", std::move(weights)}};
}

json conv_config(int filters, int kernel, int stride, const std::string& padding, bool bias) {
  return {{"filters", filters}, {"kernel_size", {kernel, kernel}}, {"strides", {stride, stride}},
          {"padding", padding}, {"use_bias", bias}, {"activation", "linear"}};
}

// x (N, size, size, 3) -> ZeroPadding2D(1) (or none with 'same') -> Conv2D(4, 3, stride 2) -> BN -> ReLU -> Flatten
// -> Dense(5), the Keras layers named unlike the PyTorch modules.
struct Options {
  int size = 8;
  bool same = false;       // padding='same' instead of ZeroPadding2D(1) + 'valid'
  double epsilon = 1e-5;
  bool conv_bias = false;
  bool dense_bias = true;
};

json small_net(const Options& o) {
  const int out = (o.size - 1) / 2 + 1;  // 3x3, stride 2, pad 1 each side
  json layers = json::array({input_layer("x", {nullptr, o.size, o.size, 3})});
  std::string conv_input = "x";
  json conv_input_shape = {nullptr, o.size, o.size, 3};
  if (!o.same) {
    layers.push_back(layer("ZeroPadding2D", "pad", {{"padding", {{1, 1}, {1, 1}}}},
                           json::array({tensor("x", {nullptr, o.size, o.size, 3})})));
    conv_input = "pad";
    conv_input_shape = {nullptr, o.size + 2, o.size + 2, 3};
  }
  layers.push_back(layer("Conv2D", "stem", conv_config(4, 3, 2, o.same ? "same" : "valid", o.conv_bias),
                         json::array({tensor(conv_input, conv_input_shape)})));
  layers.push_back(layer("BatchNormalization", "stem_norm", {{"axis", -1}, {"epsilon", o.epsilon}, {"center", true},
                                                             {"scale", true}, {"momentum", 0.99}},
                         json::array({tensor("stem", {nullptr, out, out, 4})})));
  layers.push_back(layer("ReLU", "act", json::object(), json::array({tensor("stem_norm", {nullptr, out, out, 4})})));
  layers.push_back(layer("Flatten", "flat", json::object(), json::array({tensor("act", {nullptr, out, out, 4})})));
  layers.push_back(layer("Dense", "head", {{"units", 5}, {"use_bias", o.dense_bias}, {"activation", "linear"}},
                         json::array({tensor("flat", {nullptr, out * out * 4})})));
  json stem_weights = json::array({weight("kernel", {3, 3, 3, 4})});
  if (o.conv_bias) stem_weights.push_back(weight("bias", {4}));
  json head_weights = json::array({weight("kernel", {out * out * 4, 5})});
  if (o.dense_bias) head_weights.push_back(weight("bias", {5}));
  return model("small", layers, "x", "head",
               {{"stem", stem_weights},
                {"stem_norm", json::array({weight("gamma", {4}), weight("beta", {4}), weight("moving_mean", {4}),
                                           weight("moving_variance", {4})})},
                {"head", head_weights}});
}

std::vector<CheckpointTensor> small_checkpoint(int size, const std::string& prefix = "", bool conv_bias = false) {
  const int64_t out = (size - 1) / 2 + 1;
  std::vector<CheckpointTensor> t = {{prefix + "features.0.weight", {4, 3, 3, 3}}};
  if (conv_bias) t.push_back({prefix + "features.0.bias", {4}});
  for (const char* role : {"weight", "bias", "running_mean", "running_var"}) {
    t.push_back({prefix + "features.1." + role, {4}});
  }
  t.push_back({prefix + "features.1.num_batches_tracked", {}});
  t.push_back({prefix + "classifier.weight", {5, out * out * 4}});
  t.push_back({prefix + "classifier.bias", {5}});
  return t;
}

PortPlan plan_for(const json& config, const std::vector<CheckpointTensor>& tensors, const PortOptions& options = {}) {
  auto graph = model::parse_keras_model_config(config.dump());
  EXPECT_TRUE(graph) << graph.error().message;
  auto plan = plan_port(*graph, tensors, options);
  EXPECT_TRUE(plan) << plan.error().message;
  return *plan;
}

const PortedLayer& layer_named(const PortPlan& plan, const std::string& name) {
  for (const PortedLayer& l : plan.layers) {
    if (l.keras_layer == name) return l;
  }
  ADD_FAILURE() << "no layer " << name;
  return plan.layers.front();
}

std::vector<LintFinding> findings(const PortPlan& plan, Severity severity) {
  std::vector<LintFinding> out;
  for (const PortedLayer& l : plan.layers) {
    for (const LintFinding& f : l.lint) {
      if (f.severity == severity) out.push_back(f);
    }
  }
  for (const LintFinding& f : plan.model_lint) {
    if (f.severity == severity) out.push_back(f);
  }
  return out;
}

std::vector<float> iota(size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

TEST(CheckpointGroups, FindsTheModelInsideATrainingCheckpoint) {
  std::vector<CheckpointTensor> t = {{"model.module.conv.weight", {2, 1, 3, 3}},
                                     {"model.module.bn.running_mean", {2}},
                                     {"model.module.bn.running_var", {2}},
                                     {"model.module.bn.num_batches_tracked", {}},
                                     {"optimizer.state.0.exp_avg", {2, 1, 3, 3}}};
  const CheckpointModules groups = group_checkpoint(t);
  EXPECT_EQ(groups.root, "model.module.");
  ASSERT_EQ(groups.modules.size(), 2u);
  EXPECT_EQ(groups.modules[0].module, "conv");
  EXPECT_EQ(groups.modules[0].kind, ModuleKind::conv);
  EXPECT_EQ(groups.modules[1].kind, ModuleKind::batch_norm);
  std::vector<std::string> ignored = groups.ignored;
  std::sort(ignored.begin(), ignored.end());
  EXPECT_EQ(ignored, (std::vector<std::string>{"model.module.bn.num_batches_tracked", "optimizer.state.0.exp_avg"}));
}

TEST(CheckpointGroups, AStateDictWithASubmoduleCalledModelKeepsItsRoot) {
  std::vector<CheckpointTensor> t = {{"model.0.weight", {2, 1, 3, 3}}, {"head.weight", {5, 2}}};
  const CheckpointModules groups = group_checkpoint(t);
  EXPECT_EQ(groups.root, "");
  ASSERT_EQ(groups.modules.size(), 2u);
  EXPECT_EQ(groups.modules[0].module, "model.0");
  EXPECT_EQ(groups.modules[1].kind, ModuleKind::linear);
}

TEST(CheckpointGroups, NameSortedCheckpointsAreOrderedNumerically) {
  // As safetensors stores them: int64 counters first, then by name ("features.10" before "features.2").
  std::vector<CheckpointTensor> t = {{"features.3.num_batches_tracked", {}}, {"features.1.weight", {2, 1, 3, 3}},
                                     {"features.10.weight", {2, 2, 3, 3}}, {"features.2.weight", {2, 2, 1, 1}}};
  const CheckpointModules groups = group_checkpoint(t);
  ASSERT_EQ(groups.modules.size(), 3u);
  EXPECT_EQ(groups.modules[0].module, "features.1");
  EXPECT_EQ(groups.modules[1].module, "features.2");
  EXPECT_EQ(groups.modules[2].module, "features.10");
}

TEST(Port, MatchesByStructureAndMovesEveryElement) {
  const PortPlan plan = plan_for(small_net({}), small_checkpoint(8, "model."));
  EXPECT_EQ(plan.errors(), 0) << port_report(plan);
  EXPECT_EQ(plan.checkpoint_root, "model.");
  EXPECT_EQ(layer_named(plan, "stem").torch_module, "features.0");
  EXPECT_EQ(layer_named(plan, "stem_norm").torch_module, "features.1");
  EXPECT_EQ(layer_named(plan, "head").torch_module, "classifier");
  EXPECT_TRUE(plan.unused.empty());
  EXPECT_TRUE(plan.missing.empty());

  // Conv: Keras kernel[h][w][i][o] = PyTorch weight[o][i][h][w].
  const PortedWeight& kernel = layer_named(plan, "stem").weights[0];
  const std::vector<float> w = iota(4 * 3 * 3 * 3);
  const std::vector<float> k = ported_values<float>(kernel, w);
  ASSERT_EQ(k.size(), w.size());
  for (int h = 0; h < 3; ++h)
    for (int x = 0; x < 3; ++x)
      for (int i = 0; i < 3; ++i)
        for (int o = 0; o < 4; ++o) {
          ASSERT_EQ(k[((h * 3 + x) * 3 + i) * 4 + o], w[((o * 3 + i) * 3 + h) * 3 + x]);
        }

  // Dense after Flatten of (N, 4, 4, 4): Keras row (h*4 + x)*4 + c is PyTorch column c*16 + h*4 + x.
  const PortedWeight& dense = layer_named(plan, "head").weights[0];
  const std::vector<float> fc = iota(5 * 64);
  const std::vector<float> d = ported_values<float>(dense, fc);
  for (int h = 0; h < 4; ++h)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 4; ++c)
        for (int o = 0; o < 5; ++o) {
          ASSERT_EQ(d[static_cast<size_t>(((h * 4 + x) * 4 + c) * 5 + o)], fc[static_cast<size_t>(o * 64 + c * 16 + h * 4 + x)]);
        }
  EXPECT_NE(layer_named(plan, "head").note.find("Flatten"), std::string::npos);
}

TEST(Port, SamePaddingAtStrideTwoOnAnEvenInputIsAnError) {
  const PortPlan plan = plan_for(small_net({.size = 8, .same = true}), small_checkpoint(8));
  const auto errors = findings(plan, Severity::error);
  ASSERT_EQ(errors.size(), 1u) << port_report(plan);
  EXPECT_EQ(errors[0].layer, "stem");
  EXPECT_EQ(errors[0].check, "padding");
  EXPECT_NE(errors[0].message.find("'stem'"), std::string::npos);
  EXPECT_NE(errors[0].message.find("(0, 1)"), std::string::npos);
}

TEST(Port, SamePaddingAtStrideTwoOnAnOddInputIsSymmetric) {
  // 9 pixels, k 3, s 2: TF pads (1, 1), as PyTorch's padding=1.
  const PortPlan plan = plan_for(small_net({.size = 9, .same = true}), small_checkpoint(9));
  EXPECT_EQ(plan.errors(), 0) << port_report(plan);
}

TEST(Port, WrongEpsilonIsAnErrorNamingTheLayer) {
  const PortPlan plan = plan_for(small_net({.epsilon = 1e-3}), small_checkpoint(8));
  const auto errors = findings(plan, Severity::error);
  ASSERT_EQ(errors.size(), 1u) << port_report(plan);
  EXPECT_EQ(errors[0].check, "epsilon");
  EXPECT_NE(errors[0].message.find("'stem_norm'"), std::string::npos);
  EXPECT_NE(errors[0].message.find("1e-05"), std::string::npos);
}

TEST(Port, ExactEpsilonFromTheModuleConstructor) {
  PortOptions options;
  options.torch_modules["features.1"] = "nn.BatchNorm2d(4, eps=0.001)";
  EXPECT_EQ(plan_for(small_net({.epsilon = 1e-3}), small_checkpoint(8), options).errors(), 0);
  options.torch_modules["features.1"] = "nn.BatchNorm2d(4)";
  EXPECT_EQ(plan_for(small_net({.epsilon = 1e-3}), small_checkpoint(8), options).errors(), 1);
}

TEST(Port, ABiasOnlyPyTorchHasIsAnError) {
  const PortPlan plan = plan_for(small_net({.dense_bias = false}), small_checkpoint(8));
  const auto errors = findings(plan, Severity::error);
  ASSERT_EQ(errors.size(), 1u) << port_report(plan);
  EXPECT_EQ(errors[0].check, "bias");
  EXPECT_NE(errors[0].message.find("'head'"), std::string::npos);
}

TEST(Port, ABiasOnlyKerasHasIsZero) {
  const PortPlan plan = plan_for(small_net({.conv_bias = true}), small_checkpoint(8));
  EXPECT_EQ(plan.errors(), 0) << port_report(plan);
  const PortedWeight& bias = layer_named(plan, "stem").weights[1];
  EXPECT_TRUE(bias.fill);
  EXPECT_EQ(bias.fill_value, 0.0);
}

TEST(Port, StridePlacementAgainstTheModuleConstructor) {
  PortOptions options;
  options.torch_modules["features.0"] = "nn.Conv2d(3, 4, 3, stride=1, padding=1, bias=False)";
  const PortPlan plan = plan_for(small_net({}), small_checkpoint(8), options);
  const auto errors = findings(plan, Severity::error);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].check, "stride");
  options.torch_modules["features.0"] = "nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)";
  EXPECT_EQ(plan_for(small_net({}), small_checkpoint(8), options).errors(), 0);
}

TEST(Port, AnotherArchitectureLeavesWeightsMissingAndTensorsUnused) {
  std::vector<CheckpointTensor> t = {{"conv.weight", {16, 3, 7, 7}}, {"fc.weight", {10, 16}}, {"fc.bias", {10}}};
  const PortPlan plan = plan_for(small_net({}), t);
  EXPECT_GT(plan.errors(), 0);
  EXPECT_FALSE(plan.missing.empty());
  EXPECT_EQ(plan.unused.size(), 3u);
}

// A block whose Keras version builds the shortcut (1x1 conv + BN) before the main path (3x3 conv + BN), while
// PyTorch registers the main path first: the BN after each conv takes the module right after that conv's.
TEST(Port, ShortcutBuiltFirstStillMatchesItsOwnModules) {
  json layers = json::array({input_layer("x", {nullptr, 8, 8, 4})});
  const json x = json::array({tensor("x", {nullptr, 8, 8, 4})});
  layers.push_back(layer("Conv2D", "short_conv", conv_config(8, 1, 1, "valid", false), x));
  layers.push_back(layer("BatchNormalization", "short_bn", {{"epsilon", 1e-5}},
                         json::array({tensor("short_conv", {nullptr, 8, 8, 8})})));
  layers.push_back(layer("Conv2D", "main_conv", conv_config(8, 3, 1, "same", false), x));
  layers.push_back(layer("BatchNormalization", "main_bn", {{"epsilon", 1e-5}},
                         json::array({tensor("main_conv", {nullptr, 8, 8, 8})})));
  layers.push_back(layer("Add", "add", json::object(),
                         json::array({tensor("main_bn", {nullptr, 8, 8, 8}), tensor("short_bn", {nullptr, 8, 8, 8})})));
  json bn = json::array({weight("gamma", {8}), weight("beta", {8}), weight("moving_mean", {8}), weight("moving_variance", {8})});
  const json config = model("block", layers, "x", "add",
                            {{"short_conv", json::array({weight("kernel", {1, 1, 4, 8})})}, {"short_bn", bn},
                             {"main_conv", json::array({weight("kernel", {3, 3, 4, 8})})}, {"main_bn", bn}});
  std::vector<CheckpointTensor> t = {{"conv1.weight", {8, 4, 3, 3}}};
  for (const char* role : {"weight", "bias", "running_mean", "running_var"}) t.push_back({std::string("bn1.") + role, {8}});
  t.push_back({"downsample.0.weight", {8, 4, 1, 1}});
  for (const char* role : {"weight", "bias", "running_mean", "running_var"}) t.push_back({std::string("downsample.1.") + role, {8}});
  const PortPlan plan = plan_for(config, t);
  // The first unused BatchNorm of 8 channels is bn1; the shortcut's BN takes downsample.1, after its conv's module.
  EXPECT_EQ(layer_named(plan, "short_conv").torch_module, "downsample.0");
  EXPECT_EQ(layer_named(plan, "short_bn").torch_module, "downsample.1");
  EXPECT_EQ(layer_named(plan, "main_conv").torch_module, "conv1");
  EXPECT_EQ(layer_named(plan, "main_bn").torch_module, "bn1");
  EXPECT_EQ(plan.errors(), 0) << port_report(plan);
}

TEST(Port, MaxPoolingAfterZeroPaddingOfSignedValuesIsAWarning) {
  json layers = json::array({input_layer("x", {nullptr, 8, 8, 3})});
  layers.push_back(layer("Conv2D", "conv", conv_config(4, 3, 1, "same", true), json::array({tensor("x", {nullptr, 8, 8, 3})})));
  layers.push_back(layer("ZeroPadding2D", "pad", {{"padding", {{1, 1}, {1, 1}}}},
                         json::array({tensor("conv", {nullptr, 8, 8, 4})})));
  layers.push_back(layer("MaxPooling2D", "pool", {{"pool_size", {3, 3}}, {"strides", {2, 2}}, {"padding", "valid"}},
                         json::array({tensor("pad", {nullptr, 10, 10, 4})})));
  const json config = model("pooled", layers, "x", "pool",
                            {{"conv", json::array({weight("kernel", {3, 3, 3, 4}), weight("bias", {4})})}});
  const PortPlan plan = plan_for(config, {{"c.weight", {4, 3, 3, 3}}, {"c.bias", {4}}});
  const auto warnings = findings(plan, Severity::warning);
  ASSERT_EQ(warnings.size(), 1u) << port_report(plan);
  EXPECT_EQ(warnings[0].check, "pool_padding");
  EXPECT_EQ(warnings[0].layer, "pool");
}

TEST(Port, JsonReportListsEveryLayerWithWeightsOnce) {
  const PortPlan plan = plan_for(small_net({}), small_checkpoint(8));
  const json report = json::parse(port_report_json(plan));
  ASSERT_EQ(report["layers"].size(), 3u);
  EXPECT_EQ(report["layers"][0]["keras_layer"], "stem");
  EXPECT_EQ(report["layers"][0]["weights"][0]["torch"], "features.0.weight");
  EXPECT_EQ(report["errors"], 0);
}

}  // namespace
}  // namespace convbridge::port
