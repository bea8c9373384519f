// Keras 3 emitter. Layers used and why:
// - ZeroPaddingND + padding='valid' for explicit zero padding: no Keras conv layer takes explicit pads.
// - keras.ops.pad(mode='reflect') is tf.pad REFLECT on the TF backend; keras.ops.pad rejects 'edge' and 'wrap' on
//   TF, so replicate and circular are built from edge slices. Both layers come from python/convbridge/
//   keras_layers.py, embedded verbatim (the same classes convbridge.to_keras uses).
// - TfConv (keras_layers.py) for tf_conv steps: one raw tf.nn op where Keras' ConvND is slower or refuses the
//   arguments (the planner's rule, src/plan/torch_to_tf.cpp), the explicit pads folded into it.
// - AveragePoolingND(pool_size=1, strides=s) keeps every s-th element: x[::s] as a built-in, serialisable layer
//   (bit-identical for finite values; it would turn -0.0 into +0.0).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <initializer_list>

#include "convbridge/emit.hpp"
#include "emit/embedded_python.hpp"
#include "emit/emit_common.hpp"

namespace convbridge {
namespace {

using emit::py_tuple;

std::string pads_literal(const std::vector<PadPair>& pads) {
  std::vector<std::string> pairs;
  for (const PadPair& p : pads) pairs.push_back(fmt::format("({}, {})", p.before, p.after));
  return fmt::format("({}{})", fmt::join(pairs, ", "), pairs.size() == 1 ? "," : "");
}

}  // namespace

std::string emit_keras(const Plan& plan) {
  const ConvSpec& spec = plan.source;
  const TransposedConvStep* transposed = emit::transposed_step(plan);

  std::vector<std::string> layers;  // Python expressions, in order
  std::vector<std::string> sections;  // of keras_layers.py that the layers use
  const auto use_section = [&sections](std::initializer_list<std::string_view> names) {
    for (std::string_view name : names) {
      if (std::find(sections.begin(), sections.end(), name) == sections.end()) sections.emplace_back(name);
    }
  };
  std::string conv_expression;
  if (!plan.exact_for_every_input_size) {
    layers.push_back(fmt::format("ExpectInputSize({})",
                                 py_tuple(std::vector<int64_t>(plan.input_shape->begin() + 2, plan.input_shape->end()))));
    use_section({"ExpectInputSize"});
  }
  if (transposed != nullptr && transposed->groups > 1) use_section({"TorchGroupedConvTranspose"});
  bool needs_edge_padding = false;
  for (const PlanStep& step : plan.steps) {
    if (const auto* pad = std::get_if<PadStep>(&step.op)) {
      if (pad->fill == PaddingFill::zeros) {
        layers.push_back(fmt::format("keras.layers.ZeroPadding{}D({})", spec.rank, emit::keras_padding_tuple(pad->pads)));
      } else if (pad->fill == PaddingFill::reflect) {
        use_section({"padded_shape", "TorchReflectPad"});
        layers.push_back(fmt::format("TorchReflectPad({})", pads_literal(pad->pads)));
      } else {
        use_section({"padded_shape", "TorchEdgePad"});
        needs_edge_padding = true;
        layers.push_back(fmt::format("TorchEdgePad({}, \"{}\")", pads_literal(pad->pads),
                                     padding_fill_name(pad->fill)));
      }
    } else if (const auto* c = std::get_if<ConvStep>(&step.op)) {
      if (c->padding == TfPadding::explicit_pads && !emit::conv_pads_folded(*c, true)) {
        layers.push_back(fmt::format("keras.layers.ZeroPadding{}D({})", spec.rank,
                                     emit::keras_padding_tuple(c->explicit_pads)));
      }
      layers.push_back("conv");
      conv_expression = emit::keras_conv_constructor(*c, "keras.layers.", "", true);
      if (c->implementation == ConvImplementation::tf_conv) {
        for (const std::string& section : emit::kTfConvSections) use_section({section});
      }
    } else if (const auto* t = std::get_if<TransposedConvStep>(&step.op)) {
      layers.push_back("conv");
      conv_expression = emit::keras_transposed_constructor(*t);
      // y[x] = z[x + before]: Keras' 'valid' output starts at z[0], so crop `before` and whatever is past `out`.
      std::vector<PadPair> crops;
      bool any_crop = false;
      for (size_t i = 0; t->padding == TfPadding::explicit_pads && i < t->pads.size(); ++i) {
        crops.push_back(t->pads[i]);
        any_crop = any_crop || t->pads[i].before > 0 || t->pads[i].after > 0;
      }
      if (any_crop) {
        layers.push_back(fmt::format("keras.layers.Cropping{}D({})", spec.rank, emit::keras_padding_tuple(crops)));
      }
    } else if (const auto* sub = std::get_if<SubsampleStep>(&step.op)) {
      layers.push_back(fmt::format("keras.layers.AveragePooling{}D(pool_size=1, strides={}, padding=\"valid\")",
                                   spec.rank, py_tuple(sub->strides)));
    }
  }

  std::string out = emit::python_header(plan, "Keras 3");
  out += "import numpy as np\nimport keras\n";
  if (needs_edge_padding) out += emit::kTorchPaddingPython;
  if (!sections.empty()) {
    // In the file's order (padded_shape before the pad layers), registered for keras.models.load_model.
    out += emit::python_sections(emit::kKerasLayersPython, sections);
  }

  const std::string weight_shape = py_tuple(torch_weight_shape(spec));
  out += fmt::format(R"PY(

def make_layer(weight, bias=None):
    """Keras equivalent of the PyTorch layer above, with its weights loaded.

    weight: the PyTorch weight, layout {from_layout}, shape {weight_shape}.
    bias: {bias_doc}
    Returns a layer that maps channels_last input {in_desc} to {out_desc}.
    """
)PY",
                     fmt::arg("from_layout", plan.kernel_layout.from_layout), fmt::arg("weight_shape", weight_shape),
                     fmt::arg("bias_doc", spec.bias ? fmt::format("the PyTorch bias, shape ({},).", spec.out_channels)
                                                    : std::string("None (the PyTorch layer has bias=False).")),
                     fmt::arg("in_desc", emit::channels_last_description(spec.rank, spec.in_channels, false)),
                     fmt::arg("out_desc", emit::channels_last_description(spec.rank, spec.out_channels, true)));
  out += emit::python_weight_checks(plan, "    ");
  out += emit::python_kernel_lines(plan.kernel_layout, "    ");
  out += fmt::format("    conv = {}\n", conv_expression);
  std::string build_shape = "(None";
  for (int i = 0; i < spec.rank; ++i) build_shape += ", None";
  build_shape += fmt::format(", {})", spec.in_channels);
  out += fmt::format("    conv.build({})\n", build_shape);
  out += fmt::format("    conv.set_weights({})\n", spec.bias ? "[kernel, bias]" : "[kernel]");
  if (layers.size() == 1) {
    out += "    return conv\n";
  } else {
    // keras.Input first: without it the first call would fix the Sequential's spatial size.
    std::string input_shape = "(";
    for (int i = 0; i < spec.rank; ++i) {
      input_shape += plan.exact_for_every_input_size ? std::string("None")
                                                     : std::to_string((*plan.input_shape)[static_cast<size_t>(i) + 2]);
      input_shape += ", ";
    }
    input_shape += fmt::format("{})", spec.in_channels);
    out += "    return keras.Sequential([\n";
    out += fmt::format("        keras.Input(shape={}),\n", input_shape);
    for (const std::string& layer : layers) out += fmt::format("        {},\n", layer);
    out += "    ])\n";
  }
  return out;
}

}  // namespace convbridge
