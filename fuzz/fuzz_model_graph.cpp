// libFuzzer target: a captured model graph (the JSON python/convbridge/_capture.py writes from torch.export,
// "convbridge.torch_export/1") -> parse_torch_export_graph -> plan_keras_model -> emit_keras_model_source and
// explain_keras_model -> convert_target_weight for every target weight, on zero-filled parameters of the shapes the
// graph declares (what the Python package does with the real values).
//
// Invariants: errors have a bounded, non-empty message; a parsed graph has outputs and every node has one output
// name per output shape; the plan counts exactly the runtime transposes its lines run; model.py is printable ASCII
// and defines build_model, load_weights and load_model; every converted weight has the element count of its target
// shape.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/checked_math.hpp"
#include "convbridge/model/graph.hpp"
#include "convbridge/model/keras_model.hpp"
#include "fuzz_support.hpp"

namespace {

using convbridge::fuzz::fuzz_fail;

constexpr int64_t kMaxParameterElements = int64_t{1} << 20;  // zero-filled values per parameter (8 MB)

int64_t elements(const std::vector<int64_t>& shape) {
  const auto product = convbridge::checked_product(shape);
  return product ? *product : -1;
}

void check_weights(const convbridge::model::ModelGraph& graph, const convbridge::model::KerasModelPlan& plan,
                   std::string_view input) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& parameter : graph.parameters) shapes[parameter.name] = parameter.shape;
  for (const auto& line : plan.lines) {
    for (const auto& weight : line.weights) {
      std::vector<int64_t> target = weight.layer_plan >= 0 ? weight.shape
                                    : weight.change.to_shape.empty() ? weight.change.from_shape
                                                                     : weight.change.to_shape;
      const int64_t want = elements(target);
      if (want < 0 || want > kMaxParameterElements) continue;
      std::vector<double> values;
      if (!weight.constant) {
        const auto it = shapes.find(weight.parameter);
        if (it == shapes.end()) fuzz_fail("a target weight reads '" + weight.parameter + "', not a parameter", input);
        const int64_t count = elements(it->second);
        if (count < 0 || count > kMaxParameterElements) continue;
        // The package hands over the parameter's own values: of the shape the graph declares for it.
        values.assign(static_cast<size_t>(count), 0.0);
      }
      const std::vector<double> converted = convbridge::model::convert_target_weight(plan, weight, values);
      if (static_cast<int64_t>(converted.size()) != want) {
        fuzz_fail("a converted weight has " + std::to_string(converted.size()) + " elements, its target shape " +
                      std::to_string(want),
                  input);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto graph = convbridge::model::parse_torch_export_graph(input);
  if (!graph) {
    convbridge::fuzz::check_error(graph.error(), input);
    return 0;
  }
  if (graph->outputs.empty()) fuzz_fail("a parsed graph without outputs", input);
  for (const auto& node : graph->nodes) {
    if (node.outputs.size() != std::max<size_t>(node.output_shapes.size(), 1)) {
      fuzz_fail("node " + node.name + " has " + std::to_string(node.outputs.size()) + " output names for " +
                    std::to_string(node.output_shapes.size()) + " shapes",
                input);
    }
  }
  auto plan = convbridge::model::plan_keras_model(*graph);
  if (!plan) {
    convbridge::fuzz::check_error(plan.error(), input);
    return 0;
  }
  int transposes = 0;
  for (const auto& line : plan->lines) transposes += line.runtime_transpose ? 1 : 0;
  if (transposes != plan->runtime_transposes) fuzz_fail("runtime_transposes is not the lines that transpose", input);
  if (plan->output_variables.size() != graph->outputs.size()) fuzz_fail("an output without a variable", input);

  const std::string source = convbridge::model::emit_keras_model_source(*plan);
  convbridge::fuzz::check_python_source(source, "emit_keras_model_source", input);
  for (const char* entry : {"\ndef build_model():\n", "\ndef load_weights(model, arrays):\n", "\ndef load_model("}) {
    if (source.find(entry) == std::string::npos) fuzz_fail(std::string("model.py lacks ") + entry, input);
  }
  if (convbridge::model::explain_keras_model(*plan).empty()) fuzz_fail("explain_keras_model returned nothing", input);
  check_weights(*graph, *plan, input);
  return 0;
}
