// tf.nn emitter. Facts it relies on (checked by tests/python against TensorFlow 2.21 on CPU):
// - tf.nn.conv2d and tf.nn.depthwise_conv2d take explicit [[0,0],[t,b],[l,r],[0,0]] padding; conv1d/conv3d do not,
//   so rank 1 and 3 pad with tf.pad first.
// - Grouped tf.nn.conv1d/conv2d run on CPU when the filter's in-depth is C/G; grouped conv3d has no CPU kernel,
//   so 3-D groups are convolved one by one and concatenated.
// - tf.nn.depthwise_conv2d silently gives wrong output with strides > 1 and dilations > 1 together; plans never
//   ask for that (they split such convs into a stride-1 conv and a subsample).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "convbridge/emit.hpp"
#include "emit/embedded_python.hpp"
#include "emit/emit_common.hpp"

namespace convbridge {
namespace {

using emit::py_tuple;

std::string full_tuple(const std::vector<int64_t>& spatial) {
  std::vector<int64_t> values{1};
  values.insert(values.end(), spatial.begin(), spatial.end());
  values.push_back(1);
  return py_tuple(values);
}

std::string padding_argument(const ConvStep& conv, bool explicit_allowed) {
  if (conv.padding == TfPadding::same) return "\"SAME\"";
  if (conv.padding == TfPadding::explicit_pads && explicit_allowed) return emit::tf_paddings_list(conv.explicit_pads);
  return "\"VALID\"";
}

// Lines computing `y` from `x` and `kernel` for the conv step.
std::string conv_lines(const Plan& plan, const ConvStep& conv) {
  std::string out;
  const bool native_explicit = conv.rank == 2;
  if (conv.padding == TfPadding::explicit_pads && !native_explicit) {
    out += fmt::format("    x = tf.pad(x, {})  # zero padding; tf.nn.conv{}d has no explicit padding\n",
                       emit::tf_paddings_list(conv.explicit_pads), conv.rank);
  }
  const std::string padding = padding_argument(conv, native_explicit);
  if (conv.kind == TfConvKind::depthwise && conv.rank == 2) {
    out += fmt::format("    y = tf.nn.depthwise_conv2d(x, kernel, strides={}, padding={}, dilations={})\n",
                       full_tuple(conv.strides), padding, py_tuple(conv.dilation));
  } else if (conv.rank == 1) {
    out += fmt::format("    y = tf.nn.conv1d(x, kernel, stride={}, padding={}, dilations={})\n", conv.strides[0],
                       padding, conv.dilation[0]);
  } else if (conv.rank == 2) {
    out += fmt::format("    y = tf.nn.conv2d(x, kernel, strides={}, padding={}, dilations={})\n",
                       full_tuple(conv.strides), padding, full_tuple(conv.dilation));
  } else if (plan.source.groups == 1) {
    out += fmt::format("    y = tf.nn.conv3d(x, kernel, strides={}, padding={}, dilations={})\n",
                       full_tuple(conv.strides), padding, full_tuple(conv.dilation));
  } else {
    out += fmt::format(
        "    # TF has no grouped Conv3D kernel on CPU: convolve each of the {} groups and concatenate.\n"
        "    y = tf.concat([\n"
        "        tf.nn.conv3d(xg, kg, strides={}, padding={}, dilations={})\n"
        "        for xg, kg in zip(tf.split(x, {}, axis=-1), tf.split(kernel, {}, axis=-1))\n"
        "    ], axis=-1)\n",
        plan.source.groups, full_tuple(conv.strides), padding, full_tuple(conv.dilation), plan.source.groups,
        plan.source.groups);
  }
  return out;
}

// Lines computing `y` from `x` and `kernel` for a transposed step. The output size is computed from x's dynamic
// shape, so the code is exact for every input size.
std::string transposed_lines(const TransposedConvStep& conv) {
  const bool same = conv.padding == TfPadding::same;
  const bool native_explicit = conv.rank == 2;  // conv1d/3d_transpose take only 'SAME' / 'VALID'
  std::string out = "    shape = tf.shape(x)\n";
  std::vector<std::string> sizes{"shape[0]"};
  for (size_t i = 0; i < conv.kernel.size(); ++i) {
    const std::string in = fmt::format("shape[{}]", i + 1);
    if (same) {
      sizes.push_back(fmt::format("{} * {}", in, conv.strides[i]));
    } else {
      const int64_t cropped = native_explicit ? conv.pads[i].before + conv.pads[i].after : 0;
      sizes.push_back(fmt::format("({} - 1) * {} + {}", in, conv.strides[i], conv.kernel[i] - cropped + conv.extra[i]));
    }
  }
  sizes.push_back(std::to_string(conv.out_channels / conv.groups));
  const std::string padding = same ? "\"SAME\""
                              : native_explicit ? emit::tf_paddings_list(conv.pads)
                                                : std::string("\"VALID\"");
  std::string strides = py_tuple(conv.strides);
  const std::string call = fmt::format("tf.nn.conv{}d_transpose({{}}, {{}}, output_shape=tf.stack([{}]), strides={}, "
                                       "padding={})",
                                       conv.rank, fmt::join(sizes, ", "), conv.rank == 1 ? std::to_string(conv.strides[0]) : strides,
                                       padding);
  if (conv.groups == 1) {
    out += "    y = " + fmt::format(fmt::runtime(call), "x", "kernel") + "\n";
  } else {
    out += fmt::format("    # TF has no grouped transposed conv on CPU: each of the {} groups on its own, concatenated.\n"
                       "    y = tf.concat([\n"
                       "        {}\n"
                       "        for xg, kg in zip(tf.split(x, {}, axis=-1), tf.split(kernel, {}, axis=-1))\n"
                       "    ], axis=-1)\n",
                       conv.groups, fmt::format(fmt::runtime(call), "xg", "kg"), conv.groups, conv.groups);
  }
  if (!same && !native_explicit) {
    std::string index = ":";
    bool any_crop = false;
    for (const PadPair& p : conv.pads) {
      index += p.after > 0 ? fmt::format(", {}:-{}", p.before, p.after) : fmt::format(", {}:", p.before);
      any_crop = any_crop || p.before > 0 || p.after > 0;
    }
    if (any_crop) out += fmt::format("    y = y[{}, :]  # PyTorch's y[x] = z[x + padding]\n", index);
  }
  return out;
}

}  // namespace

std::string emit_tf_nn(const Plan& plan) {
  const ConvSpec& spec = plan.source;
  const TransposedConvStep* transposed = emit::transposed_step(plan);
  // Depthwise in 1-D runs as a grouped conv1d (groups == C): its kernel is the ordinary (k, 1, C*M) layout.
  const bool depthwise_1d = transposed == nullptr && emit::conv_step(plan).kind == TfConvKind::depthwise &&
                            spec.rank != 2;
  const WeightLayoutChange layout = depthwise_1d ? torch_conv_weight_to_tf_conv(spec) : plan.kernel_layout;
  bool needs_edge = false;
  for (const PlanStep& step : plan.steps) {
    if (const auto* pad = std::get_if<PadStep>(&step.op)) {
      needs_edge = needs_edge || pad->fill == PaddingFill::replicate || pad->fill == PaddingFill::circular;
    }
  }

  std::string out = emit::python_header(plan, "tf.nn");
  out += "import numpy as np\nimport tensorflow as tf\n";
  if (needs_edge) {
    // replicate/circular: python/convbridge/torch_padding.py, embedded verbatim, on TF's numpy-like ops.
    out += "import tensorflow.experimental.numpy as tnp\n";
    out += emit::kTorchPaddingPython;
  }
  out += fmt::format(R"PY(

def conv(x, weight, bias=None):
    """Computes the PyTorch layer above with tf.nn operations.

    x: channels_last input {in_desc}.
    weight: the PyTorch weight, layout {from_layout}, shape {weight_shape}.
    bias: {bias_doc}
    Returns the channels_last output {out_desc}.
    """
    x = tf.convert_to_tensor(x)
)PY",
                     fmt::arg("in_desc", emit::channels_last_description(spec.rank, spec.in_channels, false)),
                     fmt::arg("from_layout", layout.from_layout),
                     fmt::arg("weight_shape", py_tuple(torch_weight_shape(spec))),
                     fmt::arg("bias_doc", spec.bias ? fmt::format("the PyTorch bias, shape ({},).", spec.out_channels)
                                                    : std::string("None (the PyTorch layer has bias=False).")),
                     fmt::arg("out_desc", emit::channels_last_description(spec.rank, spec.out_channels, true)));
  out += emit::python_weight_checks(plan, "    ");
  out += emit::python_kernel_lines(layout, "    ");
  out += "    kernel = tf.constant(kernel, dtype=x.dtype)\n";
  for (const PlanStep& step : plan.steps) {
    if (const auto* pad = std::get_if<PadStep>(&step.op)) {
      if (pad->fill == PaddingFill::zeros || pad->fill == PaddingFill::reflect) {
        out += fmt::format("    x = tf.pad(x, {}, mode=\"{}\")\n", emit::tf_paddings_list(pad->pads),
                           pad->fill == PaddingFill::zeros ? "CONSTANT" : "REFLECT");
      } else {
        std::vector<std::string> pairs;
        for (const PadPair& p : pad->pads) pairs.push_back(fmt::format("({}, {})", p.before, p.after));
        out += fmt::format("    x = torch_edge_pad(x, ({}{}), \"{}\", tnp)\n", fmt::join(pairs, ", "),
                           pairs.size() == 1 ? "," : "", padding_fill_name(pad->fill));
      }
    } else if (const auto* c = std::get_if<ConvStep>(&step.op)) {
      out += conv_lines(plan, *c);
    } else if (const auto* t = std::get_if<TransposedConvStep>(&step.op)) {
      out += transposed_lines(*t);
    } else if (const auto* sub = std::get_if<SubsampleStep>(&step.op)) {
      std::string index = ":";
      for (int64_t s : sub->strides) index += fmt::format(", ::{}", s);
      out += fmt::format("    y = y[{}, :]  # keep every s-th output: a stride-1 dilated conv, strided\n", index);
    }
  }
  if (spec.bias) out += "    y = tf.nn.bias_add(y, tf.constant(bias, dtype=y.dtype))\n";
  out += "    return y\n";
  return out;
}

}  // namespace convbridge
