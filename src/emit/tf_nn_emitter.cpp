// tf.nn emitter. Facts it relies on (checked by tests/python against TensorFlow 2.21 on CPU):
// - tf.nn.conv2d and tf.nn.depthwise_conv2d take explicit [[0,0],[t,b],[l,r],[0,0]] padding; conv1d/conv3d do not,
//   so rank 1 and 3 pad with tf.pad first.
// - Grouped tf.nn.conv1d/conv2d run on CPU when the filter's in-depth is C/G, but have no gradient there ("Gradients
//   for grouped convolutions are not supported on CPU"; oneDNN has one in float32 only), and grouped conv3d has no
//   CPU kernel, so groups are convolved one by one and concatenated. A 1-D depthwise conv is a depthwise_conv2d
//   over a height-1 image instead (one op for any number of channels, gradients included).
// - tf.nn.depthwise_conv2d silently gives wrong output with strides > 1 and dilations > 1 together; plans never
//   ask for that (they split such convs into a stride-1 conv and a subsample).
// - TF's CPU kernels for dilated conv1d/2d/3d raise "Current CPU implementations do not yet support dilation
//   rates larger than 1" in the gradient (Conv2DBackpropInput/Filter) in float64 or with explicit padding (oneDNN
//   covers only float32 'VALID'/'SAME'), and in the forward Conv3D in float64; so dilated convs use
//   tf.nn.convolution (space_to_batch around an undilated conv, as Keras' Conv layers do). depthwise_conv2d does
//   the same by itself.
// - Grouped and dilated convs (and strided dilated ones, where one op is right for them) are tf_conv steps: one raw
//   op forward, gradient from the portable form below (keras_layers.py, tf_conv); the rules are the planner's.
// - The code is meant to be kept in a model that trains: weight and bias may be numpy arrays, tensors or
//   tf.Variables, and every step from them to the output is a TF op (no numpy, no tf.constant), so it runs inside
//   tf.function, also traced with unknown batch and spatial sizes, and tf.GradientTape reaches the variables
//   (tests/python/test_tf_code_training.py).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

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

// Lines computing `y` from `x` and `kernel` for a tf_conv step (keras_layers.py's tf_conv, embedded).
std::string tf_conv_lines(const ConvStep& conv) {
  std::string padding = conv.padding == TfPadding::same ? "\"SAME\"" : "\"VALID\"";
  if (conv.padding == TfPadding::explicit_pads) {
    std::vector<std::string> pairs;
    for (const PadPair& p : conv.explicit_pads) pairs.push_back(fmt::format("({}, {})", p.before, p.after));
    padding = fmt::format("[{}]", fmt::join(pairs, ", "));
  }
  return fmt::format("    # tf_conv: one tf.nn op forward (the plan's why says which), the gradient of the per-group /\n"
                     "    # space-to-batch form, which TF's CPU kernels differentiate in every dtype.\n"
                     "    y = tf_conv(x, kernel, strides={}, dilations={}, padding={}, groups={})\n",
                     py_tuple(conv.strides), py_tuple(conv.dilation), padding, conv.groups);
}

// Lines computing `y` from `x` and `kernel` for the conv step.
std::string conv_lines(const ConvStep& conv) {
  // A depthwise tf_conv step is the depthwise_conv2d below already (its pads folded in too).
  if (conv.implementation == ConvImplementation::tf_conv && conv.kind == TfConvKind::conv) return tf_conv_lines(conv);
  std::string out;
  const bool dilated = std::any_of(conv.dilation.begin(), conv.dilation.end(), [](int64_t d) { return d > 1; });
  const bool depthwise = conv.kind == TfConvKind::depthwise;
  // Dilated convs other than depthwise go through tf.nn.convolution (see the top of the file), which takes only
  // 'SAME' / 'VALID'.
  const bool via_convolution = dilated && !depthwise;
  // conv2d and depthwise_conv2d (also the 1-D depthwise, as a height-1 2-D one) take explicit padding.
  const bool native_explicit = (conv.rank == 2 || depthwise) && !via_convolution;
  if (conv.padding == TfPadding::explicit_pads && !native_explicit) {
    out += fmt::format("    x = tf.pad(x, {})  # zero padding; {} has no explicit padding\n",
                       emit::tf_paddings_list(conv.explicit_pads),
                       via_convolution ? std::string("tf.nn.convolution")
                                       : fmt::format("tf.nn.conv{}d", conv.rank));
  }
  std::string padding = padding_argument(conv, native_explicit);
  if (depthwise && conv.rank == 1 && conv.padding == TfPadding::explicit_pads) {
    padding = emit::tf_paddings_list({PadPair{0, 0}, conv.explicit_pads[0]});  // the height-1 axis is not padded
  }
  if (via_convolution) {
    out += "    # tf.nn.convolution, not tf.nn.conv{1,2,3}d: TF's CPU kernels for a dilated conv have no gradient in\n"
           "    # float64 or with explicit padding (and no float64 Conv3D); tf.nn.convolution runs it as\n"
           "    # space_to_batch + an undilated conv, which has both.\n";
  }
  const std::string call =
      via_convolution
          ? fmt::format("tf.nn.convolution({{}}, {{}}, strides={}, padding={}, dilations={})", py_tuple(conv.strides),
                        padding, py_tuple(conv.dilation))
      : conv.rank == 1 ? fmt::format("tf.nn.conv1d({{}}, {{}}, stride={}, padding={}, dilations={})", conv.strides[0],
                                     padding, conv.dilation[0])
                       : fmt::format("tf.nn.conv{}d({{}}, {{}}, strides={}, padding={}, dilations={})", conv.rank,
                                     full_tuple(conv.strides), padding, full_tuple(conv.dilation));
  if (depthwise && conv.rank == 2) {
    out += fmt::format("    y = tf.nn.depthwise_conv2d(x, kernel, strides={}, padding={}, dilations={})\n",
                       full_tuple(conv.strides), padding, py_tuple(conv.dilation));
  } else if (depthwise) {
    out += fmt::format("    # tf.nn has no depthwise conv1d: a depthwise_conv2d over a height-1 image, as Keras'\n"
                       "    # DepthwiseConv1D does (a conv1d with groups would have no gradient on CPU).\n"
                       "    y = tf.nn.depthwise_conv2d(tf.expand_dims(x, 1), tf.expand_dims(kernel, 0), strides=(1, 1, {}, 1), "
                       "padding={}, dilations=(1, {}))\n"
                       "    y = tf.squeeze(y, axis=1)\n",
                       conv.strides[0], padding, conv.dilation[0]);
  } else if (conv.groups == 1) {
    out += "    y = " + fmt::format(fmt::runtime(call), "x", "kernel") + "\n";
  } else {
    // tf.nn.conv1d/2d run a grouped conv on CPU (filter in-depth C/G) but TF's own CPU kernels have no gradient for
    // it ("Gradients for grouped convolutions are not supported on CPU"; oneDNN has one in float32 only) and
    // conv3d has no grouped CPU kernel at all, so every rank convolves group by group.
    out += fmt::format(
        "    # TF on CPU has no gradient for a grouped conv{}d{}: convolve each of the {} groups on its own\n"
        "    # and concatenate.\n"
        "    y = tf.concat([\n"
        "        {}\n"
        "        for xg, kg in zip(tf.split(x, {}, axis=-1), tf.split(kernel, {}, axis=-1))\n"
        "    ], axis=-1)\n",
        conv.rank, conv.rank == 3 ? " (nor a grouped Conv3D at all)" : "", conv.groups,
        fmt::format(fmt::runtime(call), "xg", "kg"), conv.groups, conv.groups);
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
  const WeightLayoutChange& layout = plan.kernel_layout;
  const bool spreads_taps = !layout.dilate.empty();
  bool needs_edge = false;
  for (const PlanStep& step : plan.steps) {
    if (const auto* pad = std::get_if<PadStep>(&step.op)) {
      needs_edge = needs_edge || pad->fill == PaddingFill::replicate || pad->fill == PaddingFill::circular;
    }
  }

  std::string out = emit::python_header(plan, "tf.nn");
  out += "import tensorflow as tf\n";
  if (needs_edge) {
    // replicate/circular: python/convbridge/torch_padding.py, embedded verbatim, on TF's numpy-like ops.
    out += "import tensorflow.experimental.numpy as tnp\n";
    out += emit::kTorchPaddingPython;
  }
  if (spreads_taps) out += emit::python_spread_taps_tf();
  const bool uses_tf_conv = std::any_of(plan.steps.begin(), plan.steps.end(), [](const PlanStep& step) {
    const auto* conv = std::get_if<ConvStep>(&step.op);
    return conv != nullptr && conv->implementation == ConvImplementation::tf_conv && conv->kind == TfConvKind::conv;
  });
  if (uses_tf_conv) out += emit::python_sections(emit::kKerasLayersPython, {"tf_conv"});
  out += fmt::format(R"PY(

def conv(x, weight, bias=None):
    """Computes the PyTorch layer above with tf.nn operations.

    x: channels_last input {in_desc}.
    weight: the PyTorch weight, layout {from_layout}, shape {weight_shape}.
    bias: {bias_doc}
    weight and bias may be numpy arrays, tensors or tf.Variables: with variables, conv can be trained
    (inside tf.function too), gradients reach them through the ops below.
    Returns the channels_last output {out_desc}, in x's dtype.
    """
    x = tf.convert_to_tensor(x)
)PY",
                     fmt::arg("in_desc", emit::channels_last_description(spec.rank, spec.in_channels, false)),
                     fmt::arg("from_layout", layout.from_layout),
                     fmt::arg("weight_shape", py_tuple(torch_weight_shape(spec))),
                     fmt::arg("bias_doc", spec.bias ? fmt::format("the PyTorch bias, shape ({},).", spec.out_channels)
                                                    : std::string("None (the PyTorch layer has bias=False).")),
                     fmt::arg("out_desc", emit::channels_last_description(spec.rank, spec.out_channels, true)));
  out += emit::python_weight_checks_tf(plan, "    ");
  out += emit::python_kernel_lines_tf(layout, "    ");
  out += "    kernel = tf.cast(kernel, x.dtype)  # computed in x's dtype, e.g. float32 weights with a float64 x\n";
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
      out += conv_lines(*c);
    } else if (const auto* t = std::get_if<TransposedConvStep>(&step.op)) {
      out += transposed_lines(*t);
    } else if (const auto* sub = std::get_if<SubsampleStep>(&step.op)) {
      std::string index = ":";
      for (int64_t s : sub->strides) index += fmt::format(", ::{}", s);
      out += fmt::format("    y = y[{}, :]  # keep every s-th output: a stride-1 dilated conv, strided\n", index);
    }
  }
  if (spec.bias) out += "    y = tf.nn.bias_add(y, tf.cast(bias, y.dtype))\n";
  out += "    return y\n";
  return out;
}

}  // namespace convbridge
