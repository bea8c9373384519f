// Finds the op-set class a text names (by framework prefix and bare name) and parses it with that class's parser.
#include <fmt/format.h>

#include <array>
#include <cctype>
#include <string>
#include <vector>

#include "convbridge/layer_plan.hpp"
#include "frontends/arguments.hpp"
#include "frontends/op_layer_classes.hpp"
#include "frontends/python_call.hpp"

namespace convbridge {
namespace {

using frontends::LayerClass;

const std::vector<const LayerClass*>& all_classes() {
  static const std::vector<const LayerClass*> classes = [] {
    std::vector<const LayerClass*> out;
    for (const auto family : {frontends::torch_pooling_classes, frontends::torch_normalization_classes,
                              frontends::torch_resizing_classes, frontends::torch_padding_classes,
                              frontends::torch_activation_classes, frontends::keras_pooling_classes,
                              frontends::keras_normalization_classes, frontends::keras_resizing_classes,
                              frontends::keras_padding_classes, frontends::keras_activation_classes}) {
      for (const LayerClass& cls : family()) out.push_back(&cls);
    }
    return out;
  }();
  return classes;
}

constexpr std::array<std::string_view, 3> kTorchModulePrefixes = {"", "nn", "torch.nn"};
constexpr std::array<std::string_view, 4> kTorchFunctionalPrefixes = {"F", "nn.functional", "torch.nn.functional",
                                                                      "functional"};
constexpr std::array<std::string_view, 7> kKerasPrefixes = {
    "", "keras.layers", "layers", "tf.keras.layers", "tensorflow.keras.layers", "tfkl", "keras.src.layers"};

bool is_lower(std::string_view name) { return !name.empty() && name.front() >= 'a' && name.front() <= 'z'; }

template <size_t N>
bool has_prefix(const std::array<std::string_view, N>& prefixes, std::string_view prefix) {
  for (const std::string_view p : prefixes) {
    if (p == prefix) return true;
  }
  return false;
}

// Classes the callee can name: PyTorch nn.X and F.x, Keras layers.X, TF tf.nn.x / tf.image.x / tf.x (TF names
// are stored without "tf.", e.g. "nn.depth_to_space", and also match with the bare "nn." the tf.nn front-end takes).
std::vector<const LayerClass*> candidates(std::string_view callee) {
  const size_t dot = callee.rfind('.');
  const std::string_view prefix = dot == std::string_view::npos ? std::string_view() : callee.substr(0, dot);
  const std::string_view bare = dot == std::string_view::npos ? callee : callee.substr(dot + 1);
  std::string_view tf_name = callee;
  if (tf_name.starts_with("tf.")) tf_name.remove_prefix(3);
  else if (tf_name.starts_with("tensorflow.")) tf_name.remove_prefix(11);
  std::vector<const LayerClass*> out;
  for (const LayerClass* cls : all_classes()) {
    switch (cls->framework) {
      case Framework::pytorch:
        if (cls->name == bare && (is_lower(bare) ? has_prefix(kTorchFunctionalPrefixes, prefix)
                                                 : has_prefix(kTorchModulePrefixes, prefix))) {
          out.push_back(cls);
        }
        break;
      case Framework::keras:
        if (cls->name == bare && has_prefix(kKerasPrefixes, prefix)) out.push_back(cls);
        break;
      case Framework::tensorflow:
        if (cls->name == tf_name && (callee.starts_with("tf.") || callee.starts_with("tensorflow.") ||
                                     callee.starts_with("nn.") || callee.starts_with("image."))) {
          out.push_back(cls);
        }
        break;
    }
  }
  return out;
}

std::span<const std::string_view> parameter_names(std::string_view callee) {
  const auto found = candidates(callee);
  if (found.size() != 1) return {};
  return found.front()->parameters;
}

}  // namespace

std::vector<OpLayerClassInfo> op_layer_classes() {
  std::vector<OpLayerClassInfo> out;
  for (const LayerClass* cls : all_classes()) {
    OpLayerClassInfo info;
    info.framework = cls->framework;
    const bool functional = cls->framework == Framework::pytorch && is_lower(cls->name);
    info.name = (cls->framework == Framework::pytorch ? (functional ? "F." : "nn.")
                 : cls->framework == Framework::keras ? "keras.layers."
                                                      : "tf.") +
                std::string(cls->name);
    for (const std::string_view p : cls->parameters) info.parameters.emplace_back(p);
    out.push_back(std::move(info));
  }
  return out;
}

std::string op_layer_name_hint(std::string_view callee) {
  const size_t dot = callee.rfind('.');
  const std::string_view bare = dot == std::string_view::npos ? callee : callee.substr(dot + 1);
  const auto lower = [](std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  if (bare.size() < 3) return "";
  std::string best;
  size_t best_distance = 3;
  for (const OpLayerClassInfo& cls : op_layer_classes()) {
    const std::string_view name = std::string_view(cls.name).substr(cls.name.rfind('.') + 1);
    const size_t distance = lower(name) == lower(bare) ? 0 : frontends::edit_distance(bare, name);
    if (distance < best_distance) {
      best_distance = distance;
      best = cls.name;
    }
  }
  return best.empty() ? "" : fmt::format(" (did you mean {}?)", best);
}

bool names_op_layer(std::string_view text) {
  return !candidates(frontends::leading_dotted_name(text)).empty();
}

Result<OpLayer> parse_op_layer(std::string_view text) {
  CONVBRIDGE_TRY(frontends::PyCall call, frontends::parse_python_call(text, parameter_names, /*accept_floats=*/true));
  const auto found = candidates(call.callee);
  if (found.empty()) {
    return make_error(ErrorCode::unknown_argument,
                      fmt::format("unknown layer '{}'", frontends::printable_excerpt(call.callee, 60)));
  }
  if (found.size() > 1) {
    return make_error(ErrorCode::unknown_argument,
                      fmt::format("'{}' is both a PyTorch and a Keras class: write nn.{} or keras.layers.{}",
                                  frontends::printable_excerpt(call.callee, 60), found.front()->name,
                                  found.front()->name));
  }
  const LayerClass& cls = *found.front();
  OpLayer layer;
  layer.framework = cls.framework;
  layer.class_name = cls.framework == Framework::tensorflow ? "tf." + std::string(cls.name) : std::string(cls.name);
  layer.text = std::string(text);
  CONVBRIDGE_CHECK(cls.parse(call, layer));
  CONVBRIDGE_CHECK(validate_op(layer.op));
  return layer;
}

}  // namespace convbridge
