// A whole model planned for Keras 3: one line of Keras source per target layer, on channels_last tensors end to
// end. The layout planner tracks, per tensor, how the source's (N, C, *spatial) tensor is laid out in the target
// (Layout), maps each layout-sensitive op (cat, mean, softmax, slicing, reshape, permute) onto that layout, folds a
// Flatten into the next Linear's weight, and inserts a runtime transpose only where the source moves data across
// the channel axis (counted in runtime_transposes). Each node's plan says why.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/layer_plan.hpp"
#include "convbridge/model/graph.hpp"
#include "convbridge/model/target_plan.hpp"
#include "convbridge/weight_layout.hpp"

namespace convbridge::model {

struct KerasModelPlan {
  std::string model_name;
  std::vector<TensorPlacement> inputs;   // model inputs, channels_last
  std::vector<std::vector<int64_t>> keras_input_shapes;  // without the batch
  std::vector<TargetLine> lines;
  std::vector<std::string> output_variables;
  std::vector<std::string> output_tensors;
  std::string output_structure;  // as the graph has it
  std::vector<TensorPlacement> tensors;  // every source tensor the target computes, for per-node verification
  std::vector<NodeReport> nodes;
  std::vector<std::string> helpers;      // keras_layers.py sections the lines use
  bool needs_torch_padding = false;      // TorchEdgePad's torch_edge_pad helper
  std::vector<LayerPlan> layer_plans;    // the op-set layers' plans (TargetWeight::layer_plan indexes it)
  int runtime_transposes = 0;
};

// Plans the graph for Keras, with every size known (the capture's example input).
Result<KerasModelPlan> plan_keras_model(const ModelGraph& graph);

// model.py: readable Keras 3 source with build_model(), load_weights(model, arrays), load_model(path); it needs
// keras and numpy only.
std::string emit_keras_model_source(const KerasModelPlan& plan);
// Per node: source op, module and line, what it became, why, shapes.
std::string explain_keras_model(const KerasModelPlan& plan);

// The target weight from its source parameter's values (row-major, the parameter's shape, weight.change.from_shape);
// empty when the values are not of that shape.
std::vector<double> convert_target_weight(const KerasModelPlan& plan, const TargetWeight& weight,
                                          std::span<const double> parameter);

// A Keras layer or model name for a module path or class name: the characters of a module path are kept, any other
// becomes '_', so that a name can neither end its string literal in model.py nor hold the '/' Keras refuses.
std::string keras_name(std::string_view text);

}  // namespace convbridge::model
