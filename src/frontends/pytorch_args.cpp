// PyTorch front-end: torch.nn.Conv1d/2d/3d and ConvTranspose1d/2d/3d constructor text -> ConvSpec.
// Mirrors torch/nn/modules/conv.py (_ConvNd.__init__, ConvNd.__init__, _ConvTransposeNd.__init__,
// _ConvNd._conv_forward) and the forward checks in aten/src/ATen/native/Convolution.cpp, so that what PyTorch
// rejects is rejected here with the argument named. PyTorch signatures (2.x), every parameter may be positional:
//   ConvNd(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
//          padding_mode='zeros', device=None, dtype=None)
//   ConvTransposeNd(in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
//                   bias=True, dilation=1, padding_mode='zeros', device=None, dtype=None)
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <span>
#include <optional>
#include <string_view>

#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/shape_math.hpp"
#include "frontends/arguments.hpp"
#include "frontends/python_call.hpp"

namespace convbridge {
namespace {

using frontends::PyArgument;
using frontends::PyCall;
using frontends::PyValue;

constexpr std::array<std::string_view, 11> kConvParameters = {
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
    "groups",      "bias",         "padding_mode", "device", "dtype"};
constexpr std::array<std::string_view, 12> kConvTransposeParameters = {
    "in_channels", "out_channels", "kernel_size", "stride",       "padding", "output_padding",
    "groups",      "bias",         "dilation",    "padding_mode", "device",  "dtype"};

using frontends::int_or_tuple;

// Parameter names of the layer a callee names, for syntax errors inside positional arguments.
std::span<const std::string_view> parameter_names(std::string_view callee) {
  const std::string_view name = callee.substr(callee.rfind('.') == std::string_view::npos ? 0 : callee.rfind('.') + 1);
  if (name.rfind("ConvTranspose", 0) == 0) return kConvTransposeParameters;
  if (name.rfind("Conv", 0) == 0) return kConvParameters;
  return {};
}

Error invalid(std::string message) { return frontends::invalid_argument(std::move(message)); }

std::string keyword_hint(std::string_view keyword) {
  // Keras spellings users carry over, then near-misses.
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kKerasSpellings = {{
      {"strides", "stride"}, {"dilation_rate", "dilation"}, {"filters", "out_channels"},
      {"use_bias", "bias"},  {"kernel", "kernel_size"},     {"pad", "padding"},
  }};
  for (auto [keras, torch] : kKerasSpellings) {
    if (keyword == keras) return fmt::format(" (did you mean '{}'? '{}' is the Keras name)", torch, keras);
  }
  return frontends::closest_name_hint(keyword, kConvTransposeParameters);
}

Status require_positive(const std::vector<int64_t>& values, std::string_view name, const PyValue& written,
                        std::string_view torch_message) {
  for (int64_t v : values) {
    if (v <= 0) {
      return invalid(fmt::format("{}={} must be positive (PyTorch fails at the first forward: \"{}\")", name,
                                 written.source, torch_message));
    }
  }
  return Ok{};
}

Result<int64_t> channel_count(const PyValue& value, std::string_view name) {
  if (value.kind != PyValue::Kind::integer) {
    return invalid(fmt::format("{}={} must be an int, not {}", name, value.source, frontends::kind_name(value.kind)));
  }
  if (value.integer <= 0) return invalid(fmt::format("{}={} must be a positive int", name, value.source));
  if (value.integer > kMaxSizeArgument) {
    return invalid(fmt::format("{}={} is too large (the limit is {})", name, value.source, kMaxSizeArgument));
  }
  return value.integer;
}

struct LayerKind {
  int rank = 2;
  bool transposed = false;
};

Result<LayerKind> kind_of_layer(const std::string& callee, std::string* class_name) {
  std::string_view name = callee;
  std::string_view prefix;
  if (auto dot = name.rfind('.'); dot != std::string_view::npos) {
    prefix = name.substr(0, dot);
    name = name.substr(dot + 1);
  }
  const bool known_prefix = prefix.empty() || prefix == "nn" || prefix == "torch.nn" || prefix == "torch.nn.modules.conv";
  for (int rank = 1; rank <= kMaxSpatialRank; ++rank) {
    for (bool transposed : {false, true}) {
      if (name == fmt::format("Conv{}{}d", transposed ? "Transpose" : "", rank) && known_prefix) {
        *class_name = std::string(name);
        return LayerKind{rank, transposed};
      }
    }
    if (name == fmt::format("Conv{}D", rank) || name == fmt::format("Conv{}DTranspose", rank) ||
        name == "DepthwiseConv2D" || name == "SeparableConv2D") {
      return make_error(ErrorCode::unsupported,
                        fmt::format("{} looks like a Keras layer but is not written as one: write "
                                    "keras.layers.Conv{}D, layers.Conv{}D, tf.keras.layers.Conv{}D or Conv{}D",
                                    frontends::printable_excerpt(callee), rank, rank, rank, rank));
    }
  }
  return make_error(ErrorCode::unknown_argument,
                    fmt::format("unknown layer '{}': expected nn.Conv1d/2d/3d or nn.ConvTranspose1d/2d/3d (also "
                                "written torch.nn.Conv2d or Conv2d), or a pooling, normalization, resizing, padding, "
                                "pixel shuffle or activation layer{}",
                                frontends::printable_excerpt(callee), op_layer_name_hint(callee)));
}

}  // namespace

Result<TorchConvLayer> parse_pytorch_layer(std::string_view text) {
  CONVBRIDGE_TRY(PyCall call, frontends::parse_python_call(text, parameter_names));
  TorchConvLayer layer;
  layer.text = std::string(text);
  CONVBRIDGE_TRY(const LayerKind kind, kind_of_layer(call.callee, &layer.class_name));
  const int rank = kind.rank;
  const std::span<const std::string_view> kParameterNames =
      kind.transposed ? std::span<const std::string_view>(kConvTransposeParameters)
                      : std::span<const std::string_view>(kConvParameters);

  CONVBRIDGE_TRY(const frontends::BoundArguments bound,
                 frontends::BoundArguments::bind(
                     call, layer.class_name, kParameterNames, 3,
                     kind.transposed ? "in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, "
                                       "groups=1, bias=True, dilation=1, padding_mode='zeros'"
                                     : "in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, "
                                       "groups=1, bias=True, padding_mode='zeros'",
                     keyword_hint));
  auto argument = [&](std::string_view name, std::string_view default_source) {
    return bound.get(name, default_source);
  };

  ConvSpec& spec = layer.spec;
  spec.rank = rank;
  spec.transposed = kind.transposed;
  CONVBRIDGE_TRY(spec.in_channels, channel_count(argument("in_channels", ""), "in_channels"));
  CONVBRIDGE_TRY(spec.out_channels, channel_count(argument("out_channels", ""), "out_channels"));

  const PyValue groups = argument("groups", "1");
  if (groups.kind != PyValue::Kind::integer) {
    return invalid(fmt::format("groups={} must be an int, not {}", groups.source, frontends::kind_name(groups.kind)));
  }
  if (groups.integer <= 0) {
    return invalid(fmt::format("groups={} must be a positive integer (PyTorch: \"groups must be a positive "
                               "integer\")",
                               groups.source));
  }
  spec.groups = groups.integer;
  if (spec.in_channels % spec.groups != 0) {
    return invalid(fmt::format("in_channels={} must be divisible by groups={} (PyTorch: \"in_channels must be "
                               "divisible by groups\")",
                               spec.in_channels, spec.groups));
  }
  if (spec.out_channels % spec.groups != 0) {
    return invalid(fmt::format("out_channels={} must be divisible by groups={} (PyTorch: \"out_channels must be "
                               "divisible by groups\")",
                               spec.out_channels, spec.groups));
  }

  const PyValue kernel = argument("kernel_size", "");
  const PyValue stride = argument("stride", "1");
  const PyValue dilation = argument("dilation", "1");
  CONVBRIDGE_TRY(spec.kernel, int_or_tuple(kernel, "kernel_size", rank));
  CONVBRIDGE_TRY(spec.stride, int_or_tuple(stride, "stride", rank));
  CONVBRIDGE_TRY(spec.dilation, int_or_tuple(dilation, "dilation", rank));

  // padding_mode (checked at construction in PyTorch, before the padding string).
  const PyValue mode = argument("padding_mode", "'zeros'");
  if (mode.kind != PyValue::Kind::string) {
    return invalid(fmt::format("padding_mode={} must be a string: 'zeros', 'reflect', 'replicate' or 'circular'",
                               mode.source));
  }
  static constexpr std::array<PaddingFill, 4> kFills = {PaddingFill::zeros, PaddingFill::reflect,
                                                        PaddingFill::replicate, PaddingFill::circular};
  const auto fill = std::find_if(kFills.begin(), kFills.end(),
                                 [&](PaddingFill f) { return padding_fill_name(f) == mode.text; });
  if (fill == kFills.end()) {
    return invalid(fmt::format("padding_mode={} is not one of 'zeros', 'reflect', 'replicate', 'circular'",
                               mode.source));
  }
  spec.fill = *fill;
  if (kind.transposed && spec.fill != PaddingFill::zeros) {
    return invalid(fmt::format("padding_mode={}: only 'zeros' padding mode is supported for {} (PyTorch: \"Only "
                               "\"zeros\" padding mode is supported for {}\")",
                               mode.source, layer.class_name, layer.class_name));
  }

  const PyValue padding = argument("padding", "0");
  layer.padding_as_written = padding.source;
  if (padding.kind == PyValue::Kind::string && kind.transposed) {
    return invalid(fmt::format("padding={} is not accepted by {}: use an int or a tuple of {} ints (PyTorch fails at "
                               "the first forward: \"argument 'padding' must be tuple of ints\")",
                               padding.source, layer.class_name, rank));
  }
  if (padding.kind == PyValue::Kind::string) {
    if (padding.text == "valid") {
      spec.padding.assign(static_cast<size_t>(rank), PadPair{});
    } else if (padding.text == "same") {
      for (int i = 0; i < rank; ++i) {
        if (spec.stride[static_cast<size_t>(i)] != 1) {
          return invalid(fmt::format("padding='same' needs stride=1 but stride={} (PyTorch: \"padding='same' is "
                                     "not supported for strided convolutions\"); use an explicit padding",
                                     stride.source));
        }
      }
    } else {
      return invalid(fmt::format("padding={} is not a padding PyTorch knows: use 'valid', 'same', an int or a "
                                 "tuple of {} ints (PyTorch has no 'full' padding)",
                                 padding.source, rank));
    }
  } else {
    CONVBRIDGE_TRY(std::vector<int64_t> symmetric, int_or_tuple(padding, "padding", rank));
    for (int64_t p : symmetric) {
      if (p < 0) {
        return invalid(fmt::format("padding={} must not be negative (PyTorch: \"negative padding is not "
                                   "supported\"{})",
                                   padding.source,
                                   kind.transposed ? ""
                                                   : "; with a non-zeros padding_mode it crops, which convbridge "
                                                     "does not translate"));
      }
      spec.padding.push_back(PadPair{p, p});
    }
  }

  CONVBRIDGE_CHECK(require_positive(spec.kernel, "kernel_size", kernel, "kernel size should be greater than zero"));
  CONVBRIDGE_CHECK(require_positive(spec.stride, "stride", stride, "non-positive stride is not supported"));
  CONVBRIDGE_CHECK(require_positive(spec.dilation, "dilation", dilation, "dilation should be greater than zero"));

  if (kind.transposed) {
    const PyValue output_padding = argument("output_padding", "0");
    CONVBRIDGE_TRY(spec.output_padding, int_or_tuple(output_padding, "output_padding", rank));
    for (size_t i = 0; i < static_cast<size_t>(rank); ++i) {
      if (spec.output_padding[i] < 0) {
        return invalid(fmt::format("output_padding={} must not be negative (PyTorch: \"negative output_padding is "
                                   "not supported\")",
                                   output_padding.source));
      }
      if (spec.output_padding[i] >= std::max(spec.stride[i], spec.dilation[i])) {
        return invalid(fmt::format("output_padding={} must be smaller than either stride={} or dilation={} "
                                   "(PyTorch fails at the first forward: \"output padding must be smaller than "
                                   "either stride or dilation\")",
                                   output_padding.source, stride.source, dilation.source));
      }
    }
  }

  if (padding.kind == PyValue::Kind::string && padding.text == "same") {
    for (size_t i = 0; i < static_cast<size_t>(rank); ++i) {
      CONVBRIDGE_TRY(PadPair pad, torch_same_padding(spec.kernel[i], spec.dilation[i]));
      spec.padding.push_back(pad);
    }
  }

  // bias: PyTorch tests only truthiness (bias=1 adds a bias, bias=0 or None does not).
  const PyValue bias = argument("bias", "True");
  switch (bias.kind) {
    case PyValue::Kind::boolean: spec.bias = bias.boolean; break;
    case PyValue::Kind::integer: spec.bias = bias.integer != 0; break;
    case PyValue::Kind::none: spec.bias = false; break;
    default: return invalid(fmt::format("bias={} must be True or False", bias.source));
  }

  const PyValue device = argument("device", "None");
  if (device.kind != PyValue::Kind::none && device.kind != PyValue::Kind::string && device.kind != PyValue::Kind::name &&
      device.kind != PyValue::Kind::call) {  // torch.device('cpu') is fine: the device does not change the numbers
    return invalid(fmt::format("device={} must be None or a device string such as 'cpu'", device.source));
  }
  const PyValue dtype = argument("dtype", "None");
  if (dtype.kind != PyValue::Kind::none && dtype.text != "torch.float32" && dtype.text != "torch.float") {
    return make_error(ErrorCode::unsupported,
                      fmt::format("dtype={} is not supported yet: convbridge plans float32 layers (dtype=None or "
                                  "torch.float32)",
                                  dtype.source));
  }

  CONVBRIDGE_CHECK(validate(spec));
  return layer;
}

}  // namespace convbridge
