#include "emit/emit_common.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "convbridge/frontends.hpp"

namespace convbridge::emit {

template <class T>
static std::string tuple_of(std::span<const T> values) {
  if (values.size() == 1) return fmt::format("({},)", values[0]);
  return fmt::format("({})", fmt::join(values, ", "));
}

std::string py_tuple(std::span<const int64_t> values) { return tuple_of(values); }
std::string py_tuple(std::span<const int> values) { return tuple_of(values); }

std::string keras_padding_tuple(const std::vector<PadPair>& pads) {
  if (pads.size() == 1) return fmt::format("({}, {})", pads[0].before, pads[0].after);
  std::vector<std::string> pairs;
  for (const PadPair& p : pads) pairs.push_back(fmt::format("({}, {})", p.before, p.after));
  return fmt::format("({})", fmt::join(pairs, ", "));
}

std::string tf_paddings_list(const std::vector<PadPair>& pads) {
  std::string out = "[[0, 0]";
  for (const PadPair& p : pads) out += fmt::format(", [{}, {}]", p.before, p.after);
  return out + ", [0, 0]]";
}

std::string channels_last_description(int rank, int64_t channels, bool output) {
  std::vector<std::string> axes;
  for (char letter : spatial_letters(rank)) axes.push_back(output ? fmt::format("{}_out", letter) : std::string(1, letter));
  return fmt::format("(N, {}, {})", fmt::join(axes, ", "), channels);
}

namespace {

// The checks of python_weight_checks and python_weight_checks_tf: `convert` turns an argument into an array
// ("np.asarray" / "tf.convert_to_tensor") and `shape` formats an array's shape as a tuple ("{}.shape" /
// "tuple({}.shape)"), so both variants raise the same messages.
std::string weight_checks(const Plan& plan, const std::string& indent, std::string_view convert,
                          std::string_view shape_format) {
  const ConvSpec& spec = plan.source;
  const std::string weight_shape = py_tuple(torch_weight_shape(spec));
  const std::string bias_shape = fmt::format("({},)", spec.out_channels);
  const std::string weight_of = fmt::format(fmt::runtime(shape_format), "weight");
  const std::string bias_of = fmt::format(fmt::runtime(shape_format), "bias");
  std::string out;
  out += fmt::format("{0}weight = {3}(weight)\n"
                     "{0}if {4} != {1}:\n"
                     "{0}    raise ValueError(f\"weight has shape {{{4}}}; expected {1} (PyTorch layout {2})\")\n",
                     indent, weight_shape, plan.kernel_layout.from_layout, convert, weight_of);
  if (spec.bias) {
    out += fmt::format("{0}if bias is None:\n"
                       "{0}    raise ValueError(\"bias is None, but the PyTorch layer has bias=True: pass its bias, "
                       "shape {1}\")\n"
                       "{0}bias = {2}(bias)\n"
                       "{0}if {3} != {1}:\n"
                       "{0}    raise ValueError(f\"bias has shape {{{3}}}; expected {1}\")\n",
                       indent, bias_shape, convert, bias_of);
  } else {
    out += fmt::format("{0}if bias is not None:\n"
                       "{0}    raise ValueError(\"the PyTorch layer has bias=False: pass bias=None\")\n",
                       indent);
  }
  return out;
}

}  // namespace

std::string python_weight_checks(const Plan& plan, const std::string& indent) {
  return weight_checks(plan, indent, "np.asarray", "{}.shape");
}

std::string python_weight_checks_tf(const Plan& plan, const std::string& indent) {
  return fmt::format("{0}# tf.convert_to_tensor takes numpy arrays, tensors and tf.Variables (a variable is read, so "
                     "the gradient\n"
                     "{0}# tape sees it); their static shapes are known in all three cases, also inside "
                     "tf.function.\n",
                     indent) +
         weight_checks(plan, indent, "tf.convert_to_tensor", "tuple({}.shape)");
}

namespace {

// The re-layout as Python: reshape (grouped depthwise kernels), transpose, and a final reshape where the moved
// axes are not yet change.to_shape; spelled with numpy or with tf ops.
enum class ArrayOps { numpy, tf };

std::string layout_expression(const WeightLayoutChange& change, std::string_view source_name, ArrayOps ops) {
  const auto reshape = [ops](const std::string& array, const std::vector<int64_t>& shape) {
    return ops == ArrayOps::numpy ? fmt::format("{}.reshape({})", array, py_tuple(shape))
                                  : fmt::format("tf.reshape({}, {})", array, py_tuple(shape));
  };
  std::string source(source_name);
  if (!change.reshape.empty()) source = reshape(source, change.reshape);
  std::string out = fmt::format("{}({}, {})", ops == ArrayOps::numpy ? "np.transpose" : "tf.transpose", source,
                                py_tuple(change.permutation));
  const std::vector<int64_t>& shape = change.reshape.empty() ? change.from_shape : change.reshape;
  std::vector<int64_t> moved;
  for (int axis : change.permutation) moved.push_back(shape[static_cast<size_t>(axis)]);
  if (change.dilate.empty() && moved != change.to_shape) out = reshape(out, change.to_shape);
  return out;
}

}  // namespace

std::string python_layout_expression(const WeightLayoutChange& change, std::string_view source_name) {
  return layout_expression(change, source_name, ArrayOps::numpy);
}

std::string python_kernel_lines(const WeightLayoutChange& change, const std::string& indent) {
  std::string out = fmt::format("{}# {} -> {}\n{}kernel = {}\n", indent, change.from_layout, change.to_layout, indent,
                                python_layout_expression(change));
  if (change.dilate.empty()) return out;
  std::vector<std::string> slices;
  for (size_t i = 0; i < change.dilate.size(); ++i) {
    const int64_t taps = change.from_shape[static_cast<size_t>(change.permutation[i])];
    slices.push_back(fmt::format("0:{}:{}", (taps - 1) * change.dilate[i] + 1, change.dilate[i]));
  }
  out += fmt::format("{0}# dilation {1} and {2} trailing zero taps: TF's CPU transposed conv has no dilation, so "
                     "the taps are spread out with zeros between them\n"
                     "{0}spread = np.zeros({3}, dtype=kernel.dtype)\n"
                     "{0}spread[{4}] = kernel\n"
                     "{0}kernel = spread\n",
                     indent, py_tuple(change.dilate), py_tuple(change.append_zeros), py_tuple(change.to_shape),
                     fmt::join(slices, ", "));
  return out;
}

std::string python_sections(std::string_view source, const std::vector<std::string>& names) {
  constexpr std::string_view kMarker = "# convbridge-section: ";
  std::string out;
  std::vector<bool> found(names.size(), false);
  bool keep = true;  // the text before the first section is common to all of them
  size_t start = 0;
  while (start < source.size()) {
    size_t end = source.find('\n', start);
    end = end == std::string_view::npos ? source.size() : end + 1;
    const std::string_view line = source.substr(start, end - start);
    if (line.starts_with(kMarker)) {
      std::string_view name = line.substr(kMarker.size());
      while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.remove_suffix(1);
      keep = false;
      for (size_t i = 0; i < names.size(); ++i) {
        if (names[i] == name) keep = found[i] = true;
      }
    } else if (keep) {
      out += line;
    }
    start = end;
  }
  if (std::find(found.begin(), found.end(), false) != found.end()) std::abort();  // an emitter names a missing section
  return out;
}

std::string torch_activation_constructor(const TorchActivationStep& step) {
  std::vector<std::string> arguments;
  for (const auto& [name, value] : step.float_arguments) arguments.push_back(fmt::format("{}={}", name, value));
  if (step.dim) arguments.push_back(fmt::format("dim={}", *step.dim));
  if (step.activation.kind == ActivationKind::gelu_tanh) arguments.push_back("approximate=\"tanh\"");
  return fmt::format("nn.{}({})", step.module, fmt::join(arguments, ", "));
}


std::string python_layout_expression_tf(const WeightLayoutChange& change, std::string_view source_name) {
  return layout_expression(change, source_name, ArrayOps::tf);
}

std::string_view python_spread_taps_tf() {
  return R"PY(

def spread_taps(kernel, axis, dilation, trailing_zeros):
    """Along `axis` of `kernel`, moves tap j to j * dilation with zeros between the taps, then appends
    `trailing_zeros` zero taps. Built from tf.pad and tf.reshape rather than by assigning into a numpy array, so it
    runs on tensors and tf.Variables, inside tf.function, and gradients flow back to the taps."""
    shape = kernel.shape.as_list()  # static: the kernel's shape is fixed by the layer
    taps, before, after = shape[axis], shape[:axis], shape[axis + 1:]
    # (..., taps, ...) -> (..., taps, dilation, ...): each tap followed by dilation - 1 zeros
    spread = tf.pad(tf.expand_dims(kernel, axis + 1),
                    [[0, 0]] * (axis + 1) + [[0, dilation - 1]] + [[0, 0]] * len(after))
    # -> (..., taps * dilation, ...), without the zeros after the last tap: (taps - 1) * dilation + 1 long
    spread = tf.reshape(spread, before + [taps * dilation] + after)
    spread = spread[(slice(None),) * axis + (slice(0, (taps - 1) * dilation + 1),)]
    return tf.pad(spread, [[0, 0]] * axis + [[0, trailing_zeros]] + [[0, 0]] * len(after))
)PY";
}

std::string python_kernel_lines_tf(const WeightLayoutChange& change, const std::string& indent) {
  std::string out = fmt::format("{0}# {1} -> {2} with tf ops (not numpy), so gradients flow back to `weight`\n"
                                "{0}kernel = {3}\n",
                                indent, change.from_layout, change.to_layout, python_layout_expression_tf(change));
  if (change.dilate.empty()) return out;
  out += fmt::format("{0}# dilation {1} and {2} trailing zero taps: TF's CPU transposed conv has no dilation,\n"
                     "{0}# so the taps are spread out with zeros between them\n",
                     indent, py_tuple(change.dilate), py_tuple(change.append_zeros));
  for (size_t i = 0; i < change.dilate.size(); ++i) {
    if (change.dilate[i] == 1 && change.append_zeros[i] == 0) continue;
    out += fmt::format("{}kernel = spread_taps(kernel, {}, {}, {})\n", indent, i, change.dilate[i],
                       change.append_zeros[i]);
  }
  return out;
}


const TransposedConvStep* transposed_step(const Plan& plan) {
  for (const PlanStep& step : plan.steps) {
    if (const auto* conv = std::get_if<TransposedConvStep>(&step.op)) return conv;
  }
  return nullptr;
}

std::string comment_safe(std::string_view text) {
  std::string line;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    line += (u >= 0x20 && u < 0x7f) ? c : (u == '\n' || u == '\t' || u == '\r') ? ' ' : '?';
  }
  return line;
}

std::string python_header(const Plan& plan, const std::string& target) {
  const ConvSpec& spec = plan.source;
  std::string validity;
  if (plan.exact_for_every_input_size) {
    validity = "# Exact for every input size PyTorch accepts.\n";
  } else {
    std::vector<int64_t> spatial(plan.input_shape->begin() + 2, plan.input_shape->end());
    validity = fmt::format("# Exact only for inputs of spatial size {} (TF 'same' padding depends on the input "
                           "size);\n# regenerate without --input-shape for code exact at every size.\n",
                           py_tuple(spatial));
  }
  const std::string source_line = comment_safe(plan.source_text);
  return fmt::format("# Generated by convbridge {} ({}) from the PyTorch layer:\n#     {}\n{}"
                     "# Tensors are channels_last: input {}, output {}.\n",
                     CONVBRIDGE_VERSION, target, source_line, validity,
                     channels_last_description(spec.rank, spec.in_channels, false),
                     channels_last_description(spec.rank, spec.out_channels, true));
}

const ConvStep& conv_step(const Plan& plan) {
  for (const PlanStep& step : plan.steps) {
    if (const auto* conv = std::get_if<ConvStep>(&step.op)) return *conv;
  }
  // Every plan has exactly one convolution; reaching here is a planner bug.
  std::abort();
}

std::string_view source_framework(const KerasConvLayer& source) { return source.is_tf_nn ? "TensorFlow" : "Keras"; }

std::string_view source_noun(const KerasConvLayer& source) { return source.is_tf_nn ? "tf.nn call" : "Keras layer"; }

bool conv_pads_folded(const ConvStep& conv, bool fold_explicit_pads) {
  return fold_explicit_pads && conv.implementation == ConvImplementation::tf_conv &&
         conv.padding == TfPadding::explicit_pads;
}

std::string keras_conv_constructor(const ConvStep& conv, std::string_view prefix, std::string_view extra,
                                   bool fold_explicit_pads) {
  const std::string padding = conv.padding == TfPadding::same ? "same" : "valid";
  // A depthwise tf_conv step gains only from its folded pads: without them it is Keras' DepthwiseConvND.
  const bool depthwise_layer = conv.kind == TfConvKind::depthwise && conv_pads_folded(conv, fold_explicit_pads);
  if (conv.implementation == ConvImplementation::tf_conv &&
      (conv.kind == TfConvKind::conv || depthwise_layer)) {
    std::string padding_argument = fmt::format("\"{}\"", padding);
    if (conv_pads_folded(conv, fold_explicit_pads)) {
      std::vector<std::string> pairs;
      for (const PadPair& p : conv.explicit_pads) pairs.push_back(fmt::format("({}, {})", p.before, p.after));
      padding_argument = fmt::format("({}{})", fmt::join(pairs, ", "), pairs.size() == 1 ? "," : "");
    }
    if (depthwise_layer) {
      return fmt::format("TfDepthwiseConv({}, strides={}, dilation_rate={}, padding={}, depth_multiplier={}, "
                         "use_bias={}{})",
                         py_tuple(conv.kernel), py_tuple(conv.strides), py_tuple(conv.dilation), padding_argument,
                         conv.depth_multiplier, conv.use_bias ? "True" : "False", extra);
    }
    return fmt::format("TfConv({}, {}, strides={}, dilation_rate={}, padding={}, groups={}, use_bias={}{})",
                       conv.out_channels, py_tuple(conv.kernel), py_tuple(conv.strides), py_tuple(conv.dilation),
                       padding_argument, conv.groups, conv.use_bias ? "True" : "False", extra);
  }
  if (conv.kind == TfConvKind::depthwise) {
    return fmt::format("{}DepthwiseConv{}D({}, strides={}, padding=\"{}\", depth_multiplier={}, "
                       "dilation_rate={}, use_bias={}{})",
                       prefix, conv.rank, py_tuple(conv.kernel), py_tuple(conv.strides), padding, conv.depth_multiplier,
                       py_tuple(conv.dilation), conv.use_bias ? "True" : "False", extra);
  }
  return fmt::format("{}Conv{}D({}, {}, strides={}, padding=\"{}\", dilation_rate={}, groups={}, "
                     "use_bias={}{})",
                     prefix, conv.rank, conv.out_channels, py_tuple(conv.kernel), py_tuple(conv.strides), padding,
                     py_tuple(conv.dilation), conv.groups, conv.use_bias ? "True" : "False", extra);
}

// Keras 3 has no groups on ConvNDTranspose: groups > 1 use TorchGroupedConvTranspose (keras_layers.py).
std::string keras_transposed_constructor(const TransposedConvStep& conv, std::string_view prefix,
                                         std::string_view extra) {
  const bool same = conv.padding == TfPadding::same;
  // 'same' must keep output_padding=None (in*stride outputs); 'valid' always gets it explicitly, because Keras'
  // None means in*stride + max(k - stride, 0), not the full length, when stride > k (trap 4).
  const std::string output_padding = same ? "None" : py_tuple(conv.extra);
  if (conv.groups > 1) {
    return fmt::format("TorchGroupedConvTranspose({}, {}, strides={}, groups={}, padding=\"{}\", output_padding={}, "
                       "use_bias={}{})",
                       conv.out_channels, py_tuple(conv.kernel), py_tuple(conv.strides), conv.groups,
                       same ? "same" : "valid", output_padding, conv.use_bias ? "True" : "False", extra);
  }
  return fmt::format("{}Conv{}DTranspose({}, {}, strides={}, padding=\"{}\", output_padding={}, "
                     "use_bias={}{})",
                     prefix, conv.rank, conv.out_channels, py_tuple(conv.kernel), py_tuple(conv.strides),
                     same ? "same" : "valid", output_padding, conv.use_bias ? "True" : "False", extra);
}

// (1, 3, 224, 224); sizes that vary with the input are None.
std::string shape_text(const std::vector<int64_t>& shape) {
  std::vector<std::string> sizes;
  for (const int64_t size : shape) sizes.push_back(size == kUnknownSize ? "None" : std::to_string(size));
  if (sizes.size() == 1) return fmt::format("({},)", sizes[0]);
  return fmt::format("({})", fmt::join(sizes, ", "));
}

// A Python string literal for any UTF-8 text (the JSON parser only accepts valid UTF-8): printable ASCII as is,
// quotes and backslashes escaped, any other code point by its number (u and U escapes), so model.py stays ASCII.
std::string python_string(const std::string& text) {
  std::string out = "'";
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const size_t length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    uint32_t code = length == 1 ? byte : byte & (0x7fu >> length);  // the lead byte's payload
    for (size_t k = 1; k < length && i + k < text.size(); ++k) {
      code = (code << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3fu);
    }
    i += length;
    if (code == '\\' || code == '\'') {
      out += '\\';
      out += static_cast<char>(code);
    } else if (code >= 0x20 && code < 0x7f) {
      out += static_cast<char>(code);
    } else {
      out += code <= 0xffff ? fmt::format("\\u{:04x}", code) : fmt::format("\\U{:08x}", code);
    }
  }
  return out + "'";
}

// The outputs' nesting as Python: tuples, lists and dicts of the output variables, in the graph's order.
std::string outputs_expression(const nlohmann::json& value, const std::vector<std::string>& variables, size_t& next) {
  if (value.is_null()) return "None";
  if (value.contains("ref")) return next < variables.size() ? variables[next++] : "None";
  std::vector<std::string> items;
  if (value.contains("dict")) {
    for (const auto& pair : value.at("dict")) {
      items.push_back(fmt::format("{}: {}", python_string(pair.at(0).get<std::string>()),
                                  outputs_expression(pair.at(1), variables, next)));
    }
    return fmt::format("{{{}}}", fmt::join(items, ", "));
  }
  const bool tuple = value.contains("tuple");
  for (const auto& item : value.at(tuple ? "tuple" : "list")) items.push_back(outputs_expression(item, variables, next));
  if (tuple) return fmt::format("({}{})", fmt::join(items, ", "), items.size() == 1 ? "," : "");
  return fmt::format("[{}]", fmt::join(items, ", "));
}

}  // namespace convbridge::emit
