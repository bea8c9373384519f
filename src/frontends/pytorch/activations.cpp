// PyTorch's activation modules (torch/nn/modules/activation.py) with their defaults: LeakyReLU negative_slope=0.01,
// ELU/CELU alpha=1.0, GELU approximate='none', Hardtanh (-1, 1), Softplus beta=1 threshold=20, Hard/Softshrink
// lambd=0.5, Softmax/LogSoftmax dim=None, PReLU num_parameters=1 init=0.25. `inplace` does not change the values.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

using K = ActivationKind;

constexpr std::array<std::string_view, 0> kNoParameters = {};
constexpr std::array<std::string_view, 1> kInplace = {"inplace"};
constexpr std::array<std::string_view, 2> kLeaky = {"negative_slope", "inplace"};
constexpr std::array<std::string_view, 2> kAlpha = {"alpha", "inplace"};
constexpr std::array<std::string_view, 1> kGelu = {"approximate"};
constexpr std::array<std::string_view, 5> kHardtanh = {"min_val", "max_val", "inplace", "min_value", "max_value"};
constexpr std::array<std::string_view, 2> kSoftplus = {"beta", "threshold"};
constexpr std::array<std::string_view, 1> kShrink = {"lambd"};
constexpr std::array<std::string_view, 1> kDim = {"dim"};
constexpr std::array<std::string_view, 4> kPrelu = {"num_parameters", "init", "device", "dtype"};

template <const auto& Names>
std::string hint(std::string_view keyword) {
  return closest_name_hint(keyword, Names);
}

// A float argument given as an int or float literal, else its default.
Result<double> number(const BoundArguments& bound, std::string_view name, double fallback) {
  if (!bound.given(name)) return fallback;
  const PyValue v = bound.get(name, "None");
  if (v.kind == PyValue::Kind::integer) return static_cast<double>(v.integer);
  if (v.kind == PyValue::Kind::number) return v.number;
  return invalid_argument(fmt::format("{}={} must be a number, not {}", name, v.source, kind_name(v.kind)));
}

Status flag(const BoundArguments& bound, std::string_view name) {
  if (!bound.given(name)) return Ok{};
  const PyValue v = bound.get(name, "False");
  if (v.kind != PyValue::Kind::boolean) {
    return invalid_argument(fmt::format("{}={} must be True or False, not {}", name, v.source, kind_name(v.kind)));
  }
  return Ok{};
}

template <const auto& Names>
Result<BoundArguments> bind(const PyCall& call, const OpLayer& layer, std::string_view signature) {
  CONVBRIDGE_TRY(BoundArguments bound, BoundArguments::bind(call, layer.class_name, Names, 0, signature, hint<Names>));
  if constexpr (Names.size() > 0) {
    if (std::find(Names.begin(), Names.end(), std::string_view("inplace")) != Names.end()) CONVBRIDGE_CHECK(flag(bound, "inplace"));
  }
  return bound;
}

template <ActivationKind Kind, const auto& Names>
Status parse_plain(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<Names>(call, layer, Names.empty() ? "" : "inplace=False"));
  (void)bound;
  layer.op = ActivationOp{Activation{Kind}};
  return Ok{};
}

Status parse_leaky_relu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kLeaky>(call, layer, "negative_slope=0.01, inplace=False"));
  CONVBRIDGE_TRY(const double slope, number(bound, "negative_slope", 0.01));
  layer.op = ActivationOp{Activation{K::leaky_relu, slope}};
  return Ok{};
}

template <ActivationKind Kind>
Status parse_alpha(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kAlpha>(call, layer, "alpha=1.0, inplace=False"));
  CONVBRIDGE_TRY(const double alpha, number(bound, "alpha", 1.0));
  if (Kind == K::celu && alpha == 0.0) {
    return invalid_argument("alpha=0 divides by zero in CELU (PyTorch: \"ZeroDivisionError\" / inf values)");
  }
  layer.op = ActivationOp{Activation{Kind, alpha}};
  return Ok{};
}

Status parse_gelu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kGelu>(call, layer, "approximate='none'"));
  const PyValue v = bound.get("approximate", "'none'");
  if (v.kind != PyValue::Kind::string || (v.text != "none" && v.text != "tanh")) {
    return invalid_argument(fmt::format("approximate={} must be 'none' or 'tanh' (PyTorch: \"approximate argument "
                                        "must be either none or tanh.\")",
                                        v.source));
  }
  layer.op = ActivationOp{Activation{v.text == "tanh" ? K::gelu_tanh : K::gelu}};
  return Ok{};
}

// Hardtanh(min_val, max_val): clamp. (-1, 1) is hard_tanh and (0, 6) is relu6; other bounds have no neutral kind.
Status parse_hardtanh(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 bind<kHardtanh>(call, layer, "min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None"));
  CONVBRIDGE_TRY(double low, number(bound, "min_val", -1.0));
  CONVBRIDGE_TRY(double high, number(bound, "max_val", 1.0));
  if (bound.given("min_value") && bound.get("min_value", "None").kind != PyValue::Kind::none) {
    CONVBRIDGE_TRY(low, number(bound, "min_value", low));
  }
  if (bound.given("max_value") && bound.get("max_value", "None").kind != PyValue::Kind::none) {
    CONVBRIDGE_TRY(high, number(bound, "max_value", high));
  }
  if (high <= low) {
    return invalid_argument(fmt::format("max_val={} must be greater than min_val={} (PyTorch: \"max_val must be "
                                        "greater than min_val\")",
                                        python_literal(CallValue::of(high)), python_literal(CallValue::of(low))));
  }
  if (low == -1.0 && high == 1.0) layer.op = ActivationOp{Activation{K::hard_tanh}};
  else if (low == 0.0 && high == 6.0) layer.op = ActivationOp{Activation{K::relu6}};
  else {
    return make_error(ErrorCode::unsupported,
                      fmt::format("Hardtanh(min_val={}, max_val={}) is not translated: convbridge maps the bounds "
                                  "(-1, 1) (hard_tanh) and (0, 6) (relu6)",
                                  python_literal(CallValue::of(low)), python_literal(CallValue::of(high))));
  }
  return Ok{};
}

// Softplus(beta, threshold) is log(1 + exp(beta x)) / beta, and x itself above threshold / beta. Only beta=1 is
// softplus; the threshold=20 switch is below float32 resolution (log1p(exp(20)) - 20 = 2.1e-9), other thresholds
// are not.
Status parse_softplus(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kSoftplus>(call, layer, "beta=1.0, threshold=20.0"));
  CONVBRIDGE_TRY(const double beta, number(bound, "beta", 1.0));
  CONVBRIDGE_TRY(const double threshold, number(bound, "threshold", 20.0));
  if (beta != 1.0 || threshold < 20.0) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("Softplus(beta={}, threshold={}) is not translated: only beta=1 with threshold >= "
                                  "20 equals Keras' softplus within float32",
                                  python_literal(CallValue::of(beta)), python_literal(CallValue::of(threshold))));
  }
  layer.op = ActivationOp{Activation{K::softplus}};
  return Ok{};
}

template <ActivationKind Kind>
Status parse_shrink(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kShrink>(call, layer, "lambd=0.5"));
  CONVBRIDGE_TRY(const double lambd, number(bound, "lambd", 0.5));
  if (Kind == K::soft_shrink && lambd < 0) {
    return invalid_argument(fmt::format("lambd={} must be at least 0 (PyTorch: \"lambda must be greater or equal "
                                        "to 0\")",
                                        python_literal(CallValue::of(lambd))));
  }
  layer.op = ActivationOp{Activation{Kind, lambd}};
  return Ok{};
}

// Softmax(dim=None): PyTorch's implicit dim (torch/nn/functional.py _get_softmax_dim) is 0 for 0-, 1- and 3-D
// inputs and 1 otherwise, with a deprecation warning; it is kept as dim 1 and checked against the rank at plan time.
template <ActivationKind Kind>
Status parse_softmax(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound, bind<kDim>(call, layer, "dim=None"));
  ActivationOp op{Activation{Kind}};
  const PyValue dim = bound.get("dim", "None");
  if (dim.kind == PyValue::Kind::none) {
    layer.notes.push_back("dim=None: PyTorch picks dim 1 for 2-D and 4-D or larger inputs (dim 0 for 3-D ones)");
    op.axis = 1;
  } else if (dim.kind == PyValue::Kind::integer && dim.integer >= -8 && dim.integer < 8) {
    op.axis = static_cast<int>(dim.integer);
  } else {
    return invalid_argument(fmt::format("dim={} must be an int within the input's dimensions", dim.source));
  }
  layer.op = op;
  return Ok{};
}

Status parse_prelu(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 bind<kPrelu>(call, layer, "num_parameters=1, init=0.25, device=None, dtype=None"));
  ActivationOp op;
  op.prelu = true;
  const PyValue count = bound.get("num_parameters", "1");
  if (count.kind != PyValue::Kind::integer) {
    return invalid_argument(fmt::format("num_parameters={} must be an int, not {}", count.source, kind_name(count.kind)));
  }
  if (count.integer <= 0 || count.integer > kMaxSizeArgument) {
    return invalid_argument(fmt::format("num_parameters={} must be a positive int (at most {})", count.source,
                                        kMaxSizeArgument));
  }
  op.prelu_parameters = count.integer;
  CONVBRIDGE_TRY(op.prelu_init, number(bound, "init", 0.25));
  const PyValue device = bound.get("device", "None");
  if (device.kind == PyValue::Kind::string && device.text == "meta") {
    return make_error(ErrorCode::unsupported, "device='meta' holds no weight values to translate");
  }
  if (device.kind != PyValue::Kind::none && device.kind != PyValue::Kind::string &&
      device.kind != PyValue::Kind::name && device.kind != PyValue::Kind::call && device.kind != PyValue::Kind::integer) {
    return invalid_argument(fmt::format("device={} is not a device", device.source));
  }
  const PyValue dtype = bound.get("dtype", "None");
  if (dtype.kind != PyValue::Kind::none && dtype.text != "torch.float32" && dtype.text != "torch.float") {
    return make_error(ErrorCode::unsupported, fmt::format("dtype={}: convbridge translates float32 layers", dtype.source));
  }
  layer.op = op;
  return Ok{};
}

const std::array<LayerClass, 24> kClasses = {{
    {Framework::pytorch, "ReLU", kInplace, parse_plain<K::relu, kInplace>},
    {Framework::pytorch, "ReLU6", kInplace, parse_plain<K::relu6, kInplace>},
    {Framework::pytorch, "LeakyReLU", kLeaky, parse_leaky_relu},
    {Framework::pytorch, "ELU", kAlpha, parse_alpha<K::elu>},
    {Framework::pytorch, "SELU", kInplace, parse_plain<K::selu, kInplace>},
    {Framework::pytorch, "CELU", kAlpha, parse_alpha<K::celu>},
    {Framework::pytorch, "GELU", kGelu, parse_gelu},
    {Framework::pytorch, "SiLU", kInplace, parse_plain<K::silu, kInplace>},
    {Framework::pytorch, "Mish", kInplace, parse_plain<K::mish, kInplace>},
    {Framework::pytorch, "Hardswish", kInplace, parse_plain<K::hard_silu, kInplace>},
    {Framework::pytorch, "Hardsigmoid", kInplace, parse_plain<K::hard_sigmoid, kInplace>},
    {Framework::pytorch, "Hardtanh", kHardtanh, parse_hardtanh},
    {Framework::pytorch, "Sigmoid", kNoParameters, parse_plain<K::sigmoid, kNoParameters>},
    {Framework::pytorch, "Tanh", kNoParameters, parse_plain<K::tanh, kNoParameters>},
    {Framework::pytorch, "Softplus", kSoftplus, parse_softplus},
    {Framework::pytorch, "Softsign", kNoParameters, parse_plain<K::softsign, kNoParameters>},
    {Framework::pytorch, "Tanhshrink", kNoParameters, parse_plain<K::tanh_shrink, kNoParameters>},
    {Framework::pytorch, "Hardshrink", kShrink, parse_shrink<K::hard_shrink>},
    {Framework::pytorch, "Softshrink", kShrink, parse_shrink<K::soft_shrink>},
    {Framework::pytorch, "LogSigmoid", kNoParameters, parse_plain<K::log_sigmoid, kNoParameters>},
    {Framework::pytorch, "Softmax", kDim, parse_softmax<K::softmax>},
    {Framework::pytorch, "LogSoftmax", kDim, parse_softmax<K::log_softmax>},
    {Framework::pytorch, "PReLU", kPrelu, parse_prelu},
    {Framework::pytorch, "Softmax2d", kNoParameters, parse_softmax<K::softmax>},
}};

}  // namespace

std::span<const LayerClass> torch_activation_classes() { return kClasses; }

}  // namespace convbridge::frontends
