// The lint of a port: what a matched Keras layer computes differently from its PyTorch module, which no weight can
// fix. Without the PyTorch module's constructor only what always holds is checked: nn.ConvNd pads both sides of an
// axis equally (torch/nn/modules/conv.py: an int or tuple padding is applied to both sides; padding='same' exists
// only at stride 1), and BatchNorm/GroupNorm/LayerNorm's default eps is 1e-5 (torch/nn/modules/batchnorm.py,
// normalization.py), which a checkpoint does not record. With the constructor (convbridge.port(..., torch_module))
// stride, dilation, groups, padding and eps are compared exactly.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/shape_math.hpp"
#include "port/port_units.hpp"

namespace convbridge::port {
namespace {

using model::GraphNode;

std::string pads_text(const std::vector<PadPair>& pads) {
  std::vector<std::string> parts;
  for (const PadPair& p : pads) parts.push_back(fmt::format("({}, {})", p.before, p.after));
  return fmt::format("{}", fmt::join(parts, ", "));
}

// A ZeroPadding layer (constant 0) right before `node`.
const PadOp* zero_padding_before(const GraphNode& node, const GraphIndex& index) {
  const GraphNode* producer = index.input_producer(node);
  if (!producer) return nullptr;
  const auto* layer = std::get_if<model::LayerNode>(&producer->op);
  if (!layer) return nullptr;
  const auto* pad = std::get_if<PadOp>(&layer->layer.op);
  return pad && pad->fill == PadFill::constant && pad->value == 0.0 ? pad : nullptr;
}

// Outputs that are never negative: relu-like activations, as a layer or a conv/Dense's activation=.
bool non_negative(const std::optional<Activation>& activation) {
  return activation && (activation->kind == ActivationKind::relu || activation->kind == ActivationKind::relu6 ||
                        activation->kind == ActivationKind::sigmoid || activation->kind == ActivationKind::softplus);
}
bool non_negative_output(const GraphNode* node) {
  if (!node) return false;
  if (const auto* layer = std::get_if<model::LayerNode>(&node->op)) {
    if (const auto* act = std::get_if<ActivationOp>(&layer->layer.op)) return !act->prelu && non_negative(act->activation);
  }
  if (const auto* conv = std::get_if<model::KerasConvNode>(&node->op)) return non_negative(conv->layer.activation);
  return false;
}

// Per spatial axis, what Keras pads before and after at this input size; `unknown_axes` collects the axes whose
// 'same' padding depends on a size the model leaves unknown.
std::vector<PadPair> keras_conv_pads(const KerasConvLayer& layer, const std::vector<int64_t>& input_shape,
                                     const PadOp* zero_pad, std::vector<int>& unknown_axes) {
  std::vector<PadPair> pads(static_cast<size_t>(layer.rank));
  for (int a = 0; a < layer.rank; ++a) {
    const size_t i = static_cast<size_t>(a);
    const int64_t in = input_shape.size() == static_cast<size_t>(layer.rank) + 2 ? input_shape[i + 1] : kUnknownSize;
    if (layer.padding == KerasPadding::same) {
      if (in == kUnknownSize) {
        if (layer.strides[i] > 1) unknown_axes.push_back(a);
        const auto p = tf_same_padding(2 * layer.strides[i] * layer.kernel[i] * layer.dilation[i] + 1, layer.kernel[i], 1,
                                       layer.dilation[i]);
        if (p) pads[i] = *p;  // stride 1: the same for every size
      } else if (const auto p = tf_same_padding(in, layer.kernel[i], layer.strides[i], layer.dilation[i])) {
        pads[i] = *p;
      }
    } else if (layer.padding == KerasPadding::explicit_pads && i < layer.explicit_padding.size()) {
      pads[i] = layer.explicit_padding[i];
    } else if (layer.padding == KerasPadding::causal) {
      pads[i] = PadPair{(layer.kernel[i] - 1) * layer.dilation[i], 0};
    }
    if (zero_pad && i < zero_pad->pads.size()) {
      pads[i].before += zero_pad->pads[i].before;
      pads[i].after += zero_pad->pads[i].after;
    }
  }
  return pads;
}

std::string padding_written(const KerasConvLayer& layer, const PadOp* zero_pad) {
  const std::string own = layer.padding == KerasPadding::same ? "padding='same'" : layer.padding == KerasPadding::valid ? "padding='valid'" : "its padding";
  return zero_pad ? fmt::format("ZeroPadding{}D + {}", layer.rank, own) : own;
}

void lint_conv(const KerasUnit& unit, const GraphIndex& index, const TorchModuleTensors& module,
               const std::optional<std::string>& torch_text, std::vector<LintFinding>& findings) {
  const auto& layer = std::get<model::KerasConvNode>(unit.node->op).layer;
  const PadOp* zero_pad = zero_padding_before(*unit.node, index);
  std::vector<int> unknown_axes;
  const std::vector<PadPair> pads = keras_conv_pads(layer, unit.input_shape, zero_pad, unknown_axes);
  const std::string letters(spatial_letters(layer.rank));
  const auto add = [&](const char* check, Severity severity, std::string message) {
    findings.push_back(LintFinding{unit.layer, check, severity, std::move(message)});
  };
  if (torch_text) {
    auto parsed = parse_pytorch_layer(*torch_text);
    if (!parsed) {
      add("module", Severity::warning, fmt::format("PyTorch's '{}' ({}) is not a conv convbridge reads: {}", module.module,
                                                   *torch_text, parsed.error().message));
      return;
    }
    const ConvSpec& spec = parsed->spec;
    const int64_t keras_groups = unit.kind == UnitKind::depthwise ? unit.shapes[0][static_cast<size_t>(layer.rank)] : layer.groups;
    if (spec.stride != layer.strides) {
      add("stride", Severity::error,
          fmt::format("'{}' strides {} and PyTorch's '{}' strides {} (stride placement: the weights fit either way, "
                      "the outputs do not)", unit.layer, fmt::join(layer.strides, "x"), module.module,
                      fmt::join(spec.stride, "x")));
    }
    if (spec.dilation != layer.dilation) {
      add("dilation", Severity::error, fmt::format("'{}' has dilation_rate {} and PyTorch's '{}' dilation {}", unit.layer,
                                                   fmt::join(layer.dilation, "x"), module.module,
                                                   fmt::join(spec.dilation, "x")));
    }
    if (spec.groups != keras_groups) {
      add("groups", Severity::error, fmt::format("'{}' has {} group(s) and PyTorch's '{}' {}", unit.layer, keras_groups,
                                                 module.module, spec.groups));
    }
    if (spec.fill != PaddingFill::zeros) {
      add("padding", Severity::error,
          fmt::format("PyTorch's '{}' pads with padding_mode='{}' and '{}' with zeros: put the same padding layer "
                      "before the Keras conv", module.module, padding_fill_name(spec.fill), unit.layer));
    } else if (unit.kind != UnitKind::conv_transpose && spec.padding != pads) {
      add("padding", Severity::error,
          fmt::format("'{}' ({}) pads {} {} here and PyTorch's '{}' pads {}{}", unit.layer,
                      padding_written(layer, zero_pad), letters, pads_text(pads), module.module,
                      pads_text(spec.padding),
                      layer.padding == KerasPadding::same && spec.stride != std::vector<int64_t>(spec.stride.size(), 1)
                          ? ": TF's 'same' puts the odd padding after, PyTorch pads both sides equally; write "
                            "ZeroPadding + padding='valid'"
                          : ""));
    }
    return;
  }
  if (unit.kind == UnitKind::conv_transpose) return;
  std::vector<std::string> asymmetric;
  for (size_t i = 0; i < pads.size(); ++i) {
    if (pads[i].before != pads[i].after) asymmetric.push_back(fmt::format("{} ({}, {})", letters[i], pads[i].before, pads[i].after));
  }
  const std::string fix = fmt::format("write keras.layers.ZeroPadding{}D(p) before it with padding='valid', p the "
                                      "PyTorch conv's padding", layer.rank);
  if (!asymmetric.empty()) {
    add("padding", Severity::error,
        fmt::format("'{}' ({}) pads {} on its {} input: more after than before{}, but PyTorch's nn.Conv{}d '{}' pads "
                    "both sides of an axis equally, so no weights make them agree; {}", unit.layer,
                    padding_written(layer, zero_pad), fmt::join(asymmetric, ", "),
                    fmt::join(std::vector<int64_t>(unit.input_shape.begin() + 1, unit.input_shape.end() - 1), "x"),
                    layer.padding == KerasPadding::same ? " (TF's 'same' at stride 2 puts the odd padding after)" : "",
                    layer.rank, module.module, fix));
  } else if (!unknown_axes.empty()) {
    add("padding", Severity::error,
        fmt::format("'{}' (padding='same', stride {}) pads one more after than before on {} whenever the input size "
                    "makes the padding odd (even sizes at a 3x3 kernel), and the model's input size is not fixed; "
                    "PyTorch's nn.Conv{}d '{}' pads both sides equally: {}", unit.layer, fmt::join(layer.strides, "x"),
                    letters, layer.rank, module.module, fix));
  }
}

double norm_epsilon(const KerasUnit& unit) {
  if (const auto* layer = std::get_if<model::LayerNode>(&unit.node->op)) {
    if (const auto* bn = std::get_if<BatchNormOp>(&layer->layer.op)) return bn->epsilon;
    if (const auto* norm = std::get_if<NormOp>(&layer->layer.op)) return norm->epsilon;
  }
  if (const auto* ln = std::get_if<model::LayerNormNode>(&unit.node->op)) return ln->eps;
  return NAN;
}

void lint_norm(const KerasUnit& unit, const TorchModuleTensors& module, const std::optional<std::string>& torch_text,
               std::vector<LintFinding>& findings) {
  const double keras_eps = norm_epsilon(unit);
  double torch_eps = 1e-5;
  bool assumed = true;
  if (torch_text) {
    auto parsed = parse_op_layer(*torch_text);
    if (parsed) {
      if (const auto* bn = std::get_if<BatchNormOp>(&parsed->op)) torch_eps = bn->epsilon, assumed = false;
      if (const auto* norm = std::get_if<NormOp>(&parsed->op)) torch_eps = norm->epsilon, assumed = false;
    }
  }
  if (std::isnan(keras_eps) || std::fabs(keras_eps - torch_eps) <= 1e-9 * std::max(keras_eps, torch_eps)) return;
  findings.push_back(LintFinding{
      unit.layer, "epsilon", Severity::error,
      fmt::format("'{}' has epsilon={:g} and PyTorch's '{}' eps={:g}{}: the normalized values differ by up to "
                  "{:.1e} relative where the variance is small; give the Keras layer epsilon={:g}", unit.layer, keras_eps,
                  module.module, torch_eps,
                  assumed ? " (PyTorch's default: a checkpoint does not record eps; pass torch_module to "
                            "convbridge.port to check the real one)"
                          : "",
                  std::fabs(keras_eps - torch_eps) / (std::min(keras_eps, torch_eps) + 1e-300) / 2, torch_eps)});
}

}  // namespace

void lint_pair(const KerasUnit& unit, const GraphIndex& index, const TorchModuleTensors& module,
               const PortOptions& options, std::vector<LintFinding>& findings) {
  std::optional<std::string> torch_text;
  if (const auto it = options.torch_modules.find(module.module); it != options.torch_modules.end()) torch_text = it->second;
  switch (unit.kind) {
    case UnitKind::conv:
    case UnitKind::depthwise:
    case UnitKind::conv_transpose: lint_conv(unit, index, module, torch_text, findings); break;
    case UnitKind::batch_norm:
    case UnitKind::norm: lint_norm(unit, module, torch_text, findings); break;
    default: break;
  }
}

void lint_model(const GraphIndex& index, std::vector<LintFinding>& findings) {
  for (const GraphNode& node : index.graph->nodes) {
    const auto* layer = std::get_if<model::LayerNode>(&node.op);
    if (!layer) continue;
    const auto* pool = std::get_if<PoolOp>(&layer->layer.op);
    if (!pool) continue;
    const PadOp* zero_pad = zero_padding_before(node, index);
    if (!zero_pad) continue;
    const GraphNode* pad_node = index.input_producer(node);
    if (pool->kind == PoolKind::max) {
      if (non_negative_output(index.input_producer(*pad_node))) {
        findings.push_back(LintFinding{node.module, "pool_padding", Severity::note,
                                       fmt::format("'{}' max-pools after zero padding: PyTorch pads max pooling with "
                                                   "-inf, which equals zeros here because its input is never negative",
                                                   node.module)});
      } else {
        findings.push_back(LintFinding{
            node.module, "pool_padding", Severity::warning,
            fmt::format("'{}' max-pools after ZeroPadding ('{}'): PyTorch's nn.MaxPool pads with -inf, so the border "
                        "differs wherever the input is negative; pad with -inf or use padding='same' where it is the "
                        "same split", node.module, pad_node->module)});
      }
    } else {
      findings.push_back(LintFinding{
          node.module, "count_include_pad", Severity::note,
          fmt::format("'{}' averages after ZeroPadding ('{}'): the zeros count in the divisor, as PyTorch's "
                      "nn.AvgPool with count_include_pad=True (its default); with count_include_pad=False use "
                      "padding='same' where it is the same split", node.module, pad_node->module)});
    }
  }
}

}  // namespace convbridge::port
