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
#include "convbridge/weight_layout.hpp"

namespace convbridge::model {

// The target tensor is the source tensor seen as `view_shape` (empty: its own shape), then transposed by `perm`:
// target axis i holds (viewed) source axis perm[i]; a non-empty view_shape is merged back to the source rank
// after the transpose (a Flatten of a channels_last tensor, folded into the Linear that reads it).
struct Layout {
  std::vector<int> perm;
  std::vector<int64_t> view_shape;
  friend bool operator==(const Layout&, const Layout&) = default;
};

// One weight of a target layer, computed from a source parameter by moving elements only.
struct TargetWeight {
  std::string parameter;  // the graph parameter
  // Direct route (convs, Linear, LayerNorm, arithmetic parameters): change applied to the parameter. Both routes:
  // change.from_shape is the parameter's shape (plan_keras_model checks it against the graph).
  WeightLayoutChange change;
  // Op-set route (layer_plan >= 0): the layer plan's source weight -> neutral -> this step weight.
  int layer_plan = -1;
  int source_weight = -1;
  int step = -1;
  int step_weight = -1;
  // A constant the source layer does not have (layer_plan route with neutral_index -1): fill, of this shape.
  bool constant = false;
  double fill = 0.0;
  std::vector<int64_t> shape;  // target shape
};

// One line of the generated build function: `outputs = expression`.
struct TargetLine {
  std::string node;                  // the graph node whose output this line completes, "" for a step before it
  std::vector<std::string> outputs;  // Python variables it assigns
  std::string expression;
  std::string layer_name;            // the Keras layer it builds, when that layer holds weights
  std::vector<TargetWeight> weights;  // in the layer's set_weights order
  bool runtime_transpose = false;
  std::string comment;               // printed after the line, e.g. why a transpose is there
};

struct TensorPlacement {
  std::string tensor;
  std::string variable;
  std::vector<int64_t> source_shape;
  Layout layout;
};

struct NodeReport {
  std::string node;
  std::string source_op;
  std::string origin;      // describe_node_origin
  std::string target;      // what it became, e.g. "keras.layers.Conv2D + ZeroPadding2D", "(folded)", "(view)"
  std::string why;
  std::vector<std::string> outputs;  // tensors
  std::vector<std::string> inputs;   // the tensors it reads
};

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
