// Whole-model output, Keras -> PyTorch: model.py (a readable nn.Module class, one attribute per Keras layer, named
// after it, and a plain forward) and the per-node explanation. convbridge.to_torch runs this same source, so what
// the user reads is what runs.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <nlohmann/json.hpp>

#include "convbridge/model/torch_model.hpp"
#include "emit/embedded_python.hpp"
#include "emit/emit_common.hpp"

namespace convbridge::model {

using emit::outputs_expression;
using emit::shape_text;

std::string emit_torch_model_source(const TorchModelPlan& plan) {
  std::vector<std::string> inputs;
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    inputs.push_back(fmt::format("{} {}", plan.input_variables[i], shape_text(plan.torch_input_shapes[i])));
  }
  std::string out = fmt::format(
      R"PY("""{name} for PyTorch, converted from Keras by convbridge {version}: channels_first in and out
(rank-2 tensors as they are), exact to float32 round-off for inputs {inputs} (-1: any size). {transposes}

    model = load_model()            # weights from model.safetensors beside this file
    model = {cls}()                 # PyTorch's initial weights, e.g. to train from scratch

Needs torch only.
"""

import json
import os

import torch
from torch import nn
)PY",
      fmt::arg("name", plan.model_name), fmt::arg("version", CONVBRIDGE_VERSION), fmt::arg("cls", plan.class_name),
      fmt::arg("inputs", fmt::join(inputs, ", ")),
      fmt::arg("transposes", plan.runtime_transposes == 0
                                 ? std::string("No runtime transposes.")
                                 : fmt::format("{} runtime transpose{} (where the Keras model moves data across the "
                                               "channel axis).", plan.runtime_transposes,
                                               plan.runtime_transposes == 1 ? "" : "s")));
  if (!plan.helpers.empty()) {  // convbridge's own modules (python/convbridge/torch_modules.py), as they are
    out += "import torch.nn.functional as F\n";
    out += emit::python_sections(emit::kTorchModulesPython, plan.helpers);
  }
  out += fmt::format("\n\nclass {}(nn.Module):\n    \"\"\"The Keras model {}, layer by layer.\"\"\"\n\n"
                     "    def __init__(self):\n        super().__init__()\n",
                     plan.class_name, emit::python_string(plan.model_name));
  std::string last_layer;
  for (const TorchAttribute& attribute : plan.attributes) {
    if (attribute.layer != last_layer && !attribute.layer.empty()) {
      out += fmt::format("        # {}\n", emit::comment_safe(attribute.layer));
      last_layer = attribute.layer;
    }
    out += fmt::format("        self.{} = {}\n", attribute.attribute, attribute.constructor);
  }
  out += fmt::format("\n    def forward(self, {}):\n", fmt::join(plan.input_variables, ", "));
  for (const TargetLine& line : plan.lines) {
    out += fmt::format("        {} = {}", fmt::join(line.outputs, ", "), line.expression);
    if (!line.comment.empty()) out += "  # " + line.comment;
    out += "\n";
  }
  size_t next = 0;
  out += fmt::format("        return {}\n",
                     outputs_expression(nlohmann::json::parse(plan.output_structure), plan.output_variables, next));
  out += fmt::format(R"PY(

def read_safetensors(path):
    """{{name: tensor}} from a safetensors file: an 8-byte little-endian header size, a JSON header naming each
    tensor's dtype, shape and byte range, then the bytes. float32 and int64 (what convbridge writes)."""
    dtypes = {{"F32": (torch.float32, 4), "I64": (torch.int64, 8)}}
    with open(path, "rb") as f:
        data = f.read()
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError(f"{{path}}: the header runs past the end of the file")
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    body = memoryview(data)[8 + size:]
    tensors = {{}}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        count = 1
        for length in entry["shape"]:
            count *= length
        dtype, width = dtypes.get(entry["dtype"], (None, 0))
        if dtype is None or not 0 <= begin <= end <= len(body) or end - begin != width * count:
            raise ValueError(f"{{path}}: tensor {{name}} is not float32 or int64 data of shape {{entry['shape']}}")
        tensors[name] = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype).reshape(entry["shape"])
    return tensors


def load_model(path=os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.safetensors")):
    """The converted model with its weights loaded, in eval mode."""
    model = {cls}()
    model.load_state_dict(read_safetensors(path))
    return model.eval()
)PY",
                     fmt::arg("cls", plan.class_name));
  return out;
}

std::string explain_torch_model(const TorchModelPlan& plan) {
  std::map<std::string, const TensorPlacement*> tensors;
  for (const TensorPlacement& t : plan.tensors) tensors[t.tensor] = &t;
  std::string out = fmt::format("{}: Keras -> PyTorch ({}), {} nodes, {} runtime transpose{}.\n", plan.model_name,
                                plan.class_name, plan.nodes.size(), plan.runtime_transposes,
                                plan.runtime_transposes == 1 ? "" : "s");
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    out += fmt::format("input {}: Keras {} -> PyTorch channels_first {}\n", plan.inputs[i].tensor,
                       shape_text(plan.inputs[i].source_shape), shape_text(plan.torch_input_shapes[i]));
  }
  for (const NodeReport& node : plan.nodes) {
    std::vector<std::string> shapes;
    for (const std::string& output : node.outputs) {
      const auto it = tensors.find(output);
      if (it != tensors.end()) shapes.push_back(shape_text(it->second->source_shape));
    }
    out += fmt::format("\n{} [{}]\n  -> {}  Keras shape {}\n", node.origin, node.source_op, node.target,
                       fmt::join(shapes, ", "));
    if (!node.why.empty()) out += "  why: " + node.why + "\n";
  }
  return out;
}

}  // namespace convbridge::model
