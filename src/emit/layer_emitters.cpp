// Emitters for plans of the op set (convbridge/layer_plan.hpp): explanation, Keras, tf and PyTorch source, JSON.
// Every step is printed from its FrameworkCall, so these functions know no layer kind; the layers of ours that a
// step names are embedded from python/convbridge/keras_layers.py and torch_modules.py by section.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "convbridge/emit.hpp"
#include "convbridge/frontends.hpp"
#include "emit/embedded_python.hpp"
#include "emit/emit_common.hpp"

namespace convbridge {
namespace {

using nlohmann::json;

std::string shape_text(std::span<const int64_t> shape) {
  std::vector<std::string> entries;
  for (const int64_t v : shape) entries.push_back(v < 0 ? "None" : std::to_string(v));
  return fmt::format("({})", fmt::join(entries, ", "));
}

// A weight's shape, with C for a channel count the plan does not know yet: (C,), (1, 1, C).
std::string weight_shape_text(std::span<const int64_t> shape) {
  std::vector<std::string> entries;
  for (const int64_t v : shape) entries.push_back(v <= 0 ? "C" : std::to_string(v));
  return fmt::format("({}{})", fmt::join(entries, ", "), entries.size() == 1 ? "," : "");
}

// (N, C, *spatial) -> (N, *spatial, C)
std::vector<int64_t> to_channels_last(std::vector<int64_t> shape) {
  if (shape.size() > 2) std::rotate(shape.begin() + 1, shape.begin() + 2, shape.end());
  return shape;
}

bool uses_channels_name(const CallValue& value) {
  if (value.kind == CallValue::Kind::name && value.text == "channels") return true;
  return std::any_of(value.items.begin(), value.items.end(), uses_channels_name);
}

bool plan_uses_channels_name(const LayerPlan& plan) {
  for (const TargetStep& step : plan.steps) {
    for (const CallArgument& a : step.call.arguments) {
      if (uses_channels_name(a.value)) return true;
    }
  }
  return false;
}

std::string call_text(const FrameworkCall& call) {
  // "convbridge.X" is our own layer: emitted code defines it at the top level.
  const std::string_view ours = "convbridge.";
  FrameworkCall printed = call;
  if (printed.callee.starts_with(ours)) printed.callee = printed.callee.substr(ours.size());
  return python_call_text(printed);
}

bool identity_permutation(const std::vector<int>& permutation) {
  for (size_t i = 0; i < permutation.size(); ++i) {
    if (permutation[i] != static_cast<int>(i)) return false;
  }
  return true;
}

// numpy expression applying a layout change to `expression`.
std::string numpy_change(const WeightLayoutChange& change, std::string expression) {
  if (!change.reshape.empty()) expression = fmt::format("np.reshape({}, {})", expression, emit::py_tuple(change.reshape));
  std::vector<int64_t> transposed;
  const auto& middle = change.reshape.empty() ? change.from_shape : change.reshape;
  for (const int axis : change.permutation) transposed.push_back(middle[static_cast<size_t>(axis)]);
  if (!identity_permutation(change.permutation)) {
    expression = fmt::format("np.transpose({}, {})", expression, emit::py_tuple(change.permutation));
  }
  if (transposed != change.to_shape) expression = fmt::format("np.reshape({}, {})", expression, emit::py_tuple(change.to_shape));
  return expression;
}

// The inverse of a source weight's change, as numpy (source layout -> neutral).
std::string numpy_to_neutral(const FrameworkWeight& source, const std::string& name) {
  const WeightLayoutChange& c = source.from_neutral;
  std::string expression = fmt::format("np.asarray({}, dtype=np.float32)", name);
  const auto& middle = c.reshape.empty() ? c.from_shape : c.reshape;
  std::vector<int64_t> transposed;
  for (const int axis : c.permutation) transposed.push_back(middle[static_cast<size_t>(axis)]);
  if (transposed != c.to_shape) expression = fmt::format("np.reshape({}, {})", expression, emit::py_tuple(transposed));
  if (!identity_permutation(c.permutation)) {
    std::vector<int> inverse(c.permutation.size());
    for (size_t i = 0; i < c.permutation.size(); ++i) inverse[static_cast<size_t>(c.permutation[i])] = static_cast<int>(i);
    expression = fmt::format("np.transpose({}, {})", expression, emit::py_tuple(inverse));
  }
  if (middle != c.from_shape) expression = fmt::format("np.reshape({}, {})", expression, emit::py_tuple(c.from_shape));
  return expression;
}

// The expression of a target step's weight, from the make_*() parameters (source weights).
std::string target_weight_expression(const LayerPlan& plan, const FrameworkWeight& weight) {
  if (weight.neutral_index < 0) {
    return fmt::format("np.full({}, {}, dtype=np.float32)", emit::py_tuple(weight.from_neutral.to_shape),
                       python_literal(CallValue::of(weight.fill)));
  }
  // The source weight holding this neutral tensor.
  for (size_t i = 0; i < plan.source_weights.size(); ++i) {
    const FrameworkWeight& source = plan.source_weights[i];
    if (source.neutral_index == weight.neutral_index) {
      return numpy_change(weight.from_neutral, numpy_to_neutral(source, source.name));
    }
  }
  return "None";
}

std::vector<std::string> parameter_names(const LayerPlan& plan) {
  std::vector<std::string> names;
  if (plan_uses_channels_name(plan) && plan.source_weights.empty()) names.push_back("channels");
  for (const FrameworkWeight& w : plan.source_weights) names.push_back(w.name);
  return names;
}

std::string signature(const LayerPlan& plan) {
  std::vector<std::string> parameters;
  for (const std::string& name : parameter_names(plan)) {
    parameters.push_back(name == "channels" ? name : name + "=None");
  }
  return fmt::format("({})", fmt::join(parameters, ", "));
}

// `channels = ...` when calls use the name and the weights say it.
std::string channels_line(const LayerPlan& plan, const std::string& indent) {
  if (!plan_uses_channels_name(plan) || plan.source_weights.empty()) return "";
  const FrameworkWeight& first = plan.source_weights.front();
  return fmt::format("{}if {} is None:\n{}    raise ValueError(\"the channel count comes from the weights: pass them "
                     "(the layer text does not say it)\")\n{}channels = int(np.asarray({}).shape[{}])\n",
                     indent, first.name, indent, indent, first.name,
                     first.from_neutral.to_shape.size() == 1 ? 0 : static_cast<int>(first.from_neutral.to_shape.size()) - 1);
}

std::string header(const LayerPlan& plan, std::string_view target) {
  std::string validity;
  if (plan.exact_for_every_input_size) {
    validity = fmt::format("# Exact for every input size {} accepts.\n", framework_name(plan.source.framework));
  } else {
    validity = fmt::format("# Exact only for input shape {}; regenerate without --input-shape (or with None sizes)\n"
                           "# for code exact at every size.\n",
                           shape_text(*plan.input_shape));
  }
  const bool keras_target = plan.target == Framework::keras;
  return fmt::format("# Generated by convbridge {} ({}) from the {} layer:\n#     {}\n{}# Tensors are {}.\n",
                     CONVBRIDGE_VERSION, target, framework_name(plan.source.framework),
                     emit::comment_safe(plan.source.text), validity,
                     keras_target ? "channels_last (N, *spatial, C)" : "channels_first (N, C, *spatial)");
}

std::vector<std::string> helper_sections(const LayerPlan& plan) {
  std::vector<std::string> sections;
  for (const TargetStep& step : plan.steps) {
    for (const std::string& helper : step.helpers) {
      if (std::find(sections.begin(), sections.end(), helper) == sections.end()) sections.push_back(helper);
    }
  }
  if (!plan.exact_for_every_input_size) sections.push_back("ExpectInputSize");
  return sections;
}

// TorchEdgePad calls torch_edge_pad (python/convbridge/torch_padding.py), which emitted code embeds first.
bool uses_edge_padding(const std::vector<std::string>& sections) {
  return std::find(sections.begin(), sections.end(), "TorchEdgePad") != sections.end();
}

std::vector<int64_t> guard_sizes(const LayerPlan& plan) {
  return std::vector<int64_t>(plan.channels_first_input.begin() + 2, plan.channels_first_input.end());
}

std::string weight_list(const LayerPlan& plan, const TargetStep& step) {
  std::vector<std::string> expressions;
  for (const FrameworkWeight& w : step.weights) expressions.push_back(target_weight_expression(plan, w));
  return fmt::format("[{}]", fmt::join(expressions, ", "));
}

std::string first_weight_check(const LayerPlan& plan) {
  if (plan.source_weights.empty()) return "";
  return fmt::format("{} is not None", plan.source_weights.front().name);
}

json call_json(const FrameworkCall& call);

json value_json(const CallValue& v) {
  switch (v.kind) {
    case CallValue::Kind::integer: return v.integer;
    case CallValue::Kind::number:
      if (std::isinf(v.number)) return json{{"float", v.number > 0 ? "inf" : "-inf"}};
      return v.number;
    case CallValue::Kind::boolean: return v.boolean;
    case CallValue::Kind::none: return nullptr;
    case CallValue::Kind::string: return v.text;
    case CallValue::Kind::name: return json{{"name", v.text}};
    case CallValue::Kind::tuple: {
      json items = json::array();
      for (const CallValue& item : v.items) items.push_back(value_json(item));
      return items;
    }
  }
  return nullptr;
}

json call_json(const FrameworkCall& call) {
  json positional = json::array();
  json keywords = json::object();
  for (const CallArgument& a : call.arguments) {
    if (a.keyword.empty()) positional.push_back(value_json(a.value));
    else keywords[a.keyword] = value_json(a.value);
  }
  return json{{"callee", call.callee}, {"args", positional}, {"kwargs", keywords}, {"code", call_text(call)}};
}

json change_json(const WeightLayoutChange& c) {
  return json{{"from_shape", c.from_shape}, {"reshape", c.reshape}, {"permutation", c.permutation},
              {"to_shape", c.to_shape}};
}

json weight_json(const FrameworkWeight& w) {
  return json{{"name", w.name}, {"role", w.role}, {"neutral_index", w.neutral_index}, {"fill", w.fill},
              {"shape", w.from_neutral.to_shape}, {"from_neutral", change_json(w.from_neutral)}};
}

}  // namespace

std::string explain_plan(const LayerPlan& plan) {
  const bool to_keras = plan.target == Framework::keras;
  std::string out = fmt::format("{} {}\n  computes: {}\n", framework_name(plan.source.framework),
                                emit::comment_safe(plan.source.text), describe_op(plan.source.op));
  if (!plan.channels_first_input.empty()) {
    const auto& in = plan.channels_first_input;
    const bool known = std::all_of(in.begin(), in.end(), [](int64_t v) { return v > 0; });
    if (known) {
      auto out_shape = op_output_shape(plan.source.op, in);
      if (out_shape) {
        out += fmt::format("  shapes: channels_first {} -> {}; channels_last {} -> {}\n", shape_text(in),
                           shape_text(*out_shape), shape_text(to_channels_last(in)),
                           shape_text(to_channels_last(*out_shape)));
      }
    } else {
      out += fmt::format("  input: channels_first {}, channels_last {} (None: any size)\n", shape_text(in),
                         shape_text(to_channels_last(in)));
    }
  }
  out += fmt::format("\n{} plan, {}; {} tensors:\n", framework_name(plan.target),
                     plan.exact_for_every_input_size ? "exact for every input size"
                                                     : "exact for this input size only",
                     to_keras ? "channels_last" : "channels_first");
  if (!plan.exact_for_every_input_size) {
    out += fmt::format("  0. ExpectInputSize{}: refuses other sizes rather than compute something else\n",
                       emit::py_tuple(guard_sizes(plan)));
  }
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const TargetStep& step = plan.steps[i];
    out += fmt::format("  {}. {}\n", i + 1, call_text(step.call));
    if (!step.why.empty()) out += fmt::format("     why: {}\n", step.why);
  }
  if (!plan.source_weights.empty()) {
    out += "\nWeights:\n";
    for (const TargetStep& step : plan.steps) {
      for (const FrameworkWeight& w : step.weights) {
        std::string from = "constant " + python_literal(CallValue::of(w.fill));
        for (const FrameworkWeight& s : plan.source_weights) {
          if (s.neutral_index == w.neutral_index && w.neutral_index >= 0) {
            from = fmt::format("{} {}", s.name, weight_shape_text(s.from_neutral.to_shape));
          }
        }
        out += fmt::format("  {} {} <- {}\n", w.name, weight_shape_text(w.from_neutral.to_shape), from);
      }
    }
  }
  if (!plan.notes.empty()) {
    out += "\nNotes:\n";
    for (const std::string& note : plan.notes) out += fmt::format("  - {}\n", note);
  }
  return out;
}

// keras.Input shape of channels_last tensors: the known sizes, None elsewhere, the channels or `channels`.
std::string keras_input_shape(const LayerPlan& plan) {
  const auto& in = plan.channels_first_input;
  const int rank = in.empty() ? (op_rank(plan.source.op) > 0 ? op_rank(plan.source.op) : 2) : static_cast<int>(in.size()) - 2;
  std::vector<std::string> entries;
  for (int i = 0; i < rank; ++i) {
    const int64_t size = in.empty() ? -1 : in[static_cast<size_t>(i) + 2];
    entries.push_back(size > 0 && !plan.exact_for_every_input_size ? std::to_string(size) : "None");
  }
  const int64_t channels = in.empty() ? 0 : in[1];
  // A layer without weights that does not name the channel count (pooling) takes any: None.
  const bool names_channels = plan_uses_channels_name(plan) || !plan.source_weights.empty();
  entries.push_back(channels > 0 ? std::to_string(channels) : names_channels ? "channels" : "None");
  return fmt::format("({},)", fmt::join(entries, ", "));
}

std::string emit_keras(const LayerPlan& plan) {
  std::string out = header(plan, "Keras 3");
  out += "import numpy as np\nimport keras\n";
  const auto sections = helper_sections(plan);
  if (uses_edge_padding(sections)) out += emit::kTorchPaddingPython;
  if (!sections.empty()) out += emit::python_sections(emit::kKerasLayersPython, sections);
  out += fmt::format("\n\ndef make_layer{}:\n", signature(plan));
  out += fmt::format("    \"\"\"The Keras layer for the {} layer above; weights (if given) in {}'s layout.\"\"\"\n",
                     framework_name(plan.source.framework), framework_name(plan.source.framework));
  std::string channels = channels_line(plan, "    ");
  const bool needs_channels = plan_uses_channels_name(plan) || std::any_of(plan.steps.begin(), plan.steps.end(),
      [](const TargetStep& step) { return !step.weights.empty(); });
  // The channel count for keras.Input/build, from the weights when the plan has no input shape (or no channels).
  if (channels.empty() && needs_channels && (plan.channels_first_input.empty() || plan.channels_first_input[1] <= 0) &&
      !plan.source_weights.empty()) {
    channels = fmt::format("    channels = int(np.asarray({}).shape[0])\n", plan.source_weights.front().name);
  }
  out += channels;
  const std::string given = first_weight_check(plan);
  std::vector<std::string> names;
  const bool sequential = plan.steps.size() > 1 || !plan.exact_for_every_input_size;
  if (sequential) out += fmt::format("    inputs = keras.Input({})\n", keras_input_shape(plan));
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const TargetStep& step = plan.steps[i];
    const std::string name = plan.steps.size() == 1 ? "layer" : fmt::format("layer{}", i + 1);
    out += fmt::format("    {} = {}\n", name, call_text(step.call));
    if (!step.weights.empty()) {
      out += fmt::format("    if {}:\n", given.empty() ? "True" : given);
      out += fmt::format("        {}.build((None,) + {})\n", name, keras_input_shape(plan));
      out += fmt::format("        {}.set_weights({})\n", name, weight_list(plan, step));
    }
    names.push_back(name);
  }
  if (!sequential) return out + "    return layer\n";
  if (!plan.exact_for_every_input_size) {
    names.insert(names.begin(), fmt::format("ExpectInputSize({})", emit::py_tuple(guard_sizes(plan))));
  }
  return out + fmt::format("    return keras.Sequential([inputs, {}])\n", fmt::join(names, ", "));
}

std::string emit_tf_nn(const LayerPlan& plan) {
  std::string out = header(plan, "TensorFlow");
  out += "import numpy as np\nimport tensorflow as tf\n";
  std::vector<std::string> sections = helper_sections(plan);
  sections.erase(std::remove(sections.begin(), sections.end(), "ExpectInputSize"), sections.end());
  // A step without a tf function form runs its Keras layer (a native one or one of ours), which needs keras.
  const bool runs_a_layer = std::any_of(plan.steps.begin(), plan.steps.end(),
                                        [](const TargetStep& step) { return !step.function.has_value(); });
  if (!sections.empty() || runs_a_layer) out += "import keras\n";
  if (!sections.empty()) {
    if (uses_edge_padding(sections)) out += emit::kTorchPaddingPython;
    out += emit::python_sections(emit::kKerasLayersPython, sections);
  }
  std::string parameters;
  for (const std::string& name : parameter_names(plan)) parameters += ", " + name + (name == "channels" ? "" : "=None");
  out += fmt::format("\n\ndef layer(x{}):\n", parameters);
  out += fmt::format("    \"\"\"The {} layer above as TensorFlow ops on a channels_last tensor x.\"\"\"\n",
                     framework_name(plan.source.framework));
  out += "    x = tf.convert_to_tensor(x)\n";
  if (!plan.exact_for_every_input_size) {
    out += fmt::format("    tf.debugging.assert_equal(tf.shape(x)[1:-1], {}, message=\"this code is exact for "
                       "spatial size {} only\")\n",
                       emit::py_tuple(guard_sizes(plan)), emit::py_tuple(guard_sizes(plan)));
  }
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const TargetStep& step = plan.steps[i];
    if (step.function) {
      for (const FrameworkWeight& w : step.weights) {
        out += fmt::format("    {} = tf.constant({})\n", w.name, target_weight_expression(plan, w));
      }
      out += fmt::format("    x = {}\n", call_text(*step.function));
      continue;
    }
    // No tf form: the Keras layer itself (native, or one of ours embedded above), built for x and given the
    // converted weights when it has any.
    const std::string layer = fmt::format("layer{}", i + 1);
    out += fmt::format("    {} = {}\n", layer, call_text(step.call));
    if (!step.weights.empty()) {
      const std::string given = first_weight_check(plan);
      out += fmt::format("    if {}:\n        {}.build(x.shape)\n        {}.set_weights({})\n",
                         given.empty() ? "True" : given, layer, layer, weight_list(plan, step));
    }
    out += fmt::format("    x = {}(x)\n", layer);
  }
  out += "    return x\n";
  return out;
}

std::string emit_torch(const LayerPlan& plan) {
  std::string out = header(plan, "PyTorch");
  out += "import numpy as np\nimport torch\nfrom torch import nn\n";
  const auto sections = helper_sections(plan);
  if (!sections.empty()) {
    out += "import torch.nn.functional as F\n" + emit::python_sections(emit::kTorchModulesPython, sections);
  }
  out += fmt::format("\n\ndef make_module{}:\n", signature(plan));
  out += fmt::format("    \"\"\"The nn.Module for the {} layer above, in eval mode; weights (if given) in {}'s "
                     "layout.\"\"\"\n",
                     framework_name(plan.source.framework), framework_name(plan.source.framework));
  out += channels_line(plan, "    ");
  std::vector<std::string> modules;
  if (!plan.exact_for_every_input_size) {
    modules.push_back(fmt::format("ExpectInputSize({})", emit::py_tuple(guard_sizes(plan))));
  }
  const std::string given = first_weight_check(plan);
  std::string loads;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const TargetStep& step = plan.steps[i];
    modules.push_back(call_text(step.call));
    if (step.weights.empty()) continue;
    const std::string module = fmt::format("modules[{}]", modules.size() - 1);
    for (const FrameworkWeight& w : step.weights) {
      loads += fmt::format("            {}.{}.copy_(torch.from_numpy({}))\n", module, w.name,
                           target_weight_expression(plan, w));
    }
  }
  out += fmt::format("    modules = [{}]\n", fmt::join(modules, ", "));
  if (!loads.empty()) {
    out += fmt::format("    if {}:\n        with torch.no_grad():\n{}", given.empty() ? "True" : given, loads);
  }
  out += "    module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)\n";
  out += "    return module.eval()\n";
  return out;
}

std::string emit_json(const LayerPlan& plan, const VerificationReport* verification) {
  json steps = json::array();
  for (const TargetStep& step : plan.steps) {
    json weights = json::array();
    for (const FrameworkWeight& w : step.weights) weights.push_back(weight_json(w));
    steps.push_back(json{{"call", call_json(step.call)},
                         {"function", step.function ? call_json(*step.function) : json(nullptr)},
                         {"weights", weights},
                         {"helpers", step.helpers},
                         {"computes", describe_op(step.op)},
                         {"why", step.why}});
  }
  json source_weights = json::array();
  for (const FrameworkWeight& w : plan.source_weights) source_weights.push_back(weight_json(w));
  json neutral = json::array();
  for (const OpWeight& w : plan.weights) neutral.push_back(json{{"role", w.role}, {"shape", w.shape}});
  json document = {
      {"kind", "layer"},
      {"direction", plan.target == Framework::keras ? "pytorch_to_keras" : "keras_to_pytorch"},
      {"source",
       {{"framework", plan.source.framework == Framework::pytorch  ? "pytorch"
                      : plan.source.framework == Framework::keras ? "keras"
                                                                  : "tensorflow"},
        {"class", plan.source.class_name},
        {"text", plan.source.text},
        {"computes", describe_op(plan.source.op)},
        {"rank", op_rank(plan.source.op)}}},  // the spatial rank the op demands, 0 for any
      {"input_shape", plan.input_shape ? json(*plan.input_shape) : json(nullptr)},
      {"channels_first_input", plan.channels_first_input},
      {"exact_for", plan.exact_for_every_input_size ? "every_input_size" : "input_shape"},
      {"steps", steps},
      {"source_weights", source_weights},
      {"weights", neutral},
      {"notes", plan.notes},
      {"warnings", plan.warnings},
  };
  if (verification != nullptr) {
    json cases = json::array();
    for (const VerificationCase& c : verification->cases) {
      cases.push_back(json{{"input_shape", c.input_shape}, {"output_shape", c.output_shape},
                           {"shapes_match", c.shapes_match}, {"max_abs_diff", c.max_abs_diff}});
    }
    document["verification"] = json{{"passed", verification->passed()}, {"seed", verification->seed},
                                    {"tolerance", verification->tolerance}, {"cases", cases},
                                    {"skipped_reason", verification->skipped_reason}};
  } else {
    document["verification"] = nullptr;
  }
  return document.dump(2) + "\n";
}

}  // namespace convbridge
