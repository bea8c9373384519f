// The Keras model planner: ModelGraph -> KerasModelPlan. Convs and op-set layers get their own layer plans (the
// same planners `convbridge translate` uses) on channels_last tensors; the tensor ops between them are mapped
// onto each tensor's Layout, so a permute costs nothing, a Flatten before a Linear is folded into its weight, and
// a transpose runs only where the source moves data across axes in an order the target layout cannot follow.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <numeric>
#include <set>

#include "convbridge/checked_math.hpp"
#include "convbridge/model/keras_model.hpp"
#include "convbridge/planner.hpp"
#include "emit/emit_common.hpp"
#include "model/layout.hpp"

namespace convbridge::model {
namespace {


TargetWeight direct_weight(std::string parameter, WeightLayoutChange change) {
  TargetWeight weight;
  weight.parameter = std::move(parameter);
  weight.change = std::move(change);
  return weight;
}


struct Placed {
  std::string variable;
  Layout layout;
  std::vector<int64_t> shape;  // source shape; kUnknownSize where it varies with the input size
};


std::string identifier(const std::string& text) {
  // The names model.py itself uses.
  static const std::set<std::string> reserved = {"keras", "layers", "ops", "np", "build_model", "load_weights",
                                                 "load_model", "model", "inputs", "outputs"};
  return python_identifier(text, reserved);
}

std::string keras_callee(const std::string& callee) {
  if (callee.rfind("keras.layers.", 0) == 0) return "layers." + callee.substr(13);
  if (callee.rfind("convbridge.", 0) == 0) return callee.substr(11);
  return callee;
}

class Planner {
 public:
  explicit Planner(const ModelGraph& graph) : graph_(graph) {
    for (const Parameter& p : graph.parameters) parameters_[p.name] = &p;
    for (const GraphNode& node : graph.nodes) {
      for (const Operand& operand : node.inputs) {
        if (operand.kind == Operand::Kind::tensor) consumers_[operand.name].push_back(&node);
      }
    }
    for (const std::string& output : graph.outputs) returned_.insert(output);
    for (const GraphTensor& input : graph.inputs) symbols_[input.name] = input.symbols;
    for (const GraphNode& node : graph.nodes) {
      for (size_t i = 0; i < node.outputs.size() && i < node.output_symbols.size(); ++i) {
        symbols_[node.outputs[i]] = node.output_symbols[i];
      }
    }
  }

  Result<KerasModelPlan> run() {
    plan_.model_name = keras_name(graph_.model_name);
    plan_.output_structure = graph_.output_structure;
    for (const GraphTensor& input : graph_.inputs) {
      if (input.shape.size() < 2) {
        return make_error(ErrorCode::unsupported, fmt::format("input {} has shape {}: convbridge converts inputs "
                                                              "with a batch and a channel axis", input.name,
                                                              py_ints(input.shape)));
      }
      Placed placed{unique_variable(input.name), Layout{channels_last_perm(input.shape.size()), {}}, input.shape};
      std::vector<int64_t> keras_shape = permuted(input.shape, placed.layout.perm);
      keras_shape.erase(keras_shape.begin());
      plan_.keras_input_shapes.push_back(keras_shape);
      plan_.inputs.push_back(TensorPlacement{input.name, placed.variable, input.shape, placed.layout});
      place(input.name, placed);
    }
    for (const GraphNode& node : graph_.nodes) {
      const size_t first_line = plan_.lines.size();
      report_ = NodeReport{node.name, node.source_op, describe_node_origin(node), "", "", node.outputs, {}, node.module};
      for (const Operand& operand : node.inputs) {
        if (operand.kind == Operand::Kind::tensor) report_.inputs.push_back(operand.name);
      }
      auto status = std::visit([&](const auto& op) { return plan_node(node, op); }, node.op);
      if (!status) {
        return make_error(status.error().code, fmt::format("{} ({}): {}", node.source_op, describe_node_origin(node),
                                                           status.error().message));
      }
      if (plan_.lines.size() > first_line) plan_.lines.back().node = node.name;
      plan_.nodes.push_back(report_);
    }
    CONVBRIDGE_CHECK(check_weights());
    for (const std::string& output : graph_.outputs) {
      const Placed& placed = tensors_.at(output);
      CONVBRIDGE_TRY(Placed out, materialise(placed, channels_last_perm(placed.shape.size()),
                                             "the model returns it channels_last"));
      plan_.output_variables.push_back(out.variable);
      plan_.output_tensors.push_back(output);
    }
    return std::move(plan_);
  }

 private:
  // ---- bookkeeping ----
  std::string unique_variable(const std::string& base) {
    std::string name = identifier(base);
    std::string candidate = name;
    for (int k = 1; variables_.count(candidate); ++k) candidate = fmt::format("{}_{}", name, k);
    variables_.insert(candidate);
    return candidate;
  }
  // A Keras layer name from the module path (layer1.0.conv1), unique in the model.
  std::string layer_name(const GraphNode& node, const std::string& suffix = "") {
    // A torch.nn layer's call takes its module path; a functional call in a model's forward gets its node name
    // under the module whose forward made it.
    const bool layer_module = node.module_class.rfind("torch.nn.modules.", 0) == 0;
    std::string base = node.module.empty() ? "forward." + node.name
                       : layer_module      ? node.module
                                           : node.module + "." + node.name;
    if (!suffix.empty()) base += "." + suffix;
    base = keras_name(base);
    // keras.ops calls are named by Keras after their op ("add", "matmul_1"); a name of ours never lacks a dot
    // unless it is a root module's, which only collides if the module is called like a Keras op.
    static const std::set<std::string> keras_op_names = {"add", "subtract", "multiply", "divide", "matmul",
                                                         "split", "mean", "sum", "max", "min", "transpose",
                                                         "stack", "get_item", "log_softmax", "reshape"};
    if (base.find('.') == std::string::npos) {
      const std::string stem = base.substr(0, base.find_last_not_of("0123456789_") + 1);
      if (keras_op_names.count(stem)) base += ".layer";
    }
    std::string candidate = base;
    for (int k = 1; layer_names_.count(candidate); ++k) candidate = fmt::format("{}_{}", base, k);
    layer_names_.insert(candidate);
    return candidate;
  }
  void place(const std::string& tensor, const Placed& placed) {
    if (tensor.empty()) return;  // an output of a multi-output op that nothing reads
    tensors_[tensor] = placed;
    plan_.tensors.push_back(TensorPlacement{tensor, placed.variable, placed.shape, placed.layout});
  }
  TargetLine& emit(std::vector<std::string> outputs, std::string expression) {
    plan_.lines.push_back(TargetLine{"", std::move(outputs), std::move(expression), "", {}, false, ""});
    return plan_.lines.back();
  }
  void use_helpers(const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      if (name == "TorchEdgePad") plan_.needs_torch_padding = true;  // it calls torch_padding.py's torch_edge_pad
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

  // The tensor laid out as `perm` (no view): a reshape when only unit axes move, else a counted transpose.
  Result<Placed> materialise(const Placed& placed, const std::vector<int>& perm, const std::string& why) {
    if (placed.layout.view_shape.empty() && placed.layout.perm == perm) return placed;
    Placed current = placed;
    std::string source = current.variable;
    if (!current.layout.view_shape.empty()) {
      // Un-merge the folded Flatten: the viewed tensor in its target order, then as the source sees it.
      const std::vector<int64_t> viewed = permuted(current.layout.view_shape, current.layout.perm);
      const std::string unflat = unique_variable(source + "_unflattened");
      emit({unflat}, fmt::format("layers.Reshape({})({})", py_ints(std::vector<int64_t>(viewed.begin() + 1,
                                                                                       viewed.end())), source));
      const std::string ordered = unique_variable(source + "_ordered");
      std::vector<int> axes = current.layout.perm;
      std::vector<int> inverse(axes.size());
      for (size_t i = 0; i < axes.size(); ++i) inverse[static_cast<size_t>(axes[i])] = static_cast<int>(i);
      TargetLine& t = emit({ordered}, fmt::format("ops.transpose({}, {})", unflat, py_ints(inverse)));
      t.runtime_transpose = true;
      t.comment = "runtime transpose: " + why;
      ++plan_.runtime_transposes;
      const std::string flat = unique_variable(source + "_flat");
      emit({flat}, fmt::format("layers.Reshape({})({})",
                               py_ints(std::vector<int64_t>(current.shape.begin() + 1, current.shape.end())), ordered));
      current = Placed{flat, Layout{identity_perm(current.shape.size()), {}}, current.shape};
      if (current.layout.perm == perm) return current;
    }
    std::vector<int> axes;
    for (const int dim : perm) axes.push_back(position(current.layout, dim));
    const std::string variable = unique_variable(current.variable + "_t");
    if (only_unit_axes_move(current.shape, current.layout.perm, perm) && any_unknown(current.shape)) {
      // Moves axes of length 1 only: no data moves, but Reshape cannot take several varying sizes.
      emit({variable}, fmt::format("ops.transpose({}, {})", current.variable, py_ints(axes)));
    } else if (only_unit_axes_move(current.shape, current.layout.perm, perm)) {
      const std::vector<int64_t> shape = permuted(current.shape, perm);
      emit({variable}, fmt::format("layers.Reshape({})({})",
                                   py_ints(std::vector<int64_t>(shape.begin() + 1, shape.end())), current.variable));
    } else {
      if (axes[0] != 0) return make_error(ErrorCode::unsupported, "a transpose that moves the batch axis");
      TargetLine& t = emit({variable}, fmt::format("ops.transpose({}, {})", current.variable, py_ints(axes)));
      t.runtime_transpose = true;
      t.comment = "runtime transpose: " + why;
      ++plan_.runtime_transposes;
    }
    return Placed{variable, Layout{perm, {}}, current.shape};
  }

  // ---- per node ----
  Status plan_node(const GraphNode& node, const ConvNode& conv) {
    CONVBRIDGE_TRY(Placed in, input(node));
    CONVBRIDGE_TRY(in, materialise(in, channels_last_perm(in.shape.size()), "convolutions run channels_last"));
    // Sizes that vary: the plan exact for every size (it never depends on one).
    CONVBRIDGE_TRY(Plan plan, plan_torch_to_tf(conv.layer, any_unknown(in.shape) ? std::nullopt
                                                                                  : std::optional(in.shape)));
    const int rank = conv.layer.spec.rank;
    const std::string base = layer_name(node);
    const std::string out = unique_variable(base);
    std::string current = in.variable;
    std::vector<std::string> parts;
    int index = 0;
    const auto line = [&](const std::string& call, bool last_step) -> TargetLine& {
      const std::string variable = last_step ? out : unique_variable(fmt::format("{}_{}", base, index++));
      TargetLine& t = emit({variable}, fmt::format("{}({})", call, current));
      current = variable;
      return t;
    };
    const auto pads_text = [](const std::vector<PadPair>& pads) {
      std::vector<std::string> pairs;
      for (const PadPair& p : pads) pairs.push_back(fmt::format("({}, {})", p.before, p.after));
      return pairs.size() == 1 ? pairs[0] : fmt::format("({})", fmt::join(pairs, ", "));
    };
    const auto weights = [&](TargetLine& t, bool use_bias) {
      t.layer_name = base;
      t.weights.push_back(direct_weight(parameter_of(node, "weight"), plan.kernel_layout));
      if (use_bias) {
        t.weights.push_back(direct_weight(parameter_of(node, "bias"), identity_change({conv.layer.spec.out_channels})));
      }
    };
    for (size_t s = 0; s < plan.steps.size(); ++s) {
      const PlanStep& step = plan.steps[s];
      const bool last = s + 1 == plan.steps.size();
      if (const auto* pad = std::get_if<PadStep>(&step.op)) {
        std::vector<std::string> pairs;
        for (const PadPair& p : pad->pads) pairs.push_back(fmt::format("({}, {})", p.before, p.after));
        const std::string pairs_text = fmt::format("({}{})", fmt::join(pairs, ", "), pairs.size() == 1 ? "," : "");
        if (pad->fill == PaddingFill::zeros) {
          line(fmt::format("layers.ZeroPadding{}D({}, name=\"{}.pad\")", rank, pads_text(pad->pads), base), last);
        } else if (pad->fill == PaddingFill::reflect) {
          use_helpers({"padded_shape", "TorchReflectPad"});
          line(fmt::format("TorchReflectPad({}, name=\"{}.pad\")", pairs_text, base), last);
        } else {
          use_helpers({"padded_shape", "TorchEdgePad"});
          plan_.needs_torch_padding = true;
          line(fmt::format("TorchEdgePad({}, \"{}\", name=\"{}.pad\")", pairs_text, padding_fill_name(pad->fill),
                           base), last);
        }
        parts.push_back("padding");
      } else if (const auto* c = std::get_if<ConvStep>(&step.op)) {
        if (c->padding == TfPadding::explicit_pads) {
          line(fmt::format("layers.ZeroPadding{}D({}, name=\"{}.pad\")", rank, pads_text(c->explicit_pads), base),
               false);
        }
        const std::string call = emit::keras_conv_constructor(*c, "layers.", fmt::format(", name=\"{}\"", base));
        weights(line(call, last), c->use_bias);
        parts.push_back(c->kind == TfConvKind::depthwise ? fmt::format("DepthwiseConv{}D", rank)
                                                         : fmt::format("Conv{}D", rank));
      } else if (const auto* t = std::get_if<TransposedConvStep>(&step.op)) {
        const bool same = t->padding == TfPadding::same;
        std::vector<PadPair> crops = same ? std::vector<PadPair>{} : t->pads;
        const bool crop = std::any_of(crops.begin(), crops.end(), [](const PadPair& p) { return p.before || p.after; });
        if (t->groups > 1) use_helpers({"TorchGroupedConvTranspose"});
        const std::string call = emit::keras_transposed_constructor(*t, "layers.", fmt::format(", name=\"{}\"", base));
        weights(line(call, last && !crop), t->use_bias);
        parts.push_back(fmt::format("Conv{}DTranspose", rank));
        if (crop) {
          line(fmt::format("layers.Cropping{}D({}, name=\"{}.crop\")", rank, pads_text(crops), base), last);
          parts.push_back("cropping");
        }
      } else if (const auto* sub = std::get_if<SubsampleStep>(&step.op)) {
        line(fmt::format("layers.AveragePooling{}D(pool_size=1, strides={}, padding=\"valid\", name=\"{}.subsample\")",
                         rank, py_ints(sub->strides), base),
             last);
        parts.push_back("subsampling");
      }
    }
    std::string why;
    for (const PlanStep& step : plan.steps) why += (why.empty() ? "" : " ") + step.why;
    target(fmt::format("{}", fmt::join(parts, " + ")), why);
    place(node.outputs[0], Placed{current, Layout{channels_last_perm(in.shape.size()), {}}, node.output_shapes[0]});
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
      CONVBRIDGE_TRY(in, materialise(in, channels_last_perm(in.shape.size()), "the layer runs channels_last"));
    }
    CONVBRIDGE_TRY(LayerPlan plan, plan_op_layer(layer.layer, in.shape));
    const int plan_index = static_cast<int>(plan_.layer_plans.size());
    const std::string base = layer_name(node);
    const std::string out = unique_variable(base);
    std::string current = in.variable;
    std::vector<std::string> parts;
    for (size_t s = 0; s < plan.steps.size(); ++s) {
      const TargetStep& step = plan.steps[s];
      const bool last = s + 1 == plan.steps.size();
      FrameworkCall call = step.call;
      call.arguments.push_back(CallArgument{"name", CallValue::str(plan.steps.size() == 1 || !step.weights.empty()
                                                                       ? base
                                                                       : fmt::format("{}.{}", base, s))});
      const std::string variable = last ? out : unique_variable(fmt::format("{}_{}", base, s));
      // Keras' image preprocessing layers (Resizing) declare call(data, training=True), and Layer.__call__ puts a
      // signature default into the call context, so every later layer of model(x) would run in training mode
      // (BatchNormalization on batch statistics, updating its moving averages). Passing training=False at this
      // call keeps model(x) an inference call; model(x, training=True) still trains. Seen in Keras 3.15:
      // keras/src/layers/preprocessing/image_preprocessing/base_image_preprocessing_layer.py, call().
      const bool defaults_to_training = step.call.callee == "keras.layers.Resizing";
      TargetLine& t = emit({variable}, fmt::format("{}({}{})", keras_callee(python_call_text(call)), current,
                                                   defaults_to_training ? ", training=False" : ""));
      current = variable;
      use_helpers(step.helpers);
      if (!step.weights.empty()) {
        t.layer_name = python_literal(call.arguments.back().value);
        t.layer_name = t.layer_name.substr(1, t.layer_name.size() - 2);
        for (size_t w = 0; w < step.weights.size(); ++w) {
          const FrameworkWeight& weight = step.weights[w];
          TargetWeight target_weight;
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
                // the parameter's shape as the layer expects it (checked in check_weights)
                target_weight.change.from_shape = plan.source_weights[k].from_neutral.to_shape;
              }
            }
            if (target_weight.parameter.empty()) {
              return make_error(ErrorCode::invalid_argument,
                                fmt::format("the captured call gives no {} for the layer", weight.role));
            }
          }
          t.weights.push_back(std::move(target_weight));
        }
      }
      const size_t dot = step.call.callee.rfind('.');
      parts.push_back(dot == std::string::npos ? step.call.callee : step.call.callee.substr(dot + 1));
    }
    std::string why;
    for (const TargetStep& step : plan.steps) why += (why.empty() ? "" : " ") + step.why;
    target(fmt::format("{}", fmt::join(parts, " + ")), why);
    const Layout layout = any_layout ? in.layout : Layout{channels_last_perm(node.output_shapes[0].size()), {}};
    plan_.layer_plans.push_back(std::move(plan));
    place(node.outputs[0], Placed{current, layout, node.output_shapes[0]});  // current: the input if no step
    return Ok{};
  }

  // Every consumer of the tensor (through identities) is a Linear reading it: a Flatten before them can be folded.
  // A worklist, not recursion: a chain of identities is as long as the graph.
  bool only_linear_reads(const std::string& tensor) const {
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

  // Every target weight reads a graph parameter of the shape its layout change (or its layer plan) expects, and
  // each change is well-formed: convert_target_weight then moves exactly the parameter's elements.
  Status check_weights() const {
    for (const TargetLine& line : plan_.lines) {
      for (const TargetWeight& weight : line.weights) {
        if (weight.constant) continue;
        const auto it = parameters_.find(weight.parameter);
        if (it == parameters_.end()) {
          return make_error(ErrorCode::invalid_argument,
                            fmt::format("layer {} reads {}, which is not a parameter", line.layer_name,
                                        weight.parameter));
        }
        const WeightLayoutChange& change = weight.change;
        if (it->second->shape != change.from_shape) {
          return make_error(ErrorCode::invalid_argument,
                            fmt::format("parameter {} has shape {}; layer {} expects {}", it->second->target.empty()
                                                                                              ? weight.parameter
                                                                                              : it->second->target,
                                        py_ints(it->second->shape), line.layer_name, py_ints(change.from_shape)));
        }
        if (weight.layer_plan >= 0) continue;  // the layer plan's own changes
        const std::vector<int64_t>& read = change.reshape.empty() ? change.from_shape : change.reshape;
        std::vector<int> sorted = change.permutation;
        std::sort(sorted.begin(), sorted.end());
        if (checked_product(read) != checked_product(change.from_shape) || sorted != identity_perm(read.size())) {
          return make_error(ErrorCode::invalid_argument,
                            fmt::format("internal: the layout change of {} for layer {} does not fit its shape",
                                        weight.parameter, line.layer_name));
        }
      }
    }
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const LinearNode& linear) {
    CONVBRIDGE_TRY(Placed in, input(node));
    const int last = static_cast<int>(in.shape.size()) - 1;
    TargetWeight kernel = direct_weight(parameter_of(node, "weight"), {});
    kernel.change.from_shape = {linear.out_features, linear.in_features};
    kernel.change.to_shape = {linear.in_features, linear.out_features};
    if (linear.weight_in_out) {  // x @ W: W already is Dense's (in, out) kernel
      if (!in.layout.view_shape.empty() || position(in.layout, last) != last) {
        CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "matmul reads the last axis"));
      }
      kernel.change = identity_change({linear.in_features, linear.out_features});
      const std::string base = layer_name(node);
      const std::string out = unique_variable(base);
      TargetLine& t = emit({out}, fmt::format("layers.Dense({}, use_bias=False, name=\"{}\")({})",
                                              linear.out_features, base, in.variable));
      t.layer_name = base;
      t.weights.push_back(kernel);
      target("Dense", "x @ W over the last axis is a Dense layer whose kernel is W.");
      place(node.outputs[0], Placed{out, in.layout, node.output_shapes[0]});
      return Ok{};
    }
    std::string why;
    if (!in.layout.view_shape.empty()) {
      // Flatten folded: the kernel's rows follow the target's order of the flattened axes.
      const std::vector<int64_t>& view = in.layout.view_shape;
      kernel.change.reshape = {linear.out_features};
      kernel.change.reshape.insert(kernel.change.reshape.end(), view.begin() + 1, view.end());
      for (size_t i = 1; i < in.layout.perm.size(); ++i) kernel.change.permutation.push_back(in.layout.perm[i]);
      kernel.change.permutation.push_back(0);
      why = fmt::format("The Flatten before it is folded into the kernel: its rows are permuted from PyTorch's "
                        "{} order to the channels_last order Keras flattens in, so no transpose runs.",
                        py_ints(std::vector<int64_t>(view.begin() + 1, view.end())));
      in.layout = Layout{identity_perm(in.shape.size()), {}};
    } else {
      if (position(in.layout, last) != last) {
        CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "Linear reads the last axis"));
      }
      kernel.change.permutation = {1, 0};
      why = "Dense computes x @ kernel: the kernel is PyTorch's weight transposed.";
    }
    const std::string base = layer_name(node);
    const std::string out = unique_variable(base);
    TargetLine& t = emit({out}, fmt::format("layers.Dense({}, use_bias={}, name=\"{}\")({})", linear.out_features,
                                            linear.bias ? "True" : "False", base, in.variable));
    t.layer_name = base;
    t.weights.push_back(kernel);
    if (linear.bias) t.weights.push_back(direct_weight(parameter_of(node, "bias"), identity_change({linear.out_features})));
    target("Dense", why);
    place(node.outputs[0], Placed{out, in.layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const MatmulNode&) {
    CONVBRIDGE_TRY(Placed a, input(node, 0));
    CONVBRIDGE_TRY(Placed b, input(node, 1));
    const size_t rank = a.shape.size();
    // Batched over the leading axes, contracting the last two: both in source order where they are not already.
    std::vector<int> order = identity_perm(rank);
    if (a.layout.view_shape.empty() && a.layout.perm[rank - 2] == static_cast<int>(rank) - 2 &&
        a.layout.perm[rank - 1] == static_cast<int>(rank) - 1 && a.layout == b.layout) {
      order = a.layout.perm;
    }
    CONVBRIDGE_TRY(a, materialise(a, order, "matmul contracts the last two axes"));
    CONVBRIDGE_TRY(b, materialise(b, order, "matmul contracts the last two axes"));
    const std::string out = unique_variable(layer_name(node));
    emit({out}, fmt::format("ops.matmul({}, {})", a.variable, b.variable));
    target("keras.ops.matmul", "");
    place(node.outputs[0], Placed{out, Layout{order, {}}, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const LayerNormNode& norm) {
    CONVBRIDGE_TRY(Placed in, input(node));
    const size_t rank = in.shape.size();
    const size_t k = norm.normalized_shape.size();
    bool trailing = in.layout.view_shape.empty();
    for (size_t j = rank - k; trailing && j < rank; ++j) trailing = position(in.layout, static_cast<int>(j)) == static_cast<int>(j);
    if (!trailing) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(rank), "LayerNorm reads the last axes"));
    }
    std::vector<int> axes;
    for (size_t j = rank - k; j < rank; ++j) axes.push_back(static_cast<int>(j) - static_cast<int>(rank));
    const std::string axis_text = k == 1 ? "-1" : fmt::format("[{}]", fmt::join(axes, ", "));
    const std::string base = layer_name(node);
    const std::string out = unique_variable(base);
    TargetLine& t = emit({out}, fmt::format("layers.LayerNormalization(axis={}, epsilon={}, center={}, scale={}, "
                                            "name=\"{}\")({})",
                                            axis_text, python_literal(CallValue::of(norm.eps)),
                                            norm.bias ? "True" : "False", norm.weight ? "True" : "False", base,
                                            in.variable));
    t.layer_name = base;
    if (norm.weight) t.weights.push_back(direct_weight(parameter_of(node, "weight"), identity_change(norm.normalized_shape)));
    if (norm.bias) t.weights.push_back(direct_weight(parameter_of(node, "bias"), identity_change(norm.normalized_shape)));
    target("LayerNormalization", "Keras normalizes over the same trailing axes with the same biased variance and "
                                 "epsilon inside the square root.");
    place(node.outputs[0], Placed{out, in.layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const ArithmeticNode& arithmetic) {
    if (arithmetic.op == Arithmetic::maximum || arithmetic.op == Arithmetic::minimum ||
        arithmetic.op == Arithmetic::average || node.inputs.size() != 2) {
      return make_error(ErrorCode::unsupported, "a Keras merge layer in a PyTorch graph");
    }
    const std::vector<int64_t>& out_shape = node.output_shapes[0];
    const size_t rank = out_shape.size();
    // The layout of the first tensor operand of full rank; the others follow it.
    const Placed* lead = nullptr;
    for (const Operand& operand : node.inputs) {
      if (operand.kind == Operand::Kind::tensor && tensors_.at(operand.name).shape.size() == rank) {
        lead = &tensors_.at(operand.name);
        break;
      }
    }
    if (lead == nullptr) return make_error(ErrorCode::unsupported, "broadcasting a lower-rank activation");
    Layout layout = lead->layout;
    if (!layout.view_shape.empty()) layout = Layout{identity_perm(rank), {}};
    std::vector<std::string> texts;
    std::string parameter;
    size_t parameter_index = 0;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const Operand& operand = node.inputs[i];
      if (operand.kind == Operand::Kind::number) {
        texts.push_back(python_literal(CallValue::of(operand.number)));
      } else if (operand.kind == Operand::Kind::parameter) {
        parameter = operand.name;
        parameter_index = i;
        texts.emplace_back();
      } else {
        const Placed& placed = tensors_.at(operand.name);
        if (placed.shape.size() != rank) return make_error(ErrorCode::unsupported, "broadcasting a lower-rank activation");
        CONVBRIDGE_TRY(Placed moved, materialise(placed, layout.perm, "both operands must share a layout"));
        texts.push_back(moved.variable);
      }
    }
    const std::string op = std::string(arithmetic_name(arithmetic.op));
    const std::string base = layer_name(node);
    const std::string out = unique_variable(base);
    if (!parameter.empty()) {
      const Parameter& p = *parameters_.at(parameter);
      if (p.shape.size() > rank) return make_error(ErrorCode::unsupported, "a parameter of higher rank than the tensor");
      std::vector<int64_t> broadcast(rank - p.shape.size(), 1);
      broadcast.insert(broadcast.end(), p.shape.begin(), p.shape.end());
      TargetWeight weight = direct_weight(parameter, {});
      weight.change.from_shape = p.shape;
      weight.change.reshape = broadcast;
      weight.change.permutation = layout.perm;
      // Broadcasting aligns from the right, so the leading unit axes are dropped: (C,) rather than (1, 1, 1, C).
      weight.change.to_shape = permuted(broadcast, layout.perm);
      while (weight.change.to_shape.size() > 1 && weight.change.to_shape.front() == 1) {
        weight.change.to_shape.erase(weight.change.to_shape.begin());
      }
      use_helpers({"ElementwiseWeight"});
      const std::string tensor = texts[1 - parameter_index];
      TargetLine& t = emit({out}, fmt::format("ElementwiseWeight({}, \"{}\", weight_first={}, name=\"{}\")({})",
                                              py_ints(weight.change.to_shape), op,
                                              parameter_index == 0 ? "True" : "False", base, tensor));
      t.layer_name = base;
      t.weights.push_back(weight);
      target("ElementwiseWeight", fmt::format("The parameter {} ({}) is stored in the target layout {}.", p.target,
                                              py_ints(p.shape), py_ints(weight.change.to_shape)));
    } else {
      emit({out}, fmt::format("ops.{}({}, {})", op, texts[0], texts[1]));
      target("keras.ops." + op, "");
    }
    place(node.outputs[0], Placed{out, layout, out_shape});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const ConcatNode& concat) {
    CONVBRIDGE_TRY(Placed first, input(node));
    Layout layout = first.layout.view_shape.empty() ? first.layout : Layout{identity_perm(first.shape.size()), {}};
    std::vector<std::string> variables;
    for (const Operand& operand : node.inputs) {
      CONVBRIDGE_TRY(Placed moved, materialise(tensors_.at(operand.name), layout.perm, "cat inputs share a layout"));
      variables.push_back(moved.variable);
    }
    const std::string base = layer_name(node);
    const std::string out = unique_variable(base);
    if (concat.new_axis) {
      // torch.stack: the new axis goes right after where the axis before it sits in the target.
      const int axis = position(layout, concat.dim - 1) + 1;
      Layout stacked;
      for (size_t i = 0; i < layout.perm.size(); ++i) {
        if (static_cast<int>(i) == axis) stacked.perm.push_back(concat.dim);
        stacked.perm.push_back(layout.perm[i] >= concat.dim ? layout.perm[i] + 1 : layout.perm[i]);
      }
      if (axis == static_cast<int>(layout.perm.size())) stacked.perm.push_back(concat.dim);
      emit({out}, fmt::format("ops.stack([{}], axis={})", fmt::join(variables, ", "), axis));
      target("keras.ops.stack", fmt::format("The new axis {} is axis {} of the target tensor.", concat.dim, axis));
      place(node.outputs[0], Placed{out, stacked, node.output_shapes[0]});
      return Ok{};
    }
    const int axis = position(layout, concat.dim);
    emit({out}, fmt::format("layers.Concatenate(axis={}, name=\"{}\")([{}])", axis, base, fmt::join(variables, ", ")));
    target("Concatenate", fmt::format("PyTorch's dim {} is axis {} of the channels_last tensor.", concat.dim, axis));
    place(node.outputs[0], Placed{out, layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const SplitNode& split) {
    CONVBRIDGE_TRY(Placed in, input(node));
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "split reads the source order"));
    }
    const int axis = position(in.layout, split.dim);
    std::vector<int64_t> indices;
    int64_t total = 0;
    for (size_t i = 0; i + 1 < split.sizes.size(); ++i) indices.push_back(total += split.sizes[i]);
    std::vector<std::string> variables;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      variables.push_back(node.outputs[i].empty() ? "_" : unique_variable(node.outputs[i]));
    }
    emit(variables, fmt::format("ops.split({}, [{}], axis={})", in.variable, fmt::join(indices, ", "), axis));
    target("keras.ops.split", fmt::format("PyTorch's dim {} is axis {} of the target tensor.", split.dim, axis));
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i].empty()) continue;
      std::vector<int64_t> shape = in.shape;
      shape[static_cast<size_t>(split.dim)] = split.sizes[i];
      place(node.outputs[i], Placed{variables[i], in.layout, shape});
    }
    return Ok{};
  }

  std::string index_text(size_t rank, int axis, const std::string& entry) {
    std::vector<std::string> parts(rank, ":");
    parts[static_cast<size_t>(axis)] = entry;
    while (parts.size() > 1 && parts.back() == ":") parts.pop_back();
    return fmt::format("{}", fmt::join(parts, ", "));
  }

  Status plan_node(const GraphNode& node, const SliceNode& slice) {
    CONVBRIDGE_TRY(Placed in, input(node));
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "slicing reads the source order"));
    }
    const int axis = position(in.layout, slice.dim);
    const std::string out = unique_variable(layer_name(node));
    const std::string end = slice.end == SliceNode::kToTheEnd ? "" : std::to_string(slice.end);
    const std::string range = slice.step == 1 ? fmt::format("{}:{}", slice.start, end)
                                              : fmt::format("{}:{}:{}", slice.start, end, slice.step);
    emit({out}, fmt::format("{}[{}]", in.variable, index_text(in.shape.size(), axis, range)));
    target("slice", fmt::format("PyTorch's dim {} is axis {} of the target tensor.", slice.dim, axis));
    place(node.outputs[0], Placed{out, in.layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const SelectNode& select) {
    CONVBRIDGE_TRY(Placed in, input(node));
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "indexing reads the source order"));
    }
    if (select.dim == 0) return make_error(ErrorCode::unsupported, "indexing the batch axis");
    const int axis = position(in.layout, select.dim);
    const std::string out = unique_variable(layer_name(node));
    emit({out}, fmt::format("{}[{}]", in.variable, index_text(in.shape.size(), axis, std::to_string(select.index))));
    std::vector<int> perm;
    for (const int dim : in.layout.perm) {
      if (dim != select.dim) perm.push_back(dim > select.dim ? dim - 1 : dim);
    }
    target("index", "");
    place(node.outputs[0], Placed{out, Layout{perm, {}}, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const PermuteNode& permute) {
    CONVBRIDGE_TRY(Placed in, input(node));
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "permute reads the source order"));
    }
    std::vector<int> inverse(permute.perm.size());
    for (size_t j = 0; j < permute.perm.size(); ++j) inverse[static_cast<size_t>(permute.perm[j])] = static_cast<int>(j);
    Layout layout;
    for (const int dim : in.layout.perm) layout.perm.push_back(inverse[static_cast<size_t>(dim)]);
    target("(layout only)", "A permute only renames axes: the target tensor stays where it is and later ops read "
                            "the new axis order from its layout.");
    place(node.outputs[0], Placed{in.variable, layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const ReshapeNode&) {
    CONVBRIDGE_TRY(Placed in, input(node));
    const std::vector<int64_t>& out_shape = node.output_shapes[0];
    if (out_shape.empty() || in.shape.empty() || out_shape[0] != in.shape[0]) {
      return make_error(ErrorCode::unsupported,
                        fmt::format("a reshape from {} to {} changes the batch axis; convbridge converts reshapes that "
                                    "keep axis 0", py_ints(in.shape), py_ints(out_shape)));
    }
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "a reshape of a flattened tensor"));
    }
    const std::vector<std::string>& in_symbols = symbols_[node.inputs[0].name];
    const std::vector<std::string>& out_symbols = node.output_symbols[0];
    auto in_place = reshape_in_place(in.shape, in.layout.perm, out_shape, in_symbols, out_symbols);
    if (!in_place && out_shape.size() == 2 && !any_unknown(in.shape) && only_linear_reads(node.outputs[0])) {
      const std::vector<int64_t> physical = permuted(in.shape, in.layout.perm);
      const std::string out = unique_variable(layer_name(node));
      emit({out}, fmt::format("layers.Flatten(name=\"{}\")({})", layer_name(node, "flatten"), in.variable));
      target("Flatten (folded into the Linear)", "Keras flattens channels_last; the Linear that reads it takes the "
                                                 "permutation in its kernel, so no transpose runs.");
      place(node.outputs[0], Placed{out, Layout{in.layout.perm, in.shape}, out_shape});
      return Ok{};
    }
    if (!in_place) {
      const auto order = order_for_reshape(in.shape, in.layout.perm, out_shape, in_symbols, out_symbols);
      if (!order) {
        if (any_unknown(in.shape) || any_unknown(out_shape)) {
          return make_error(ErrorCode::unsupported,
                            fmt::format("a reshape from {} to {} merges or splits sizes that depend on the input "
                                        "size (None in input_shape); give those sizes in input_shape",
                                        py_ints(in.shape), py_ints(out_shape)));
        }
        return make_error(ErrorCode::invalid_argument,
                          fmt::format("cannot reshape {} to {}", py_ints(in.shape), py_ints(out_shape)));
      }
      CONVBRIDGE_TRY(in, materialise(in, *order, "the reshape merges axes in an order the target layout does not "
                                                 "hold them in"));
      in_place = reshape_in_place(in.shape, in.layout.perm, out_shape, in_symbols, out_symbols);
      if (!in_place) return make_error(ErrorCode::invalid_argument, "internal: reshape order");
    }
    const std::vector<int64_t> before = permuted(in.shape, in.layout.perm);
    const std::vector<int64_t> after = permuted(out_shape, *in_place);
    if (before == after) {
      target("(layout only)", "The reshape only renames axes of the target tensor.");
      place(node.outputs[0], Placed{in.variable, Layout{*in_place, {}}, out_shape});
      return Ok{};
    }
    const std::string base = layer_name(node);
    const std::string out = unique_variable(base);
    const std::vector<int64_t> target_shape(after.begin() + 1, after.end());
    const auto unknown = std::count(target_shape.begin(), target_shape.end(), kUnknownSize);
    if (unknown <= 1) {  // Reshape infers one size (-1)
      emit({out}, fmt::format("layers.Reshape({}, name=\"{}\")({})", py_ints(target_shape), base, in.variable));
    } else {
      // Several sizes vary: each is kept from the input axis holding the same (one-to-one) group.
      const auto groups = reshape_groups(in.shape, out_shape, in_symbols, out_symbols);
      std::vector<std::string> entries;
      for (size_t i = 1; i < in_place->size(); ++i) {
        const int dim = (*in_place)[i];
        if (out_shape[static_cast<size_t>(dim)] != kUnknownSize) {
          entries.push_back(std::to_string(out_shape[static_cast<size_t>(dim)]));
          continue;
        }
        for (const ReshapeGroup& group : *groups) {
          if (group.to.size() == 1 && group.to[0] == dim) {
            entries.push_back(fmt::format("\"axis {}\"", position(in.layout, group.from[0])));
          }
        }
      }
      use_helpers({"ReshapeKeepingSizes"});
      emit({out}, fmt::format("ReshapeKeepingSizes(({}), name=\"{}\")({})", fmt::join(entries, ", "), base,
                              in.variable));
    }
    target("Reshape", "The merged or split axes sit together and in order in the target tensor, so the reshape "
                      "moves no data.");
    place(node.outputs[0], Placed{out, Layout{*in_place, {}}, out_shape});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const ReduceNode& reduce) {
    CONVBRIDGE_TRY(Placed in, input(node));
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "a reduction of a flattened tensor"));
    }
    std::vector<int64_t> axes;
    for (const int dim : reduce.dims) {
      if (dim == 0) return make_error(ErrorCode::unsupported, "a reduction over the batch axis");
      axes.push_back(position(in.layout, dim));
    }
    std::sort(axes.begin(), axes.end());
    const std::string out = unique_variable(layer_name(node));
    emit({out}, fmt::format("ops.{}({}, axis={}, keepdims={})", reduction_name(reduce.reduction), in.variable,
                            py_ints(axes), reduce.keepdim ? "True" : "False"));
    Layout layout;
    for (const int dim : in.layout.perm) {
      if (reduce.keepdim) {
        layout.perm.push_back(dim);
      } else if (std::find(reduce.dims.begin(), reduce.dims.end(), dim) == reduce.dims.end()) {
        const auto below = std::count_if(reduce.dims.begin(), reduce.dims.end(), [dim](int d) { return d < dim; });
        layout.perm.push_back(dim - static_cast<int>(below));
      }
    }
    target(fmt::format("keras.ops.{}", reduction_name(reduce.reduction)),
           fmt::format("PyTorch's dims {} are axes {} of the target tensor.", py_ints(reduce.dims), py_ints(axes)));
    place(node.outputs[0], Placed{out, layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const SoftmaxNode& softmax) {
    CONVBRIDGE_TRY(Placed in, input(node));
    if (!in.layout.view_shape.empty()) {
      CONVBRIDGE_TRY(in, materialise(in, identity_perm(in.shape.size()), "softmax of a flattened tensor"));
    }
    const int axis = position(in.layout, softmax.dim);
    const std::string base = layer_name(node);
    const std::string out = unique_variable(base);
    if (softmax.log) {
      emit({out}, fmt::format("ops.log_softmax({}, axis={})", in.variable, axis));
    } else {
      emit({out}, fmt::format("layers.Softmax(axis={}, name=\"{}\")({})", axis, base, in.variable));
    }
    target(softmax.log ? "keras.ops.log_softmax" : "Softmax",
           fmt::format("PyTorch's dim {} is axis {} of the target tensor.", softmax.dim, axis));
    place(node.outputs[0], Placed{out, in.layout, node.output_shapes[0]});
    return Ok{};
  }

  Status plan_node(const GraphNode& node, const ElementwiseNode& elementwise) {
    CONVBRIDGE_TRY(Placed in, input(node));
    std::vector<std::string> arguments = {in.variable};
    for (const double value : elementwise.arguments) arguments.push_back(python_literal(CallValue::of(value)));
    const std::string out = unique_variable(layer_name(node));
    emit({out}, fmt::format("ops.{}({})", elementwise.function, fmt::join(arguments, ", ")));
    target("keras.ops." + elementwise.function, "The same function of every element, in any layout.");
    place(node.outputs[0], Placed{out, in.layout, node.output_shapes[0]});
    return Ok{};
  }

  // Nodes only the Keras front-end makes (a PyTorch graph never holds them).
  template <typename KerasOnly>
    requires std::same_as<KerasOnly, KerasConvNode> || std::same_as<KerasOnly, ScaleOffsetNode> ||
             std::same_as<KerasOnly, StandardizeNode>
  Status plan_node(const GraphNode&, const KerasOnly&) {
    return make_error(ErrorCode::unsupported, "a Keras layer in a PyTorch graph: plan Keras models for PyTorch");
  }

  Status plan_node(const GraphNode& node, const IdentityNode&) {
    CONVBRIDGE_TRY(Placed in, input(node));
    target("(identity)", "In eval mode it returns its input.");
    place(node.outputs[0], Placed{in.variable, in.layout, in.shape});
    return Ok{};
  }

  const ModelGraph& graph_;
  KerasModelPlan plan_;
  NodeReport report_;
  std::map<std::string, const Parameter*> parameters_;
  std::map<std::string, std::vector<const GraphNode*>> consumers_;
  std::set<std::string> returned_;
  std::map<std::string, Placed> tensors_;
  std::set<std::string> variables_;
  std::set<std::string> layer_names_;
  std::map<std::string, std::vector<std::string>> symbols_;  // per tensor, GraphNode::output_symbols
};

}  // namespace

std::string keras_name(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const bool kept = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
    out += kept ? c : '_';
  }
  return out.empty() ? "_" : out;
}

Result<KerasModelPlan> plan_keras_model(const ModelGraph& graph) { return Planner(graph).run(); }

std::vector<double> convert_target_weight(const KerasModelPlan& plan, const TargetWeight& weight,
                                          std::span<const double> parameter) {
  return convert_weight(plan.layer_plans, weight, parameter);
}

}  // namespace convbridge::model
