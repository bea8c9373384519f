// Test helper shared by the unit tests: the PyTorch -> TF plan for a layer text, failing the test (instead of
// reading an error as a value) when the text does not parse or plan.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "convbridge/planner.hpp"

namespace convbridge::testing {

inline Plan plan_for(const std::string& text, std::optional<std::vector<int64_t>> input_shape = std::nullopt) {
  auto layer = parse_pytorch_layer(text);
  if (!layer) {
    ADD_FAILURE() << text << ": " << layer.error().message;
    return Plan{};
  }
  auto plan = plan_torch_to_tf(*layer, input_shape);
  if (!plan) {
    ADD_FAILURE() << text << ": " << plan.error().message;
    return Plan{};
  }
  return *plan;
}

}  // namespace convbridge::testing
