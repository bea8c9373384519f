// PyTorch's padding modules and F.pad, and PixelShuffle / PixelUnshuffle, with PyTorch's own checks
// (torch/nn/modules/padding.py _ConstantPadNd/_ReflectionPadNd/..., torch/nn/functional.py pad -> aten
// PadNd.cpp _pad_enum; torch/nn/modules/pixelshuffle.py). A padding tuple lists the LAST axis first:
// (left, right, top, bottom, front, back); the op stores the spatial axes in order, so the pairs are reversed here.
#include <fmt/format.h>

#include <array>
#include <string>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

constexpr std::array<std::string_view, 1> kPaddingParameters = {"padding"};
constexpr std::array<std::string_view, 2> kConstantPadParameters = {"padding", "value"};
constexpr std::array<std::string_view, 4> kFunctionalPadParameters = {"input", "pad", "mode", "value"};
constexpr std::array<std::string_view, 1> kUpscaleParameters = {"upscale_factor"};
constexpr std::array<std::string_view, 1> kDownscaleParameters = {"downscale_factor"};
constexpr std::array<std::string_view, 2> kFunctionalUpscaleParameters = {"input", "upscale_factor"};
constexpr std::array<std::string_view, 2> kFunctionalDownscaleParameters = {"input", "downscale_factor"};

template <const auto& Names>
std::string hint(std::string_view keyword) {
  return closest_name_hint(keyword, Names);
}

std::string_view mode_name(PadFill fill) {
  switch (fill) {
    case PadFill::constant: return "constant";
    case PadFill::reflect: return "reflect";
    case PadFill::replicate: return "replicate";
    case PadFill::circular: return "circular";
    case PadFill::symmetric: return "symmetric";
  }
  return "?";
}

// padding=: an int for every side, or a tuple (left, right[, top, bottom[, front, back]]), last axis first.
// Constant padding takes fewer pairs than axes (F.pad pads the last axes only); the other modes need one pair per
// spatial axis of a batched input ("Padding size 2 is not supported for 4D input tensor").
Result<std::vector<PadPair>> torch_pads(const PyValue& value, std::string_view name, int rank, PadFill fill) {
  auto side = [&](const PyValue& v) -> Result<int64_t> {
    if (v.kind != PyValue::Kind::integer) {
      return invalid_argument(fmt::format("{}={} must be an int or a tuple of ints, not {}", name, value.source,
                                          kind_name(v.kind)));
    }
    if (v.integer > kMaxSizeArgument || v.integer < -kMaxSizeArgument) {
      return invalid_argument(fmt::format("{}={} is too large (the limit is {})", name, v.source, kMaxSizeArgument));
    }
    return v.integer;
  };
  std::vector<PadPair> pads(static_cast<size_t>(rank));
  if (value.kind != PyValue::Kind::sequence) {
    CONVBRIDGE_TRY(const int64_t all, side(value));
    for (PadPair& pad : pads) pad = {all, all};
    return pads;
  }
  const size_t entries = value.items.size();
  if (entries % 2 != 0) {
    return invalid_argument(fmt::format("{}={} has {} entries (PyTorch: \"Padding length must be divisible by 2\")",
                                        name, value.source, entries));
  }
  if (entries > 2 * static_cast<size_t>(rank)) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("{}={} has {} entries: past the {} spatial axes it pads the channel or batch axis, "
                                  "which convbridge does not translate",
                                  name, value.source, entries, rank));
  }
  if (entries == 0 || (fill != PadFill::constant && entries != 2 * static_cast<size_t>(rank))) {
    return invalid_argument(fmt::format("{}={} has {} entries; {} padding of a {}-D input needs {} (PyTorch: "
                                        "\"Padding size {} is not supported for {}D input tensor\")",
                                        name, value.source, entries, mode_name(fill), rank + 2, 2 * rank, entries,
                                        rank + 2));
  }
  for (size_t pair = 0; pair < entries / 2; ++pair) {
    CONVBRIDGE_TRY(const int64_t before, side(value.items[2 * pair]));
    CONVBRIDGE_TRY(const int64_t after, side(value.items[2 * pair + 1]));
    pads[static_cast<size_t>(rank) - 1 - pair] = {before, after};  // pair 0 is the last axis
  }
  return pads;
}

Result<double> pad_value(const PyValue& value, std::string_view name) {
  if (value.kind == PyValue::Kind::integer) return static_cast<double>(value.integer);
  if (value.kind == PyValue::Kind::number) return value.number;
  return invalid_argument(fmt::format("{}={} must be a number, not {}", name, value.source, kind_name(value.kind)));
}

template <int Rank, PadFill Fill>
Status parse_padding_module(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, kPaddingParameters, 1, "padding",
                                      hint<kPaddingParameters>));
  PadOp op;
  op.rank = Rank;
  op.fill = Fill;
  CONVBRIDGE_TRY(op.pads, torch_pads(bound.get("padding", ""), "padding", Rank, Fill));
  layer.op = op;
  return Ok{};
}

template <int Rank>
Status parse_constant_pad(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, kConstantPadParameters, 2, "padding, value",
                                      hint<kConstantPadParameters>));
  PadOp op;
  op.rank = Rank;
  CONVBRIDGE_TRY(op.pads, torch_pads(bound.get("padding", ""), "padding", Rank, PadFill::constant));
  CONVBRIDGE_TRY(op.value, pad_value(bound.get("value", ""), "value"));
  layer.op = op;
  return Ok{};
}

Status input_is_a_tensor(const BoundArguments& bound, std::string_view function) {
  const PyValue input = bound.get("input", "");
  if (input.kind != PyValue::Kind::name) {
    return invalid_argument(fmt::format("{}: input={} must be the tensor (a name such as x), not {}", function,
                                        input.source, kind_name(input.kind)));
  }
  return Ok{};
}

// F.pad(input, pad, mode='constant', value=None): the spatial rank is the number of pairs.
Status parse_functional_pad(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, "pad", kFunctionalPadParameters, 2,
                                      "input, pad, mode='constant', value=None", hint<kFunctionalPadParameters>));
  CONVBRIDGE_CHECK(input_is_a_tensor(bound, "pad"));
  PadOp op;
  const PyValue mode = bound.get("mode", "'constant'");
  if (mode.kind != PyValue::Kind::string) {
    return invalid_argument(fmt::format("mode={} must be a string, not {}", mode.source, kind_name(mode.kind)));
  }
  if (mode.text == "constant") op.fill = PadFill::constant;
  else if (mode.text == "reflect") op.fill = PadFill::reflect;
  else if (mode.text == "replicate") op.fill = PadFill::replicate;
  else if (mode.text == "circular") op.fill = PadFill::circular;
  else {
    return invalid_argument(fmt::format("mode={} is not a padding mode (PyTorch: \"Unrecognised padding mode {}\"); "
                                        "PyTorch has 'constant', 'reflect', 'replicate', 'circular'",
                                        mode.source, printable_excerpt(mode.text, 40)));
  }
  const PyValue pad = bound.get("pad", "");
  if (pad.kind != PyValue::Kind::sequence) {
    return invalid_argument(fmt::format("pad={} must be a tuple of ints (left, right, top, bottom, ...), not {}",
                                        pad.source, kind_name(pad.kind)));
  }
  if (pad.items.size() % 2 != 0) {
    return invalid_argument(fmt::format("pad={} has {} entries (PyTorch: \"Padding length must be divisible by 2\")",
                                        pad.source, pad.items.size()));
  }
  op.rank = static_cast<int>(pad.items.size() / 2);
  if (op.rank < 1 || op.rank > 3) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("pad={} pads {} axes: convbridge translates 1 to 3 spatial axes of (N, C, ...)",
                                  pad.source, op.rank));
  }
  CONVBRIDGE_TRY(op.pads, torch_pads(pad, "pad", op.rank, op.fill));
  if (bound.given("value")) {
    const PyValue value = bound.get("value", "None");
    if (value.kind != PyValue::Kind::none) {
      CONVBRIDGE_TRY(op.value, pad_value(value, "value"));
      if (op.fill != PadFill::constant && op.value != 0.0) {
        return invalid_argument(fmt::format("value={} with mode={} (PyTorch: \"Padding mode \\\"{}\\\" doesn't take "
                                            "in value argument\")",
                                            value.source, mode.source, mode.text));
      }
    }
  }
  layer.op = op;
  return Ok{};
}

// PixelShuffle(upscale_factor) / PixelUnshuffle(downscale_factor): PyTorch takes any int at construction and
// checks it is positive at the first forward (measured: "pixel_shuffle expects a positive upscale_factor").
Result<int64_t> block_size(const PyValue& value, std::string_view name) {
  if (value.kind != PyValue::Kind::integer) {
    return invalid_argument(fmt::format("{}={} must be an int, not {}", name, value.source, kind_name(value.kind)));
  }
  if (value.integer <= 0) {
    return invalid_argument(fmt::format("{}={} must be positive (PyTorch: \"expects a positive {}\")", name,
                                        value.source, name));
  }
  if (value.integer > kMaxSizeArgument) {
    return invalid_argument(fmt::format("{}={} is too large (the limit is {})", name, value.source, kMaxSizeArgument));
  }
  return value.integer;
}

template <bool ToSpace, bool Functional>
Status parse_pixel_shuffle(const PyCall& call, OpLayer& layer) {
  constexpr std::string_view name = ToSpace ? "upscale_factor" : "downscale_factor";
  const auto& names = Functional ? (ToSpace ? std::span<const std::string_view>(kFunctionalUpscaleParameters)
                                            : std::span<const std::string_view>(kFunctionalDownscaleParameters))
                                 : (ToSpace ? std::span<const std::string_view>(kUpscaleParameters)
                                            : std::span<const std::string_view>(kDownscaleParameters));
  std::string (*keyword_hint)(std::string_view) =
      Functional ? (ToSpace ? hint<kFunctionalUpscaleParameters> : hint<kFunctionalDownscaleParameters>)
                 : (ToSpace ? hint<kUpscaleParameters> : hint<kDownscaleParameters>);
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, names, names.size(),
                                      Functional ? fmt::format("input, {}", name) : std::string(name), keyword_hint));
  if constexpr (Functional) CONVBRIDGE_CHECK(input_is_a_tensor(bound, layer.class_name));
  PixelShuffleOp op;
  op.to_space = ToSpace;
  op.order = ChannelOrder::crd;
  CONVBRIDGE_TRY(op.block, block_size(bound.get(name, ""), name));
  layer.op = op;
  return Ok{};
}

const std::array<LayerClass, 20> kClasses = {{
    {Framework::pytorch, "ZeroPad1d", kPaddingParameters, parse_padding_module<1, PadFill::constant>},
    {Framework::pytorch, "ZeroPad2d", kPaddingParameters, parse_padding_module<2, PadFill::constant>},
    {Framework::pytorch, "ZeroPad3d", kPaddingParameters, parse_padding_module<3, PadFill::constant>},
    {Framework::pytorch, "ConstantPad1d", kConstantPadParameters, parse_constant_pad<1>},
    {Framework::pytorch, "ConstantPad2d", kConstantPadParameters, parse_constant_pad<2>},
    {Framework::pytorch, "ConstantPad3d", kConstantPadParameters, parse_constant_pad<3>},
    {Framework::pytorch, "ReflectionPad1d", kPaddingParameters, parse_padding_module<1, PadFill::reflect>},
    {Framework::pytorch, "ReflectionPad2d", kPaddingParameters, parse_padding_module<2, PadFill::reflect>},
    {Framework::pytorch, "ReflectionPad3d", kPaddingParameters, parse_padding_module<3, PadFill::reflect>},
    {Framework::pytorch, "ReplicationPad1d", kPaddingParameters, parse_padding_module<1, PadFill::replicate>},
    {Framework::pytorch, "ReplicationPad2d", kPaddingParameters, parse_padding_module<2, PadFill::replicate>},
    {Framework::pytorch, "ReplicationPad3d", kPaddingParameters, parse_padding_module<3, PadFill::replicate>},
    {Framework::pytorch, "CircularPad1d", kPaddingParameters, parse_padding_module<1, PadFill::circular>},
    {Framework::pytorch, "CircularPad2d", kPaddingParameters, parse_padding_module<2, PadFill::circular>},
    {Framework::pytorch, "CircularPad3d", kPaddingParameters, parse_padding_module<3, PadFill::circular>},
    {Framework::pytorch, "pad", kFunctionalPadParameters, parse_functional_pad},
    {Framework::pytorch, "PixelShuffle", kUpscaleParameters, parse_pixel_shuffle<true, false>},
    {Framework::pytorch, "PixelUnshuffle", kDownscaleParameters, parse_pixel_shuffle<false, false>},
    {Framework::pytorch, "pixel_shuffle", kFunctionalUpscaleParameters, parse_pixel_shuffle<true, true>},
    {Framework::pytorch, "pixel_unshuffle", kFunctionalDownscaleParameters, parse_pixel_shuffle<false, true>},
}};

}  // namespace

std::span<const LayerClass> torch_padding_classes() { return kClasses; }

}  // namespace convbridge::frontends
