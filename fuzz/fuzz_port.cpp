// libFuzzer target: `port` planning and the .keras model walk.
//   - A zip (the input starts with "PK"): a .keras file through open_weight_bytes -> keras_model_from_file ->
//     parse_keras_model_config -> plan_port against a checkpoint made of the file's own variables in PyTorch
//     layout names ("<layer>.weight"), so the matcher has something to match.
//   - Otherwise JSON {"model": <convbridge.keras_model/1>, "checkpoint": [[name, shape], ...], "torch_modules":
//     {module: constructor}}: parse_keras_model_config -> plan_port -> both reports.
// Invariants: errors are bounded non-empty lines; every ported variable's re-layout produces exactly its Keras
// variable's element count, from exactly its checkpoint tensor's; the counts of the report agree with the plan.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/checked_math.hpp"
#include "convbridge/io/keras_weights.hpp"
#include "convbridge/io/weights.hpp"
#include "convbridge/model/graph.hpp"
#include "convbridge/port/keras_model_file.hpp"
#include "convbridge/port/weight_port.hpp"
#include "frontends/json_nesting.hpp"
#include "fuzz_support.hpp"

namespace {

using convbridge::fuzz::fuzz_fail;
namespace port = convbridge::port;

void check_plan(const port::PortPlan& plan, const std::vector<port::CheckpointTensor>& tensors) {
  int errors = static_cast<int>(plan.missing.size());
  for (const port::PortedLayer& layer : plan.layers) {
    for (const port::LintFinding& f : layer.lint) {
      if (f.message.empty() || f.message.size() > 4000) fuzz_fail("a lint message of bad length");
      errors += f.severity == port::Severity::error;
    }
    for (const port::PortedWeight& w : layer.weights) {
      if (w.source < 0) continue;
      if (static_cast<size_t>(w.source) >= tensors.size()) fuzz_fail("a source past the checkpoint");
      if (w.torch_shape != tensors[static_cast<size_t>(w.source)].shape) fuzz_fail("a source of another shape");
      if (w.change.from_shape != w.torch_shape) fuzz_fail("a re-layout from another shape");
      const auto out = convbridge::layout_change_output_size(w.change);
      const auto want = convbridge::checked_product(w.keras_shape);
      if (!out || !want || *out != *want) fuzz_fail("a re-layout that does not fill its Keras variable");
      if (*want <= (int64_t{1} << 16)) {
        const auto in = convbridge::checked_product(w.torch_shape);
        std::vector<float> values(static_cast<size_t>(in.value_or(0)), 1.0f);
        if (port::ported_values<float>(w, values).size() != static_cast<size_t>(*want)) fuzz_fail("ported values");
      }
    }
  }
  for (const port::LintFinding& f : plan.model_lint) errors += f.severity == port::Severity::error;
  if (errors != plan.errors()) fuzz_fail("errors() disagrees with the findings");
  const auto report = nlohmann::json::parse(port::port_report_json(plan), nullptr, false);
  if (report.is_discarded() || report["layers"].size() != plan.layers.size()) fuzz_fail("the JSON report");
  if (port::port_report(plan).empty()) fuzz_fail("an empty report");
}

void plan(const convbridge::model::ModelGraph& graph, const std::vector<port::CheckpointTensor>& tensors,
          const port::PortOptions& options) {
  auto planned = port::plan_port(graph, tensors, options);
  if (!planned) {
    convbridge::fuzz::check_error(planned.error(), std::string_view());
    return;
  }
  check_plan(*planned, tensors);
}

void keras_file(std::span<const std::byte> bytes) {
  auto opened = convbridge::io::open_weight_bytes(bytes, "fuzz.keras");
  if (!opened) return;
  auto file = port::keras_model_from_file(std::move(*opened));
  if (!file) {
    if (file.error().message.empty()) fuzz_fail("an empty error");
    return;
  }
  auto graph = convbridge::model::parse_keras_model_config(file->model_json);
  if (!graph) return;
  // The Keras variables as a PyTorch-like checkpoint: conv kernels (*k, I, O) as (O, I, *k), the rest as they are.
  std::vector<port::CheckpointTensor> tensors;
  for (const auto& [parameter, index] : file->parameter_tensor) {
    std::vector<int64_t> shape = file->weights->tensors()[index].shape;
    if (shape.size() >= 3) std::reverse(shape.begin(), shape.end());
    std::string name = parameter;
    std::replace(name.begin(), name.end(), '/', '.');
    tensors.push_back(port::CheckpointTensor{name, shape});
  }
  plan(*graph, tensors, {});
}

}  // namespace

// libhdf5 runs in this process, so coverage feedback sees the .keras walk (fuzz_keras_weights checks the reader
// process against it).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  convbridge::io::set_hdf5_isolation(convbridge::io::Hdf5Isolation::in_process);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.starts_with("PK")) {
    keras_file(std::as_bytes(std::span<const uint8_t>(data, size)));
    return 0;
  }
  const auto root = nlohmann::json::parse(input, nullptr, false);
  if (root.is_discarded() || !root.is_object() || !root.contains("model") || convbridge::json_nesting_depth(root, 200) > 200) {
    return 0;
  }
  auto graph = convbridge::model::parse_keras_model_config(root["model"].dump());
  if (!graph) return 0;
  std::vector<port::CheckpointTensor> tensors;
  if (root.contains("checkpoint") && root["checkpoint"].is_array()) {
    for (const auto& entry : root["checkpoint"]) {
      if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_array() || entry[1].size() > 6) continue;
      port::CheckpointTensor t{entry[0].get<std::string>(), {}};
      bool ok = true;
      for (const auto& s : entry[1]) {
        if (!s.is_number_integer() || s.get<int64_t>() < 0 || s.get<int64_t>() > (int64_t{1} << 20)) ok = false;
        else t.shape.push_back(s.get<int64_t>());
      }
      if (ok && convbridge::checked_product(t.shape)) tensors.push_back(std::move(t));
    }
  }
  port::PortOptions options;
  if (root.contains("torch_modules") && root["torch_modules"].is_object()) {
    for (const auto& [module, text] : root["torch_modules"].items()) {
      if (text.is_string()) options.torch_modules[module] = text.get<std::string>();
    }
  }
  plan(*graph, tensors, options);
  return 0;
}
