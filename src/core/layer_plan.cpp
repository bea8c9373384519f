#include "convbridge/layer_plan.hpp"

#include <fmt/format.h>

#include <cmath>

namespace convbridge {

std::string_view framework_name(Framework framework) {
  switch (framework) {
    case Framework::pytorch: return "PyTorch";
    case Framework::keras: return "Keras";
    case Framework::tensorflow: return "TensorFlow";
  }
  return "?";
}

CallValue CallValue::of(int64_t value) {
  CallValue v;
  v.kind = Kind::integer;
  v.integer = value;
  return v;
}
CallValue CallValue::of(double value) {
  CallValue v;
  v.kind = Kind::number;
  v.number = value;
  return v;
}
CallValue CallValue::flag(bool value) {
  CallValue v;
  v.kind = Kind::boolean;
  v.boolean = value;
  return v;
}
CallValue CallValue::none() { return CallValue{}; }
CallValue CallValue::str(std::string value) {
  CallValue v;
  v.kind = Kind::string;
  v.text = std::move(value);
  return v;
}
CallValue CallValue::tuple(std::vector<CallValue> items) {
  CallValue v;
  v.kind = Kind::tuple;
  v.items = std::move(items);
  return v;
}
CallValue CallValue::ints(std::span<const int64_t> values) {
  std::vector<CallValue> items;
  for (const int64_t value : values) items.push_back(of(value));
  return tuple(std::move(items));
}
CallValue CallValue::pairs(std::span<const PadPair> pads) {
  std::vector<CallValue> items;
  for (const PadPair& pad : pads) {
    const int64_t both[] = {pad.before, pad.after};
    items.push_back(ints(both));
  }
  return tuple(std::move(items));
}
CallValue CallValue::channels() {
  CallValue v;
  v.kind = Kind::name;
  v.text = "channels";
  return v;
}
CallValue CallValue::channels_or_name(int64_t channels) {
  return channels > 0 ? of(channels) : CallValue::channels();
}

std::string python_literal(const CallValue& value) {
  switch (value.kind) {
    case CallValue::Kind::integer: return fmt::format("{}", value.integer);
    case CallValue::Kind::number: {
      if (std::isinf(value.number)) return value.number > 0 ? "float('inf')" : "float('-inf')";
      if (std::isnan(value.number)) return "float('nan')";
      // fmt's shortest round-trip form, written as Python writes floats (1e-05, 0.2, 2.0).
      std::string text = fmt::format("{}", value.number);
      if (text.find_first_of(".en") == std::string::npos) text += ".0";
      const size_t e = text.find('e');
      if (e != std::string::npos && e + 2 < text.size() + 1) {
        // fmt writes 1e-05 already; make sure the exponent has at least two digits as Python's repr does.
        const size_t digits = text.find_first_of("0123456789", e);
        if (digits != std::string::npos && text.size() - digits == 1) text.insert(digits, "0");
      }
      return text;
    }
    case CallValue::Kind::boolean: return value.boolean ? "True" : "False";
    case CallValue::Kind::none: return "None";
    case CallValue::Kind::string: return fmt::format("'{}'", value.text);  // our own identifiers: no quoting needed
    case CallValue::Kind::name: return value.text;
    case CallValue::Kind::tuple: {
      std::string out = "(";
      for (size_t i = 0; i < value.items.size(); ++i) {
        if (i > 0) out += ", ";
        out += python_literal(value.items[i]);
      }
      if (value.items.size() == 1) out += ",";
      return out + ")";
    }
  }
  return "None";
}

std::string python_call_text(const FrameworkCall& call, std::string_view callee_prefix) {
  std::string out = std::string(callee_prefix) + call.callee + "(";
  for (size_t i = 0; i < call.arguments.size(); ++i) {
    if (i > 0) out += ", ";
    if (!call.arguments[i].keyword.empty()) out += call.arguments[i].keyword + "=";
    out += python_literal(call.arguments[i].value);
  }
  return out + ")";
}

namespace {

// The inverse of a change that only reshapes and transposes: transpose back, then view as from_shape.
WeightLayoutChange inverse_change(const WeightLayoutChange& change) {
  WeightLayoutChange inverse;
  inverse.from_layout = change.to_layout;
  inverse.to_layout = change.from_layout;
  inverse.from_shape = change.to_shape;
  const std::vector<int64_t>& middle = change.reshape.empty() ? change.from_shape : change.reshape;
  for (const int axis : change.permutation) inverse.reshape.push_back(middle[static_cast<size_t>(axis)]);
  inverse.permutation.resize(change.permutation.size());
  for (size_t i = 0; i < change.permutation.size(); ++i) {
    inverse.permutation[static_cast<size_t>(change.permutation[i])] = static_cast<int>(i);
  }
  // After transposing back, the data is in the reshaped (or original) order: view it as from_shape.
  inverse.to_shape = change.from_shape;
  return inverse;
}

}  // namespace

std::vector<double> source_weight_to_neutral(const LayerPlan& plan, size_t index, std::span<const double> values) {
  return apply_layout_change(inverse_change(plan.source_weights.at(index).from_neutral), values);
}
std::vector<float> source_weight_to_neutral(const LayerPlan& plan, size_t index, std::span<const float> values) {
  return apply_layout_change(inverse_change(plan.source_weights.at(index).from_neutral), values);
}

std::vector<double> neutral_to_target_weight(const FrameworkWeight& weight, std::span<const double> neutral) {
  return apply_layout_change(weight.from_neutral, neutral);
}
std::vector<float> neutral_to_target_weight(const FrameworkWeight& weight, std::span<const float> neutral) {
  return apply_layout_change(weight.from_neutral, neutral);
}

}  // namespace convbridge
