// Whole-model output: model.py (readable Keras 3 source, one line per layer, names from the module paths) and the
// per-node explanation. convbridge.to_keras runs this same source, so what the user reads is what runs.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "convbridge/model/keras_model.hpp"
#include "emit/embedded_python.hpp"
#include "emit/emit_common.hpp"

namespace convbridge::model {
namespace {

using emit::outputs_expression;
using emit::python_string;
using emit::shape_text;

}  // namespace

std::string emit_keras_model_source(const KerasModelPlan& plan) {
  std::string out = fmt::format(
      R"PY("""{name} for Keras 3, converted from PyTorch by convbridge: channels_last in and out, exact to float32
round-off for inputs of shape {inputs} (None: any size). {transposes}

    model = load_model()            # weights from weights.npz beside this file
    model = build_model()           # Keras' initial weights, e.g. to train from scratch

Needs keras (TensorFlow backend) and numpy only.
"""

import os

import numpy as np
import keras
from keras import layers, ops
)PY",
      fmt::arg("name", plan.model_name),
      fmt::arg("inputs", [&] {
        std::vector<std::string> parts;
        for (size_t i = 0; i < plan.inputs.size(); ++i) {
          std::vector<int64_t> shape = {plan.inputs[i].source_shape[0]};
          shape.insert(shape.end(), plan.keras_input_shapes[i].begin(), plan.keras_input_shapes[i].end());
          parts.push_back(fmt::format("{} {}", plan.inputs[i].variable, shape_text(shape)));
        }
        return fmt::format("{}", fmt::join(parts, ", "));
      }()),
      fmt::arg("transposes", plan.runtime_transposes == 0
                                 ? std::string("No runtime transposes.")
                                 : fmt::format("{} runtime transpose{} (where the PyTorch model moves data across "
                                               "axes).", plan.runtime_transposes,
                                               plan.runtime_transposes == 1 ? "" : "s")));
  if (plan.needs_torch_padding) out += emit::kTorchPaddingPython;
  // The conv lines come from emit::keras_conv_constructor, which names TfConv / TfDepthwiseConv for tf_conv steps.
  std::vector<std::string> helpers = plan.helpers;
  const bool uses_tf_conv = std::any_of(plan.lines.begin(), plan.lines.end(), [](const TargetLine& line) {
    return line.expression.starts_with("TfConv(") || line.expression.starts_with("TfDepthwiseConv(");
  });
  for (const std::string& section : emit::kTfConvSections) {
    if (uses_tf_conv && std::find(helpers.begin(), helpers.end(), section) == helpers.end()) {
      helpers.push_back(section);
    }
  }
  if (!helpers.empty()) out += emit::python_sections(emit::kKerasLayersPython, helpers);
  out += fmt::format("\n\ndef build_model():\n    \"\"\"The {} graph with Keras' initial weights.\"\"\"\n",
                     plan.model_name);
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    out += fmt::format("    {} = keras.Input(shape={}, name=\"{}\")\n", plan.inputs[i].variable,
                       shape_text(plan.keras_input_shapes[i]), keras_name(plan.inputs[i].tensor));
  }
  for (const TargetLine& line : plan.lines) {
    out += fmt::format("    {} = {}", fmt::join(line.outputs, ", "), line.expression);
    if (!line.comment.empty()) out += "  # " + line.comment;
    out += "\n";
  }
  std::vector<std::string> inputs;
  for (const TensorPlacement& input : plan.inputs) inputs.push_back(input.variable);
  size_t next = 0;
  const std::string outputs = outputs_expression(nlohmann::json::parse(plan.output_structure), plan.output_variables, next);
  out += fmt::format("    return keras.Model(inputs={}, outputs={}, name=\"{}\")\n",
                     inputs.size() == 1 ? inputs[0] : fmt::format("[{}]", fmt::join(inputs, ", ")), outputs,
                     plan.model_name);
  out += R"PY(

def load_weights(model, arrays):
    """Sets each layer's weights from arrays ({"<layer name>/<index>": array}, as in weights.npz)."""
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([arrays[f"{layer.name}/{index}"] for index in range(len(layer.weights))])
    return model


def load_model(weights=os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.npz")):
    """The converted model with its weights loaded."""
    with np.load(weights) as arrays:
        return load_weights(build_model(), arrays)
)PY";
  return out;
}

std::string explain_keras_model(const KerasModelPlan& plan) {
  std::map<std::string, const TensorPlacement*> tensors;
  for (const TensorPlacement& t : plan.tensors) tensors[t.tensor] = &t;
  std::string out = fmt::format("{}: PyTorch -> Keras 3, {} nodes, {} runtime transpose{}.\n", plan.model_name,
                                plan.nodes.size(), plan.runtime_transposes, plan.runtime_transposes == 1 ? "" : "s");
  for (const TensorPlacement& input : plan.inputs) {
    out += fmt::format("input {}: PyTorch {} -> Keras channels_last (N, *spatial, C)\n", input.tensor,
                       shape_text(input.source_shape));
  }
  for (const NodeReport& node : plan.nodes) {
    std::vector<std::string> shapes;
    for (const std::string& output : node.outputs) {
      const auto it = tensors.find(output);
      if (it != tensors.end()) shapes.push_back(shape_text(it->second->source_shape));
    }
    out += fmt::format("\n{} [{}] {}\n  -> {}  {}\n", node.node, node.source_op, node.origin, node.target,
                       fmt::join(shapes, ", "));
    if (!node.why.empty()) out += "  why: " + node.why + "\n";
  }
  return out;
}

}  // namespace convbridge::model
