// plan_port: the Keras model's weighted layers (units) matched to the checkpoint's modules, and each variable's
// re-layout. Matching is by structure and shapes, names only as the first hint:
//   1. a module whose path, with '.' and '/' as '_', is the Keras layer's name (a model convbridge converted keeps
//      PyTorch's module paths as layer names);
//   2. the module right after the one the unit's feeding layer took, in state_dict order (a BatchNorm after its
//      conv, even where the Keras model builds a block's shortcut before its main path);
//   3. the first unused module, in state_dict (registration) order, whose tensors fit.
// A module fits when every tensor the Keras variables need is there with the shape the re-layout gives.
// Re-layouts (PyTorch -> Keras): conv (O, I/G, *k) -> (*k, I/G, O); depthwise (C*M, 1, *k) -> (*k, C, M);
// transposed conv (I, O, *k) -> (*k, O, I); Linear (out, in) -> (in, out), with the rows of a Dense after a Flatten
// of an (N, *spatial, C) tensor reordered from PyTorch's (C, *spatial) flattening to Keras' (*spatial, C).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "convbridge/checked_math.hpp"
#include "convbridge/port/weight_port.hpp"
#include "io/io_support.hpp"
#include "port/port_units.hpp"

namespace convbridge::port {
namespace {

using model::GraphNode;

std::vector<int64_t> permuted(const std::vector<int64_t>& shape, const std::vector<int>& perm) {
  std::vector<int64_t> out;
  for (int axis : perm) out.push_back(shape[static_cast<size_t>(axis)]);
  return out;
}

// Spatial axes first, then the given trailing axes: [2, ..., rank+1, a, b].
std::vector<int> spatial_first(int rank, int a, int b) {
  std::vector<int> perm;
  for (int i = 0; i < rank; ++i) perm.push_back(2 + i);
  perm.push_back(a);
  perm.push_back(b);
  return perm;
}

WeightLayoutChange change_of(std::string from_layout, std::string to_layout, std::vector<int64_t> from_shape,
                             std::vector<int64_t> reshape, std::vector<int> perm, std::vector<int64_t> to_shape = {}) {
  WeightLayoutChange change;
  change.from_layout = std::move(from_layout);
  change.to_layout = std::move(to_layout);
  change.from_shape = std::move(from_shape);
  change.reshape = std::move(reshape);
  change.permutation = std::move(perm);
  const std::vector<int64_t> moved = permuted(change.reshape.empty() ? change.from_shape : change.reshape,
                                              change.permutation);
  change.to_shape = to_shape.empty() ? moved : std::move(to_shape);
  return change;
}

WeightLayoutChange identity_change(const std::vector<int64_t>& shape) {
  std::vector<int> perm(shape.size());
  std::iota(perm.begin(), perm.end(), 0);
  return change_of("C", "C", shape, {}, perm);
}

std::string layout_letters(int rank, bool keras) {
  const std::string spatial(std::string_view("DHW").substr(static_cast<size_t>(3 - rank)));
  return keras ? spatial + "IO" : "OI" + spatial;
}

struct Pairing {
  std::vector<PortedWeight> weights;
  std::vector<LintFinding> findings;
  std::string note;
};

const std::vector<int64_t>* shape_of(std::span<const CheckpointTensor> tensors, const TorchModuleTensors& module,
                                     const char* role) {
  const auto it = module.tensors.find(role);
  return it == module.tensors.end() ? nullptr : &tensors[static_cast<size_t>(it->second)].shape;
}

class Pairer {
 public:
  Pairer(std::span<const CheckpointTensor> tensors, const std::string& root) : tensors_(tensors), root_(root) {}

  // The unit's variables from the module's tensors, or nothing when they do not fit.
  std::optional<Pairing> pair(const KerasUnit& unit, const TorchModuleTensors& module) const {
    switch (unit.kind) {
      case UnitKind::conv:
      case UnitKind::depthwise:
      case UnitKind::conv_transpose: return pair_conv(unit, module);
      case UnitKind::dense: return pair_dense(unit, module);
      case UnitKind::batch_norm: return pair_batch_norm(unit, module);
      case UnitKind::norm: return pair_norm(unit, module);
      case UnitKind::separable:
      case UnitKind::kept:
      case UnitKind::unsupported: return std::nullopt;
    }
    return std::nullopt;
  }

 private:
  PortedWeight from_tensor(const KerasUnit& unit, size_t role, const TorchModuleTensors& module, const char* torch_role,
                           WeightLayoutChange change) const {
    PortedWeight w = keras_side(unit, role);
    w.source = module.tensors.at(torch_role);
    w.torch_name = tensors_[static_cast<size_t>(w.source)].name;
    w.torch_shape = tensors_[static_cast<size_t>(w.source)].shape;
    w.change = std::move(change);
    return w;
  }
  static PortedWeight keras_side(const KerasUnit& unit, size_t role) {
    PortedWeight w;
    w.keras_name = unit.roles[role];
    w.parameter = unit.parameters[role];
    w.keras_shape = unit.shapes[role];
    return w;
  }
  static PortedWeight filled(const KerasUnit& unit, size_t role, double value) {
    PortedWeight w = keras_side(unit, role);
    w.fill = true;
    w.fill_value = value;
    return w;
  }
  std::string torch_name(const TorchModuleTensors& module, const char* role) const {
    return root_ + (module.module.empty() ? "" : module.module + ".") + role;
  }

  // A per-channel vector (bias, beta, running stats) of the same length on both sides.
  bool vector_fits(const KerasUnit& unit, size_t role, const TorchModuleTensors& module, const char* torch_role) const {
    const auto* shape = shape_of(tensors_, module, torch_role);
    return shape && *shape == unit.shapes[role];
  }

  // A bias (or beta) on one side only: PyTorch's missing one is zero; Keras' missing one drops PyTorch's values.
  Status pair_bias(const KerasUnit& unit, const TorchModuleTensors& module, const char* keras_role, const char* torch_role,
                   double neutral, Pairing& out) const {
    const auto role = unit.role(keras_role);
    const bool torch_has = module.tensors.count(torch_role) > 0;
    if (role) {
      if (torch_has) {
        if (!vector_fits(unit, *role, module, torch_role)) return make_error(ErrorCode::invalid_argument, "shape");
        out.weights.push_back(from_tensor(unit, *role, module, torch_role, identity_change(unit.shapes[*role])));
      } else {
        out.weights.push_back(filled(unit, *role, neutral));
        out.findings.push_back(LintFinding{unit.layer, "bias", Severity::note,
                                           fmt::format("'{}' has a {} and PyTorch's '{}' has none: it is set to {} "
                                                       "(exact)", unit.layer, keras_role, module.module, neutral)});
      }
    } else if (torch_has) {
      const auto* shape = shape_of(tensors_, module, torch_role);
      const std::string_view flag = std::string_view(keras_role) == "bias"    ? "use_bias"
                                    : std::string_view(keras_role) == "gamma" ? "scale"
                                                                              : "center";
      out.findings.push_back(LintFinding{
          unit.layer, "bias", Severity::error,
          fmt::format("'{}' has no {} ({}=False) but PyTorch's '{}' has one ({} {}): its values would be dropped "
                      "(a bias check); give the Keras layer {}=True", unit.layer, keras_role, flag, module.module,
                      torch_name(module, torch_role), io::shape_string(*shape), flag)});
    }
    return Ok{};
  }

  std::optional<Pairing> pair_conv(const KerasUnit& unit, const TorchModuleTensors& module) const {
    if (module.kind != ModuleKind::conv) return std::nullopt;
    const auto kernel = unit.role("kernel");
    if (!kernel) return std::nullopt;
    const std::vector<int64_t>& k = unit.shapes[*kernel];
    const std::vector<int64_t>& w = *shape_of(tensors_, module, "weight");
    const int rank = static_cast<int>(k.size()) - 2;
    if (rank < 1 || w.size() != k.size()) return std::nullopt;
    WeightLayoutChange change;
    if (unit.kind == UnitKind::depthwise) {
      // (C*M, 1, *k) viewed as (C, M, *k), then (*k, C, M).
      const int64_t channels = k[static_cast<size_t>(rank)], multiplier = k[static_cast<size_t>(rank) + 1];
      if (w[1] != 1 || w[0] != channels * multiplier) return std::nullopt;
      std::vector<int64_t> view = {channels, multiplier};
      view.insert(view.end(), w.begin() + 2, w.end());
      change = change_of("OI" + layout_letters(rank, false).substr(2), "depthwise " + layout_letters(rank, true),
                         w, view, spatial_first(rank, 0, 1));
    } else {
      // (O, I/G, *k) -> (*k, I/G, O); a transposed conv's (I, O, *k) -> (*k, O, I) is the same move.
      change = change_of(layout_letters(rank, false), layout_letters(rank, true), w, {}, spatial_first(rank, 1, 0));
    }
    if (change.to_shape != k) return std::nullopt;
    Pairing out;
    out.weights.push_back(from_tensor(unit, *kernel, module, "weight", std::move(change)));
    if (!pair_bias(unit, module, "bias", "bias", 0.0, out)) return std::nullopt;
    return out;
  }

  std::optional<Pairing> pair_dense(const KerasUnit& unit, const TorchModuleTensors& module) const {
    if (module.kind != ModuleKind::linear) return std::nullopt;
    const auto kernel = unit.role("kernel");
    if (!kernel || unit.shapes[*kernel].size() != 2) return std::nullopt;
    const std::vector<int64_t>& k = unit.shapes[*kernel];  // (in, out)
    const std::vector<int64_t>& w = *shape_of(tensors_, module, "weight");  // (out, in)
    if (w[0] != k[1] || w[1] != k[0]) return std::nullopt;
    Pairing out;
    const std::vector<int64_t>& flat = unit.flatten_from;
    int64_t spatial = 1;
    for (size_t i = 1; i + 1 < flat.size(); ++i) spatial = flat[i] > 0 ? spatial * flat[i] : -1;
    if (flat.size() >= 3 && spatial > 1 && spatial * flat.back() == k[0]) {
      // PyTorch flattened (C, *spatial), Keras (*spatial, C): view the rows as (out, C, *spatial), move them to
      // (*spatial, C, out), and read that as (in, out).
      const int rank = static_cast<int>(flat.size()) - 2;
      std::vector<int64_t> view = {w[0], flat.back()};
      view.insert(view.end(), flat.begin() + 1, flat.end() - 1);
      out.weights.push_back(from_tensor(unit, *kernel, module, "weight",
                                        change_of("O(C" + layout_letters(rank, true).substr(0, static_cast<size_t>(rank)) + ")",
                                                  "(" + layout_letters(rank, true).substr(0, static_cast<size_t>(rank)) + "C)O",
                                                  w, view, spatial_first(rank, 1, 0), k)));
      out.note = fmt::format("the Flatten before it: rows reordered from PyTorch's (C, {}) order to Keras' ({}, C)",
                             fmt::join(std::vector<int64_t>(flat.begin() + 1, flat.end() - 1), ", "),
                             fmt::join(std::vector<int64_t>(flat.begin() + 1, flat.end() - 1), ", "));
    } else {
      out.weights.push_back(from_tensor(unit, *kernel, module, "weight", change_of("OI", "IO", w, {}, {1, 0})));
    }
    if (!pair_bias(unit, module, "bias", "bias", 0.0, out)) return std::nullopt;
    return out;
  }

  std::optional<Pairing> pair_batch_norm(const KerasUnit& unit, const TorchModuleTensors& module) const {
    if (module.kind != ModuleKind::batch_norm) return std::nullopt;
    const auto mean = unit.role("moving_mean"), variance = unit.role("moving_variance");
    if (!mean || !variance || !vector_fits(unit, *mean, module, "running_mean") ||
        !vector_fits(unit, *variance, module, "running_var")) {
      return std::nullopt;
    }
    Pairing out;
    if (!pair_bias(unit, module, "gamma", "weight", 1.0, out)) return std::nullopt;
    if (!pair_bias(unit, module, "beta", "bias", 0.0, out)) return std::nullopt;
    out.weights.push_back(from_tensor(unit, *mean, module, "running_mean", identity_change(unit.shapes[*mean])));
    out.weights.push_back(from_tensor(unit, *variance, module, "running_var", identity_change(unit.shapes[*variance])));
    return out;
  }

  std::optional<Pairing> pair_norm(const KerasUnit& unit, const TorchModuleTensors& module) const {
    if (module.kind != ModuleKind::norm) return std::nullopt;
    const auto gamma = unit.role("gamma");
    if (gamma && !vector_fits(unit, *gamma, module, "weight")) return std::nullopt;
    if (!gamma && !unit.role("beta")) return std::nullopt;
    Pairing out;
    if (!pair_bias(unit, module, "gamma", "weight", 1.0, out)) return std::nullopt;
    if (!pair_bias(unit, module, "beta", "bias", 0.0, out)) return std::nullopt;
    return out;
  }

  std::span<const CheckpointTensor> tensors_;
  const std::string& root_;
};

std::string normalized(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == '.' || c == '/' || c == '-') c = '_';
  }
  return out;
}

UnitKind unit_kind(const GraphNode& node) {
  if (const auto* conv = std::get_if<model::KerasConvNode>(&node.op)) {
    switch (conv->layer.kind) {
      case KerasLayerKind::conv: return UnitKind::conv;
      case KerasLayerKind::depthwise: return UnitKind::depthwise;
      case KerasLayerKind::separable: return UnitKind::separable;
      case KerasLayerKind::conv_transpose: return UnitKind::conv_transpose;
    }
  }
  if (std::holds_alternative<model::LinearNode>(node.op)) return UnitKind::dense;
  if (const auto* layer = std::get_if<model::LayerNode>(&node.op)) {
    if (std::holds_alternative<BatchNormOp>(layer->layer.op)) return UnitKind::batch_norm;
    if (std::holds_alternative<NormOp>(layer->layer.op)) return UnitKind::norm;
  }
  if (std::holds_alternative<model::LayerNormNode>(node.op)) return UnitKind::norm;
  if (std::holds_alternative<model::StandardizeNode>(node.op)) return UnitKind::kept;
  return UnitKind::unsupported;
}

// The Flatten (or Reshape to rank 2) right before a Dense: the shape it flattened.
std::vector<int64_t> flattened_input(const GraphNode& dense, const GraphIndex& index) {
  const GraphNode* producer = index.input_producer(dense);
  while (producer && std::holds_alternative<model::IdentityNode>(producer->op)) producer = index.input_producer(*producer);
  if (!producer || !std::holds_alternative<model::ReshapeNode>(producer->op) || producer->output_shapes.empty() ||
      producer->output_shapes[0].size() != 2) {
    return {};
  }
  return index.input_shape(*producer);
}

std::vector<KerasUnit> collect_units(const model::ModelGraph& graph, const GraphIndex& index) {
  std::vector<KerasUnit> units;
  std::map<std::string, size_t> by_layer;
  std::map<std::string, std::vector<int64_t>> parameter_shapes;
  for (const model::Parameter& p : graph.parameters) {
    if (p.value.empty()) parameter_shapes[p.name] = p.shape;
  }
  std::map<const GraphNode*, int> unit_of_node;
  for (const GraphNode& node : graph.nodes) {
    std::vector<std::pair<std::string, std::string>> weights;
    for (const auto& [role, parameter] : node.parameters) {
      if (parameter_shapes.count(parameter)) weights.emplace_back(role, parameter);  // not a config constant
    }
    if (weights.empty()) continue;
    const auto [it, fresh] = by_layer.emplace(node.module, units.size());
    unit_of_node[&node] = static_cast<int>(it->second);
    if (!fresh) continue;  // a layer called again: the same variables
    KerasUnit unit;
    unit.node = &node;
    unit.kind = unit_kind(node);
    unit.layer = node.module;
    unit.class_name = node.module_class;
    for (const auto& [role, parameter] : weights) {
      unit.roles.push_back(role);
      unit.parameters.push_back(parameter);
      unit.shapes.push_back(parameter_shapes[parameter]);
    }
    unit.input_shape = index.input_shape(node);
    if (unit.kind == UnitKind::dense) unit.flatten_from = flattened_input(node, index);
    // The weighted layer feeding it through weightless single-input layers (activations, padding, pooling).
    for (const GraphNode* p = index.input_producer(node); p; p = index.input_producer(*p)) {
      if (const auto found = unit_of_node.find(p); found != unit_of_node.end()) {
        unit.feeding_unit = found->second;
        break;
      }
      size_t tensor_inputs = 0;
      for (const model::Operand& o : p->inputs) tensor_inputs += o.kind == model::Operand::Kind::tensor;
      if (tensor_inputs != 1) break;
    }
    units.push_back(std::move(unit));
  }
  return units;
}

}  // namespace

std::optional<size_t> KerasUnit::role(std::string_view name) const {
  for (size_t i = 0; i < roles.size(); ++i) {
    if (roles[i] == name) return i;
  }
  return std::nullopt;
}

const model::GraphNode* GraphIndex::producer_of(const std::string& tensor) const {
  const auto it = producer.find(tensor);
  return it == producer.end() ? nullptr : &graph->nodes[it->second];
}

const model::GraphNode* GraphIndex::input_producer(const model::GraphNode& node) const {
  for (const model::Operand& o : node.inputs) {
    if (o.kind == model::Operand::Kind::tensor) return producer_of(o.name);
  }
  return nullptr;
}

std::vector<int64_t> GraphIndex::input_shape(const model::GraphNode& node) const {
  for (const model::Operand& o : node.inputs) {
    if (o.kind != model::Operand::Kind::tensor) continue;
    const auto it = shapes.find(o.name);
    return it == shapes.end() ? std::vector<int64_t>{} : it->second;
  }
  return {};
}

GraphIndex index_graph(const model::ModelGraph& graph) {
  GraphIndex index;
  index.graph = &graph;
  for (const model::GraphTensor& t : graph.inputs) index.shapes[t.name] = t.shape;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const GraphNode& node = graph.nodes[i];
    for (size_t j = 0; j < node.outputs.size(); ++j) {
      index.producer[node.outputs[j]] = i;
      if (j < node.output_shapes.size()) index.shapes[node.outputs[j]] = node.output_shapes[j];
    }
  }
  return index;
}

int PortPlan::errors() const {
  int count = static_cast<int>(missing.size());
  for (const PortedLayer& layer : layers) {
    for (const LintFinding& f : layer.lint) count += f.severity == Severity::error;
  }
  for (const LintFinding& f : model_lint) count += f.severity == Severity::error;
  return count;
}

int PortPlan::warnings() const {
  int count = 0;
  for (const PortedLayer& layer : layers) {
    for (const LintFinding& f : layer.lint) count += f.severity == Severity::warning;
  }
  for (const LintFinding& f : model_lint) count += f.severity == Severity::warning;
  return count;
}

Result<PortPlan> plan_port(const model::ModelGraph& keras_model, std::span<const CheckpointTensor> tensors,
                           const PortOptions& options) {
  if (keras_model.framework != Framework::keras) {
    return make_error(ErrorCode::invalid_argument, "port takes a Keras model to fill");
  }
  const GraphIndex index = index_graph(keras_model);
  std::vector<KerasUnit> units = collect_units(keras_model, index);
  CheckpointModules checkpoint = group_checkpoint(tensors);
  const Pairer pairer(tensors, checkpoint.root);

  PortPlan plan;
  plan.model_name = keras_model.model_name;
  plan.checkpoint_root = checkpoint.root;
  plan.ignored = checkpoint.ignored;
  std::vector<int> matched(units.size(), -1);
  for (size_t u = 0; u < units.size(); ++u) {
    const KerasUnit& unit = units[u];
    PortedLayer layer;
    layer.keras_layer = unit.layer;
    layer.keras_class = unit.class_name;
    std::optional<Pairing> pairing;
    int chosen = -1;
    const auto try_module = [&](int m) {
      if (m < 0 || static_cast<size_t>(m) >= checkpoint.modules.size() || checkpoint.modules[static_cast<size_t>(m)].used) return false;
      auto p = pairer.pair(unit, checkpoint.modules[static_cast<size_t>(m)]);
      if (!p) return false;
      pairing = std::move(p);
      chosen = m;
      return true;
    };
    const std::string own_name = normalized(unit.layer.substr(unit.layer.rfind('/') + 1));
    const std::string own_path = normalized(unit.layer);
    for (size_t m = 0; m < checkpoint.modules.size() && chosen < 0; ++m) {
      const std::string module = normalized(checkpoint.modules[m].module);
      if (module == own_path || module == own_name) try_module(static_cast<int>(m));
    }
    if (chosen < 0 && unit.feeding_unit >= 0 && matched[static_cast<size_t>(unit.feeding_unit)] >= 0) {
      try_module(matched[static_cast<size_t>(unit.feeding_unit)] + 1);
    }
    for (size_t m = 0; m < checkpoint.modules.size() && chosen < 0; ++m) try_module(static_cast<int>(m));

    if (chosen >= 0) {
      TorchModuleTensors& module = checkpoint.modules[static_cast<size_t>(chosen)];
      module.used = true;
      matched[u] = chosen;
      layer.torch_module = module.module;
      layer.torch_kind = std::string(module_kind_name(module.kind));
      layer.weights = std::move(pairing->weights);
      layer.lint = std::move(pairing->findings);
      layer.note = std::move(pairing->note);
      lint_pair(unit, index, module, options, layer.lint);
      // The unit's variables in the layer's own order (pairing appends them in the order it decides them).
      std::vector<PortedWeight> ordered;
      for (const std::string& parameter : unit.parameters) {
        for (PortedWeight& w : layer.weights) {
          if (w.parameter == parameter) ordered.push_back(std::move(w));
        }
      }
      layer.weights = std::move(ordered);
    } else {
      for (size_t r = 0; r < unit.roles.size(); ++r) {
        PortedWeight w;
        w.keras_name = unit.roles[r];
        w.parameter = unit.parameters[r];
        w.keras_shape = unit.shapes[r];
        w.kept = unit.kind == UnitKind::kept;
        if (!w.kept) plan.missing.push_back(unit.parameters[r]);
        layer.weights.push_back(std::move(w));
      }
      if (unit.kind == UnitKind::kept) {
        layer.note = "its statistics come from adapt(), not from PyTorch: kept as the Keras model has them";
      } else if (unit.kind == UnitKind::separable) {
        layer.lint.push_back(LintFinding{unit.layer, "unsupported", Severity::error,
                                         fmt::format("'{}' is a {}: port does not split PyTorch's depthwise + "
                                                     "pointwise convs into one Keras layer yet; write it as "
                                                     "DepthwiseConv2D + Conv2D(1)", unit.layer, unit.class_name)});
      } else if (unit.kind == UnitKind::unsupported) {
        layer.lint.push_back(LintFinding{unit.layer, "unsupported", Severity::error,
                                         fmt::format("'{}' ({}) has weights port does not fill", unit.layer,
                                                     unit.class_name)});
      } else {
        std::vector<std::string> shapes;
        for (size_t r = 0; r < unit.roles.size(); ++r) shapes.push_back(unit.roles[r] + " " + io::shape_string(unit.shapes[r]));
        layer.lint.push_back(LintFinding{unit.layer, "missing", Severity::error,
                                         fmt::format("no unused PyTorch module fits '{}' ({}: {})", unit.layer,
                                                     unit.class_name, fmt::join(shapes, ", "))});
      }
    }
    plan.layers.push_back(std::move(layer));
  }
  for (const TorchModuleTensors& module : checkpoint.modules) {
    if (module.used) continue;
    for (const auto& [role, t] : module.tensors) plan.unused.push_back(tensors[static_cast<size_t>(t)].name);
  }
  lint_model(index, plan.model_lint);
  return plan;
}

template <class T>
std::vector<T> ported_values(const PortedWeight& weight, std::span<const T> torch_values) {
  if (weight.kept) return {};  // no values of its own: the Keras file's stay (write_ported_weights copies them)
  if (weight.fill) {  // the shape is the Keras variable's own, which exists: its product fits
    const auto count = checked_product(weight.keras_shape);
    return std::vector<T>(static_cast<size_t>(count.value_or(0)), static_cast<T>(weight.fill_value));
  }
  return apply_layout_change<T>(weight.change, torch_values);
}

template std::vector<float> ported_values<float>(const PortedWeight&, std::span<const float>);
template std::vector<double> ported_values<double>(const PortedWeight&, std::span<const double>);

}  // namespace convbridge::port
