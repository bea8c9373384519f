// What both model planners produce per tensor and per node: where each source tensor sits in the target
// (Layout, TensorPlacement), one line of generated code (TargetLine) with the weights its layer takes
// (TargetWeight), and a report per node (NodeReport). PyTorch -> Keras: convbridge/model/keras_model.hpp;
// Keras -> PyTorch: convbridge/model/torch_model.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
  std::string name;       // the target's name for it (PyTorch: its state_dict key); Keras: by position
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

// The target weight's shape: the layer plan's step shape, or where the change moves the parameter to.
inline std::vector<int64_t> target_weight_shape(const TargetWeight& weight) {
  if (weight.constant || weight.layer_plan >= 0) return weight.shape;
  return weight.change.to_shape.empty() ? weight.change.from_shape : weight.change.to_shape;
}

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
  std::string module;                // the source module path / Keras layer path
};

}  // namespace convbridge::model
