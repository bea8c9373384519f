#include <nlohmann/json.hpp>

#include "convbridge/emit.hpp"

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

}  // namespace

std::string emit_json(const Plan& plan) {
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
  out["weights"] = {{"kernel",
                     {{"from_layout", k.from_layout},
                      {"from_shape", k.from_shape},
                      {"reshape", k.reshape.empty() ? Json(nullptr) : Json(k.reshape)},
                      {"permutation", k.permutation},
                      {"dilate", k.dilate.empty() ? Json(nullptr) : Json(k.dilate)},
                      {"append_zeros", k.append_zeros.empty() ? Json(nullptr) : Json(k.append_zeros)},
                      {"to_layout", k.to_layout},
                      {"to_shape", k.to_shape}}},
                    {"bias", spec.bias ? Json({{"shape", {spec.out_channels}}}) : Json(nullptr)}};
  out["notes"] = plan.notes;
  // The layer text is user input: replace invalid UTF-8 instead of throwing.
  return out.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace convbridge
