// The PyTorch model planner: a Keras ModelGraph -> TorchModelPlan. Convs and op-set layers get their own layer
// plans (the same planners `convbridge translate` uses for Keras -> PyTorch) on channels_first tensors; the tensor
// ops between them are mapped onto each tensor's Layout (where Keras' (N, *spatial, C) axes sit in the PyTorch
// tensor), so a Permute costs nothing, a Flatten before a Dense is folded into its weight, a Dense on a
// channels_first tensor is a 1x1 convolution, and a transpose runs only where Keras moves data across the channel
// axis in an order the PyTorch layout cannot follow.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>

#include "convbridge/checked_math.hpp"
#include "convbridge/model/torch_model.hpp"
#include "convbridge/planner.hpp"
#include "emit/emit_common.hpp"
#include "model/layout.hpp"

namespace convbridge::model {
namespace {

struct Placed {
  std::string variable;
  Layout layout;
  std::vector<int64_t> shape;  // Keras shape; kUnknownSize where it varies (always the batch)
};

std::string identifier(const std::string& text) {
  // The names model.py itself uses.
  static const std::set<std::string> reserved = {
      "torch", "nn",  "F",   "load_model", "read_safetensors", "model", "forward", "state", "path",   "np",
      "max",   "min", "sum", "abs",        "input",            "id",    "map",     "filter", "all", "any",
      "iter",  "next", "open", "round",    "pow",              "hash",  "set",     "bool",  "bytes", "zip",
      "slice", "sorted", "format", "vars", "dir"};
  return python_identifier(text, reserved, /*rename_capitalized=*/false);
}

TargetWeight direct(std::string name, std::string parameter, WeightLayoutChange change) {
  TargetWeight weight;
  weight.name = std::move(name);
  weight.parameter = std::move(parameter);
  weight.change = std::move(change);
  weight.shape = weight.change.to_shape.empty() ? weight.change.from_shape : weight.change.to_shape;
  return weight;
}

// The callee of a target step in model.py: nn.X stays, convbridge.X is the embedded helper X.
std::string torch_callee_text(const FrameworkCall& call) {
  FrameworkCall copy = call;
  if (copy.callee.rfind("convbridge.", 0) == 0) copy.callee = copy.callee.substr(11);
  return python_call_text(copy);
}

class Planner {
 public:
  explicit Planner(const ModelGraph& graph) : graph_(graph) {
    for (const Parameter& p : graph.parameters) {
      parameters_[p.name] = &p;
      if (!p.value.empty()) plan_.constants[p.name] = p.value;
    }
    for (const GraphNode& node : graph.nodes) {
      for (const Operand& operand : node.inputs) {
        if (operand.kind == Operand::Kind::tensor) consumers_[operand.name].push_back(&node);
      }
    }
    for (const std::string& output : graph.outputs) returned_.insert(output);
  }

  Result<TorchModelPlan> run() {
    if (graph_.framework != Framework::keras) {
      return make_error(ErrorCode::unsupported, "plan_torch_model plans Keras models; this graph is PyTorch's");
    }
    plan_.model_name = graph_.model_name;
    plan_.class_name = class_name(graph_.model_name);
    plan_.output_structure = graph_.output_structure;
    for (const GraphTensor& input : graph_.inputs) {
      if (input.shape.size() < 2) {
        return make_error(ErrorCode::unsupported, fmt::format("input {} has rank {}: convbridge converts inputs with a "
                                                              "batch axis and a feature axis", input.name,
                                                              input.shape.size()));
      }
      const std::vector<int> perm = channels_first_perm(input.shape.size());
      Placed placed{unique_variable(input.name), Layout{perm, {}}, input.shape};
      plan_.input_variables.push_back(placed.variable);
      plan_.torch_input_shapes.push_back(permuted(input.shape, perm));
      plan_.inputs.push_back(TensorPlacement{input.name, placed.variable, input.shape, placed.layout});
      // Keras refuses inputs of another size than the ones it declares; with them known the plans below may be
      // exact for those sizes only, so the module checks them the same way.
      std::vector<int64_t> spatial(input.shape.begin() + 1, input.shape.end() - 1);
      if (input.shape.size() >= 3 && !spatial.empty() && !any_unknown(spatial)) {
        const std::string attribute = unique_attribute(input.name + "_size");
        use_helpers({"ExpectInputSize"});
        add_attribute(attribute, fmt::format("ExpectInputSize({}, \"the Keras model declares this input size\")",
                                             py_ints(spatial)), input.name);
        emit({placed.variable}, fmt::format("self.{}({})", attribute, placed.variable));
      }
      place(input.name, placed);
    }
    for (const GraphNode& node : graph_.nodes) {
      const size_t first_line = plan_.lines.size();
      report_ = NodeReport{node.name, node.source_op, describe_node_origin(node), "", "", node.outputs, {}, node.module};
      for (const Operand& operand : node.inputs) {
        if (operand.kind == Operand::Kind::tensor) report_.inputs.push_back(operand.name);
      }
      // A later call of a shared layer: "<node>_call<k>" (parse_keras_model_config names them so).
      const size_t call = node.name.rfind("_call");
      repeat_call_ = call != std::string::npos && node.name.find_first_not_of("0123456789", call + 5) == std::string::npos &&
                     layer_attributes_.count(node.name.substr(0, call));
      current_node_ = repeat_call_ ? node.name.substr(0, call) : node.name;
      reuse_index_ = 0;
      auto status = std::visit([&](const auto& op) { return plan_node(node, op); }, node.op);
      if (!status) {
        return make_error(status.error().code, fmt::format("layer '{}' ({}): {}", node.module, node.module_class,
                                                           status.error().message));
      }
      if (plan_.lines.size() > first_line) plan_.lines.back().node = node.name;
      plan_.nodes.push_back(report_);
    }
    CONVBRIDGE_CHECK(check_weights());
    for (const std::string& output : graph_.outputs) {
      const Placed& placed = tensors_.at(output);
      CONVBRIDGE_TRY(Placed out, materialise(placed, channels_first_perm(placed.shape.size()),
                                             "the model returns it channels_first"));
      plan_.output_variables.push_back(out.variable);
      plan_.output_tensors.push_back(output);
    }
    return std::move(plan_);
  }

 private:
  // ---- bookkeeping ----
  static std::string class_name(const std::string& model_name) {
    std::string out;
    bool upper = true;
    for (const char c : model_name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) {
        upper = true;
        continue;
      }
      out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      upper = false;
    }
    if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "Model" + out;
    // Not the name of a helper class model.py may embed.
    static const std::set<std::string> helpers = {"TFSamePad", "CropEnd", "ExpectInputSize", "TFSamePool",
                                                  "Interpolate", "SeparableResize", "ChannelsLayerNorm",
                                                  "SymmetricPad", "TFDepthToSpace", "TFSpaceToDepth",
                                                  "KerasNormalization"};
    if (helpers.count(out)) out += "Model";
    return out;
  }
  std::string unique_variable(const std::string& base) {
    std::string name = identifier(base);
    std::string candidate = name;
    for (int k = 1; variables_.count(candidate); ++k) candidate = fmt::format("{}_{}", name, k);
    variables_.insert(candidate);
    return candidate;
  }
  std::string unique_attribute(const std::string& base) {
    std::string name = identifier(base);
    std::string candidate = name;
    for (int k = 1; attributes_.count(candidate); ++k) candidate = fmt::format("{}_{}", name, k);
    attributes_.insert(candidate);
    return candidate;
  }
  // A new attribute, or for a later call of a shared Keras layer the attribute its first call made (the k-th of
  // that call, with the same constructor): one module, called twice, as Keras shares the layer's weights. A reused
  // attribute comes back as a scratch copy whose weights are dropped.
  TorchAttribute& add_attribute(const std::string& attribute, std::string constructor, const std::string& layer) {
    if (!layer.empty() && repeat_call_) {
      std::vector<size_t>& first = layer_attributes_[current_node_];
      if (reuse_index_ < first.size() && plan_.attributes[first[reuse_index_]].constructor == constructor) {
        reused_ = TorchAttribute{plan_.attributes[first[reuse_index_++]].attribute, constructor, layer, {}};
        return reused_;
      }
    }
    if (!layer.empty() && !repeat_call_) layer_attributes_[current_node_].push_back(plan_.attributes.size());
    plan_.attributes.push_back(TorchAttribute{attribute, std::move(constructor), layer, {}});
    return plan_.attributes.back();
  }
  void place(const std::string& tensor, const Placed& placed) {
    if (tensor.empty()) return;
    tensors_[tensor] = placed;
    plan_.tensors.push_back(TensorPlacement{tensor, placed.variable, placed.shape, placed.layout});
  }
  TargetLine& emit(std::vector<std::string> outputs, std::string expression) {
    plan_.lines.push_back(TargetLine{"", std::move(outputs), std::move(expression), "", {}, false, ""});
    return plan_.lines.back();
  }
  void use_helpers(const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      if (std::find(plan_.helpers.begin(), plan_.helpers.end(), name) == plan_.helpers.end()) {
        plan_.helpers.push_back(name);
      }
    }
  }
  void target(std::string what, std::string why) {
    if (!report_.target.empty()) report_.target += " + ";
    report_.target += what;
    if (!why.empty()) report_.why += (report_.why.empty() ? "" : " ") + why;
  }
  Result<Placed> input(const GraphNode& node, size_t index = 0) const {
    if (index >= node.inputs.size() || node.inputs[index].kind != Operand::Kind::tensor) {
      return make_error(ErrorCode::invalid_argument, "missing tensor input");
    }
    return tensors_.at(node.inputs[index].name);
  }
  std::string parameter_of(const GraphNode& node, const std::string& role) const {
    for (const auto& [r, name] : node.parameters) {
      if (r == role) return name;
    }
    return "";
  }
  std::vector<int64_t> parameter_shape(const std::string& name) const {
    const auto it = parameters_.find(name);
    return it == parameters_.end() ? std::vector<int64_t>{} : it->second->shape;
  }

  // `x.permute(...)` where the data must move, `x.reshape(...)` where only unit axes move.
  Result<Placed> materialise(const Placed& placed, const std::vector<int>& perm, const std::string& why) {
    if (placed.layout.view_shape.empty() && placed.layout.perm == perm) return placed;
    Placed current = placed;
    if (!current.layout.view_shape.empty()) {
      // Un-merge the folded Flatten: view as the un-flattened target tensor, move to Keras' order, flatten.
      const std::vector<int64_t> viewed = permuted(current.layout.view_shape, current.layout.perm);
      std::vector<std::string> sizes = {fmt::format("{}.shape[0]", current.variable)};
      for (size_t i = 1; i < viewed.size(); ++i) sizes.push_back(std::to_string(viewed[i]));
      const std::string ordered = unique_variable(current.variable + "_keras_order");
      TargetLine& t = emit({ordered}, fmt::format("{}.reshape({}).permute{}.flatten(1)", current.variable,
                                                  fmt::join(sizes, ", "), py_ints(inverse_perm(current.layout.perm))));
      t.runtime_transpose = true;
      t.comment = "runtime transpose: " + why;
      ++plan_.runtime_transposes;
      current = Placed{ordered, Layout{identity_perm(current.shape.size()), {}}, current.shape};
      if (current.layout.perm == perm) return current;
    }
    std::vector<int> axes;
    for (const int dim : perm) axes.push_back(position(current.layout, dim));
    const std::string variable = unique_variable(current.variable + "_t");
    if (axes[0] != 0) return make_error(ErrorCode::unsupported, "a transpose that moves the batch axis");
    if (only_unit_axes_move(current.shape, current.layout.perm, perm)) {
      const std::vector<int64_t> shape = permuted(current.shape, perm);
      if (std::count(shape.begin() + 1, shape.end(), kUnknownSize) <= 1) {
        std::vector<std::string> sizes = {fmt::format("{}.shape[0]", current.variable)};
        for (size_t i = 1; i < shape.size(); ++i) sizes.push_back(shape[i] == kUnknownSize ? "-1" : std::to_string(shape[i]));
        emit({variable}, fmt::format("{}.reshape({})", current.variable, fmt::join(sizes, ", ")));
        return Placed{variable, Layout{perm, {}}, current.shape};
      }
    }
    TargetLine& t = emit({variable}, fmt::format("{}.permute{}", current.variable, py_ints(axes)));
    if (!only_unit_axes_move(current.shape, current.layout.perm, perm)) {
      t.runtime_transpose = true;
      t.comment = "runtime transpose: " + why;
      ++plan_.runtime_transposes;
    }
    return Placed{variable, Layout{perm, {}}, current.shape};
  }

  // ---- per node ----
  Status plan_node(const GraphNode& node, const KerasConvNode& conv) {
    CONVBRIDGE_TRY(Placed in, input(node));
    CONVBRIDGE_TRY(in, materialise(in, channels_first_perm(in.shape.size()), "convolutions run channels_first"));
    const int64_t in_channels = in.shape.back();
    CONVBRIDGE_TRY(TorchPlan plan, plan_keras_to_torch(conv.layer, in_channels, in.shape));
    const std::string base = node.module;
    const std::string out = unique_variable(base);
    // PyTorch 2.13's CPU convolution is wrong for a one-channel input whose strides also read as channels_last
    // (../shared/reference/layer-semantics.md), such as x_nhwc.permute(0, 3, 1, 2). contiguous() does not help: with
    // one channel PyTorch counts those strides as contiguous and returns the same tensor; a clone in
    // contiguous_format gets standard strides.
    std::string current = in_channels == 1 ? in.variable + ".clone(memory_format=torch.contiguous_format)" : in.variable;
    std::vector<std::string> parts;
    int convs = 0;
    const int rank = conv.layer.rank;
    for (size_t s = 0; s < plan.steps.size(); ++s) {
      const TorchPlanStep& step = plan.steps[s];
      const bool last = s + 1 == plan.steps.size();
      std::string attribute;
      std::string constructor;
      std::vector<TargetWeight> weights;
      if (const auto* pad = std::get_if<TorchPadStep>(&step.op)) {
        attribute = unique_attribute(base + "_pad");
        if (pad->tf_same_at_runtime) {
          use_helpers({"TFSamePad"});
          constructor = fmt::format("TFSamePad({}, {})", py_ints(pad->kernel_extent), py_ints(pad->strides));
        } else {
          std::vector<int64_t> flat;  // nn.ConstantPadNd: last axis first
          for (size_t i = pad->pads.size(); i-- > 0;) {
            flat.push_back(pad->pads[i].before);
            flat.push_back(pad->pads[i].after);
          }
          constructor = fmt::format("nn.ConstantPad{}d({}, 0.0)", rank, py_ints(flat));
        }
        parts.push_back("padding");
      } else if (const auto* c = std::get_if<TorchConvStep>(&step.op)) {
        attribute = unique_attribute(convs++ == 0 ? base : base + "_pointwise");
        const ConvSpec& spec = c->spec;
        std::vector<int64_t> symmetric;
        for (const PadPair& p : spec.padding) symmetric.push_back(p.before);
        const std::string padding = c->padding_same ? "\"same\"" : py_ints(symmetric);
        constructor = spec.transposed
                          ? fmt::format("nn.ConvTranspose{}d({}, {}, {}, stride={}, padding={}, output_padding={}, "
                                        "groups={}, bias={}, dilation={})",
                                        spec.rank, spec.in_channels, spec.out_channels, py_ints(spec.kernel),
                                        py_ints(spec.stride), padding, py_ints(spec.output_padding), spec.groups,
                                        spec.bias ? "True" : "False", py_ints(spec.dilation))
                          : fmt::format("nn.Conv{}d({}, {}, {}, stride={}, padding={}, dilation={}, groups={}, bias={})",
                                        spec.rank, spec.in_channels, spec.out_channels, py_ints(spec.kernel),
                                        py_ints(spec.stride), padding, py_ints(spec.dilation), spec.groups,
                                        spec.bias ? "True" : "False");
        const std::string& keras_weight = plan.weight_names[static_cast<size_t>(c->weight)];
        weights.push_back(direct(attribute + ".weight", parameter_of(node, keras_weight), c->layout));
        if (c->takes_bias) {
          weights.push_back(direct(attribute + ".bias", parameter_of(node, "bias"),
                                   identity_change({spec.out_channels})));
        }
        parts.push_back(spec.transposed ? fmt::format("ConvTranspose{}d", rank) : fmt::format("Conv{}d", rank));
      } else if (const auto* crop = std::get_if<TorchCropStep>(&step.op)) {
        attribute = unique_attribute(base + "_crop");
        use_helpers({"CropEnd"});
        constructor = fmt::format("CropEnd({})", py_ints(crop->crop_end));
        parts.push_back("CropEnd");
      } else if (const auto* activation = std::get_if<TorchActivationStep>(&step.op)) {
        attribute = unique_attribute(base + "_activation");
        constructor = emit::torch_activation_constructor(*activation);
        parts.push_back(activation->module);
      }
      TorchAttribute& a = add_attribute(attribute, constructor, node.module);
      a.weights = std::move(weights);
      const std::string variable = last ? out : unique_variable(fmt::format("{}_{}", base, s));
      emit({variable}, fmt::format("self.{}({})", a.attribute, current));
      current = variable;
    }
    std::string why;
    for (const TorchPlanStep& step : plan.steps) why += (why.empty() ? "" : " ") + step.why;
    target(fmt::format("{}", fmt::join(parts, " + ")), why);
    place(node.outputs[0], Placed{current, Layout{channels_first_perm(in.shape.size()), {}}, node.output_shapes[0]});
    return Ok{};
  }

  static bool elementwise(const OpLayer& layer) {
    const auto* activation = std::get_if<ActivationOp>(&layer.op);
    return activation != nullptr && !activation->prelu && activation->activation.kind != ActivationKind::softmax &&
           activation->activation.kind != ActivationKind::log_softmax;
  }

  Status plan_node(const GraphNode& node, const LayerNode& layer) {
    CONVBRIDGE_TRY(Placed in, input(node));
    const bool any_layout = elementwise(layer.layer);
    if (!any_layout || !in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, channels_first_perm(in.shape.size()), "the layer runs channels_first"));
    }
    CONVBRIDGE_TRY(LayerPlan plan, plan_op_layer(layer.layer, in.shape, in.shape.back()));
    const int plan_index = static_cast<int>(plan_.layer_plans.size());
    const std::string base = node.module + (node.name.size() > node.module.size() &&
                                                    node.name.ends_with(".activation") ? "_activation" : "");
    const std::string out = unique_variable(base);
    std::string current = in.variable;
    std::vector<std::string> parts;
    for (size_t s = 0; s < plan.steps.size(); ++s) {
      const TargetStep& step = plan.steps[s];
      const bool last = s + 1 == plan.steps.size();
      const std::string attribute = unique_attribute(s == 0 ? base : fmt::format("{}_{}", base, s));
      TorchAttribute& a = add_attribute(attribute, torch_callee_text(step.call), node.module);
      use_helpers(step.helpers);
      for (size_t w = 0; w < step.weights.size(); ++w) {
        const FrameworkWeight& weight = step.weights[w];
        TargetWeight target_weight;
        target_weight.name = attribute + "." + weight.name;
        target_weight.layer_plan = plan_index;
        target_weight.step = static_cast<int>(s);
        target_weight.step_weight = static_cast<int>(w);
        target_weight.shape = weight.from_neutral.to_shape;
        if (weight.neutral_index < 0) {
          target_weight.constant = true;
          target_weight.fill = weight.fill;
        } else {
          for (size_t k = 0; k < plan.source_weights.size(); ++k) {
            if (plan.source_weights[k].neutral_index == weight.neutral_index) {
              target_weight.source_weight = static_cast<int>(k);
              target_weight.parameter = parameter_of(node, plan.source_weights[k].name);
              target_weight.change.from_shape = plan.source_weights[k].from_neutral.to_shape;
            }
          }
          if (target_weight.parameter.empty()) {
            return make_error(ErrorCode::invalid_argument,
                              fmt::format("the model gives no {} weight for the layer", weight.role));
          }
        }
        a.weights.push_back(std::move(target_weight));
      }
      const std::string variable = last ? out : unique_variable(fmt::format("{}_{}", base, s));
      emit({variable}, fmt::format("self.{}({})", a.attribute, current));
      current = variable;
      const size_t dot = step.call.callee.rfind('.');
      parts.push_back(dot == std::string::npos ? step.call.callee : step.call.callee.substr(dot + 1));
    }
    std::string why;
    for (const TargetStep& step : plan.steps) why += (why.empty() ? "" : " ") + step.why;
    target(parts.empty() ? "(identity)" : fmt::format("{}", fmt::join(parts, " + ")), why);
    const Layout layout = any_layout ? in.layout : Layout{channels_first_perm(node.output_shapes[0].size()), {}};
    plan_.layer_plans.push_back(std::move(plan));
    place(node.outputs[0], Placed{current, layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const LinearNode& linear) {
    CONVBRIDGE_TRY(Placed in, input(node));
    const size_t rank = in.shape.size();
    const int last = static_cast<int>(rank) - 1;
    if (linear.in_features <= 0 || in.shape.back() != linear.in_features) {
      return make_error(ErrorCode::invalid_argument,
                        fmt::format("Dense has a kernel for {} features; its input has {}", linear.in_features,
                                    in.shape.back()));
    }
    const std::string kernel_parameter = parameter_of(node, "kernel");
    const std::string attribute = unique_attribute(node.module);
    const std::string out = unique_variable(node.module);
    WeightLayoutChange kernel;
    kernel.from_shape = {linear.in_features, linear.out_features};
    std::string constructor;
    std::string why;
    Layout out_layout = in.layout;
    if (!in.layout.view_shape.empty()) {
      // Flatten folded: the weight's columns follow PyTorch's order of the flattened axes (channels first).
      const std::vector<int64_t>& view = in.layout.view_shape;
      kernel.reshape.assign(view.begin() + 1, view.end());
      kernel.reshape.push_back(linear.out_features);
      kernel.permutation = {static_cast<int>(view.size()) - 1};
      for (size_t i = 1; i < in.layout.perm.size(); ++i) kernel.permutation.push_back(in.layout.perm[i] - 1);
      kernel.to_shape = {linear.out_features, linear.in_features};
      constructor = fmt::format("nn.Linear({}, {}, bias={})", linear.in_features, linear.out_features,
                                linear.bias ? "True" : "False");
      why = fmt::format("The Flatten before it is folded into the weight: its columns are permuted from Keras' "
                        "channels_last order {} to the channels_first order PyTorch flattens in, so no transpose "
                        "runs.", py_ints(std::vector<int64_t>(view.begin() + 1, view.end())));
      out_layout = Layout{identity_perm(rank), {}};
    } else if (position(in.layout, last) == last) {
      kernel.permutation = {1, 0};
      kernel.to_shape = {linear.out_features, linear.in_features};
      constructor = fmt::format("nn.Linear({}, {}, bias={})", linear.in_features, linear.out_features,
                                linear.bias ? "True" : "False");
      why = "Dense computes x @ kernel over the last axis: nn.Linear's weight is the kernel transposed.";
    } else if (rank >= 3 && rank <= 5 && position(in.layout, last) == 1) {
      // Dense over the channels of a channels_first tensor: a 1x1 convolution, with no transpose.
      kernel.permutation = {1, 0};
      kernel.to_shape = {linear.out_features, linear.in_features};
      kernel.to_shape.insert(kernel.to_shape.end(), rank - 2, 1);
      constructor = fmt::format("nn.Conv{}d({}, {}, 1, bias={})", rank - 2, linear.in_features, linear.out_features,
                                linear.bias ? "True" : "False");
      why = "Dense on a channels_first tensor mixes its channels at each position: a 1x1 convolution whose weight "
            "is the kernel transposed, so no transpose runs.";
    } else {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(rank), "Dense reads the last axis"));
      kernel.permutation = {1, 0};
      kernel.to_shape = {linear.out_features, linear.in_features};
      constructor = fmt::format("nn.Linear({}, {}, bias={})", linear.in_features, linear.out_features,
                                linear.bias ? "True" : "False");
      why = "Dense computes x @ kernel over the last axis: nn.Linear's weight is the kernel transposed.";
      out_layout = in.layout;
    }
    TorchAttribute& a = add_attribute(attribute, constructor, node.module);
    a.weights.push_back(direct(attribute + ".weight", kernel_parameter, kernel));
    if (linear.bias) {
      a.weights.push_back(direct(attribute + ".bias", parameter_of(node, "bias"), identity_change({linear.out_features})));
    }
    emit({out}, fmt::format("self.{}({})", a.attribute, in.variable));
    target(constructor.substr(0, constructor.find('(')), why);
    place(node.outputs[0], Placed{out, out_layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const ArithmeticNode& arithmetic) {
    const std::vector<int64_t>& out_shape = node.output_shapes[0];
    const size_t rank = out_shape.size();
    const Placed* lead = nullptr;
    for (const Operand& operand : node.inputs) {
      if (operand.kind == Operand::Kind::tensor && tensors_.at(operand.name).shape.size() == rank) {
        lead = &tensors_.at(operand.name);
        break;
      }
    }
    if (lead == nullptr) return make_error(ErrorCode::unsupported, "broadcasting a lower-rank tensor");
    Layout layout = lead->layout;
    if (!layout.view_shape.empty()) layout = Layout{identity_perm(rank), {}};
    std::vector<std::string> texts;
    for (const Operand& operand : node.inputs) {
      if (operand.kind == Operand::Kind::number) {
        texts.push_back(python_literal(CallValue::of(operand.number)));
      } else if (operand.kind == Operand::Kind::parameter) {
        // A weight broadcast over the last axes (LayerScale's gamma): an nn.Parameter shaped for the layout.
        const std::vector<int64_t> shape = parameter_shape(operand.name);
        if (shape.size() > rank - 1) return make_error(ErrorCode::unsupported, "a weight of the tensor's rank");
        std::vector<int64_t> broadcast(rank - shape.size(), 1);
        broadcast.insert(broadcast.end(), shape.begin(), shape.end());
        std::vector<int64_t> target_shape = permuted(broadcast, layout.perm);
        target_shape.erase(target_shape.begin());
        // LayerScale's gamma is the layer itself; a layer with several (Rescaling's scale and offset) names each.
        const std::string attribute = unique_attribute(
            node.module_class == "LayerScale" ? node.module : node.module + "_" + role_of(node, operand.name));
        const auto it = parameters_.find(operand.name);
        const bool constant = it != parameters_.end() && !it->second->value.empty();  // from the config, not trained
        TorchAttribute& a = add_attribute(attribute, fmt::format("nn.Parameter(torch.zeros({}){})", py_ints(target_shape),
                                                                 constant ? ", requires_grad=False" : ""),
                                          node.module);
        WeightLayoutChange change = identity_change(shape);
        change.to_shape = target_shape;
        a.weights.push_back(direct(attribute, operand.name, change));
        texts.push_back("self." + a.attribute);
      } else {
        const Placed& placed = tensors_.at(operand.name);
        if (placed.shape.size() != rank) return make_error(ErrorCode::unsupported, "broadcasting a lower-rank tensor");
        CONVBRIDGE_TRY(Placed moved, materialise(placed, layout.perm, "the operands must share a layout"));
        texts.push_back(moved.variable);
      }
    }
    std::string expression;
    switch (arithmetic.op) {
      case Arithmetic::add: expression = fmt::format("{}", fmt::join(texts, " + ")); break;
      case Arithmetic::subtract: expression = fmt::format("{}", fmt::join(texts, " - ")); break;
      case Arithmetic::multiply: expression = fmt::format("{}", fmt::join(texts, " * ")); break;
      case Arithmetic::divide: expression = fmt::format("{}", fmt::join(texts, " / ")); break;
      case Arithmetic::average:
        // Keras' Average adds left to right, then divides by the count.
        expression = fmt::format("({}) / {}", fmt::join(texts, " + "), texts.size());
        break;
      case Arithmetic::maximum:
      case Arithmetic::minimum: {
        const char* fn = arithmetic.op == Arithmetic::maximum ? "torch.maximum" : "torch.minimum";
        expression = texts[0];
        for (size_t i = 1; i < texts.size(); ++i) expression = fmt::format("{}({}, {})", fn, expression, texts[i]);
        break;
      }
    }
    const std::string out = unique_variable(node.module);
    emit({out}, expression);
    target(std::string(arithmetic_name(arithmetic.op)), "Elementwise, in whatever layout the operands share.");
    place(node.outputs[0], Placed{out, layout, out_shape});
    return Ok{};
  }

  std::string role_of(const GraphNode& node, const std::string& parameter) const {
    for (const auto& [role, name] : node.parameters) {
      if (name == parameter) return role;
    }
    return "weight";
  }

  Status plan_node(const GraphNode& node, const ConcatNode& concat) {
    if (concat.new_axis) return make_error(ErrorCode::unsupported, "stacking");
    CONVBRIDGE_TRY(Placed first, input(node));
    Layout layout = first.layout;
    if (!layout.view_shape.empty()) layout = Layout{identity_perm(first.shape.size()), {}};
    std::vector<std::string> variables;
    for (const Operand& operand : node.inputs) {
      CONVBRIDGE_TRY(Placed moved, materialise(tensors_.at(operand.name), layout.perm, "the inputs must share a layout"));
      variables.push_back(moved.variable);
    }
    const int dim = position(layout, concat.dim);
    const std::string out = unique_variable(node.module);
    emit({out}, fmt::format("torch.cat([{}], dim={})", fmt::join(variables, ", "), dim));
    target("torch.cat", fmt::format("Keras' axis {} is dim {} of the PyTorch tensor.", concat.dim, dim));
    place(node.outputs[0], Placed{out, layout, node.output_shapes[0]});
    return Ok{};
  }

  bool only_dense_reads(const std::string& tensor) const {
    std::vector<std::string> pending = {tensor};
    while (!pending.empty()) {
      const std::string current = std::move(pending.back());
      pending.pop_back();
      if (returned_.count(current)) return false;
      const auto it = consumers_.find(current);
      if (it == consumers_.end()) return false;
      for (const GraphNode* consumer : it->second) {
        if (std::holds_alternative<IdentityNode>(consumer->op)) {
          pending.push_back(consumer->outputs[0]);
        } else if (!std::holds_alternative<LinearNode>(consumer->op)) {
          return false;
        }
      }
    }
    return true;
  }

  Status plan_node(const GraphNode& node, const ReshapeNode&) {
    CONVBRIDGE_TRY(Placed in, input(node));
    const std::vector<int64_t>& out_shape = node.output_shapes[0];
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "a reshape of a flattened tensor"));
    }
    const std::string out = unique_variable(node.module);
    auto in_place = reshape_in_place(in.shape, in.layout.perm, out_shape);
    if (!in_place && out_shape.size() == 2 && !any_unknown(std::vector<int64_t>(in.shape.begin() + 1, in.shape.end())) &&
        only_dense_reads(node.outputs[0])) {
      emit({out}, fmt::format("torch.flatten({}, 1)", in.variable));
      target("torch.flatten (folded into the Dense)", "PyTorch flattens channels_first; the Dense that reads it "
                                                      "takes the permutation in its weight, so no transpose runs.");
      place(node.outputs[0], Placed{out, Layout{in.layout.perm, in.shape}, out_shape});
      return Ok{};
    }
    if (!in_place) {
      auto order = order_for_reshape(in.shape, in.layout.perm, out_shape, {}, {});
      if (!order) {
        // Sizes that vary are merged or split: reshape in Keras' own order, where one varying size is inferred.
        if (std::count(out_shape.begin() + 1, out_shape.end(), kUnknownSize) > 1) {
          return make_error(ErrorCode::unsupported,
                            fmt::format("a reshape from {} to {} gives several sizes that vary with the input",
                                        py_ints(in.shape), py_ints(out_shape)));
        }
        CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "the reshape merges sizes that vary with "
                                                                           "the input, in Keras' order"));
        std::vector<std::string> sizes = {fmt::format("{}.shape[0]", in.variable)};
        for (size_t i = 1; i < out_shape.size(); ++i) {
          sizes.push_back(out_shape[i] == kUnknownSize ? "-1" : std::to_string(out_shape[i]));
        }
        emit({out}, fmt::format("{}.reshape({})", in.variable, fmt::join(sizes, ", ")));
        target("reshape", "In Keras' axis order: the sizes it merges vary with the input.");
        place(node.outputs[0], Placed{out, Layout{identity_perm(out_shape.size()), {}}, out_shape});
        return Ok{};
      }
      CONVBRIDGE_TRY(in, materialise(in, *order, "the reshape merges axes in an order the PyTorch layout does not "
                                                 "hold them in"));
      in_place = reshape_in_place(in.shape, in.layout.perm, out_shape);
      if (!in_place) return make_error(ErrorCode::invalid_argument, "internal: reshape order");
    }
    const std::vector<int64_t> after = permuted(out_shape, *in_place);
    if (std::count(after.begin() + 1, after.end(), kUnknownSize) > 1) {
      return make_error(ErrorCode::unsupported, "a reshape to several sizes that vary with the input");
    }
    std::vector<std::string> sizes = {fmt::format("{}.shape[0]", in.variable)};
    for (size_t i = 1; i < after.size(); ++i) sizes.push_back(after[i] == kUnknownSize ? "-1" : std::to_string(after[i]));
    emit({out}, fmt::format("{}.reshape({})", in.variable, fmt::join(sizes, ", ")));
    target("reshape", "The merged or split axes sit together and in order in the PyTorch tensor, so the reshape "
                      "moves no data.");
    place(node.outputs[0], Placed{out, Layout{*in_place, {}}, out_shape});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const ReduceNode& reduce) {
    CONVBRIDGE_TRY(Placed in, input(node));
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "a reduction of a flattened tensor"));
    }
    std::vector<int64_t> dims;
    for (const int dim : reduce.dims) dims.push_back(position(in.layout, dim));
    std::sort(dims.begin(), dims.end());
    static const char* const functions[] = {"torch.mean", "torch.sum", "torch.amax", "torch.amin"};
    const char* function = functions[static_cast<int>(reduce.reduction)];
    const std::string out = unique_variable(node.module);
    emit({out}, fmt::format("{}({}, dim={}, keepdim={})", function, in.variable, py_ints(dims),
                            reduce.keepdim ? "True" : "False"));
    Layout layout;
    for (const int dim : in.layout.perm) {
      if (reduce.keepdim) {
        layout.perm.push_back(dim);
      } else if (std::find(reduce.dims.begin(), reduce.dims.end(), dim) == reduce.dims.end()) {
        const auto below = std::count_if(reduce.dims.begin(), reduce.dims.end(), [dim](int d) { return d < dim; });
        layout.perm.push_back(dim - static_cast<int>(below));
      }
    }
    target(function, fmt::format("Keras' axes {} are dims {} of the PyTorch tensor.", py_ints(reduce.dims), py_ints(dims)));
    place(node.outputs[0], Placed{out, layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const PermuteNode& permute) {
    CONVBRIDGE_TRY(Placed in, input(node));
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "Permute reads Keras' order"));
    }
    const std::vector<int> inverse = inverse_perm(permute.perm);
    Layout layout;
    for (const int dim : in.layout.perm) layout.perm.push_back(inverse[static_cast<size_t>(dim)]);
    target("(layout only)", "A Permute only renames axes: the PyTorch tensor stays where it is and later ops read "
                            "the new axis order from its layout.");
    place(node.outputs[0], Placed{in.variable, layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const ScaleOffsetNode& scale) {
    CONVBRIDGE_TRY(Placed in, input(node));
    const std::string out = unique_variable(node.module);
    emit({out}, fmt::format("{} * {} + {}", in.variable, python_literal(CallValue::of(scale.scale)),
                            python_literal(CallValue::of(scale.offset))));
    target("x * scale + offset", "Rescaling multiplies, then adds, element by element: any layout.");
    place(node.outputs[0], Placed{out, in.layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const StandardizeNode& standardize) {
    CONVBRIDGE_TRY(Placed in, input(node));
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "Normalization of a flattened tensor"));
    }
    const size_t rank = in.shape.size();
    const int channel = position(in.layout, static_cast<int>(rank) - 1);
    const int64_t channels = in.shape.back();
    std::vector<int64_t> shape(rank - 1, 1);  // without the batch
    shape[static_cast<size_t>(channel) - 1] = channels;
    const std::vector<int64_t> mean_shape = parameter_shape(parameter_of(node, "mean"));
    if (checked_product(mean_shape).value_or(-1) == 1) shape.assign(rank - 1, 1);  // one statistic for all
    const std::string attribute = unique_attribute(node.module);
    use_helpers({"KerasNormalization"});
    TorchAttribute& a = add_attribute(attribute, fmt::format("KerasNormalization({}, invert={}, epsilon={})",
                                                             py_ints(shape), standardize.invert ? "True" : "False",
                                                             python_literal(CallValue::of(standardize.epsilon))),
                                      node.module);
    for (const char* role : {"mean", "variance"}) {
      const std::string parameter = parameter_of(node, role);
      const std::vector<int64_t> given = parameter_shape(parameter);
      if (checked_product(given).value_or(-1) != checked_product(shape).value_or(-2)) {
        return make_error(ErrorCode::invalid_argument, fmt::format("its {} has shape {}; the input has {} channels",
                                                                   role, py_ints(given), channels));
      }
      WeightLayoutChange change = identity_change(given);
      change.to_shape = shape;
      a.weights.push_back(direct(attribute + "." + role, parameter, change));
    }
    const std::string out = unique_variable(node.module);
    emit({out}, fmt::format("self.{}({})", a.attribute, in.variable));
    target("KerasNormalization", standardize.invert ? "mean + x * max(sqrt(variance), epsilon), as Keras computes it."
                                                    : "(x - mean) / max(sqrt(variance), epsilon), as Keras computes it.");
    place(node.outputs[0], Placed{out, in.layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const IdentityNode&) {
    CONVBRIDGE_TRY(Placed in, input(node));
    target("(identity)", "At inference it returns its input.");
    place(node.outputs[0], Placed{in.variable, in.layout, in.shape});
    return Ok{};
  }

  // Nodes only the PyTorch front-end makes.
  template <typename TorchOnly>
  Status plan_node(const GraphNode&, const TorchOnly&) {
    return make_error(ErrorCode::unsupported, "a PyTorch op in a Keras graph");
  }

  Status check_weights() const {
    for (const TorchAttribute& attribute : plan_.attributes) {
      for (const TargetWeight& weight : attribute.weights) {
        if (weight.constant) continue;
        const auto it = parameters_.find(weight.parameter);
        if (it == parameters_.end()) {
          return make_error(ErrorCode::invalid_argument,
                            fmt::format("layer '{}' has no weight {} (the model's weights do not list it)",
                                        attribute.layer, weight.name));
        }
        if (it->second->shape != weight.change.from_shape) {
          return make_error(ErrorCode::invalid_argument,
                            fmt::format("weight {} has shape {}; layer '{}' expects {}", it->second->target,
                                        py_ints(it->second->shape), attribute.layer, py_ints(weight.change.from_shape)));
        }
        if (weight.layer_plan >= 0) continue;
        const WeightLayoutChange& change = weight.change;
        const std::vector<int64_t>& read = change.reshape.empty() ? change.from_shape : change.reshape;
        std::vector<int> sorted = change.permutation;
        std::sort(sorted.begin(), sorted.end());
        if (checked_product(read) != checked_product(change.from_shape) || sorted != identity_perm(read.size()) ||
            (!change.to_shape.empty() && checked_product(change.to_shape) != checked_product(change.from_shape))) {
          return make_error(ErrorCode::invalid_argument,
                            fmt::format("internal: the layout change of {} does not fit its shape", weight.name));
        }
      }
    }
    return Ok{};
  }

  const ModelGraph& graph_;
  TorchModelPlan plan_;
  NodeReport report_;
  std::map<std::string, const Parameter*> parameters_;
  std::map<std::string, std::vector<const GraphNode*>> consumers_;
  std::set<std::string> returned_;
  std::map<std::string, Placed> tensors_;
  std::set<std::string> variables_;
  std::set<std::string> attributes_;
  std::string current_node_;  // the node being planned (for a later call: the first call's node)
  std::map<std::string, std::vector<size_t>> layer_attributes_;  // node of a first call -> its attributes
  bool repeat_call_ = false;
  size_t reuse_index_ = 0;
  TorchAttribute reused_;
};

}  // namespace

Result<TorchModelPlan> plan_torch_model(const ModelGraph& graph) { return Planner(graph).run(); }

std::vector<double> convert_torch_weight(const TorchModelPlan& plan, const TargetWeight& weight,
                                         std::span<const double> parameter) {
  return convert_weight(plan.layer_plans, weight, parameter);
}

}  // namespace convbridge::model
