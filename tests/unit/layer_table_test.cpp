// Every layer of the real-model table (bench/layer_shapes.json: ResNet-50, MobileNetV2, ResNeXt-50, DeepLabv3, a
// U-Net, a 3-D ResNet-18 at their usual sizes) is verified by the CLI, not skipped: its check fits the reference
// engine's default budget, at the layer's own input shape. Costs only: running the checks is the benchmarks' job
// (bench/), and takes seconds, not the milliseconds a unit test may.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/planner.hpp"

namespace convbridge {
namespace {

TEST(LayerTable, NoLayerOfTheRealModelsIsSkipped) {
  std::ifstream file(CONVBRIDGE_LAYER_TABLE);
  ASSERT_TRUE(file) << CONVBRIDGE_LAYER_TABLE;
  const nlohmann::json table = nlohmann::json::parse(file);
  ASSERT_GE(table.at("layers").size(), 90u);
  int64_t most_work = 0;
  std::string most_work_layer;
  for (const nlohmann::json& row : table.at("layers")) {
    const std::string text = row.at("layer").get<std::string>();
    const auto shape = row.at("input_shape").get<std::vector<int64_t>>();
    const std::string what = row.at("model").get<std::string>() + " " + row.at("name").get<std::string>();
    auto layer = parse_pytorch_layer(text);
    ASSERT_TRUE(layer) << what << ": " << layer.error().message;
    auto plan = plan_torch_to_tf(*layer, shape);
    ASSERT_TRUE(plan) << what << ": " << plan.error().message;
    const PlannedChecks checks = plan_verification(*plan);
    ASSERT_EQ(checks.within_budget.size(), 1u) << what << " " << text << ": skipped, the check needs "
                                               << checks.cheapest_over_budget << " operations";
    EXPECT_EQ(checks.within_budget.front().input_shape, shape) << what;
    if (checks.within_budget.front().work > most_work) {
      most_work = checks.within_budget.front().work;
      most_work_layer = what;
    }
  }
  std::cout << "largest check: " << most_work_layer << ", " << most_work << " operations\n";
}

}  // namespace
}  // namespace convbridge
