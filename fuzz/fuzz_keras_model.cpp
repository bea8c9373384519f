// libFuzzer target: a Keras model as data (the JSON python/convbridge/_keras_capture.py writes,
// "convbridge.keras_model/1": the model's serialized config, its weights' shapes, its output shapes) ->
// parse_keras_model_config -> plan_torch_model -> emit_torch_model_source and explain_torch_model ->
// convert_torch_weight for every state_dict entry, on zero-filled weights of the shapes the description declares.
//
// Invariants: errors have a bounded, non-empty message; every node has a shape per output; the plan counts exactly
// the runtime transposes its lines run; model.py is printable ASCII and defines the module class, read_safetensors
// and load_model; every converted weight has the element count of its target shape.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/checked_math.hpp"
#include "convbridge/model/graph.hpp"
#include "convbridge/model/torch_model.hpp"
#include "fuzz_support.hpp"

namespace {

using convbridge::fuzz::fuzz_fail;

constexpr int64_t kMaxParameterElements = int64_t{1} << 20;

int64_t elements(const std::vector<int64_t>& shape) {
  const auto product = convbridge::checked_product(shape);
  return product ? *product : -1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto graph = convbridge::model::parse_keras_model_config(input);
  if (!graph) {
    convbridge::fuzz::check_error(graph.error(), input);
    return 0;
  }
  for (const auto& node : graph->nodes) {
    if (node.outputs.size() != node.output_shapes.size()) fuzz_fail("node " + node.name + " lacks a shape", input);
  }
  auto plan = convbridge::model::plan_torch_model(*graph);
  if (!plan) {
    convbridge::fuzz::check_error(plan.error(), input);
    return 0;
  }
  int transposes = 0;
  for (const auto& line : plan->lines) transposes += line.runtime_transpose ? 1 : 0;
  if (transposes != plan->runtime_transposes) fuzz_fail("runtime_transposes is not the lines that transpose", input);
  if (plan->output_variables.size() != graph->outputs.size()) fuzz_fail("an output without a variable", input);
  const std::string source = convbridge::model::emit_torch_model_source(*plan);
  convbridge::fuzz::check_python_source(source, "emit_torch_model_source", input);
  for (const std::string& entry : {"\nclass " + plan->class_name + "(nn.Module):", std::string("\ndef read_safetensors("),
                                  std::string("\ndef load_model(")}) {
    if (source.find(entry) == std::string::npos) fuzz_fail("model.py lacks " + entry, input);
  }
  if (convbridge::model::explain_torch_model(*plan).empty()) fuzz_fail("explain_torch_model returned nothing", input);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& parameter : graph->parameters) shapes[parameter.name] = parameter.shape;
  for (const auto& attribute : plan->attributes) {
    for (const auto& weight : attribute.weights) {
      const int64_t want = elements(weight.shape);
      if (want < 0 || want > kMaxParameterElements) continue;
      std::vector<double> values;
      if (!weight.constant) {
        const auto it = shapes.find(weight.parameter);
        if (it == shapes.end()) fuzz_fail("a state_dict entry reads '" + weight.parameter + "', not a weight", input);
        const int64_t count = elements(it->second);
        if (count < 0 || count > kMaxParameterElements) continue;
        values.assign(static_cast<size_t>(count), 0.0);
      }
      const auto converted = convbridge::model::convert_torch_weight(*plan, weight, values);
      if (static_cast<int64_t>(converted.size()) != want) {
        fuzz_fail("state_dict entry " + weight.name + " has " + std::to_string(converted.size()) +
                      " elements, its shape " + std::to_string(want), input);
      }
    }
  }
  return 0;
}
