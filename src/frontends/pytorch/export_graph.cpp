// PyTorch model front-end: the graph python/convbridge/_capture.py records from torch.export -> ModelGraph.
// Each ATen call maps onto the op set. Convs and op-set layers are rewritten as the nn constructor they
// correspond to and parsed by the layer front-ends, so a model's layer gets exactly the checks and the plan the
// same layer gets alone. ATen schemas relied on (torch 2.13, aten/src/ATen/native/native_functions.yaml):
//   conv2d(input, weight, bias, stride, padding, dilation, groups); conv2d.padding takes padding as a string;
//   conv_transpose2d.input(input, weight, bias, stride, padding, output_padding, groups, dilation);
//   batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled);
//   max_pool2d(self, kernel_size, stride=[], padding, dilation, ceil_mode): an empty stride means the kernel;
//   avg_pool2d(self, kernel_size, stride=[], padding, ceil_mode, count_include_pad, divisor_override);
//   upsample_bilinear2d.vec(input, output_size, align_corners, scale_factors); add.Tensor(self, other, alpha).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "convbridge/checked_math.hpp"
#include "convbridge/model/graph.hpp"
#include "frontends/json_nesting.hpp"

namespace convbridge::model {
namespace {

using nlohmann::json;

Error unsupported(std::string message) { return make_error(ErrorCode::unsupported, std::move(message)); }
Error invalid(std::string message) { return make_error(ErrorCode::invalid_argument, std::move(message)); }

constexpr int64_t kMaxElements = int64_t{1} << 40;  // far beyond any model; keeps every product in 64 bits
// How deep values may nest (the outputs' tuples/lists/dicts, argument lists): json::dump() and the model emitter
// recurse per level, so a deeper document would overflow the stack; captured models nest a few levels.
constexpr int kMaxNesting = 64;

// A value quoted in a message: JSON, cut short (the message is one line).
std::string quoted(const json& value) {
  std::string text = value.dump();
  if (text.size() > 120) text = text.substr(0, 117) + "...";
  return text;
}

// A shape of ints, and strings for sizes that vary with the input size (kUnknownSize, the string in symbols).
Result<std::vector<int64_t>> shape_of(const json& value, std::string_view what,
                                      std::vector<std::string>* symbols = nullptr) {
  if (!value.is_array() || value.size() > 8) return invalid(fmt::format("{}: a shape must be a list of at most 8 sizes", what));
  std::vector<int64_t> shape;
  int64_t elements = 1;
  if (symbols) symbols->clear();
  for (const json& size : value) {
    // torch.export writes a varying size as an expression of its symbols (s53, ((s53//2)) + 1); a plain number is
    // not one.
    if (size.is_string() && symbols != nullptr && !size.get<std::string>().empty() &&
        size.get<std::string>().find_first_not_of("0123456789 ") != std::string::npos) {
      shape.push_back(kUnknownSize);
      symbols->push_back(size.get<std::string>());
      continue;
    }
    if (symbols) symbols->emplace_back();
    if (!size.is_number_integer() || size.get<int64_t>() < 0 || size.get<int64_t>() > kMaxSizeArgument) {
      return invalid(fmt::format("{}: size {} is not a size in [0, 2^31]", what, quoted(size)));
    }
    shape.push_back(size.get<int64_t>());
    const auto product = checked_mul(elements, shape.back());
    if (!product || *product > kMaxElements) return make_error(ErrorCode::overflow, fmt::format("{}: too many elements", what));
    elements = *product;
  }
  return shape;
}

std::string tuple_text(const std::vector<int64_t>& values) {
  if (values.size() == 1) return fmt::format("({},)", values[0]);
  return fmt::format("({})", fmt::join(values, ", "));
}

std::string float_text(double value) { return python_literal(CallValue::of(value)); }

// The arguments of one captured call, with typed getters whose errors name the op and the argument.
class Call {
 public:
  Call(const json& node, const GraphNode& origin) : node_(node), origin_(origin) {}

  const json* find(const std::string& name) const {
    const json& args = node_.at("args");
    const auto it = args.find(name);
    return it == args.end() ? nullptr : &*it;
  }
  bool has(const std::string& name) const {
    const json* value = find(name);
    return value != nullptr && !value->is_null();
  }
  Error bad(const std::string& name, std::string_view expected) const {
    const json* value = find(name);
    return invalid(fmt::format("{} argument {} = {} is not {} ({})", origin_.source_op, name,
                               value ? quoted(*value) : "<missing>", expected, describe_node_origin(origin_)));
  }
  Result<std::string> ref(const std::string& name) const {
    const json* value = find(name);
    if (value == nullptr || !value->is_object() || !value->contains("ref") || !value->at("ref").is_string()) {
      return bad(name, "a tensor");
    }
    return value->at("ref").get<std::string>();
  }
  Result<int64_t> integer(const std::string& name) const {
    const json* value = find(name);
    if (value != nullptr && is_size(*value)) return varies(name);
    if (value == nullptr || !value->is_number_integer()) return bad(name, "an int");
    return value->get<int64_t>();
  }
  Result<double> number(const std::string& name) const {
    const json* value = find(name);
    if (value == nullptr || !value->is_number()) return bad(name, "a number");
    return value->get<double>();
  }
  Result<bool> boolean(const std::string& name) const {
    const json* value = find(name);
    if (value == nullptr || !value->is_boolean()) return bad(name, "a bool");
    return value->get<bool>();
  }
  // A size argument computed from the input size (None in input_shape): this op needs it known.
  Error varies(const std::string& name) const {
    return unsupported(fmt::format("{} argument {} depends on the input size ({}): convbridge plans this op for a "
                                   "known size; give that size in input_shape instead of None",
                                   origin_.source_op, name, describe_node_origin(origin_)));
  }
  static bool is_size(const json& v) { return v.is_object() && (v.contains("size") || v.contains("ref")); }
  Result<std::vector<int64_t>> ints(const std::string& name) const {
    const json* value = find(name);
    if (value != nullptr && value->is_number_integer()) return std::vector<int64_t>{value->get<int64_t>()};
    if (value != nullptr && is_size(*value)) return varies(name);
    if (value == nullptr || !value->is_array() || value->size() > 8) return bad(name, "a list of ints");
    std::vector<int64_t> out;
    for (const json& v : *value) {
      if (is_size(v)) return varies(name);
      if (!v.is_number_integer()) return bad(name, "a list of ints");
      out.push_back(v.get<int64_t>());
    }
    return out;
  }
  Result<std::vector<double>> numbers(const std::string& name) const {
    const json* value = find(name);
    if (value == nullptr || !value->is_array() || value->size() > 8) return bad(name, "a list of numbers");
    std::vector<double> out;
    for (const json& v : *value) {
      if (!v.is_number()) return bad(name, "a list of numbers");
      out.push_back(v.get<double>());
    }
    return out;
  }

 private:
  const json& node_;
  const GraphNode& origin_;
};

struct Context {
  std::map<std::string, std::vector<int64_t>> tensor_shapes;     // every tensor so far
  std::map<std::string, std::vector<int64_t>> parameter_shapes;  // every parameter
  // Outputs convbridge does not convert (pooling indices, batch statistics): an error only if something reads them.
  std::map<std::string, std::string> unconvertible;
  std::set<std::string> sizes;  // nodes computing sizes (not tensors)
};

// The error for reading a tensor that is not there (or not convertible).
Error missing_tensor(const Context& context, const std::string& tensor, const GraphNode& node) {
  if (const auto it = context.unconvertible.find(tensor); it != context.unconvertible.end()) {
    return unsupported(fmt::format("{} reads {}", node.name, it->second));
  }
  if (context.parameter_shapes.count(tensor)) {
    return unsupported(fmt::format("{} on a parameter ({}) is not supported: convbridge converts ops on "
                                   "activations", node.source_op, describe_node_origin(node)));
  }
  return invalid(fmt::format("{} reads {}, which no earlier node produced", node.name, tensor));
}

Result<int> normalized_dim(int64_t dim, size_t rank, const GraphNode& node) {
  const auto r = static_cast<int64_t>(rank);
  if (dim < -r || dim >= r) {  // a rank-0 tensor has no dim to name
    return invalid(fmt::format("{}: dim {} is out of range for a rank-{} tensor ({})", node.source_op, dim, rank,
                               describe_node_origin(node)));
  }
  return static_cast<int>(dim < 0 ? dim + r : dim);
}

// A tensor input (first) of the call, recorded on the node.
Result<std::vector<int64_t>> add_tensor_input(const Call& call, const std::string& name, GraphNode& node,
                                              const Context& context) {
  CONVBRIDGE_TRY(std::string tensor, call.ref(name));
  const auto it = context.tensor_shapes.find(tensor);
  if (it == context.tensor_shapes.end()) return missing_tensor(context, tensor, node);
  node.inputs.push_back(Operand{Operand::Kind::tensor, tensor, 0.0});
  return it->second;
}

// A parameter the op reads by role; absent (None) is fine when optional.
Result<bool> add_parameter(const Call& call, const std::string& name, const std::string& role, GraphNode& node,
                           const Context& context) {
  if (!call.has(name)) return false;
  CONVBRIDGE_TRY(std::string parameter, call.ref(name));
  if (!context.parameter_shapes.count(parameter)) {
    return unsupported(fmt::format("{}'s {} is computed by the model, not a parameter ({}); convbridge converts "
                                   "weights that are parameters or buffers", node.source_op, name,
                                   describe_node_origin(node)));
  }
  node.parameters.emplace_back(role, parameter);
  return true;
}

Result<LayerNode> layer_from_text(const std::string& text, const GraphNode& node) {
  auto layer = parse_op_layer(text);
  if (!layer) {
    return make_error(layer.error().code, fmt::format("{} ({}): {}", node.source_op, describe_node_origin(node),
                                                      layer.error().message));
  }
  return LayerNode{*layer};
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

// "aten.max_pool2d.default" -> "max_pool2d"; the overload stays in op_overload.
std::pair<std::string, std::string> split_op(const std::string& op) {
  std::string name = op;
  if (starts_with(name, "aten.")) name = name.substr(5);
  const size_t dot = name.find('.');
  if (dot == std::string::npos) return {name, ""};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

int spatial_rank_suffix(const std::string& name) {  // max_pool2d -> 2
  for (const char* suffix : {"1d", "2d", "3d"}) {
    if (name.size() > 2 && name.substr(name.size() - 2) == suffix) return suffix[0] - '0';
  }
  return 0;
}

Status parse_conv(const Call& call, const std::string& name, const std::string& overload, GraphNode& node,
                        const Context& context) {
  CONVBRIDGE_TRY(auto input, add_tensor_input(call, "input", node, context));
  CONVBRIDGE_TRY(bool has_weight, add_parameter(call, "weight", "weight", node, context));
  if (!has_weight) return invalid(fmt::format("{} has no weight ({})", node.source_op, describe_node_origin(node)));
  CONVBRIDGE_TRY(bool bias, add_parameter(call, "bias", "bias", node, context));
  const std::vector<int64_t>& weight = context.parameter_shapes.at(node.parameters[0].second);
  bool transposed = starts_with(name, "conv_transpose");
  if (name == "convolution") {
    CONVBRIDGE_TRY(transposed, call.boolean("transposed"));
  }
  const int rank = static_cast<int>(weight.size()) - 2;
  if (rank < 1 || rank > 3 || input.size() != weight.size()) {
    return unsupported(fmt::format("{} with a rank-{} weight on a rank-{} input is not a batched conv ({})",
                                   node.source_op, weight.size(), input.size(), describe_node_origin(node)));
  }
  CONVBRIDGE_TRY(int64_t groups, call.integer("groups"));
  if (groups < 1) return call.bad("groups", "a positive int");
  CONVBRIDGE_TRY(auto stride, call.ints("stride"));
  CONVBRIDGE_TRY(auto dilation, call.ints("dilation"));
  std::string padding;
  if (overload == "padding") {
    const json* value = call.find("padding");
    if (value == nullptr || !value->is_string()) return call.bad("padding", "'same' or 'valid'");
    padding = fmt::format("'{}'", value->get<std::string>());
  } else {
    CONVBRIDGE_TRY(auto pads, call.ints("padding"));
    padding = tuple_text(pads);
  }
  const std::vector<int64_t> kernel(weight.begin() + 2, weight.end());
  const int64_t in_channels = transposed ? weight[0] : input[1];
  CONVBRIDGE_TRY(const int64_t out_per_group, Result<int64_t>(transposed ? weight[1] : weight[0]));
  const auto out_channels = transposed ? checked_mul(out_per_group, groups) : std::optional<int64_t>(out_per_group);
  if (!out_channels) return make_error(ErrorCode::overflow, fmt::format("{}: too many channels", node.name));
  std::string text;
  if (transposed) {
    CONVBRIDGE_TRY(auto output_padding, call.ints("output_padding"));
    text = fmt::format("nn.ConvTranspose{}d({}, {}, kernel_size={}, stride={}, padding={}, output_padding={}, "
                       "groups={}, bias={}, dilation={})",
                       rank, in_channels, *out_channels, tuple_text(kernel), tuple_text(stride), padding,
                       tuple_text(output_padding), groups, bias ? "True" : "False", tuple_text(dilation));
  } else {
    text = fmt::format("nn.Conv{}d({}, {}, kernel_size={}, stride={}, padding={}, dilation={}, groups={}, bias={})",
                       rank, in_channels, *out_channels, tuple_text(kernel), tuple_text(stride), padding,
                       tuple_text(dilation), groups, bias ? "True" : "False");
  }
  auto layer = parse_pytorch_layer(text);
  if (!layer) {
    return make_error(layer.error().code, fmt::format("{} ({}): {}", node.source_op, describe_node_origin(node),
                                                      layer.error().message));
  }
  if (input[1] != layer->spec.in_channels) {
    return invalid(fmt::format("{}: the input has {} channels, the weight expects {} ({})", node.source_op, input[1],
                               layer->spec.in_channels, describe_node_origin(node)));
  }
  node.op = ConvNode{*layer};
  return Ok{};
}

// Pooling, adaptive pooling and the op-set layers spelled as one ATen call.
Result<std::optional<std::string>> layer_text(const Call& call, const std::string& name, const GraphNode& node,
                                              const std::vector<int64_t>& input) {
  const int rank = spatial_rank_suffix(name);
  const auto bool_text = [](bool value) { return value ? "True" : "False"; };
  if (starts_with(name, "max_pool") && rank > 0) {
    CONVBRIDGE_TRY(auto kernel, call.ints("kernel_size"));
    CONVBRIDGE_TRY(auto stride, call.ints("stride"));
    CONVBRIDGE_TRY(auto padding, call.ints("padding"));
    CONVBRIDGE_TRY(auto dilation, call.ints("dilation"));
    CONVBRIDGE_TRY(bool ceil_mode, call.boolean("ceil_mode"));
    return std::optional<std::string>(fmt::format(
        "nn.MaxPool{}d(kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={})", rank, tuple_text(kernel),
        tuple_text(stride.empty() ? kernel : stride), tuple_text(padding), tuple_text(dilation), bool_text(ceil_mode)));
  }
  if (starts_with(name, "avg_pool") && rank > 0) {
    CONVBRIDGE_TRY(auto kernel, call.ints("kernel_size"));
    CONVBRIDGE_TRY(auto stride, call.ints("stride"));
    CONVBRIDGE_TRY(auto padding, call.ints("padding"));
    CONVBRIDGE_TRY(bool ceil_mode, call.boolean("ceil_mode"));
    CONVBRIDGE_TRY(bool count_include_pad, call.boolean("count_include_pad"));
    std::string divisor;
    if (call.has("divisor_override")) {
      CONVBRIDGE_TRY(int64_t d, call.integer("divisor_override"));
      divisor = fmt::format(", divisor_override={}", d);
    }
    return std::optional<std::string>(fmt::format(
        "nn.AvgPool{}d(kernel_size={}, stride={}, padding={}, ceil_mode={}, count_include_pad={}{})", rank,
        tuple_text(kernel), tuple_text(stride.empty() ? kernel : stride), tuple_text(padding), bool_text(ceil_mode),
        bool_text(count_include_pad), divisor));
  }
  if ((starts_with(name, "adaptive_avg_pool") || starts_with(name, "adaptive_max_pool")) && rank > 0) {
    CONVBRIDGE_TRY(auto size, call.ints("output_size"));
    return std::optional<std::string>(fmt::format("nn.Adaptive{}Pool{}d({})", name[9] == 'a' ? "Avg" : "Max", rank,
                                                  tuple_text(size)));
  }
  if (starts_with(name, "upsample_")) {
    static const std::map<std::string, std::string> modes = {
        {"upsample_nearest1d", "nearest"},    {"upsample_nearest2d", "nearest"},   {"upsample_nearest3d", "nearest"},
        {"upsample_linear1d", "linear"},      {"upsample_bilinear2d", "bilinear"}, {"upsample_bicubic2d", "bicubic"},
        {"upsample_trilinear3d", "trilinear"}};
    const auto mode = modes.find(name);
    if (mode == modes.end()) return std::optional<std::string>();
    std::string size_or_scale;
    if (call.has("output_size")) {
      CONVBRIDGE_TRY(auto size, call.ints("output_size"));
      size_or_scale = "size=" + tuple_text(size);
    } else if (call.has("scale_factors")) {
      CONVBRIDGE_TRY(auto scales, call.numbers("scale_factors"));
      std::vector<std::string> texts;
      for (double s : scales) texts.push_back(float_text(s));
      size_or_scale = fmt::format("scale_factor=({}{})", fmt::join(texts, ", "), texts.size() == 1 ? "," : "");
    } else {
      return call.bad("output_size", "a size (or scale_factors)");
    }
    std::string align;
    if (mode->second != "nearest") {
      CONVBRIDGE_TRY(bool align_corners, call.boolean("align_corners"));
      align = fmt::format(", align_corners={}", bool_text(align_corners));
    }
    return std::optional<std::string>(
        fmt::format("nn.Upsample({}, mode='{}'{})", size_or_scale, mode->second, align));
  }
  if (name == "pixel_shuffle" || name == "pixel_unshuffle") {
    CONVBRIDGE_TRY(int64_t factor, call.integer(name == "pixel_shuffle" ? "upscale_factor" : "downscale_factor"));
    return std::optional<std::string>(
        fmt::format("nn.{}({})", name == "pixel_shuffle" ? "PixelShuffle" : "PixelUnshuffle", factor));
  }
  if (name == "pad" || name == "constant_pad_nd") {
    CONVBRIDGE_TRY(auto pads, call.ints("pad"));
    std::string mode = "constant";
    if (const json* m = call.find("mode"); m != nullptr && m->is_string()) mode = m->get<std::string>();
    const int spatial = static_cast<int>(input.size()) - 2;
    if (pads.size() % 2 != 0 || pads.size() / 2 > static_cast<size_t>(std::max(spatial, 0)) || spatial < 1 ||
        spatial > 3) {
      return unsupported(fmt::format("{} with pad={} on a rank-{} tensor: convbridge converts padding of the "
                                     "spatial axes ({})", node.source_op, tuple_text(pads), input.size(),
                                     describe_node_origin(node)));
    }
    while (pads.size() < static_cast<size_t>(2 * spatial)) pads.push_back(0);
    static const std::map<std::string, std::string> classes = {
        {"constant", "ConstantPad"}, {"reflect", "ReflectionPad"}, {"replicate", "ReplicationPad"},
        {"circular", "CircularPad"}};
    const auto cls = classes.find(mode);
    if (cls == classes.end()) return call.bad("mode", "'constant', 'reflect', 'replicate' or 'circular'");
    double value = 0.0;
    if (call.has("value")) {
      CONVBRIDGE_TRY(value, call.number("value"));
    }
    return std::optional<std::string>(fmt::format("nn.{}{}d({}{})", cls->second, spatial, tuple_text(pads),
                                                  mode == "constant" ? ", " + float_text(value) : ""));
  }
  return std::optional<std::string>();
}

// Elementwise activations: ATen name -> the nn module text (with the call's own arguments).
Result<std::optional<std::string>> activation_text(const Call& call, const std::string& name) {
  static const std::map<std::string, std::string> simple = {
      {"relu", "nn.ReLU()"},       {"relu_", "nn.ReLU()"},         {"sigmoid", "nn.Sigmoid()"},
      {"tanh", "nn.Tanh()"},       {"hardswish", "nn.Hardswish()"}, {"hardswish_", "nn.Hardswish()"},
      {"hardsigmoid", "nn.Hardsigmoid()"}, {"hardsigmoid_", "nn.Hardsigmoid()"}, {"silu", "nn.SiLU()"},
      {"silu_", "nn.SiLU()"},      {"mish", "nn.Mish()"},          {"relu6", "nn.ReLU6()"},
      {"selu", "nn.SELU()"},       {"softsign", "nn.Softsign()"}};
  if (const auto it = simple.find(name); it != simple.end()) return std::optional<std::string>(it->second);
  if (name == "hardtanh" || name == "hardtanh_") {
    CONVBRIDGE_TRY(double low, call.number("min_val"));
    CONVBRIDGE_TRY(double high, call.number("max_val"));
    if (low == 0.0 && high == 6.0) return std::optional<std::string>("nn.ReLU6()");
    return std::optional<std::string>(fmt::format("nn.Hardtanh({}, {})", float_text(low), float_text(high)));
  }
  if (name == "gelu" || name == "gelu_") {
    const json* approximate = call.find("approximate");
    const std::string mode = approximate && approximate->is_string() ? approximate->get<std::string>() : "none";
    return std::optional<std::string>(fmt::format("nn.GELU(approximate='{}')", mode));
  }
  if (name == "leaky_relu" || name == "leaky_relu_") {
    CONVBRIDGE_TRY(double slope, call.number("negative_slope"));
    return std::optional<std::string>(fmt::format("nn.LeakyReLU({})", float_text(slope)));
  }
  if (name == "elu" || name == "elu_") {
    CONVBRIDGE_TRY(double alpha, call.number("alpha"));
    return std::optional<std::string>(fmt::format("nn.ELU({})", float_text(alpha)));
  }
  if (name == "softplus") {
    CONVBRIDGE_TRY(double beta, call.number("beta"));
    CONVBRIDGE_TRY(double threshold, call.number("threshold"));
    return std::optional<std::string>(fmt::format("nn.Softplus({}, {})", float_text(beta), float_text(threshold)));
  }
  return std::optional<std::string>();
}

Status parse_arithmetic(const Call& call, const std::string& name, GraphNode& node, const Context& context) {
  static const std::map<std::string, Arithmetic> kinds = {
      {"add", Arithmetic::add}, {"add_", Arithmetic::add}, {"sub", Arithmetic::subtract},
      {"rsub", Arithmetic::subtract}, {"mul", Arithmetic::multiply}, {"mul_", Arithmetic::multiply},
      {"div", Arithmetic::divide}, {"true_divide", Arithmetic::divide}};
  const Arithmetic op = kinds.at(name);
  const auto operand = [&](const std::string& argument) -> Result<Operand> {
    const json* value = call.find(argument);
    if (value != nullptr && value->is_number()) return Operand{Operand::Kind::number, "", value->get<double>()};
    CONVBRIDGE_TRY(std::string ref, call.ref(argument));
    if (context.tensor_shapes.count(ref)) return Operand{Operand::Kind::tensor, ref, 0.0};
    if (context.parameter_shapes.count(ref)) return Operand{Operand::Kind::parameter, ref, 0.0};
    return missing_tensor(context, ref, node);
  };
  CONVBRIDGE_TRY(Operand a, operand("self"));
  CONVBRIDGE_TRY(Operand b, operand("other"));
  if (name == "div" && call.has("rounding_mode")) {
    return unsupported(fmt::format("{} with rounding_mode is not supported ({})", node.source_op,
                                   describe_node_origin(node)));
  }
  if (call.has("alpha")) {
    CONVBRIDGE_TRY(double alpha, call.number("alpha"));
    if (alpha != 1.0) {
      if (b.kind != Operand::Kind::number) {
        return unsupported(fmt::format("{} with alpha={} on a tensor is not supported ({})", node.source_op,
                                       float_text(alpha), describe_node_origin(node)));
      }
      b.number *= alpha;
    }
  }
  if (name == "rsub") std::swap(a, b);  // rsub(self, other) = other - self
  if (a.kind != Operand::Kind::tensor && b.kind != Operand::Kind::tensor) {
    return unsupported(fmt::format("{} computes on parameters only ({}); convbridge converts ops on activations",
                                   node.source_op, describe_node_origin(node)));
  }
  node.inputs = {a, b};
  node.op = ArithmeticNode{op};
  return Ok{};
}

Status parse_node(const json& entry, GraphNode& node, const Context& context) {
  const auto [name, overload] = split_op(node.source_op);
  const Call call(entry, node);
  if (name == "getitem") return Ok{};  // resolved by the caller
  if (name == "conv1d" || name == "conv2d" || name == "conv3d" || name == "conv_transpose1d" ||
      name == "conv_transpose2d" || name == "conv_transpose3d" || name == "convolution") {
    return parse_conv(call, name, overload, node, context);
  }
  if (name == "linear") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "input", node, context));
    CONVBRIDGE_TRY(bool has_weight, add_parameter(call, "weight", "weight", node, context));
    if (!has_weight) return call.bad("weight", "a parameter");
    CONVBRIDGE_TRY(bool bias, add_parameter(call, "bias", "bias", node, context));
    const auto& weight = context.parameter_shapes.at(node.parameters[0].second);
    if (weight.size() != 2 || input.empty() || input.back() != weight[1]) {
      return invalid(fmt::format("{}: weight {} does not fit input {} ({})", node.source_op, tuple_text(weight),
                                 tuple_text(input), describe_node_origin(node)));
    }
    node.op = LinearNode{weight[1], weight[0], bias};
    return Ok{};
  }
  if (name == "batch_norm" || name == "_native_batch_norm_legit_no_training" || name == "instance_norm" ||
      name == "group_norm") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "input", node, context));
    if (input.size() < 2) return unsupported(fmt::format("{} on a rank-{} tensor", node.source_op, input.size()));
    CONVBRIDGE_TRY(bool weight, add_parameter(call, "weight", "weight", node, context));
    CONVBRIDGE_TRY(bool bias, add_parameter(call, "bias", "bias", node, context));
    const int spatial = std::max<int>(static_cast<int>(input.size()) - 2, 1);
    CONVBRIDGE_TRY(double eps, call.number("eps"));
    std::string text;
    if (name == "group_norm") {
      CONVBRIDGE_TRY(int64_t groups, call.integer("num_groups"));
      text = fmt::format("nn.GroupNorm({}, {}, eps={}, affine={})", groups, input[1], float_text(eps),
                         weight ? "True" : "False");
    } else {
      bool training = false;
      if (name == "batch_norm") {
        CONVBRIDGE_TRY(training, call.boolean("training"));
      } else if (name == "instance_norm") {
        CONVBRIDGE_TRY(training, call.boolean("use_input_stats"));
      }
      if (name != "instance_norm" && training) {
        return unsupported(fmt::format("{} uses batch statistics ({}): the model is in training mode or the "
                                       "BatchNorm has track_running_stats=False; call model.eval() (a BatchNorm "
                                       "without running statistics has no inference form to convert)",
                                       node.source_op, describe_node_origin(node)));
      }
      const bool running = !(name == "instance_norm" && training);
      if (running) {
        CONVBRIDGE_TRY(bool mean, add_parameter(call, "running_mean", "running_mean", node, context));
        CONVBRIDGE_TRY(bool var, add_parameter(call, "running_var", "running_var", node, context));
        if (!mean || !var) return call.bad("running_mean", "a buffer");
      }
      text = fmt::format("nn.{}{}d({}, eps={}, affine={}, track_running_stats={})",
                         name == "instance_norm" ? "InstanceNorm" : "BatchNorm", spatial, input[1], float_text(eps),
                         weight ? "True" : "False", running ? "True" : "False");
    }
    if (weight != bias) return unsupported(fmt::format("{} with a weight but no bias (or the reverse)", node.source_op));
    CONVBRIDGE_TRY(node.op, layer_from_text(text, node));
    return Ok{};
  }
  if (name == "layer_norm") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "input", node, context));
    CONVBRIDGE_TRY(auto normalized, call.ints("normalized_shape"));
    CONVBRIDGE_TRY(double eps, call.number("eps"));
    CONVBRIDGE_TRY(bool weight, add_parameter(call, "weight", "weight", node, context));
    CONVBRIDGE_TRY(bool bias, add_parameter(call, "bias", "bias", node, context));
    if (normalized.empty() || normalized.size() > input.size() ||
        !std::equal(normalized.begin(), normalized.end(), input.end() - static_cast<ptrdiff_t>(normalized.size()))) {
      return invalid(fmt::format("{}: normalized_shape {} does not end input {} ({})", node.source_op,
                                 tuple_text(normalized), tuple_text(input), describe_node_origin(node)));
    }
    node.op = LayerNormNode{normalized, eps, weight, bias};
    return Ok{};
  }
  {
    const auto input_it = call.find("self") ? "self" : "input";
    if (call.find(input_it) && (name != "cat" && name != "stack" && name != "max" && name != "min")) {
      // Op-set layers with one tensor input.
      CONVBRIDGE_TRY(auto text, activation_text(call, name));
      std::optional<std::string> layer = text;
      if (!layer) {
        const auto it = context.tensor_shapes.find(call.ref(input_it).ok() ? *call.ref(input_it) : "");
        const std::vector<int64_t> shape = it == context.tensor_shapes.end() ? std::vector<int64_t>{} : it->second;
        CONVBRIDGE_TRY(layer, layer_text(call, name, node, shape));
      }
      if (layer) {
        CONVBRIDGE_TRY(auto input, add_tensor_input(call, input_it, node, context));
        (void)input;
        CONVBRIDGE_TRY(node.op, layer_from_text(*layer, node));
        return Ok{};
      }
    }
  }
  if (name == "prelu") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    CONVBRIDGE_TRY(bool weight, add_parameter(call, "weight", "weight", node, context));
    if (!weight) return call.bad("weight", "a parameter");
    const auto& w = context.parameter_shapes.at(node.parameters[0].second);
    const int64_t count = w.empty() ? 1 : w[0];
    CONVBRIDGE_TRY(node.op, layer_from_text(fmt::format("nn.PReLU({})", count), node));
    (void)input;
    return Ok{};
  }
  if (name == "add" || name == "add_" || name == "sub" || name == "rsub" || name == "mul" || name == "mul_" ||
      name == "div" || name == "true_divide") {
    return parse_arithmetic(call, name, node, context);
  }
  {
    // Elementwise math: ATen name -> keras.ops name (the same formula on every element).
    static const std::map<std::string, std::string> functions = {
        {"abs", "abs"},   {"exp", "exp"},   {"log", "log"},     {"sqrt", "sqrt"},   {"rsqrt", "rsqrt"},
        {"sin", "sin"},   {"cos", "cos"},   {"erf", "erf"},     {"floor", "floor"}, {"ceil", "ceil"},
        {"sign", "sign"}, {"log1p", "log1p"}, {"expm1", "expm1"}, {"square", "square"}};
    if (const auto it = functions.find(name); it != functions.end()) {
      CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
      (void)input;
      node.op = ElementwiseNode{it->second, {}};
      return Ok{};
    }
    if (name == "pow" && overload == "Tensor_Scalar") {
      CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
      (void)input;
      CONVBRIDGE_TRY(double exponent, call.number("exponent"));
      node.op = ElementwiseNode{"power", {exponent}};
      return Ok{};
    }
    if (name == "clamp" || name == "clip" || name == "clamp_min" || name == "clamp_max") {
      CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
      (void)input;
      const bool low = call.has("min"), high = call.has("max");
      double a = 0.0, b = 0.0;
      if (low) {
        CONVBRIDGE_TRY(a, call.number("min"));
      }
      if (high) {
        CONVBRIDGE_TRY(b, call.number("max"));
      }
      if (low && high) {
        node.op = ElementwiseNode{"clip", {a, b}};
      } else if (low || high) {
        node.op = ElementwiseNode{low ? "maximum" : "minimum", {low ? a : b}};
      } else {
        node.op = IdentityNode{};
      }
      return Ok{};
    }
  }
  if (name == "reciprocal" || name == "neg") {  // 1 / x (Tensor.__rtruediv__ records 2 / x as 2 * (1 / x)), -x
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    (void)input;
    const Operand tensor = node.inputs[0];
    node.inputs = name == "neg" ? std::vector<Operand>{tensor, Operand{Operand::Kind::number, "", -1.0}}
                                : std::vector<Operand>{Operand{Operand::Kind::number, "", 1.0}, tensor};
    node.op = ArithmeticNode{name == "neg" ? Arithmetic::multiply : Arithmetic::divide};
    return Ok{};
  }
  if (name == "matmul" || name == "mm" || name == "bmm") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    CONVBRIDGE_TRY(std::string other, call.ref(name == "matmul" ? "other" : "mat2"));
    if (const auto p = context.parameter_shapes.find(other); p != context.parameter_shapes.end()) {
      if (p->second.size() != 2 || input.empty() || input.back() != p->second[0]) {
        return unsupported(fmt::format("{} of {} by a parameter of shape {}: convbridge converts x @ W with a 2-D W "
                                       "over the last axis ({})", node.source_op, tuple_text(input),
                                       tuple_text(p->second), describe_node_origin(node)));
      }
      node.parameters.emplace_back("weight", other);
      node.op = LinearNode{p->second[0], p->second[1], false, true};
      return Ok{};
    }
    const auto t = context.tensor_shapes.find(other);
    if (t == context.tensor_shapes.end()) return missing_tensor(context, other, node);
    if (input.size() < 2 || t->second.size() != input.size()) {
      return unsupported(fmt::format("{} of ranks {} and {}: convbridge converts batched matmuls of equal rank ({})",
                                     node.source_op, input.size(), t->second.size(), describe_node_origin(node)));
    }
    node.inputs.push_back(Operand{Operand::Kind::tensor, other, 0.0});
    node.op = MatmulNode{};
    return Ok{};
  }
  if (name == "cat" || name == "concat" || name == "stack") {
    const json* tensors = call.find("tensors");
    if (tensors == nullptr || !tensors->is_array() || tensors->empty()) return call.bad("tensors", "a list of tensors");
    size_t rank = 0;
    for (const json& t : *tensors) {
      if (!t.is_object() || !t.contains("ref") || !t.at("ref").is_string()) return call.bad("tensors", "tensors");
      const std::string ref = t.at("ref").get<std::string>();
      const auto it = context.tensor_shapes.find(ref);
      if (it == context.tensor_shapes.end()) return missing_tensor(context, ref, node);
      rank = it->second.size();
      node.inputs.push_back(Operand{Operand::Kind::tensor, ref, 0.0});
    }
    CONVBRIDGE_TRY(int64_t dim, call.integer("dim"));
    const bool stack = name == "stack";
    CONVBRIDGE_TRY(int d, normalized_dim(dim, rank + (stack ? 1 : 0), node));
    if (stack && d == 0) {
      return unsupported(fmt::format("{} on the batch axis ({}): convbridge keeps axis 0 the batch", node.source_op,
                                     describe_node_origin(node)));
    }
    node.op = ConcatNode{d, stack};
    return Ok{};
  }
  if (name == "chunk" || name == "split" || name == "split_with_sizes" || name == "unsafe_split" ||
      name == "unbind") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    CONVBRIDGE_TRY(int64_t dim, call.integer("dim"));
    CONVBRIDGE_TRY(int d, normalized_dim(dim, input.size(), node));
    SplitNode split{d, {}};
    if (input[static_cast<size_t>(d)] == kUnknownSize) {
      return unsupported(fmt::format("{} along axis {}, whose size depends on the input size ({}): give that size "
                                     "in input_shape", node.source_op, d, describe_node_origin(node)));
    }
    for (const auto& shape : node.output_shapes) {
      if (shape.size() != input.size() - (name == "unbind" ? 1 : 0)) return invalid(fmt::format("{}: output shapes", node.name));
      split.sizes.push_back(name == "unbind" ? 1 : shape[static_cast<size_t>(d)]);
    }
    if (name == "unbind") {
      return unsupported(fmt::format("{} is not supported yet ({})", node.source_op, describe_node_origin(node)));
    }
    node.op = split;
    return Ok{};
  }
  if (name == "slice") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    CONVBRIDGE_TRY(int64_t dim, call.integer("dim"));
    CONVBRIDGE_TRY(int d, normalized_dim(dim, input.size(), node));
    const int64_t size = input[static_cast<size_t>(d)];
    int64_t start = 0, end = size, step = 1;
    if (call.has("start")) {
      CONVBRIDGE_TRY(start, call.integer("start"));
    }
    if (call.has("end")) {
      CONVBRIDGE_TRY(end, call.integer("end"));
    }
    if (call.has("step")) {
      CONVBRIDGE_TRY(step, call.integer("step"));
    }
    if (step < 1) return call.bad("step", "a positive int");
    if (size == kUnknownSize) {
      // A size that varies: slices from a fixed start to the end (x[:, :, 1:]) stay exact; others need the size.
      if (start < 0 || end < kMaxSizeArgument) {
        return unsupported(fmt::format("{} of axis {} from {} to {}: that axis's size depends on the input size, "
                                       "so give it in input_shape ({})", node.source_op, d, start, end,
                                       describe_node_origin(node)));
      }
      node.op = SliceNode{d, start, SliceNode::kToTheEnd, step};
      return Ok{};
    }
    const auto clamp = [size](int64_t v) { return std::clamp(v < 0 ? v + size : v, int64_t{0}, size); };
    node.op = SliceNode{d, clamp(start), std::max(clamp(start), clamp(end)), step};
    return Ok{};
  }
  if (name == "select") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    CONVBRIDGE_TRY(int64_t dim, call.integer("dim"));
    CONVBRIDGE_TRY(int d, normalized_dim(dim, input.size(), node));
    CONVBRIDGE_TRY(int64_t index, call.integer("index"));
    const int64_t size = input[static_cast<size_t>(d)];
    if (size == kUnknownSize) {
      if (index < 0) return call.varies("index");
    } else if (index < -size || index >= size) {
      return call.bad("index", "an index in range");
    }
    node.op = SelectNode{d, index < 0 ? index + size : index};
    return Ok{};
  }
  if (name == "permute" || name == "transpose" || name == "t" || name == "swapaxes") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    std::vector<int> perm(input.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(i);
    if (name == "permute") {
      CONVBRIDGE_TRY(auto dims, call.ints("dims"));
      if (dims.size() != input.size()) return call.bad("dims", "one entry per axis");
      std::set<int> seen;
      for (size_t i = 0; i < dims.size(); ++i) {
        CONVBRIDGE_TRY(perm[i], normalized_dim(dims[i], input.size(), node));
        if (!seen.insert(perm[i]).second) return call.bad("dims", "a permutation");
      }
    } else if (name == "t") {
      if (input.size() == 2) std::swap(perm[0], perm[1]);
    } else {
      CONVBRIDGE_TRY(int64_t a, call.integer(name == "swapaxes" ? "axis0" : "dim0"));
      CONVBRIDGE_TRY(int64_t b, call.integer(name == "swapaxes" ? "axis1" : "dim1"));
      CONVBRIDGE_TRY(int da, normalized_dim(a, input.size(), node));
      CONVBRIDGE_TRY(int db, normalized_dim(b, input.size(), node));
      std::swap(perm[static_cast<size_t>(da)], perm[static_cast<size_t>(db)]);
    }
    node.op = PermuteNode{perm};
    return Ok{};
  }
  if (name == "view" || name == "reshape" || name == "_unsafe_view" || name == "flatten" || name == "squeeze" ||
      name == "unsqueeze" || name == "unflatten" || name == "expand_dims") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    (void)input;
    node.op = ReshapeNode{};
    return Ok{};
  }
  if (name == "mean" || name == "sum" || name == "amax" || name == "amin" ||
      ((name == "max" || name == "min") && overload == "dim")) {
    // max.dim / min.dim return (values, indices); only the values convert (getitem refuses the indices).
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    ReduceNode reduce;
    reduce.reduction = name == "mean" ? Reduction::mean : name == "sum" ? Reduction::sum
                       : (name == "amax" || name == "max") ? Reduction::max : Reduction::min;
    std::vector<int64_t> dims;
    if (call.has("dim")) {
      CONVBRIDGE_TRY(dims, call.ints("dim"));
    }
    if (dims.empty()) {  // every axis
      for (size_t i = 0; i < input.size(); ++i) dims.push_back(static_cast<int64_t>(i));
    }
    for (int64_t dim : dims) {
      CONVBRIDGE_TRY(int d, normalized_dim(dim, input.size(), node));
      reduce.dims.push_back(d);
    }
    std::sort(reduce.dims.begin(), reduce.dims.end());
    reduce.dims.erase(std::unique(reduce.dims.begin(), reduce.dims.end()), reduce.dims.end());
    if (call.has("keepdim")) {
      CONVBRIDGE_TRY(reduce.keepdim, call.boolean("keepdim"));
    }
    if (call.has("dtype")) return unsupported(fmt::format("{} with dtype= is not supported", node.source_op));
    node.op = reduce;
    return Ok{};
  }
  if (name == "softmax" || name == "_softmax" || name == "log_softmax" || name == "_log_softmax") {
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, "self", node, context));
    CONVBRIDGE_TRY(int64_t dim, call.integer("dim"));
    CONVBRIDGE_TRY(int d, normalized_dim(dim, input.size(), node));
    node.op = SoftmaxNode{d, name.find("log") != std::string::npos};
    return Ok{};
  }
  if (name == "dropout" || name == "feature_dropout" || name == "alpha_dropout" || name == "feature_alpha_dropout" ||
      name == "contiguous" || name == "clone" || name == "alias" || name == "detach" || name == "lift_fresh_copy") {
    if (call.has("train")) {
      CONVBRIDGE_TRY(bool train, call.boolean("train"));
      if (train) {
        return unsupported(fmt::format("{} is active (train=True) ({}): call model.eval() first", node.source_op,
                                       describe_node_origin(node)));
      }
    }
    CONVBRIDGE_TRY(auto input, add_tensor_input(call, call.find("self") ? "self" : "input", node, context));
    (void)input;
    node.op = IdentityNode{};
    return Ok{};
  }
  return unsupported(fmt::format("{} is not an op convbridge converts yet ({}); supported: convs, Linear, the "
                                 "pooling/normalization/resizing/padding/activation layers, arithmetic, cat, split "
                                 "and chunk, slicing, views, permutes, mean/sum/amax/amin, softmax",
                                 node.source_op, describe_node_origin(node)));
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return shape.size() == 1 ? fmt::format("({},)", shape[0]) : fmt::format("({})", fmt::join(shape, ", "));
}

// numpy/PyTorch broadcasting of two shapes (aligned from the right), nullopt if they do not broadcast.
std::optional<std::vector<int64_t>> broadcast(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t x = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t y = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (x == kUnknownSize || y == kUnknownSize) {  // varies with the input: torch.export checked it
      out[out.size() - 1 - i] = x == 1 ? y : y == 1 ? x : kUnknownSize;
      continue;
    }
    if (x != y && x != 1 && y != 1) return std::nullopt;
    out[out.size() - 1 - i] = x == 1 ? y : x;
  }
  return out;
}

// The planner lays tensors out by their declared shapes, so a declared output shape must be what the op computes
// from its inputs (exactly where that is cheap to say, else its rank and batch): a graph that says otherwise is
// malformed, not a model to plan.
Status check_output_shapes(const GraphNode& node, const Context& context) {
  const auto mismatch = [&](const std::string& expected) {
    return invalid(fmt::format("{}: the captured output shape {} is not {} ({})", node.source_op,
                               shape_text(node.output_shapes.at(0)), expected, describe_node_origin(node)));
  };
  const auto shape_of_operand = [&](const Operand& operand) -> std::vector<int64_t> {
    if (operand.kind == Operand::Kind::number) return {};
    const auto& shapes = operand.kind == Operand::Kind::tensor ? context.tensor_shapes : context.parameter_shapes;
    return shapes.at(operand.name);
  };
  std::vector<int64_t> in;
  if (!node.inputs.empty() && node.inputs[0].kind == Operand::Kind::tensor) in = shape_of_operand(node.inputs[0]);
  // A size that varies with the input (kUnknownSize) matches any size: torch.export computed it symbolically.
  const auto exactly = [&](const std::vector<int64_t>& expected) -> Status {
    const auto& out = node.output_shapes.at(0);
    bool same = out.size() == expected.size();
    for (size_t i = 0; same && i < out.size(); ++i) {
      same = out[i] == expected[i] || out[i] == kUnknownSize || expected[i] == kUnknownSize;
    }
    if (!same) return mismatch(shape_text(expected));
    return Ok{};
  };
  const auto same_rank_and_batch = [&]() -> Status {
    const auto& out = node.output_shapes.at(0);
    if (out.size() != in.size() || (!in.empty() && out[0] != in[0])) {
      return mismatch(fmt::format("of rank {} with batch {}", in.size(), in.empty() ? 0 : in[0]));
    }
    return Ok{};
  };
  return std::visit(
      [&](const auto& op) -> Status {
        using T = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<T, SplitNode>) {
          int64_t total = 0;
          for (size_t i = 0; i < node.output_shapes.size(); ++i) {
            std::vector<int64_t> piece = in;
            piece[static_cast<size_t>(op.dim)] = op.sizes[i];
            if (node.output_shapes[i] != piece) {
              return invalid(fmt::format("{}: output {} has shape {}, not {} ({})", node.source_op, i,
                                         shape_text(node.output_shapes[i]), shape_text(piece),
                                         describe_node_origin(node)));
            }
            total += op.sizes[i];  // each at most 2^31: no overflow for any graph that fits in memory
          }
          if (total != in[static_cast<size_t>(op.dim)]) {
            return invalid(fmt::format("{}: the pieces add up to {} of {} ({})", node.source_op, total,
                                       in[static_cast<size_t>(op.dim)], describe_node_origin(node)));
          }
          return Ok{};
        } else if constexpr (std::is_same_v<T, ConvNode>) {
          CONVBRIDGE_CHECK(same_rank_and_batch());
          if (node.output_shapes[0][1] != op.layer.spec.out_channels) return mismatch("with the conv's channels");
          return Ok{};
        } else if constexpr (std::is_same_v<T, LayerNode>) {
          const bool keeps_shape = std::holds_alternative<ActivationOp>(op.layer.op) ||
                                   std::holds_alternative<BatchNormOp>(op.layer.op) ||
                                   std::holds_alternative<NormOp>(op.layer.op);
          return keeps_shape ? exactly(in) : same_rank_and_batch();
        } else if constexpr (std::is_same_v<T, LinearNode>) {
          std::vector<int64_t> out = in;
          out.back() = op.out_features;
          return exactly(out);
        } else if constexpr (std::is_same_v<T, LayerNormNode> || std::is_same_v<T, SoftmaxNode> ||
                             std::is_same_v<T, IdentityNode> || std::is_same_v<T, ElementwiseNode>) {
          return exactly(in);
        } else if constexpr (std::is_same_v<T, MatmulNode>) {
          const std::vector<int64_t> other = shape_of_operand(node.inputs.at(1));
          if (in.size() < 2 || other.size() != in.size() ||
              (in.back() != other[other.size() - 2] && in.back() != kUnknownSize &&
               other[other.size() - 2] != kUnknownSize)) {
            return invalid(fmt::format("{}: operands of shapes {} and {} do not multiply ({})", node.source_op,
                                       shape_text(in), shape_text(other), describe_node_origin(node)));
          }
          std::vector<int64_t> out = in;
          out.back() = other.back();
          return exactly(out);
        } else if constexpr (std::is_same_v<T, ArithmeticNode>) {
          const auto out = broadcast(shape_of_operand(node.inputs[0]), shape_of_operand(node.inputs[1]));
          if (!out) {
            return invalid(fmt::format("{}: operands of shapes {} and {} do not broadcast ({})", node.source_op,
                                       shape_text(shape_of_operand(node.inputs[0])),
                                       shape_text(shape_of_operand(node.inputs[1])), describe_node_origin(node)));
          }
          return exactly(*out);
        } else if constexpr (std::is_same_v<T, ConcatNode>) {
          std::vector<int64_t> out = in;
          for (size_t i = 1; i < node.inputs.size(); ++i) {
            const std::vector<int64_t> other = shape_of_operand(node.inputs[i]);
            std::vector<int64_t> a = in, b = other;
            if (a.size() == b.size() && !op.new_axis) a[static_cast<size_t>(op.dim)] = b[static_cast<size_t>(op.dim)] = 0;
            if (a != b) {
              return invalid(fmt::format("{}: inputs of shapes {} and {} do not concatenate on dim {} ({})",
                                         node.source_op, shape_text(in), shape_text(other), op.dim,
                                         describe_node_origin(node)));
            }
            if (!op.new_axis) {
              int64_t& size = out[static_cast<size_t>(op.dim)];
              const int64_t more = other[static_cast<size_t>(op.dim)];
              size = size == kUnknownSize || more == kUnknownSize ? kUnknownSize : size + more;  // each <= 2^31
            }
          }
          if (op.new_axis) out.insert(out.begin() + op.dim, static_cast<int64_t>(node.inputs.size()));
          return exactly(out);
        } else if constexpr (std::is_same_v<T, SliceNode>) {
          std::vector<int64_t> out = in;
          out[static_cast<size_t>(op.dim)] = op.end == SliceNode::kToTheEnd ? kUnknownSize
                                             : op.end == op.start        ? 0
                                                                         : (op.end - op.start - 1) / op.step + 1;
          return exactly(out);
        } else if constexpr (std::is_same_v<T, SelectNode>) {
          std::vector<int64_t> out = in;
          out.erase(out.begin() + op.dim);
          return exactly(out);
        } else if constexpr (std::is_same_v<T, PermuteNode>) {
          std::vector<int64_t> out;
          for (const int axis : op.perm) out.push_back(in[static_cast<size_t>(axis)]);
          return exactly(out);
        } else if constexpr (std::is_same_v<T, ReduceNode>) {
          std::vector<int64_t> out;
          for (size_t i = 0; i < in.size(); ++i) {
            const bool reduced = std::find(op.dims.begin(), op.dims.end(), static_cast<int>(i)) != op.dims.end();
            if (!reduced) out.push_back(in[i]);
            else if (op.keepdim) out.push_back(1);
          }
          return exactly(out);
        } else if constexpr (std::is_same_v<T, KerasConvNode> || std::is_same_v<T, ScaleOffsetNode> ||
                             std::is_same_v<T, StandardizeNode>) {
          return invalid("a Keras layer in a PyTorch graph");  // the parser never makes one
        } else {  // ReshapeNode: the same elements
          static_assert(std::is_same_v<T, ReshapeNode>);
          const auto varies = [](const std::vector<int64_t>& shape) {
            return std::find(shape.begin(), shape.end(), kUnknownSize) != shape.end();
          };
          if (varies(in) || varies(node.output_shapes[0])) return Ok{};  // the planner pairs varying sizes by name
          if (checked_product(node.output_shapes[0]) != checked_product(in)) {
            return mismatch(fmt::format("a reshape of {}", shape_text(in)));
          }
          return Ok{};
        }
      },
      node.op);
}

}  // namespace

std::string_view arithmetic_name(Arithmetic op) {
  switch (op) {
    case Arithmetic::add: return "add";
    case Arithmetic::subtract: return "subtract";
    case Arithmetic::multiply: return "multiply";
    case Arithmetic::divide: return "divide";
    case Arithmetic::maximum: return "maximum";
    case Arithmetic::minimum: return "minimum";
    case Arithmetic::average: return "average";
  }
  return "add";
}

std::string_view reduction_name(Reduction reduction) {
  switch (reduction) {
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
    case Reduction::max: return "max";
    case Reduction::min: return "min";
  }
  return "mean";
}

std::string describe_node_origin(const GraphNode& node) {
  std::string where = node.module.empty() ? std::string("the model's forward") : node.module;
  const size_t dot = node.module_class.rfind('.');
  if (!node.module_class.empty()) {
    where += fmt::format(" ({})", dot == std::string::npos ? node.module_class : node.module_class.substr(dot + 1));
  }
  if (!node.source.empty()) where += ", " + node.source;
  return where;
}

Result<ModelGraph> parse_torch_export_graph(std::string_view json_text) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& error) {
    return make_error(ErrorCode::syntax, fmt::format("the captured graph is not JSON: {}", error.what()));
  }
  try {
    const auto format = root.is_object() ? root.find("format") : root.end();
    if (format == root.end() || !format->is_string() || *format != "convbridge.torch_export/1") {
      return make_error(ErrorCode::syntax, "the captured graph is not convbridge.torch_export/1");
    }
    if (json_nesting_depth(root, kMaxNesting) > kMaxNesting) {
      return make_error(ErrorCode::syntax, fmt::format("the captured graph nests values more than {} levels deep",
                                                       kMaxNesting));
    }
    ModelGraph graph;
    graph.framework = Framework::pytorch;
    graph.model_name = root.value("model", "Model");
    Context context;
    for (const json& input : root.at("inputs")) {
      GraphTensor tensor{input.at("name").get<std::string>(), {}, {}};
      if (context.tensor_shapes.count(tensor.name)) {
        return invalid(fmt::format("the captured graph names two inputs {}", tensor.name));
      }
      CONVBRIDGE_TRY(tensor.shape, shape_of(input.at("shape"), "input " + tensor.name, &tensor.symbols));
      context.tensor_shapes[tensor.name] = tensor.shape;
      graph.inputs.push_back(std::move(tensor));
    }
    for (const json& parameter : root.at("parameters")) {
      Parameter p{parameter.at("name").get<std::string>(), parameter.value("target", ""), {}, {}};
      if (context.parameter_shapes.count(p.name) || context.tensor_shapes.count(p.name)) {
        return invalid(fmt::format("the captured graph names two values {}", p.name));
      }
      CONVBRIDGE_TRY(p.shape, shape_of(parameter.at("shape"), "parameter " + p.name));
      context.parameter_shapes[p.name] = p.shape;
      graph.parameters.push_back(std::move(p));
    }
    // getitem on a multi-output node names that output: node -> its outputs, by index.
    std::map<std::string, size_t> node_index;
    std::set<std::string> multi_output;  // the nodes whose outputs only getitem names
    for (const json& entry : root.at("nodes")) {
      GraphNode node;
      node.name = entry.at("name").get<std::string>();
      node.source_op = entry.at("op").get<std::string>();
      node.module = entry.value("module", "");
      node.module_class = entry.value("module_class", "");
      node.source = entry.value("source", "");
      if (context.tensor_shapes.count(node.name) || node_index.count(node.name) ||
          context.parameter_shapes.count(node.name)) {
        return invalid(fmt::format("the captured graph names two values {}", node.name));
      }
      if (node.source_op == "size") {  // torch.export's arithmetic on sizes: no tensor, nothing to convert
        context.sizes.insert(node.name);
        continue;
      }
      for (const json& shape : entry.at("shapes")) {
        std::vector<std::string> symbols;
        if (shape.is_null()) {
          node.output_shapes.emplace_back();
          node.output_symbols.emplace_back();
          continue;
        }
        CONVBRIDGE_TRY(auto s, shape_of(shape, "output of " + node.name, &symbols));
        node.output_shapes.push_back(std::move(s));
        node.output_symbols.push_back(std::move(symbols));
      }
      // The planner lays a node's (main) output out by its shape: it must be known, and not a scalar (null
      // shapes are kept empty). A split's pieces are checked against the split itself.
      const auto no_output_shape = [&node] {
        return invalid(fmt::format("{} ({}) has no output shape (the capture records one per output tensor)",
                                   node.name, node.source_op));
      };
      if (node.source_op == "getitem") {
        if (node.output_shapes.size() != 1 || node.output_shapes[0].empty()) return no_output_shape();
        const Call call(entry, node);
        CONVBRIDGE_TRY(std::string parent, call.ref("self"));
        CONVBRIDGE_TRY(int64_t index, call.integer("index"));
        const auto it = node_index.find(parent);
        if (it == node_index.end() || !multi_output.count(parent)) {
          return invalid(fmt::format("{} indexes {}, which is not a multi-output op", node.name, parent));
        }
        GraphNode& owner = graph.nodes[it->second];
        if (index < 0 || static_cast<size_t>(index) >= owner.outputs.size() || node.output_shapes.size() != 1 ||
            static_cast<size_t>(index) >= owner.output_shapes.size() ||
            node.output_shapes[0] != owner.output_shapes[static_cast<size_t>(index)]) {
          return invalid(fmt::format("{} indexes output {} of {}", node.name, index, parent));
        }
        if (!owner.outputs[static_cast<size_t>(index)].empty()) {
          return invalid(fmt::format("{} indexes output {} of {}, which {} already names", node.name, index, parent,
                                     owner.outputs[static_cast<size_t>(index)]));
        }
        if (index > 0 && !std::holds_alternative<SplitNode>(owner.op)) {
          context.unconvertible[node.name] =
              fmt::format("output {} of {} (the indices or statistics it also returns): convbridge converts the "
                          "op's main output only ({})", index, owner.source_op, describe_node_origin(owner));
          continue;
        }
        owner.outputs[static_cast<size_t>(index)] = node.name;
        context.tensor_shapes[node.name] = node.output_shapes[0];
        continue;
      }
      CONVBRIDGE_CHECK(parse_node(entry, node, context));
      const bool split = std::holds_alternative<SplitNode>(node.op);
      if (!split && (node.output_shapes.empty() || node.output_shapes[0].empty())) return no_output_shape();
      CONVBRIDGE_CHECK(check_output_shapes(node, context));
      const bool multi = node.output_shapes.size() != 1 || split;
      if (multi) multi_output.insert(node.name);
      node.outputs.assign(std::max<size_t>(node.output_shapes.size(), 1), "");
      if (!multi) {
        node.outputs[0] = node.name;
        context.tensor_shapes[node.name] = node.output_shapes[0];
      }
      node_index[node.name] = graph.nodes.size();
      graph.nodes.push_back(std::move(node));
    }
    // The outputs: null, {"ref": tensor}, {"tuple"|"list": [...]} or {"dict": [[key, value], ...]}, nothing else
    // (the emitter rebuilds this structure in model.py), flattened in order.
    std::vector<const json*> pending = {&root.at("outputs")};
    while (!pending.empty()) {
      const json* value = pending.back();
      pending.pop_back();
      if (value->is_null()) continue;
      const auto malformed = [value] {
        return make_error(ErrorCode::syntax, fmt::format("the captured graph's outputs hold {}, which is not null, "
                                                         "{{\"ref\": name}}, a tuple, a list or a dict",
                                                         quoted(*value)));
      };
      if (!value->is_object() || value->size() != 1) return malformed();
      if (value->contains("ref")) {
        if (!value->at("ref").is_string()) return malformed();
        const std::string ref = value->at("ref").get<std::string>();
        if (!context.tensor_shapes.count(ref)) {
          if (const auto it = context.unconvertible.find(ref); it != context.unconvertible.end()) {
            return unsupported(fmt::format("the model returns {}", it->second));
          }
          return unsupported(fmt::format("the model returns {}, which is not an activation", ref));
        }
        graph.outputs.push_back(ref);
      } else if (value->contains("tuple") || value->contains("list")) {
        const json& items = value->begin().value();
        if (!items.is_array()) return malformed();
        for (auto it = items.rbegin(); it != items.rend(); ++it) pending.push_back(&*it);
      } else if (value->contains("dict")) {
        const json& pairs = value->at("dict");
        if (!pairs.is_array()) return malformed();
        for (auto it = pairs.rbegin(); it != pairs.rend(); ++it) {
          if (!it->is_array() || it->size() != 2 || !it->at(0).is_string()) return malformed();
          pending.push_back(&it->at(1));
        }
      } else {
        return malformed();
      }
    }
    graph.output_structure = root.at("outputs").dump();
    if (graph.outputs.empty()) return invalid("the model returns no tensor");
    return graph;
  } catch (const json::exception& error) {
    return make_error(ErrorCode::syntax, fmt::format("the captured graph is malformed: {}", error.what()));
  }
}

}  // namespace convbridge::model
