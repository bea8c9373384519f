// Keras' ZeroPaddingND / CroppingND and TensorFlow's tf.pad, tf.nn.depth_to_space / space_to_depth, with their
// own checks (keras/src/layers/reshaping/zero_padding2d.py and cropping2d.py __init__; tensorflow's Pad,
// MirrorPad, DepthToSpace and SpaceToDepth kernels, messages measured with tensorflow 2.21). Every key of the
// layers' get_config() parses: padding / cropping, data_format, and the base layer's name, trainable, dtype.
#include <fmt/format.h>

#include <array>
#include <string>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/keras/layer_base_arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

constexpr std::array<std::string_view, 6> kZeroPaddingParameters = {"padding", "data_format", "name",
                                                                     "trainable", "dtype", "input_shape"};
constexpr std::array<std::string_view, 6> kCroppingParameters = {"cropping", "data_format", "name",
                                                                  "trainable", "dtype", "input_shape"};
constexpr std::array<std::string_view, 5> kTfPadParameters = {"tensor", "paddings", "mode", "constant_values",
                                                              "name"};
constexpr std::array<std::string_view, 4> kTfBlockParameters = {"input", "block_size", "data_format", "name"};

template <const auto& Names>
std::string hint(std::string_view keyword) {
  return closest_name_hint(keyword, Names);
}

constexpr std::string_view kLetters[3] = {"L", "H, W", "D, H, W"};

Result<int64_t> keras_side(const PyValue& v, const PyValue& whole, std::string_view name) {
  if (v.kind != PyValue::Kind::integer) {
    return invalid_argument(fmt::format("{}={} must hold ints, not {}", name, whole.source, kind_name(v.kind)));
  }
  if (v.integer < 0) {
    // Keras: "including values {-1} that do not satisfy `value >= 0`" (an int is accepted by the constructor
    // and fails in tf.pad / the crop slice on the first call).
    return invalid_argument(fmt::format("{}={} must not be negative (Keras: \"values ... that do not satisfy `value "
                                        ">= 0`\"){}",
                                        name, whole.source,
                                        name == "padding" ? "; to crop, use Cropping layers" : ""));
  }
  if (v.integer > kMaxSizeArgument) {
    return invalid_argument(fmt::format("{}={} is too large (the limit is {})", name, whole.source, kMaxSizeArgument));
  }
  return v.integer;
}

// Keras' forms: an int (every side); for 1-D a pair (left, right); for 2-D/3-D one int per axis (both sides) or
// one (before, after) pair per axis.
Result<std::vector<PadPair>> keras_pairs(const PyValue& value, std::string_view name, int rank) {
  const size_t axes = static_cast<size_t>(rank);
  std::vector<PadPair> pairs(axes);
  const std::string forms = rank == 1 ? "an int or a tuple of 2 ints (left, right)"
                                      : fmt::format("an int, a tuple of {} ints ({}), or a tuple of {} (before, after) "
                                                    "pairs",
                                                    rank, kLetters[rank - 1], rank);
  if (value.kind == PyValue::Kind::integer) {
    CONVBRIDGE_TRY(const int64_t all, keras_side(value, value, name));
    for (PadPair& pair : pairs) pair = {all, all};
    return pairs;
  }
  if (value.kind != PyValue::Kind::sequence) {
    return invalid_argument(fmt::format("{}={} must be {}, not {}", name, value.source, forms, kind_name(value.kind)));
  }
  if (rank == 1) {
    if (value.items.size() != 2) {
      return invalid_argument(fmt::format("{}={} must be {} (Keras: \"The `{}` argument must be a tuple of 2 "
                                          "integers\")",
                                          name, value.source, forms, name));
    }
    CONVBRIDGE_TRY(pairs[0].before, keras_side(value.items[0], value, name));
    CONVBRIDGE_TRY(pairs[0].after, keras_side(value.items[1], value, name));
    return pairs;
  }
  if (value.items.size() != axes) {
    return invalid_argument(fmt::format("{}={} has {} entries; it must be {} (Keras: \"`{}` should have {} "
                                        "elements\")",
                                        name, value.source, value.items.size(), forms, name, rank));
  }
  for (size_t axis = 0; axis < axes; ++axis) {
    const PyValue& item = value.items[axis];
    if (item.kind == PyValue::Kind::sequence) {
      if (item.items.size() != 2) {
        return invalid_argument(fmt::format("{}={}: entry {} must be a (before, after) pair of ints", name,
                                            value.source, axis + 1));
      }
      CONVBRIDGE_TRY(pairs[axis].before, keras_side(item.items[0], value, name));
      CONVBRIDGE_TRY(pairs[axis].after, keras_side(item.items[1], value, name));
    } else {
      CONVBRIDGE_TRY(const int64_t both, keras_side(item, value, name));
      pairs[axis] = {both, both};
    }
  }
  return pairs;
}

Status channels_last_only(const BoundArguments& bound) {
  const PyValue format = bound.get("data_format", "None");
  if (format.kind == PyValue::Kind::none) return Ok{};
  if (format.kind != PyValue::Kind::string ||
      (format.text != "channels_last" && format.text != "channels_first")) {
    return invalid_argument(fmt::format("data_format={} must be 'channels_last' or 'channels_first'", format.source));
  }
  if (format.text == "channels_first") {
    return make_error(ErrorCode::unsupported,
                      "data_format='channels_first' is not translated: convbridge reads Keras tensors as "
                      "channels_last (N, *spatial, C)");
  }
  return Ok{};
}

// input_shape=(*spatial, C) in the constructor: the shape without the batch; None for sizes that vary.
Status declared_input_shape(const BoundArguments& bound, int rank, OpLayer& layer) {
  const PyValue value = bound.get("input_shape", "None");
  if (value.kind == PyValue::Kind::none) return Ok{};
  bool valid = value.kind == PyValue::Kind::sequence && value.items.size() == static_cast<size_t>(rank) + 1;
  std::vector<int64_t> shape;
  for (size_t i = 0; valid && i < value.items.size(); ++i) {
    const PyValue& item = value.items[i];
    if (item.kind == PyValue::Kind::none) shape.push_back(kUnknownSize);
    else if (item.kind == PyValue::Kind::integer && item.integer > 0 && item.integer <= kMaxSizeArgument)
      shape.push_back(item.integer);
    else valid = false;
  }
  if (!valid) {
    return invalid_argument(fmt::format("input_shape={} must be the input's shape without the batch: {} entries "
                                        "({}, C), positive ints or None",
                                        value.source, rank + 1, kLetters[rank - 1]));
  }
  layer.declared_input_shape = std::move(shape);
  return Ok{};
}

template <int Rank, bool Crop>
Status parse_keras_pad_layer(const PyCall& call, OpLayer& layer) {
  constexpr std::string_view name = Crop ? "cropping" : "padding";
  const auto& names = Crop ? kCroppingParameters : kZeroPaddingParameters;
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, names, 0,
                                      fmt::format("{}=..., data_format=None", name),
                                      Crop ? hint<kCroppingParameters> : hint<kZeroPaddingParameters>));
  CONVBRIDGE_CHECK(check_layer_base_arguments(bound, /*keras_layer=*/true));
  CONVBRIDGE_CHECK(channels_last_only(bound));
  CONVBRIDGE_CHECK(declared_input_shape(bound, Rank, layer));
  // Defaults: ZeroPadding1D(padding=1), ZeroPadding2D((1, 1)), ZeroPadding3D(((1, 1),) * 3); Cropping1D((1, 1)),
  // Cropping2D(((0, 0), (0, 0))), Cropping3D(((1, 1),) * 3).
  const std::string_view default_source = Crop && Rank == 2 ? "0" : "1";
  CONVBRIDGE_TRY(const std::vector<PadPair> pairs, keras_pairs(bound.get(name, default_source), name, Rank));
  PadOp op;
  op.rank = Rank;
  op.pads = pairs;
  if constexpr (Crop) {
    for (PadPair& pair : op.pads) pair = {-pair.before, -pair.after};
  }
  layer.op = op;
  return Ok{};
}

Status input_is_a_tensor(const BoundArguments& bound, std::string_view parameter, std::string_view function) {
  const PyValue input = bound.get(parameter, "");
  if (input.kind != PyValue::Kind::name) {
    return invalid_argument(fmt::format("{}: {}={} must be the tensor (a name such as x), not {}", function,
                                        parameter, input.source, kind_name(input.kind)));
  }
  return Ok{};
}

// tf.pad(tensor, paddings, mode='CONSTANT', constant_values=0, name=None) on a channels_last tensor: paddings has
// one [before, after] pair per axis, batch and channels included; mode is case-insensitive (array_ops.pad upper()s
// it).
Status parse_tf_pad(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, "tf.pad", kTfPadParameters, 2,
                                      "tensor, paddings, mode='CONSTANT', constant_values=0, name=None",
                                      hint<kTfPadParameters>));
  CONVBRIDGE_CHECK(input_is_a_tensor(bound, "tensor", "tf.pad"));
  CONVBRIDGE_CHECK(check_layer_base_arguments(bound, /*keras_layer=*/false));
  PadOp op;
  const PyValue mode = bound.get("mode", "'CONSTANT'");
  std::string upper = mode.text;
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  if (mode.kind != PyValue::Kind::string || (upper != "CONSTANT" && upper != "REFLECT" && upper != "SYMMETRIC")) {
    return invalid_argument(fmt::format("mode={} must be \"CONSTANT\", \"REFLECT\" or \"SYMMETRIC\" (TensorFlow: "
                                        "\"Value of argument `mode` expected to be one of ...\")",
                                        mode.source));
  }
  op.fill = upper == "CONSTANT" ? PadFill::constant : upper == "REFLECT" ? PadFill::reflect : PadFill::symmetric;
  const PyValue paddings = bound.get("paddings", "");
  const std::string_view shape_rule = "one [before, after] pair per axis of the channels_last input: "
                                      "[[0, 0], [top, bottom], [left, right], [0, 0]]";
  if (paddings.kind != PyValue::Kind::sequence || paddings.items.size() < 3 || paddings.items.size() > 5) {
    return invalid_argument(fmt::format("paddings={} must be {} (3 to 5 pairs: 1 to 3 spatial axes)",
                                        paddings.source, shape_rule));
  }
  op.rank = static_cast<int>(paddings.items.size()) - 2;
  std::vector<PadPair> all;
  for (const PyValue& pair : paddings.items) {
    if (pair.kind != PyValue::Kind::sequence || pair.items.size() != 2) {
      return invalid_argument(fmt::format("paddings={} must be {}", paddings.source, shape_rule));
    }
    PadPair p;
    for (int side = 0; side < 2; ++side) {
      const PyValue& v = pair.items[static_cast<size_t>(side)];
      if (v.kind != PyValue::Kind::integer) {
        return invalid_argument(fmt::format("paddings={} must hold ints, not {}", paddings.source, kind_name(v.kind)));
      }
      if (v.integer < 0) {
        return invalid_argument(fmt::format("paddings={}: {} is negative (TensorFlow: \"Paddings must be "
                                            "non-negative\")",
                                            paddings.source, v.source));
      }
      if (v.integer > kMaxSizeArgument) {
        return invalid_argument(fmt::format("paddings={}: {} is too large (the limit is {})", paddings.source,
                                            v.source, kMaxSizeArgument));
      }
      (side == 0 ? p.before : p.after) = v.integer;
    }
    all.push_back(p);
  }
  if (all.front() != PadPair{} || all.back() != PadPair{}) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("paddings={} pads the {} axis: convbridge translates padding of the spatial axes "
                                  "only (the first pair is the batch, the last the channels)",
                                  paddings.source, all.front() != PadPair{} ? "batch" : "channel"));
  }
  op.pads.assign(all.begin() + 1, all.end() - 1);
  const PyValue value = bound.get("constant_values", "0");
  if (value.kind == PyValue::Kind::integer) op.value = static_cast<double>(value.integer);
  else if (value.kind == PyValue::Kind::number) op.value = value.number;
  else {
    return invalid_argument(fmt::format("constant_values={} must be a number, not {}", value.source,
                                        kind_name(value.kind)));
  }
  // TensorFlow ignores constant_values for REFLECT and SYMMETRIC (measured); so does the op.
  if (op.fill != PadFill::constant) {
    if (op.value != 0.0) layer.notes.push_back(fmt::format("constant_values={} is ignored by mode={}", value.source, mode.source));
    op.value = 0.0;
  }
  layer.op = op;
  return Ok{};
}

// tf.nn.depth_to_space / space_to_depth(input, block_size, data_format='NHWC', name=None): the DCR channel order.
template <bool ToSpace>
Status parse_tf_block(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(const BoundArguments bound,
                 BoundArguments::bind(call, layer.class_name, kTfBlockParameters, 2,
                                      "input, block_size, data_format='NHWC', name=None", hint<kTfBlockParameters>));
  CONVBRIDGE_CHECK(input_is_a_tensor(bound, "input", layer.class_name));
  CONVBRIDGE_CHECK(check_layer_base_arguments(bound, /*keras_layer=*/false));
  const PyValue format = bound.get("data_format", "'NHWC'");
  if (format.kind != PyValue::Kind::string || (format.text != "NHWC" && format.text != "NCHW" &&
                                               format.text != "NCHW_VECT_C")) {
    return invalid_argument(fmt::format("data_format={} must be 'NHWC', 'NCHW' or 'NCHW_VECT_C'", format.source));
  }
  if (format.text != "NHWC") {
    return make_error(ErrorCode::unsupported, fmt::format("data_format={} is not translated: convbridge reads "
                                                          "TensorFlow tensors as NHWC",
                                                          format.source));
  }
  const PyValue block = bound.get("block_size", "");
  if (block.kind != PyValue::Kind::integer) {
    return invalid_argument(fmt::format("block_size={} must be an int, not {}", block.source, kind_name(block.kind)));
  }
  if (block.integer < 2) {
    return invalid_argument(fmt::format("block_size={} must be at least 2 (TensorFlow: \"Value for attr "
                                        "'block_size' of {} must be at least minimum 2\")",
                                        block.source, block.source));
  }
  if (block.integer > kMaxSizeArgument) {
    return invalid_argument(fmt::format("block_size={} is too large (the limit is {})", block.source, kMaxSizeArgument));
  }
  PixelShuffleOp op;
  op.block = block.integer;
  op.to_space = ToSpace;
  op.order = ChannelOrder::dcr;
  layer.op = op;
  return Ok{};
}

const std::array<LayerClass, 9> kClasses = {{
    {Framework::keras, "ZeroPadding1D", kZeroPaddingParameters, parse_keras_pad_layer<1, false>},
    {Framework::keras, "ZeroPadding2D", kZeroPaddingParameters, parse_keras_pad_layer<2, false>},
    {Framework::keras, "ZeroPadding3D", kZeroPaddingParameters, parse_keras_pad_layer<3, false>},
    {Framework::keras, "Cropping1D", kCroppingParameters, parse_keras_pad_layer<1, true>},
    {Framework::keras, "Cropping2D", kCroppingParameters, parse_keras_pad_layer<2, true>},
    {Framework::keras, "Cropping3D", kCroppingParameters, parse_keras_pad_layer<3, true>},
    {Framework::tensorflow, "pad", kTfPadParameters, parse_tf_pad},
    {Framework::tensorflow, "nn.depth_to_space", kTfBlockParameters, parse_tf_block<true>},
    {Framework::tensorflow, "nn.space_to_depth", kTfBlockParameters, parse_tf_block<false>},
}};

}  // namespace

std::span<const LayerClass> keras_padding_classes() { return kClasses; }

}  // namespace convbridge::frontends
