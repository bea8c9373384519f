#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>

#include <algorithm>

#include "convbridge/emit.hpp"
#include "emit/emit_common.hpp"

namespace convbridge {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("({})", fmt::join(shape, ", ")); }

struct StepDescriber {
  int rank;
  std::string operator()(const PadStep& step) const {
    return fmt::format("pad {} with {}", describe_padding(step.pads, rank), padding_fill_name(step.fill));
  }
  std::string operator()(const ConvStep& step) const {
    std::string padding = step.padding == TfPadding::same    ? "'same'"
                          : step.padding == TfPadding::valid ? "'valid'"
                                                             : "explicit " + describe_padding(step.explicit_pads, rank);
    std::string head = step.kind == TfConvKind::depthwise
                           ? fmt::format("{}DepthwiseConv{}D(depth_multiplier={})",
                                         step.implementation == ConvImplementation::tf_conv ? "Tf" : "", step.rank,
                                         step.depth_multiplier)
                       : step.implementation == ConvImplementation::tf_conv
                           ? fmt::format("TfConv {}-D ({} filters, groups={}, raw tf.nn)", step.rank, step.out_channels,
                                         step.groups)
                           : fmt::format("Conv{}D({} filters, groups={})", step.rank, step.out_channels, step.groups);
    return fmt::format("{}: kernel {}, strides {}, dilation {}, padding {}, {}", head, emit::py_tuple(step.kernel),
                       emit::py_tuple(step.strides), emit::py_tuple(step.dilation), padding,
                       step.use_bias ? "with bias" : "no bias");
  }
  std::string operator()(const TransposedConvStep& step) const {
    std::string padding = "'same'";
    if (step.padding == TfPadding::explicit_pads) {
      padding = "explicit";
      const std::string_view letters = spatial_letters(rank);
      for (size_t i = 0; i < step.pads.size(); ++i) {
        padding += fmt::format("{} {} crop ({}, {}), extra {}", i ? "," : "", letters[i], step.pads[i].before,
                               step.pads[i].after, step.extra[i]);
      }
    }
    return fmt::format("Conv{}DTranspose({} filters{}): kernel {}, strides {}, padding {}, {}", step.rank,
                       step.out_channels, step.groups > 1 ? fmt::format(", per group of {}", step.groups) : "",
                       emit::py_tuple(step.kernel), emit::py_tuple(step.strides), padding,
                       step.use_bias ? "with bias" : "no bias");
  }
  std::string operator()(const SubsampleStep& step) const {
    std::string index;
    for (int64_t s : step.strides) index += fmt::format(", ::{}", s);
    return fmt::format("subsample y[:{}, :]", index);
  }
};

}  // namespace

// Explanations are read in a terminal: every line longer than kExplanationWidth is broken at a space (outside
// parentheses where possible, so "(1, 1)" stays whole), continuing under the text after its marker ("why: ", "- ",
// "2. "). The layer text as the user wrote it, on the first line, is left as it is.
constexpr size_t kExplanationWidth = 110;

static std::string wrap_line(std::string_view line) {
  size_t indent = line.find_first_not_of(' ');
  if (indent == std::string_view::npos || line.size() <= kExplanationWidth) return std::string(line);
  size_t hang = indent;
  for (std::string_view marker : {"why: ", "- "}) {
    if (line.substr(indent).starts_with(marker)) hang = indent + marker.size();
  }
  const size_t dot = line.find(". ", indent);
  if (hang == indent && dot != std::string_view::npos && dot > indent && dot - indent <= 3 &&
      std::all_of(line.begin() + static_cast<std::ptrdiff_t>(indent), line.begin() + static_cast<std::ptrdiff_t>(dot),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    hang = dot + 2;
  }
  if (hang == indent) hang = indent + 2;
  std::string out;
  std::string_view rest = line;
  std::string prefix;
  while (prefix.size() + rest.size() > kExplanationWidth) {
    const size_t room = kExplanationWidth - prefix.size();
    const size_t first_cut = prefix.empty() ? hang : 0;  // never inside the first line's marker
    size_t cut = std::string_view::npos, any_space = std::string_view::npos;
    int depth = 0;
    for (size_t i = 0; i < rest.size() && i <= room; ++i) {
      if (rest[i] == '(' || rest[i] == '[') ++depth;
      if (rest[i] == ')' || rest[i] == ']') depth = std::max(0, depth - 1);
      if (rest[i] == ' ' && i > first_cut) {
        any_space = i;
        if (depth == 0) cut = i;
      }
    }
    // Outside parentheses only when that does not leave most of the line empty.
    if (cut == std::string_view::npos || (any_space != std::string_view::npos && cut < room / 2)) cut = any_space;
    if (cut == std::string_view::npos || cut == 0) break;  // one long word: leave it
    out += prefix;
    out += rest.substr(0, cut);
    out += '\n';
    rest = rest.substr(cut + 1);
    prefix.assign(hang, ' ');
  }
  out += prefix;
  out += rest;
  return out;
}

static std::string wrap_explanation(std::string_view text) {
  std::string out;
  bool first = true;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    out += first ? std::string(line) : wrap_line(line);
    first = false;
    if (end == std::string_view::npos) break;
    out += '\n';
    text = text.substr(end + 1);
  }
  return out;
}

std::string explain_plan(const Plan& plan) {
  const ConvSpec& spec = plan.source;
  std::string out;
  out += fmt::format("PyTorch   {}\n", plan.source_text);
  out += fmt::format("  in_channels={}, out_channels={}, kernel {}, stride {}, dilation {}, groups={}, bias={}{}\n",
                     spec.in_channels, spec.out_channels, emit::py_tuple(spec.kernel), emit::py_tuple(spec.stride),
                     emit::py_tuple(spec.dilation), spec.groups, spec.bias ? "True" : "False",
                     spec.transposed ? fmt::format(", output_padding {}", emit::py_tuple(spec.output_padding)) : "");
  if (spec.transposed) {
    out += fmt::format("  padding per side: {}, cropped from the full transposed result\n",
                       describe_padding(spec.padding, spec.rank));
    out += "  output size per axis: (in-1)*stride - 2*padding + (k-1)*d + output_padding + 1; outputs past the full "
           "result are 0 + bias\n";
  } else {
    out += fmt::format("  padding per side: {}, filled with {}\n", describe_padding(spec.padding, spec.rank),
                       padding_fill_name(spec.fill));
    out += "  output size per axis: floor((in + before + after - ((k-1)*d+1)) / stride) + 1\n";
  }
  if (plan.input_shape) {
    auto torch_out = torch_conv_output_shape(spec, *plan.input_shape);
    if (torch_out) {
      out += fmt::format("  input {} -> output {}  (N, C, {})\n", shape_text(*plan.input_shape),
                         shape_text(*torch_out), fmt::join(spatial_letters(spec.rank), ", "));
    }
  }
  out += fmt::format("\nTensorFlow/Keras plan, exact {}:\n",
                     plan.exact_for_every_input_size ? "for every input size"
                                                     : "for this input size only");
  int number = 1;
  for (const PlanStep& step : plan.steps) {
    out += fmt::format("  {}. {}\n", number++, std::visit(StepDescriber{spec.rank}, step.op));
    out += fmt::format("     why: {}\n", step.why);
  }
  if (plan.input_shape) {
    std::vector<int64_t> last{(*plan.input_shape)[0]};
    last.insert(last.end(), plan.input_shape->begin() + 2, plan.input_shape->end());
    last.push_back((*plan.input_shape)[1]);
    auto tf_out = plan_output_shape(plan, last);
    if (tf_out) {
      out += fmt::format("  input {} -> output {}  (N, {}, C)\n", shape_text(last), shape_text(*tf_out),
                         fmt::join(spatial_letters(spec.rank), ", "));
    }
  }
  const WeightLayoutChange& k = plan.kernel_layout;
  out += fmt::format("\nWeights: PyTorch {} {} -> {} {}: {}", k.from_layout, shape_text(k.from_shape), k.to_layout,
                     shape_text(k.to_shape), emit::python_layout_expression(k));
  out += spec.bias ? fmt::format("; bias ({},) unchanged\n", spec.out_channels) : std::string("; no bias\n");
  if (!plan.notes.empty()) {
    out += "\nNotes:\n";
    for (const std::string& note : plan.notes) out += fmt::format("  - {}\n", note);
  }
  return wrap_explanation(out);
}

namespace {

struct TorchStepDescriber {
  int rank;
  std::string operator()(const TorchPadStep& step) const {
    if (step.tf_same_at_runtime) {
      return fmt::format("TFSamePad(kernel extent {}, strides {}): TF 'same' zero padding computed from the input "
                         "size at run time",
                         emit::py_tuple(step.kernel_extent), emit::py_tuple(step.strides));
    }
    return fmt::format("nn.ConstantPad{}d: zero pad {}", rank, describe_padding(step.pads, rank));
  }
  std::string operator()(const TorchConvStep& step) const {
    const ConvSpec& s = step.spec;
    std::string padding = step.padding_same ? "'same'" : "";
    if (!step.padding_same) {
      std::vector<int64_t> p;
      for (const PadPair& pair : s.padding) p.push_back(pair.before);
      padding = emit::py_tuple(p);
    }
    return fmt::format("nn.Conv{}{}d({}, {}, kernel {}, stride {}, padding {}{}, dilation {}, groups={}, bias={})",
                       s.transposed ? "Transpose" : "", s.rank, s.in_channels, s.out_channels,
                       emit::py_tuple(s.kernel), emit::py_tuple(s.stride), padding,
                       s.transposed ? fmt::format(", output_padding {}", emit::py_tuple(s.output_padding)) : "",
                       emit::py_tuple(s.dilation), s.groups, s.bias ? "True" : "False");
  }
  std::string operator()(const TorchCropStep& step) const {
    return fmt::format("CropEnd({}): drop the last outputs of each axis", emit::py_tuple(step.crop_end));
  }
  std::string operator()(const TorchActivationStep& step) const {
    return fmt::format("{}: {}", emit::torch_activation_constructor(step), describe_activation(step.activation));
  }
};

std::string_view keras_padding_name(KerasPadding padding) {
  switch (padding) {
    case KerasPadding::valid: return "valid";
    case KerasPadding::same: return "same";
    case KerasPadding::causal: return "causal";
    case KerasPadding::explicit_pads: return "explicit";
  }
  return "?";
}

// The source's own description line: a Keras layer's arguments, or a tf.nn call's with its filters' shape.
std::string describe_source(const TorchPlan& plan) {
  const KerasConvLayer& k = plan.source;
  if (k.is_tf_nn) {
    std::vector<int64_t> filters_shape = k.kernel;
    if (k.kind == KerasLayerKind::conv_transpose) {  // (*kernel, out_channels / groups, in_channels)
      filters_shape.push_back(k.filters / k.groups);
      filters_shape.push_back(k.filters_in_depth);
    } else {
      filters_shape.push_back(k.filters_in_depth);
      filters_shape.push_back(k.kind == KerasLayerKind::depthwise ? k.depth_multiplier : k.filters);
    }
    const std::string padding = k.padding == KerasPadding::explicit_pads
                                    ? describe_padding(k.explicit_padding, k.rank)
                                    : (k.padding == KerasPadding::same ? "'SAME'" : "'VALID'");
    std::string output_shape;
    if (k.kind == KerasLayerKind::conv_transpose) {
      std::vector<std::string> sizes;
      for (int64_t v : k.output_shape) sizes.push_back(v == kUnknownSize ? "N" : std::to_string(v));
      output_shape = fmt::format(", output_shape ({})", fmt::join(sizes, ", "));
    }
    return fmt::format("  {}: filters {}{}, strides {}, dilations {}, padding {}{}, no bias; input channels {}\n",
                       k.class_name, emit::py_tuple(filters_shape), output_shape, emit::py_tuple(k.strides),
                       emit::py_tuple(k.dilation), padding,
                       k.groups > 1 ? fmt::format(" (grouped: {} groups)", k.groups) : "", plan.in_channels);
  }
  return fmt::format("  {}: {}kernel {}, strides {}, dilation_rate {}, padding '{}'{}{}, use_bias={}{}; input channels {}\n",
                     k.class_name, k.kind == KerasLayerKind::depthwise ? "" : fmt::format("filters={}, ", k.filters),
                     emit::py_tuple(k.kernel), emit::py_tuple(k.strides), emit::py_tuple(k.dilation),
                     keras_padding_name(k.padding), k.groups > 1 ? fmt::format(", groups={}", k.groups) : "",
                     k.kind == KerasLayerKind::depthwise || k.kind == KerasLayerKind::separable
                         ? fmt::format(", depth_multiplier={}", k.depth_multiplier)
                         : "",
                     k.use_bias ? "True" : "False",
                     k.activation ? fmt::format(", activation={}", k.activation_text) : "", plan.in_channels);
}

}  // namespace

std::string explain_plan(const TorchPlan& plan) {
  const KerasConvLayer& k = plan.source;
  std::string out = fmt::format("{:<9} {}\n", emit::source_framework(k), k.text);
  out += describe_source(plan);
  if (k.padding == KerasPadding::same && k.kind != KerasLayerKind::conv_transpose) {
    out += "  TF 'same' per axis: need = max(0, (ceil(in/s)-1)*s + (k-1)*d+1 - in), need//2 before, the rest after\n";
  }
  if (plan.input_shape) {
    std::vector<int64_t> shape = *plan.input_shape;
    if (shape[0] == kUnknownSize) shape[0] = 1;
    if (auto tf_out = tf_steps_output_shape(plan.source_steps, shape)) {
      out += fmt::format("  input {} -> output {}  (N, {}, C)\n", shape_text(shape), shape_text(*tf_out),
                         fmt::join(spatial_letters(k.rank), ", "));
    }
  }
  out += fmt::format("\nPyTorch plan, exact {}:\n",
                     plan.exact_for_every_input_size ? "for every input size" : "for this input size only");
  int number = 1;
  for (const TorchPlanStep& step : plan.steps) {
    out += fmt::format("  {}. {}\n", number++, std::visit(TorchStepDescriber{k.rank}, step.op));
    out += fmt::format("     why: {}\n", step.why);
  }
  out += "\nWeights:";
  for (const TorchPlanStep& step : plan.steps) {
    if (const auto* conv = std::get_if<TorchConvStep>(&step.op)) {
      const WeightLayoutChange& c = conv->layout;
      out += fmt::format(" {} {} {} {} -> PyTorch {} {}: {};", emit::source_framework(k), plan.weight_names[static_cast<size_t>(conv->weight)],
                         c.from_layout, shape_text(c.from_shape), c.to_layout, shape_text(c.to_shape),
                         emit::python_layout_expression(c, plan.weight_names[static_cast<size_t>(conv->weight)]));
    }
  }
  out += k.use_bias ? " bias unchanged\n" : " no bias\n";
  if (!plan.notes.empty()) {
    out += "\nNotes:\n";
    for (const std::string& note : plan.notes) out += fmt::format("  - {}\n", note);
  }
  return wrap_explanation(out);
}

std::string describe_verification(const VerificationReport& report) {
  if (report.cases.empty()) {
    return fmt::format("Verification (reference engine, float64): {}\n", report.skipped_reason);
  }
  double worst = 0.0;
  std::vector<std::string> shapes;
  for (const VerificationCase& c : report.cases) {
    worst = std::max(worst, c.max_abs_diff);
    shapes.push_back(fmt::format("{}->{}{}", shape_text(c.input_shape), shape_text(c.output_shape),
                                 c.shapes_match ? "" : " SHAPE MISMATCH"));
  }
  return fmt::format("Verification (reference engine, float64, seed {}): {}, max |diff| {:.3g} over {} input "
                     "shape{}: {}\n",
                     report.seed, report.passed() ? "PASS" : "FAIL", worst, report.cases.size(),
                     report.cases.size() == 1 ? "" : "s", fmt::join(shapes, " "));
}

}  // namespace convbridge
