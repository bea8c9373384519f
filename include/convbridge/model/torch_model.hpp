// A whole Keras model planned for PyTorch: an nn.Module class whose __init__ holds one module per Keras layer
// (named after it) and whose forward computes channels_first tensors end to end. The layout planner tracks, per
// tensor, where the Keras (N, *spatial, C) axes sit in the PyTorch tensor (Layout), maps each layout-sensitive
// Keras op (Flatten, Reshape, Permute, Concatenate, Dense on rank > 2, merges, per-channel constants) onto that
// layout, folds a Flatten into the next Dense's weight, and transposes at run time only where Keras moves data
// across the channel axis (counted in runtime_transposes).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "convbridge/layer_plan.hpp"
#include "convbridge/model/graph.hpp"
#include "convbridge/model/target_plan.hpp"

namespace convbridge::model {

// One attribute of the generated module: `self.<attribute> = <constructor>`, with the state_dict entries it takes
// (TargetWeight::name is the full key, "conv1_conv.weight").
struct TorchAttribute {
  std::string attribute;
  std::string constructor;
  std::string layer;  // the Keras layer it comes from
  std::vector<TargetWeight> weights;
};

struct TorchModelPlan {
  std::string model_name;  // the Keras model's name
  std::string class_name;  // the nn.Module class model.py defines
  std::vector<TensorPlacement> inputs;                 // forward's arguments, channels_first
  std::vector<std::string> input_variables;
  std::vector<std::vector<int64_t>> torch_input_shapes;  // channels_first, batch -1; -1 where Keras has None
  std::vector<TorchAttribute> attributes;
  std::vector<TargetLine> lines;  // forward's body
  std::vector<std::string> output_variables;
  std::vector<std::string> output_tensors;
  std::string output_structure;  // as the graph has it
  std::vector<TensorPlacement> tensors;  // every Keras tensor forward computes, for per-node verification
  std::vector<NodeReport> nodes;
  std::vector<std::string> helpers;    // torch_modules.py sections the attributes use
  std::vector<LayerPlan> layer_plans;  // the op-set layers' plans (TargetWeight::layer_plan indexes it)
  int runtime_transposes = 0;
  // Parameters the Keras config itself holds (Normalization(mean=..., variance=...)), by parameter name.
  std::map<std::string, std::vector<double>> constants;
};

// Plans a Keras graph (parse_keras_model_config) for PyTorch. Sizes Keras knows give fixed padding (and an input
// size check); None sizes give plans exact for every size.
Result<TorchModelPlan> plan_torch_model(const ModelGraph& graph);

// model.py: a readable nn.Module class, read_safetensors(path) and load_model(path=None) (weights from
// model.safetensors beside the file); it needs torch only.
std::string emit_torch_model_source(const TorchModelPlan& plan);
// Per node: the Keras layer, what it became, why, shapes.
std::string explain_torch_model(const TorchModelPlan& plan);

// The state_dict entry from its source parameter's values (row-major, weight.change.from_shape), or from the
// constant the graph holds; empty when the values are not of that shape.
std::vector<double> convert_torch_weight(const TorchModelPlan& plan, const TargetWeight& weight,
                                         std::span<const double> parameter);

}  // namespace convbridge::model
