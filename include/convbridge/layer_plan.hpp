// Layers around the convolutions (the op set, convbridge/ops/op.hpp) as parsed from a framework, and their
// translation plans. A plan is a list of target steps; each names the op it computes (which the reference engine
// runs) and how the target framework spells it (a constructor call that emitters print and the Python adapters
// build), so targets and emitters need no per-kind special cases beyond their own family files.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/ops/op.hpp"
#include "convbridge/result.hpp"
#include "convbridge/weight_layout.hpp"

namespace convbridge {

enum class Framework {
  pytorch,     // torch.nn modules and torch.nn.functional calls
  keras,       // keras.layers classes
  tensorflow,  // tf.nn / tf.image / tf.pad function calls
};
std::string_view framework_name(Framework framework);  // "PyTorch", "Keras", "TensorFlow"

// A Python value in generated code: ints, floats, bools, None, strings and tuples.
struct CallValue {
  // name: a variable of the generated code, only `channels` (the channel count, read from the weights when the
  // plan does not know it; the Python adapters substitute it).
  enum class Kind { integer, number, boolean, none, string, tuple, name };
  Kind kind = Kind::none;
  int64_t integer = 0;
  double number = 0.0;
  bool boolean = false;
  std::string text;
  std::vector<CallValue> items;

  static CallValue of(int64_t value);
  static CallValue of(double value);
  static CallValue flag(bool value);
  static CallValue none();
  static CallValue str(std::string value);
  static CallValue tuple(std::vector<CallValue> items);
  static CallValue ints(std::span<const int64_t> values);  // a tuple of ints
  static CallValue pairs(std::span<const PadPair> pads);   // ((b, a), ...)
  static CallValue channels();                             // the name `channels`
  // The channel count when known (> 0), else the name `channels`.
  static CallValue channels_or_name(int64_t channels);
};

// Python source for the value: 3, 1e-05, True, None, 'bilinear', (3, 3), (2,). Floats are the shortest text that
// reads back as the same double (Python's repr).
std::string python_literal(const CallValue& value);

struct CallArgument {
  std::string keyword;  // empty: positional
  CallValue value;
};

// A constructor or function call of the target framework, e.g. keras.layers.MaxPooling2D(pool_size=(3, 3), ...).
// Callees: "keras.layers.X", "nn.X" (torch.nn), "tf.nn.x" / "tf.image.x" / "tf.x", or "convbridge.X": a layer or
// module of ours (convbridge/keras_layers.py, convbridge/torch_modules.py), whose source emitted code embeds.
// For function calls (Keras target's tf.nn form) the first argument is the tensor, written as the name `x`.
struct FrameworkCall {
  std::string callee;
  std::vector<CallArgument> arguments;
};
std::string python_call_text(const FrameworkCall& call, std::string_view callee_prefix = {});

// A weight of a framework's layer: its name there, its shape there, and how the neutral tensor (OpWeight) becomes
// it. For the source layer the plan converts back with the inverse change.
struct FrameworkWeight {
  std::string name;        // "weight", "running_var", "gamma", "moving_variance", "alpha"
  std::string role;        // the OpWeight role it holds ("gamma", "running_var", ...), for the reference engine
  int neutral_index = -1;  // which OpWeight it holds; -1: a constant (fill) the source layer does not have
  double fill = 0.0;
  WeightLayoutChange from_neutral;  // neutral shape -> this framework's shape
};

// A layer as the user wrote it, parsed into the op set.
struct OpLayer {
  Framework framework = Framework::pytorch;
  std::string class_name;   // "MaxPool2d", "BatchNormalization", "tf.nn.depth_to_space"
  std::string text;         // as written
  Op op;
  std::vector<int64_t> declared_input_shape;  // Keras input_shape=(H, W, C) (channels_last, no batch), else empty
  std::vector<std::string> notes;             // what the text says that does not change the values
};

struct TargetStep {
  Op op;                                  // what it computes, channels_first (the reference engine runs it)
  FrameworkCall call;                     // the target's layer / module constructor
  std::optional<FrameworkCall> function;  // Keras target: the tf function form, for --emit tf
  std::vector<FrameworkWeight> weights;   // the target layer's weights, in its set_weights / state order
  std::vector<std::string> helpers;       // embedded Python sections of ours the call needs
  std::string why;                        // one or two sentences for explanations
};

struct LayerPlan {
  OpLayer source;
  Framework target = Framework::keras;
  std::optional<std::vector<int64_t>> input_shape;  // source layout, batch included; kUnknownSize for None
  std::vector<int64_t> channels_first_input;        // the same in (N, C, *spatial) order, empty when unknown
  std::vector<OpWeight> weights;                    // neutral weights of the source op
  std::vector<FrameworkWeight> source_weights;      // the source layer's weights (names, shapes, layouts)
  bool exact_for_every_input_size = true;
  std::vector<TargetStep> steps;
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
};

// Whether the text names a layer of the op set in any framework ("nn.MaxPool2d(...)", "keras.layers.ReLU()",
// "tf.nn.depth_to_space(x, 2)"), by its callee alone.
bool names_op_layer(std::string_view text);

// Every class and function of the op set the front-ends take, with its positional parameters (for tables,
// coverage tests and messages). Names as written with their usual prefix: "nn.MaxPool2d", "keras.layers.ReLU",
// "tf.nn.depth_to_space".
struct OpLayerClassInfo {
  Framework framework;
  std::string name;
  std::vector<std::string> parameters;
};
std::vector<OpLayerClassInfo> op_layer_classes();

// " (did you mean nn.MaxPool2d?)" for a callee one or two edits (or only letter case) away from an op-set class of
// the same framework spelling, else "": for the front-ends' "unknown layer" messages.
std::string op_layer_name_hint(std::string_view callee);

// Parses such a text with its framework's own argument checks; errors name the argument.
Result<OpLayer> parse_op_layer(std::string_view text);

// Plans the translation to the other framework (PyTorch -> Keras; Keras or TensorFlow -> PyTorch). input_shape is
// in the source's layout (PyTorch (N, C, *spatial); Keras/TF (N, *spatial, C)), kUnknownSize for unknown sizes;
// channels: a channel count known otherwise (a built Keras layer), 0 if not. With every size known the plan is the
// cheapest exact one for that size; otherwise exact for every size, or an error saying which size it needs and why.
Result<LayerPlan> plan_op_layer(const OpLayer& layer, const std::optional<std::vector<int64_t>>& input_shape,
                                int64_t channels = 0);

// A source weight (plan.source_weights[index], source layout) -> the neutral tensor, and a neutral tensor -> a
// target step's weight. Both move elements only (WeightLayoutChange).
// In float32 too: moving elements needs no widening (the Python bindings convert float32 weights in place).
std::vector<double> source_weight_to_neutral(const LayerPlan& plan, size_t index, std::span<const double> values);
std::vector<double> neutral_to_target_weight(const FrameworkWeight& weight, std::span<const double> neutral);
std::vector<float> source_weight_to_neutral(const LayerPlan& plan, size_t index, std::span<const float> values);
std::vector<float> neutral_to_target_weight(const FrameworkWeight& weight, std::span<const float> neutral);

}  // namespace convbridge
