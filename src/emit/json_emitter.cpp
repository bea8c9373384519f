#include <nlohmann/json.hpp>

#include <algorithm>

#include "convbridge/emit.hpp"
#include "convbridge/engine.hpp"

namespace convbridge {
namespace {

using Json = nlohmann::ordered_json;

Json pads_json(const std::vector<PadPair>& pads) {
  Json out = Json::array();
  for (const PadPair& p : pads) out.push_back({p.before, p.after});
  return out;
}

struct StepToJson {
  Json operator()(const PadStep& step) const {
    return {{"op", "pad"}, {"mode", padding_fill_name(step.fill)}, {"pads", pads_json(step.pads)}};
  }
  Json operator()(const ConvStep& step) const {
    Json out = {{"op", "conv"},
                {"kind", step.kind == TfConvKind::depthwise ? "depthwise" : "conv"},
                {"rank", step.rank},
                {"in_channels", step.in_channels},
                {"filters", step.out_channels}};
    if (step.kind == TfConvKind::depthwise) out["depth_multiplier"] = step.depth_multiplier;
    else out["groups"] = step.groups;
    out["kernel_size"] = step.kernel;
    out["strides"] = step.strides;
    out["dilation_rate"] = step.dilation;
    out["padding"] = step.padding == TfPadding::same ? "same" : step.padding == TfPadding::valid ? "valid" : "explicit";
    if (step.padding == TfPadding::explicit_pads) out["explicit_pads"] = pads_json(step.explicit_pads);
    out["use_bias"] = step.use_bias;
    out["implementation"] = step.implementation == ConvImplementation::tf_conv ? "tf_conv" : "keras_layer";
    return out;
  }
  Json operator()(const TransposedConvStep& step) const {
    Json out = {{"op", "conv_transpose"}, {"rank", step.rank},      {"in_channels", step.in_channels},
                {"filters", step.out_channels}, {"groups", step.groups}, {"kernel_size", step.kernel},
                {"strides", step.strides}};
    out["padding"] = step.padding == TfPadding::same ? "same" : "explicit";
    if (step.padding == TfPadding::explicit_pads) {
      out["explicit_pads"] = pads_json(step.pads);
      out["extra"] = step.extra;
    }
    out["use_bias"] = step.use_bias;
    return out;
  }
  Json operator()(const SubsampleStep& step) const { return {{"op", "subsample"}, {"strides", step.strides}}; }
};

Json layout_json(const WeightLayoutChange& k) {
  return {{"from_layout", k.from_layout},
          {"from_shape", k.from_shape},
          {"reshape", k.reshape.empty() ? Json(nullptr) : Json(k.reshape)},
          {"permutation", k.permutation},
          {"dilate", k.dilate.empty() ? Json(nullptr) : Json(k.dilate)},
          {"append_zeros", k.append_zeros.empty() ? Json(nullptr) : Json(k.append_zeros)},
          {"to_layout", k.to_layout},
          {"to_shape", k.to_shape}};
}

struct TorchStepToJson {
  const TorchPlan& plan;
  Json operator()(const TorchPadStep& step) const {
    if (step.tf_same_at_runtime) {
      return {{"op", "pad"}, {"mode", "tf_same_at_runtime"}, {"kernel_extent", step.kernel_extent},
              {"strides", step.strides}};
    }
    return {{"op", "pad"}, {"mode", "zeros"}, {"pads", pads_json(step.pads)}};
  }
  Json operator()(const TorchConvStep& step) const {
    const ConvSpec& s = step.spec;
    Json padding = Json::array();
    for (const PadPair& p : s.padding) padding.push_back(p.before);
    Json out = {{"op", "conv"},
                {"module", torch_class_name(s)},
                {"in_channels", s.in_channels},
                {"out_channels", s.out_channels},
                {"kernel_size", s.kernel},
                {"stride", s.stride},
                {"padding", step.padding_same ? Json("same") : padding}};
    if (s.transposed) out["output_padding"] = s.output_padding;
    out["dilation"] = s.dilation;
    out["groups"] = s.groups;
    out["bias"] = s.bias;
    out["weight"] = plan.weight_names[static_cast<size_t>(step.weight)];
    out["layout"] = layout_json(step.layout);
    return out;
  }
  Json operator()(const TorchCropStep& step) const { return {{"op", "crop_end"}, {"crop", step.crop_end}}; }
  Json operator()(const TorchActivationStep& step) const {
    Json arguments = Json::object();
    for (const auto& [name, value] : step.float_arguments) arguments[name] = value;
    if (step.dim) arguments["dim"] = *step.dim;
    if (step.activation.kind == ActivationKind::gelu_tanh) arguments["approximate"] = "tanh";
    return {{"op", "activation"}, {"module", step.module}, {"arguments", arguments}};
  }
};

// {"result": "pass"|"fail"|"skipped", "seed", "tolerance", "max_abs_diff", "cases": [{input_shape, output_shape,
// shapes_match, max_abs_diff}], "skipped_reason"}, or null.
Json verification_json(const VerificationReport* report) {
  if (report == nullptr) return nullptr;
  Json cases = Json::array();
  double worst = 0.0;
  for (const VerificationCase& c : report->cases) {
    worst = std::max(worst, c.max_abs_diff);
    cases.push_back({{"input_shape", c.input_shape}, {"output_shape", c.output_shape},
                     {"shapes_match", c.shapes_match}, {"max_abs_diff", c.max_abs_diff}});
  }
  Json out = {{"result", report->cases.empty() ? "skipped" : report->passed() ? "pass" : "fail"},
              {"seed", report->seed},
              {"tolerance", report->tolerance},
              {"max_abs_diff", report->cases.empty() ? Json(nullptr) : Json(worst)},
              {"cases", cases}};
  out["skipped_reason"] = report->skipped_reason.empty() ? Json(nullptr) : Json(report->skipped_reason);
  return out;
}

std::string dump(const Json& json) {
  // Layer text is user input: replace invalid UTF-8 instead of throwing.
  return json.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace

std::string emit_json(const TorchPlan& plan, const VerificationReport* verification) {
  const KerasConvLayer& k = plan.source;
  Json source = {{"framework", k.is_tf_nn ? "tensorflow" : "keras"},
                 {"text", k.text},
                 {k.is_tf_nn ? "function" : "layer", k.class_name},
                 {"in_channels", plan.in_channels}};
  if (k.kind != KerasLayerKind::depthwise) source["filters"] = k.filters;
  source["kernel_size"] = k.kernel;
  source["strides"] = k.strides;
  source["dilation_rate"] = k.dilation;
  switch (k.padding) {
    case KerasPadding::valid: source["padding"] = "valid"; break;
    case KerasPadding::same: source["padding"] = "same"; break;
    case KerasPadding::causal: source["padding"] = "causal"; break;
    case KerasPadding::explicit_pads: {
      Json pairs = Json::array();
      for (const PadPair& pair : k.explicit_padding) pairs.push_back({pair.before, pair.after});
      source["padding"] = pairs;
      break;
    }
  }
  if (k.is_tf_nn) source["filters_in_depth"] = k.filters_in_depth;
  if (k.is_tf_nn && k.kind == KerasLayerKind::conv_transpose) {
    Json output_shape = Json::array();
    for (int64_t v : k.output_shape) output_shape.push_back(v == kUnknownSize ? Json(nullptr) : Json(v));
    source["output_shape"] = output_shape;
  }
  if (k.kind == KerasLayerKind::conv) source["groups"] = k.groups;
  if (k.kind == KerasLayerKind::depthwise || k.kind == KerasLayerKind::separable) {
    source["depth_multiplier"] = k.depth_multiplier;
  }
  if (k.kind == KerasLayerKind::conv_transpose) {
    source["output_padding"] = k.has_output_padding ? Json(k.output_padding) : Json(nullptr);
  }
  source["use_bias"] = k.use_bias;
  if (!k.is_tf_nn) source["activation"] = k.activation ? Json(k.activation_text) : Json(nullptr);
  Json out = {{"convbridge_version", CONVBRIDGE_VERSION}, {"direction", "keras_to_pytorch"}, {"source", source}};
  // Unknown sizes (a batch the input shape or a tf.nn output_shape leaves open) are null.
  const auto with_nulls = [](std::vector<int64_t> shape, bool unknown_batch) {
    Json sizes = Json::array();
    for (size_t i = 0; i < shape.size(); ++i) {
      sizes.push_back(shape[i] == kUnknownSize || (i == 0 && unknown_batch) ? Json(nullptr) : Json(shape[i]));
    }
    return sizes;
  };
  out["input_shape"] = plan.input_shape ? with_nulls(*plan.input_shape, false) : Json(nullptr);
  out["output_shape"] = nullptr;
  if (plan.input_shape) {
    std::vector<int64_t> shape = *plan.input_shape;
    const bool unknown_batch = shape[0] == kUnknownSize;
    if (unknown_batch) shape[0] = 1;
    if (auto tf_out = tf_steps_output_shape(plan.source_steps, shape)) out["output_shape"] = with_nulls(*tf_out, unknown_batch);
  }
  out["exact_for"] = plan.exact_for_every_input_size ? "every_input_size" : "input_shape";
  out["data_format"] = "channels_first";
  Json steps = Json::array();
  for (const TorchPlanStep& step : plan.steps) {
    Json item = std::visit(TorchStepToJson{plan}, step.op);
    item["why"] = step.why;
    steps.push_back(std::move(item));
  }
  out["steps"] = std::move(steps);
  Json weights = Json::object();
  for (size_t i = 0; i < plan.weight_names.size(); ++i) weights[plan.weight_names[i]] = {{"shape", plan.weight_shapes[i]}};
  out["weights"] = weights;
  out["notes"] = plan.notes;
  out["warnings"] = plan.warnings;
  out["verification"] = verification_json(verification);
  return dump(out);
}

std::string emit_json(const Plan& plan, const VerificationReport* verification) {
  const ConvSpec& spec = plan.source;
  Json source = {{"framework", "pytorch"},
                 {"text", plan.source_text},
                 {"layer", torch_class_name(spec)},
                 {"in_channels", spec.in_channels},
                 {"out_channels", spec.out_channels},
                 {"kernel_size", spec.kernel},
                 {"stride", spec.stride},
                 {"dilation", spec.dilation},
                 {"groups", spec.groups},
                 {"bias", spec.bias},
                 {"padding_mode", padding_fill_name(spec.fill)},
                 {"padding", pads_json(spec.padding)}};
  if (spec.transposed) source["output_padding"] = spec.output_padding;
  Json out = {{"convbridge_version", CONVBRIDGE_VERSION}, {"source", source}};
  out["input_shape"] = plan.input_shape ? Json(*plan.input_shape) : Json(nullptr);
  out["output_shape"] = nullptr;
  if (plan.input_shape) {
    if (auto shape = torch_conv_output_shape(spec, *plan.input_shape)) out["output_shape"] = *shape;
  }
  out["exact_for"] = plan.exact_for_every_input_size ? "every_input_size" : "input_shape";
  out["data_format"] = "channels_last";
  Json steps = Json::array();
  for (const PlanStep& step : plan.steps) {
    Json item = std::visit(StepToJson{}, step.op);
    item["why"] = step.why;
    steps.push_back(std::move(item));
  }
  out["steps"] = std::move(steps);
  const WeightLayoutChange& k = plan.kernel_layout;
  out["weights"] = {{"kernel", layout_json(k)},
                    {"bias", spec.bias ? Json({{"shape", {spec.out_channels}}}) : Json(nullptr)}};
  out["notes"] = plan.notes;
  out["verification"] = verification_json(verification);
  return dump(out);
}

}  // namespace convbridge
