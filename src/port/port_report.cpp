// The port report, as text for a terminal and as JSON for scripts (README "Porting weights").
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "convbridge/port/weight_port.hpp"
#include "io/io_support.hpp"

namespace convbridge::port {
namespace {

std::string_view severity_name(Severity severity) {
  switch (severity) {
    case Severity::note: return "note";
    case Severity::warning: return "warning";
    case Severity::error: return "error";
  }
  return "error";
}

std::string finding_line(const LintFinding& f) {
  return fmt::format("  {} [{}] {}\n", severity_name(f.severity), f.check, f.message);
}

// At most `limit` names, then how many more.
std::string name_list(const std::vector<std::string>& names, size_t limit) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += fmt::format("  {}\n", names[i]);
  if (names.size() > limit) out += fmt::format("  ... and {} more\n", names.size() - limit);
  return out;
}

}  // namespace

std::string port_report(const PortPlan& plan) {
  std::string out = fmt::format("Keras model '{}' <- PyTorch state_dict{}\n", plan.model_name,
                                plan.checkpoint_root.empty() ? "" : fmt::format(" at '{}'", plan.checkpoint_root));
  for (const PortedLayer& layer : plan.layers) {
    out += fmt::format("{} <- {}\n", layer.keras_layer, layer.torch_module.empty() ? "(nothing)" : layer.torch_module);
    for (const PortedWeight& w : layer.weights) {
      if (w.source >= 0) {
        out += fmt::format("    {} {} <- {} {}{}\n", w.keras_name, io::shape_string(w.keras_shape), w.torch_name,
                           io::shape_string(w.torch_shape),
                           w.change.from_layout == "C" ? "" : fmt::format(", {} -> {}", w.change.from_layout, w.change.to_layout));
      } else if (w.fill) {
        out += fmt::format("    {} {} = {:g} (PyTorch has none)\n", w.keras_name, io::shape_string(w.keras_shape), w.fill_value);
      } else if (w.kept) {
        out += fmt::format("    {} {} kept\n", w.keras_name, io::shape_string(w.keras_shape));
      } else {
        out += fmt::format("    {} {} MISSING\n", w.keras_name, io::shape_string(w.keras_shape));
      }
    }
    if (!layer.note.empty()) out += fmt::format("    ({})\n", layer.note);
  }
  std::string findings;
  for (const PortedLayer& layer : plan.layers) {
    for (const LintFinding& f : layer.lint) findings += finding_line(f);
  }
  for (const LintFinding& f : plan.model_lint) findings += finding_line(f);
  if (!findings.empty()) out += "\nLint:\n" + findings;
  if (!plan.missing.empty()) out += "\nMissing (Keras weights no checkpoint tensor fills):\n" + name_list(plan.missing, 50);
  if (!plan.unused.empty()) out += "\nUnused (checkpoint tensors no Keras weight takes):\n" + name_list(plan.unused, 50);
  if (!plan.ignored.empty()) {
    size_t counters = 0;
    for (const std::string& name : plan.ignored) counters += name.ends_with("num_batches_tracked");
    out += fmt::format("\nIgnored: {} tensor(s) ({} BatchNorm num_batches_tracked counter(s), {} outside the "
                       "state_dict, such as optimizer state)\n",
                       plan.ignored.size(), counters, plan.ignored.size() - counters);
  }
  out += fmt::format("\n{} error(s), {} warning(s)\n", plan.errors(), plan.warnings());
  return out;
}

std::string port_report_json(const PortPlan& plan) {
  using nlohmann::json;
  const auto finding = [](const LintFinding& f) {
    return json{{"layer", f.layer}, {"severity", severity_name(f.severity)}, {"check", f.check}, {"message", f.message}};
  };
  json layers = json::array();
  for (const PortedLayer& layer : plan.layers) {
    json weights = json::array();
    for (const PortedWeight& w : layer.weights) {
      json entry{{"keras", w.keras_name}, {"keras_shape", w.keras_shape}};
      entry["torch"] = w.source >= 0 ? json(w.torch_name) : json(nullptr);
      entry["torch_shape"] = w.source >= 0 ? json(w.torch_shape) : json(nullptr);
      entry["source"] = w.source >= 0 ? "checkpoint" : w.fill ? "fill" : w.kept ? "kept" : "missing";
      if (w.fill) entry["fill"] = w.fill_value;
      if (w.source >= 0) entry["layout"] = {w.change.from_layout, w.change.to_layout};
      weights.push_back(std::move(entry));
    }
    json lint = json::array();
    for (const LintFinding& f : layer.lint) lint.push_back(finding(f));
    json entry{{"keras_layer", layer.keras_layer}, {"keras_class", layer.keras_class},
               {"torch_module", layer.torch_module.empty() ? json(nullptr) : json(layer.torch_module)},
               {"weights", std::move(weights)}, {"lint", std::move(lint)}};
    if (!layer.note.empty()) entry["note"] = layer.note;
    layers.push_back(std::move(entry));
  }
  json model_lint = json::array();
  for (const LintFinding& f : plan.model_lint) model_lint.push_back(finding(f));
  json out{{"model", plan.model_name},     {"checkpoint_root", plan.checkpoint_root},
           {"layers", std::move(layers)},  {"model_lint", std::move(model_lint)},
           {"missing", plan.missing},      {"unused", plan.unused},
           {"ignored", plan.ignored},      {"errors", plan.errors()},
           {"warnings", plan.warnings()}};
  return out.dump(2) + "\n";
}

}  // namespace convbridge::port
