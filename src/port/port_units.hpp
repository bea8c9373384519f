// The pieces plan_port works on, shared by its matcher (weight_port.cpp) and its lint (port_lint.cpp): the Keras
// model's weighted layers as units, and an index of which node produces and reads each tensor.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "convbridge/model/graph.hpp"
#include "convbridge/port/weight_port.hpp"
#include "port/checkpoint_groups.hpp"

namespace convbridge::port {

enum class UnitKind { conv, depthwise, separable, conv_transpose, dense, batch_norm, norm, kept, unsupported };

// A Keras layer with weights (called once or more: one unit), with what its weights need from the checkpoint.
struct KerasUnit {
  const model::GraphNode* node = nullptr;  // its first call
  UnitKind kind = UnitKind::unsupported;
  std::string layer;       // layer path
  std::string class_name;  // "Conv2D"
  std::vector<std::string> roles;                // Keras variable names, in the layer's weight order
  std::vector<std::string> parameters;           // graph parameter per role
  std::vector<std::vector<int64_t>> shapes;      // Keras shape per role
  std::vector<int64_t> input_shape;              // its input, Keras layout (N, *spatial, C); empty if unknown
  std::vector<int64_t> flatten_from;             // Dense after a Flatten: the tensor flattened (N, *spatial, C)
  int feeding_unit = -1;                         // the weighted unit whose output reaches it through weightless ops

  std::optional<size_t> role(std::string_view name) const;
};

struct GraphIndex {
  const model::ModelGraph* graph = nullptr;
  std::map<std::string, size_t> producer;      // tensor -> node index
  std::map<std::string, std::vector<int64_t>> shapes;  // tensor -> Keras-layout shape
  const model::GraphNode* producer_of(const std::string& tensor) const;
  // The node's first tensor input's producer, or nullptr for a model input.
  const model::GraphNode* input_producer(const model::GraphNode& node) const;
  std::vector<int64_t> input_shape(const model::GraphNode& node) const;
};

GraphIndex index_graph(const model::ModelGraph& graph);

// The findings on one matched pair: padding, stride, dilation and groups of convs, eps of norms (bias presence is
// decided while the weights are paired: weight_port.cpp).
void lint_pair(const KerasUnit& unit, const GraphIndex& index, const TorchModuleTensors& module,
               const PortOptions& options, std::vector<LintFinding>& findings);
// Findings on layers without weights: max pooling after zero padding, average pooling's divisor.
void lint_model(const GraphIndex& index, std::vector<LintFinding>& findings);

}  // namespace convbridge::port
