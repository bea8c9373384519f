// Keras resizing layers (UpSampling1D/2D/3D, Resizing) and tf.image.resize, with Keras' and TF's own checks:
// keras/src/layers/reshaping/up_sampling{1,2,3}d.py (__init__, _resize_images), keras/src/utils/
// argument_validation.py standardize_tuple, keras/src/layers/preprocessing/image_preprocessing/resizing.py,
// keras/src/backend/tensorflow/image.py resize (RESIZE_INTERPOLATIONS), tensorflow/python/ops/image_ops_impl.py
// resize_images_v2.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <string>

#include "convbridge/frontends.hpp"
#include "frontends/arguments.hpp"
#include "frontends/op_layer_classes.hpp"

namespace convbridge::frontends {
namespace {

// Keyword arguments every Keras layer takes (keras/src/layers/layer.py Layer.__init__); none changes the values.
constexpr std::array<std::string_view, 7> kLayerKeywords = {"name",      "trainable", "dtype",     "autocast",
                                                            "input_dim", "input_shape", "activity_regularizer"};

template <size_t N>
constexpr std::array<std::string_view, N + kLayerKeywords.size()> with_layer_keywords(
    std::array<std::string_view, N> own) {
  std::array<std::string_view, N + kLayerKeywords.size()> out{};
  for (size_t i = 0; i < N; ++i) out[i] = own[i];
  for (size_t i = 0; i < kLayerKeywords.size(); ++i) out[N + i] = kLayerKeywords[i];
  return out;
}

// Each class's own parameters in positional order (what LayerClass lists), and with the Layer keywords (what a
// call binds).
constexpr std::array<std::string_view, 1> kUpSampling1DOwn = {"size"};
constexpr std::array<std::string_view, 3> kUpSampling2DOwn = {"size", "data_format", "interpolation"};
constexpr std::array<std::string_view, 2> kUpSampling3DOwn = {"size", "data_format"};
constexpr std::array<std::string_view, 9> kResizingOwn = {"height",    "width",      "interpolation",
                                                          "crop_to_aspect_ratio", "pad_to_aspect_ratio",
                                                          "fill_mode", "fill_value", "antialias", "data_format"};
constexpr auto kUpSampling1DParameters = with_layer_keywords(kUpSampling1DOwn);
constexpr auto kUpSampling2DParameters = with_layer_keywords(kUpSampling2DOwn);
constexpr auto kUpSampling3DParameters = with_layer_keywords(kUpSampling3DOwn);
constexpr auto kResizingParameters = with_layer_keywords(kResizingOwn);
constexpr std::array<std::string_view, 6> kTfResizeParameters = {"images",    "size",      "method",
                                                                 "preserve_aspect_ratio", "antialias", "name"};

// keras/src/backend/tensorflow/image.py RESIZE_INTERPOLATIONS.
constexpr std::array<std::string_view, 6> kKerasInterpolations = {"bilinear", "nearest", "lanczos3",
                                                                  "lanczos5", "bicubic", "area"};
// tf.image.ResizeMethod values.
constexpr std::array<std::string_view, 8> kTfMethods = {"bilinear", "nearest",  "bicubic",  "area",
                                                        "lanczos3", "lanczos5", "gaussian", "mitchellcubic"};

template <const auto& Names>
std::string hint(std::string_view keyword) {
  const bool has_interpolation = std::find(Names.begin(), Names.end(), "interpolation") != Names.end();
  if (keyword == "mode" && has_interpolation) {
    return " (did you mean 'interpolation'? 'mode' is the PyTorch name)";
  }
  if (keyword == "scale_factor") return " (did you mean 'size'? UpSampling's size is the integer factor)";
  return closest_name_hint(keyword, Names);
}

Status positional_limit(const PyCall& call, std::string_view class_name, size_t limit) {
  size_t positional = 0;
  for (const PyArgument& a : call.arguments) positional += a.keyword ? 0 : 1;
  if (positional > limit) {
    return invalid_argument(fmt::format("{} takes at most {} positional arguments ({} given); the others are "
                                        "keyword-only",
                                        class_name, limit, positional));
  }
  return Ok{};
}

// Layer.__init__ keywords: dtype must be float32 (the plans compute float32); input_shape is kept for the plan.
Status layer_keywords(const BoundArguments& bound, int rank, OpLayer& layer) {
  const PyValue name = bound.get("name", "None");
  if (name.kind != PyValue::Kind::none && name.kind != PyValue::Kind::string) {
    return invalid_argument(fmt::format("name={} must be a string or None, not {}", name.source, kind_name(name.kind)));
  }
  for (const std::string_view flag : {"trainable", "autocast"}) {
    const PyValue value = bound.get(flag, "True");
    if (value.kind != PyValue::Kind::boolean) {
      return invalid_argument(
          fmt::format("{}={} must be True or False, not {}", flag, value.source, kind_name(value.kind)));
    }
  }
  const PyValue input_dim = bound.get("input_dim", "None");
  if (input_dim.kind != PyValue::Kind::none) {
    // Layer.__init__ turns input_dim into input_shape=(input_dim,): a 1-entry shape no resizing layer takes.
    return invalid_argument(fmt::format("input_dim={}: a resizing layer takes input_shape=(*spatial, C), not "
                                        "input_dim (the shape of a 1-D input)",
                                        input_dim.source));
  }
  const PyValue regularizer = bound.get("activity_regularizer", "None");
  if (regularizer.kind != PyValue::Kind::none) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("activity_regularizer={} is not translated: it adds a training loss, which a "
                                  "translated layer does not carry",
                                  regularizer.source));
  }
  const PyValue dtype = bound.get("dtype", "None");
  if (!(dtype.kind == PyValue::Kind::none || (dtype.kind == PyValue::Kind::string && dtype.text == "float32"))) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("dtype={} is not supported: convbridge plans float32 layers", dtype.source));
  }
  const PyValue shape = bound.get("input_shape", "None");
  if (shape.kind == PyValue::Kind::none) return Ok{};
  const size_t expected = static_cast<size_t>(rank) + 1;
  bool valid = shape.kind == PyValue::Kind::sequence && shape.items.size() == expected;
  std::vector<int64_t> declared;
  for (size_t i = 0; valid && i < shape.items.size(); ++i) {
    const PyValue& item = shape.items[i];
    if (item.kind == PyValue::Kind::none && i + 1 < expected) {
      declared.push_back(kUnknownSize);
    } else if (item.kind == PyValue::Kind::integer && item.integer > 0 && item.integer <= kMaxSizeArgument) {
      declared.push_back(item.integer);
    } else {
      valid = false;
    }
  }
  if (!valid) {
    return invalid_argument(fmt::format("input_shape={} must be the input's shape without the batch: {} entries "
                                        "(spatial sizes or None, then the channel count)",
                                        shape.source, expected));
  }
  layer.declared_input_shape = std::move(declared);
  return Ok{};
}

// data_format: Keras' standardize_data_format accepts None, 'channels_last', 'channels_first'.
Status channels_last_only(const BoundArguments& bound) {
  const PyValue format = bound.get("data_format", "None");
  if (format.kind == PyValue::Kind::none || (format.kind == PyValue::Kind::string && format.text == "channels_last")) {
    return Ok{};
  }
  if (format.kind == PyValue::Kind::string && format.text == "channels_first") {
    return make_error(ErrorCode::unsupported,
                      "data_format='channels_first' is not translated: convbridge's Keras layers are channels_last");
  }
  return invalid_argument(fmt::format(
      "data_format={}: The `data_format` argument must be one of {{'channels_first', 'channels_last'}}",
      format.source));
}

// Keras standardize_tuple(value, n, "size"): an int or n ints, each > 0.
Result<std::vector<int64_t>> keras_size_tuple(const PyValue& value, int rank) {
  const std::string message =
      fmt::format("The `size` argument must be a tuple of {} integers. Received size={}", rank, value.source);
  std::vector<int64_t> out;
  auto one = [&](const PyValue& v) -> Status {
    if (v.kind != PyValue::Kind::integer) return invalid_argument(message);
    if (v.integer <= 0) {
      return invalid_argument(message + fmt::format(", including values {{{}}} that do not satisfy `value > 0`",
                                                    v.integer));
    }
    if (v.integer > kMaxSizeArgument) {
      return invalid_argument(fmt::format("size={} is too large (the limit is {})", value.source, kMaxSizeArgument));
    }
    out.push_back(v.integer);
    return Ok{};
  };
  if (value.kind == PyValue::Kind::sequence) {
    if (value.items.size() != static_cast<size_t>(rank)) return invalid_argument(message);
    for (const PyValue& item : value.items) CONVBRIDGE_CHECK(one(item));
    return out;
  }
  CONVBRIDGE_CHECK(one(value));
  return std::vector<int64_t>(static_cast<size_t>(rank), out.front());
}

// UpSampling nearest is ops.repeat: with an integer factor k, output x reads input floor(x / k), which is
// floor((x + 0.5) / k) (the half-pixel rounding keeps a margin of 0.5 / k from the next integer, so the float32
// arithmetic of nearest_row cannot cross it; plain floor(x * float(1 / k)) can, at k = 41).
ResizeOp repeat_op(const std::vector<int64_t>& factors) {
  ResizeOp op;
  op.rank = static_cast<int>(factors.size());
  op.mode = ResizeMode::nearest;
  op.rounding = NearestRounding::half_pixel_floor;
  op.coordinates = ResizeCoordinates::half_pixel;
  for (const int64_t f : factors) op.scale_factor.push_back(static_cast<double>(f));
  op.use_given_scale = true;
  return op;
}

// tf.image.resize's methods on the half-pixel grid (TF2 image_ops_impl.py resize_images_v2: half_pixel_centers).
Status tf_method_op(std::string_view method, bool antialias, ResizeOp& op, OpLayer& layer) {
  op.rank = 2;
  op.coordinates = ResizeCoordinates::half_pixel;
  if (method == "nearest") {
    // resize_nearest_neighbor(half_pixel_centers=True): floor((x + 0.5) * in / out). antialias has no effect on
    // nearest (resize_images_v2 applies it only through scale_and_translate's kernels, which nearest skips).
    op.mode = ResizeMode::nearest;
    op.rounding = NearestRounding::half_pixel_floor;
    if (antialias) layer.notes.push_back("antialias=True does not change nearest resizing in TF");
    return Ok{};
  }
  if (method == "bilinear") {
    op.mode = ResizeMode::linear;
    op.antialias = antialias;
    return Ok{};
  }
  if (method == "bicubic") {
    // Keys cubic A = -0.5. Without antialias, resize_bicubic with half-pixel centers drops taps outside the
    // image and renormalizes, reading weights from a 1024-step table (resize_bicubic_op.cc); with antialias,
    // scale_and_translate's keyscubic kernel (exact offsets, renormalized taps).
    op.mode = ResizeMode::cubic;
    op.cubic_a = -0.5;
    op.cubic_edges = CubicEdges::renormalize;
    op.cubic_table_steps = antialias ? 0 : 1024;
    op.antialias = antialias;
    return Ok{};
  }
  return make_error(ErrorCode::unsupported,
                    fmt::format("interpolation '{}' is not translated: PyTorch has no exact counterpart (nearest, "
                                "bilinear and bicubic are)",
                                method));
}

Result<std::string> interpolation_of(const PyValue& value, std::string_view name) {
  if (value.kind != PyValue::Kind::string) {
    return invalid_argument(fmt::format("{}={} must be a string, not {}", name, value.source, kind_name(value.kind)));
  }
  std::string lower = value.text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (std::find(kKerasInterpolations.begin(), kKerasInterpolations.end(), lower) == kKerasInterpolations.end()) {
    return invalid_argument(fmt::format("{}={}: Invalid value for argument `interpolation`. Expected of one ({})",
                                        name, value.source, fmt::join(kKerasInterpolations, ", ")));
  }
  return lower;
}

template <int Rank>
Status parse_upsampling(const PyCall& call, OpLayer& layer) {
  static constexpr std::string_view kName = Rank == 1 ? "UpSampling1D" : Rank == 2 ? "UpSampling2D" : "UpSampling3D";
  const std::span<const std::string_view> names = Rank == 1   ? std::span<const std::string_view>(kUpSampling1DParameters)
                                                  : Rank == 2 ? std::span<const std::string_view>(kUpSampling2DParameters)
                                                              : std::span<const std::string_view>(kUpSampling3DParameters);
  const size_t own = names.size() - kLayerKeywords.size();
  CONVBRIDGE_CHECK(positional_limit(call, kName, own));
  auto hint_fn = Rank == 1 ? hint<kUpSampling1DParameters> : Rank == 2 ? hint<kUpSampling2DParameters>
                                                                       : hint<kUpSampling3DParameters>;
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, kName, names, 0,
                                      Rank == 1 ? "size=2" : Rank == 2 ? "size=(2, 2), data_format=None, "
                                                                         "interpolation='nearest'"
                                                                       : "size=(2, 2, 2), data_format=None",
                                      hint_fn));
  CONVBRIDGE_CHECK(layer_keywords(bound, Rank, layer));
  std::vector<int64_t> factors;
  if constexpr (Rank == 1) {
    // UpSampling1D.__init__: isinstance(size, int) (bool excluded), then size > 0.
    const PyValue size = bound.get("size", "2");
    if (size.kind != PyValue::Kind::integer) {
      return invalid_argument(fmt::format("size={}: Expected an integer value for `size`, got {}", size.source,
                                          kind_name(size.kind)));
    }
    if (size.integer <= 0) {
      return invalid_argument(
          fmt::format("Argument `size` should be a positive integer. Received: size={}", size.source));
    }
    if (size.integer > kMaxSizeArgument) {
      return invalid_argument(fmt::format("size={} is too large (the limit is {})", size.source, kMaxSizeArgument));
    }
    factors = {size.integer};
  } else {
    CONVBRIDGE_CHECK(channels_last_only(bound));
    CONVBRIDGE_TRY(factors, keras_size_tuple(bound.get("size", Rank == 2 ? "(2, 2)" : "(2, 2, 2)"), Rank));
  }
  ResizeOp op = repeat_op(factors);
  if constexpr (Rank == 2) {
    CONVBRIDGE_TRY(std::string interpolation, interpolation_of(bound.get("interpolation", "'nearest'"),
                                                               "interpolation"));
    if (interpolation != "nearest") {
      // _resize_images: ops.image.resize(x, (H * sh, W * sw), interpolation) for every mode but nearest, which
      // is ops.repeat. The output size is in * factor, so in / out is 1 / factor.
      ResizeOp resized;
      CONVBRIDGE_CHECK(tf_method_op(interpolation, false, resized, layer));
      resized.scale_factor = op.scale_factor;
      resized.use_given_scale = true;
      op = resized;
    }
  }
  layer.op = op;
  return Ok{};
}

Status require_bool(const PyValue& value, std::string_view name, bool& out) {
  if (value.kind != PyValue::Kind::boolean) {
    return invalid_argument(
        fmt::format("{}={} must be True or False, not {}", name, value.source, kind_name(value.kind)));
  }
  out = value.boolean;
  return Ok{};
}

Result<int64_t> positive_int(const PyValue& value, std::string_view name) {
  if (value.kind != PyValue::Kind::integer) {
    return invalid_argument(fmt::format("{}={} must be an int, not {}", name, value.source, kind_name(value.kind)));
  }
  if (value.integer <= 0) {
    return invalid_argument(fmt::format("{}={}: the output size must be positive", name, value.source));
  }
  if (value.integer > kMaxSizeArgument) {
    return invalid_argument(fmt::format("{}={} is too large (the limit is {})", name, value.source, kMaxSizeArgument));
  }
  return value.integer;
}

Status parse_resizing(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_CHECK(positional_limit(call, "Resizing", kResizingParameters.size() - kLayerKeywords.size()));
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "Resizing", kResizingParameters, 2,
                                      "height, width, interpolation='bilinear', crop_to_aspect_ratio=False, "
                                      "pad_to_aspect_ratio=False, fill_mode='constant', fill_value=0.0, "
                                      "antialias=False, data_format=None",
                                      hint<kResizingParameters>));
  CONVBRIDGE_CHECK(layer_keywords(bound, 2, layer));
  CONVBRIDGE_CHECK(channels_last_only(bound));
  CONVBRIDGE_TRY(int64_t height, positive_int(bound.get("height", "None"), "height"));
  CONVBRIDGE_TRY(int64_t width, positive_int(bound.get("width", "None"), "width"));
  bool crop = false, pad = false, antialias = false;
  CONVBRIDGE_CHECK(require_bool(bound.get("crop_to_aspect_ratio", "False"), "crop_to_aspect_ratio", crop));
  CONVBRIDGE_CHECK(require_bool(bound.get("pad_to_aspect_ratio", "False"), "pad_to_aspect_ratio", pad));
  CONVBRIDGE_CHECK(require_bool(bound.get("antialias", "False"), "antialias", antialias));
  if (crop && pad) {
    return invalid_argument("Only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` can be `True`.");
  }
  const PyValue fill_mode = bound.get("fill_mode", "'constant'");
  if (!(fill_mode.kind == PyValue::Kind::string && fill_mode.text == "constant")) {
    return invalid_argument(fmt::format(
        "fill_mode={}: Invalid value for argument `fill_mode`. Only `'constant'` is supported.", fill_mode.source));
  }
  const PyValue fill_value = bound.get("fill_value", "0");
  if (fill_value.kind != PyValue::Kind::integer && fill_value.kind != PyValue::Kind::number) {
    return invalid_argument(fmt::format("fill_value={} must be a number, not {}", fill_value.source,
                                        kind_name(fill_value.kind)));
  }
  if (crop || pad) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("{}=True is not translated: the crop or pad box depends on the aspect ratio "
                                  "computed in float32; resize without it",
                                  crop ? "crop_to_aspect_ratio" : "pad_to_aspect_ratio"));
  }
  CONVBRIDGE_TRY(std::string interpolation, interpolation_of(bound.get("interpolation", "'bilinear'"),
                                                             "interpolation"));
  ResizeOp op;
  op.size = {height, width};
  CONVBRIDGE_CHECK(tf_method_op(interpolation, antialias, op, layer));
  layer.op = op;
  return Ok{};
}

Status parse_tf_resize(const PyCall& call, OpLayer& layer) {
  CONVBRIDGE_TRY(BoundArguments bound,
                 BoundArguments::bind(call, "tf.image.resize", kTfResizeParameters, 2,
                                      "images, size, method='bilinear', preserve_aspect_ratio=False, "
                                      "antialias=False, name=None",
                                      hint<kTfResizeParameters>));
  const PyValue images = bound.get("images", "None");
  if (images.kind != PyValue::Kind::name) {
    return invalid_argument(
        fmt::format("images={} must be the input tensor, written as a name (x)", images.source));
  }
  const PyValue size = bound.get("size", "None");
  if (size.kind != PyValue::Kind::sequence || size.items.size() != 2) {
    // resize_images_v2: "'size' must be a 1-D Tensor of 2 elements: new_height, new_width".
    return invalid_argument(
        fmt::format("size={}: 'size' must be a 1-D Tensor of 2 elements: new_height, new_width", size.source));
  }
  CONVBRIDGE_TRY(int64_t height, positive_int(size.items[0], "size"));
  CONVBRIDGE_TRY(int64_t width, positive_int(size.items[1], "size"));
  const PyValue method = bound.get("method", "'bilinear'");
  std::string method_name;
  if (method.kind == PyValue::Kind::string) {
    method_name = method.text;
  } else if (method.kind == PyValue::Kind::name && (method.text.starts_with("tf.image.ResizeMethod.") ||
                                                    method.text.starts_with("ResizeMethod."))) {
    // tf.image.ResizeMethod.BILINEAR == 'bilinear', NEAREST_NEIGHBOR == 'nearest', ... (image_ops_impl.py).
    method_name = method.text.substr(method.text.rfind('.') + 1);
    std::transform(method_name.begin(), method_name.end(), method_name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (method_name == "nearest_neighbor") method_name = "nearest";
  } else {
    return invalid_argument(fmt::format("method={} must be a string or a tf.image.ResizeMethod, not {}",
                                        method.source, kind_name(method.kind)));
  }
  if (std::find(kTfMethods.begin(), kTfMethods.end(), method_name) == kTfMethods.end()) {
    return invalid_argument(fmt::format("method={}: Resize method is not implemented: {}", method.source,
                                        printable_excerpt(method_name, 40)));
  }
  bool preserve = false, antialias = false;
  CONVBRIDGE_CHECK(require_bool(bound.get("preserve_aspect_ratio", "False"), "preserve_aspect_ratio", preserve));
  CONVBRIDGE_CHECK(require_bool(bound.get("antialias", "False"), "antialias", antialias));
  const PyValue name = bound.get("name", "None");
  if (name.kind != PyValue::Kind::none && name.kind != PyValue::Kind::string) {
    return invalid_argument(fmt::format("name={} must be a string or None", name.source));
  }
  if (preserve) {
    return make_error(ErrorCode::unsupported,
                      "preserve_aspect_ratio=True is not translated: the output size then depends on the input's "
                      "aspect ratio (computed in float32); give the output size itself");
  }
  ResizeOp op;
  op.size = {height, width};
  CONVBRIDGE_CHECK(tf_method_op(method_name, antialias, op, layer));
  layer.op = op;
  return Ok{};
}

constexpr std::array<LayerClass, 5> kClasses = {{
    {Framework::keras, "UpSampling1D", kUpSampling1DOwn, parse_upsampling<1>},
    {Framework::keras, "UpSampling2D", kUpSampling2DOwn, parse_upsampling<2>},
    {Framework::keras, "UpSampling3D", kUpSampling3DOwn, parse_upsampling<3>},
    {Framework::keras, "Resizing", kResizingOwn, parse_resizing},
    {Framework::tensorflow, "image.resize", kTfResizeParameters, parse_tf_resize},
}};

}  // namespace

std::span<const LayerClass> keras_resizing_classes() { return kClasses; }

}  // namespace convbridge::frontends
