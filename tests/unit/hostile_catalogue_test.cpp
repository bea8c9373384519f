// The hostile-input catalogue (tests/hostile/catalogue.json, format in tests/hostile/catalogue.py): every entry is
// rejected by the library at the stage it names, with the expected error code and a message that contains the
// fragment naming the argument and value, quickly, and in a form the CLI can print as one line (plus the excerpt
// and caret of a syntax error). One test per entry: HostileCatalogue/Rejects.Entry/<name>. Each entry goes to the
// front-end the CLI picks for it: parse_keras_layer, parse_input_shape(allow_unknown) and plan_keras_to_torch for
// text that names a Keras layer; for a tf.nn call parse_filters_shape, parse_tf_nn_call,
// parse_input_shape(allow_unknown) and plan_tf_nn_to_torch when the entry gives a filters_shape, else
// tf_nn_call_needs_filters_shape; parse_pytorch_layer, parse_input_shape and plan_torch_to_tf otherwise.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <filesystem>

#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/planner.hpp"

#ifndef CONVBRIDGE_HOSTILE_CATALOGUE
#error "CONVBRIDGE_HOSTILE_CATALOGUE must name the tests/hostile directory (catalogue.json, catalogue_*.json)"
#endif

namespace convbridge {
namespace {

struct HostileEntry {
  std::string name;
  std::string layer;
  std::optional<std::string> input_shape;
  std::optional<std::string> filters_shape;  // tf.nn calls: the --filters-shape text
  std::string stage;
  std::string code;
  std::string fragment;
};

// UTF-8 -> bytes, one byte per code point (all below 256), for "encoding": "latin-1".
std::string latin1_bytes(const std::string& utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c & 0xE0) == 0xC0 && i + 1 < utf8.size() && c <= 0xC3) {
      out += static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3F));
    } else {
      throw std::runtime_error("latin-1 text with a code point above 255");
    }
  }
  return out;
}

// A string, or {"prefix", "repeat", "times", "suffix", "text", "encoding"} (see catalogue.py).
std::string expand(const nlohmann::json& spec) {
  if (spec.is_string()) return spec.get<std::string>();
  std::string text;
  if (spec.contains("text")) {
    text = spec["text"].get<std::string>();
  } else {
    text = spec.value("prefix", std::string());
    const std::string repeat = spec.value("repeat", std::string());
    const int64_t times = spec.value("times", int64_t{0});
    text.reserve(text.size() + repeat.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) text += repeat;
    text += spec.value("suffix", std::string());
  }
  const std::string encoding = spec.value("encoding", std::string("utf-8"));
  if (encoding == "latin-1") return latin1_bytes(text);
  if (encoding != "utf-8") throw std::runtime_error("unknown encoding " + encoding);
  return text;
}

// catalogue.json, then each family's catalogue_<family>.json, in name order.
std::vector<std::filesystem::path> catalogue_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& item : std::filesystem::directory_iterator(CONVBRIDGE_HOSTILE_CATALOGUE)) {
    const std::string name = item.path().filename().string();
    if (name == "catalogue.json" || (name.starts_with("catalogue_") && name.ends_with(".json"))) {
      files.push_back(item.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<HostileEntry> load_catalogue() {
  std::vector<HostileEntry> entries;
  for (const auto& path : catalogue_files()) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot read " + path.string());
  const nlohmann::json catalogue = nlohmann::json::parse(file);
  for (const nlohmann::json& raw : catalogue) {
    HostileEntry entry;
    entry.name = raw.at("name").get<std::string>();
    entry.layer = expand(raw.at("layer"));
    if (raw.contains("input_shape")) entry.input_shape = expand(raw["input_shape"]);
    if (raw.contains("filters_shape")) entry.filters_shape = expand(raw["filters_shape"]);
    entry.stage = raw.at("stage").get<std::string>();
    entry.code = raw.at("code").get<std::string>();
    entry.fragment = raw.at("fragment").get<std::string>();
    entries.push_back(std::move(entry));
  }
  }
  return entries;
}

const std::vector<HostileEntry>& catalogue() {
  static const std::vector<HostileEntry> entries = load_catalogue();
  return entries;
}

std::string code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::syntax: return "syntax";
    case ErrorCode::unknown_argument: return "unknown_argument";
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::input_shape: return "input_shape";
    case ErrorCode::overflow: return "overflow";
    case ErrorCode::unsupported: return "unsupported";
  }
  return "?";
}

// The message names the fault on its first line, is printable, and is short enough to read.
void expect_clear_message(const HostileEntry& entry, const Error& error) {
  EXPECT_EQ(code_name(error.code), entry.code) << error.message;
  const std::string& message = error.message;
  const std::string first_line = message.substr(0, message.find('\n'));
  EXPECT_NE(first_line.find(entry.fragment), std::string::npos)
      << "the first line of the message lacks the fragment \"" << entry.fragment << "\":\n" << message;
  EXPECT_LE(message.size(), 2048u) << message;
  size_t lines = 1;
  for (char c : message) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      ++lines;
    } else {
      EXPECT_TRUE(u >= 0x20 && u < 0x7f) << "byte 0x" << std::hex << static_cast<int>(u) << " in: " << message;
    }
  }
  // One line, or for a syntax error the line plus an excerpt and a caret.
  EXPECT_EQ(lines, error.code == ErrorCode::syntax && message.find("(column ") != std::string::npos ? 3u : 1u)
      << message;
}

class Rejects : public testing::TestWithParam<HostileEntry> {};

// What `convbridge translate` does with a Keras layer (tools/convbridge/cli.cpp translate_keras): parse it, parse
// the input shape with None allowed, require its last entry (the channel count) to be known, plan with it.
void expect_keras_rejection(const HostileEntry& entry) {
  auto layer = parse_keras_layer(entry.layer);
  if (entry.stage == "parse") {
    ASSERT_FALSE(layer) << "the Keras layer was accepted";
    expect_clear_message(entry, layer.error());
    return;
  }
  ASSERT_TRUE(layer) << layer.error().message;
  ASSERT_TRUE(entry.input_shape) << "a " << entry.stage << "-stage entry needs an input_shape";
  auto shape = parse_input_shape(*entry.input_shape, /*allow_unknown=*/true);
  if (shape && shape->back() == kUnknownSize) {
    // The CLI's own check (its message, with the input_shape code).
    shape = make_error(ErrorCode::input_shape,
                       "--input-shape '" + *entry.input_shape + "' must give the channel count (its last entry)");
  }
  if (entry.stage == "shape") {
    ASSERT_FALSE(shape) << "the input shape was accepted";
    expect_clear_message(entry, shape.error());
    return;
  }
  ASSERT_EQ(entry.stage, "plan");
  ASSERT_TRUE(shape) << shape.error().message;
  auto plan = plan_keras_to_torch(*layer, shape->back(), *shape);
  ASSERT_FALSE(plan) << "the layer was planned for this input shape";
  expect_clear_message(entry, plan.error());
}

// What `convbridge translate` does with a tf.nn call (tools/convbridge/cli.cpp translate_tf_nn): without
// --filters-shape the text's own fault, else the missing shape; with it, parse the filters shape, parse the call
// with it, parse the optional input shape with None allowed, plan with it.
void expect_tf_nn_rejection(const HostileEntry& entry) {
  if (!entry.filters_shape) {
    ASSERT_EQ(entry.stage, "parse") << "a tf.nn entry without filters_shape is rejected before any shape";
    ASSERT_FALSE(entry.input_shape) << "a tf.nn entry without filters_shape needs no input_shape";
    expect_clear_message(entry, tf_nn_call_needs_filters_shape(entry.layer));
    return;
  }
  auto filters_shape = parse_filters_shape(*entry.filters_shape);
  if (entry.stage == "filters-shape") {
    ASSERT_FALSE(filters_shape) << "the filters shape was accepted";
    expect_clear_message(entry, filters_shape.error());
    return;
  }
  ASSERT_TRUE(filters_shape) << filters_shape.error().message;
  auto call = parse_tf_nn_call(entry.layer, *filters_shape);
  if (entry.stage == "parse") {
    ASSERT_FALSE(call) << "the tf.nn call was accepted";
    expect_clear_message(entry, call.error());
    return;
  }
  ASSERT_TRUE(call) << call.error().message;
  std::optional<std::vector<int64_t>> shape;
  if (entry.input_shape) {
    auto parsed = parse_input_shape(*entry.input_shape, /*allow_unknown=*/true);
    if (entry.stage == "shape") {
      ASSERT_FALSE(parsed) << "the input shape was accepted";
      expect_clear_message(entry, parsed.error());
      return;
    }
    ASSERT_TRUE(parsed) << parsed.error().message;
    shape = *parsed;
  }
  ASSERT_EQ(entry.stage, "plan");
  auto plan = plan_tf_nn_to_torch(*call, shape);
  ASSERT_FALSE(plan) << "the tf.nn call was planned";
  expect_clear_message(entry, plan.error());
}

// What `convbridge translate` does with a layer of the op set (tools/convbridge/cli.cpp translate_op_layer): parse it,
// parse the optional input shape with None allowed (else a Keras text's own input_shape=), plan.
void expect_op_layer_rejection(const HostileEntry& entry) {
  auto layer = parse_op_layer(entry.layer);
  if (entry.stage == "parse") {
    ASSERT_FALSE(layer) << "the layer was accepted";
    expect_clear_message(entry, layer.error());
    return;
  }
  ASSERT_TRUE(layer) << layer.error().message;
  std::optional<std::vector<int64_t>> shape;
  if (entry.input_shape) {
    auto parsed = parse_input_shape(*entry.input_shape, /*allow_unknown=*/true);
    if (entry.stage == "shape") {
      ASSERT_FALSE(parsed) << "the input shape was accepted";
      expect_clear_message(entry, parsed.error());
      return;
    }
    ASSERT_TRUE(parsed) << parsed.error().message;
    shape = *parsed;
  } else if (!layer->declared_input_shape.empty()) {
    shape = std::vector<int64_t>{kUnknownSize};
    shape->insert(shape->end(), layer->declared_input_shape.begin(), layer->declared_input_shape.end());
  }
  ASSERT_EQ(entry.stage, "plan");
  auto plan = plan_op_layer(*layer, shape);
  ASSERT_FALSE(plan) << "the layer was planned";
  expect_clear_message(entry, plan.error());
}

void expect_pytorch_rejection(const HostileEntry& entry) {
  auto layer = parse_pytorch_layer(entry.layer);
  if (entry.stage == "parse") {
    ASSERT_FALSE(layer) << "the layer was accepted";
    expect_clear_message(entry, layer.error());
    return;
  }
  ASSERT_TRUE(layer) << layer.error().message;
  ASSERT_TRUE(entry.input_shape) << "a " << entry.stage << "-stage entry needs an input_shape";
  auto shape = parse_input_shape(*entry.input_shape);
  if (entry.stage == "shape") {
    ASSERT_FALSE(shape) << "the input shape was accepted";
    expect_clear_message(entry, shape.error());
    return;
  }
  ASSERT_EQ(entry.stage, "plan");
  ASSERT_TRUE(shape) << shape.error().message;
  auto plan = plan_torch_to_tf(*layer, *shape);
  ASSERT_FALSE(plan) << "the layer was planned for this input shape";
  expect_clear_message(entry, plan.error());
}

TEST_P(Rejects, Entry) {
  const HostileEntry& entry = GetParam();
  const auto start = std::chrono::steady_clock::now();
  // The front-end the CLI picks (tools/convbridge/cli.cpp run_translate): Keras for text that names a Keras layer,
  // tf.nn for a tf.nn call, else PyTorch.
  if (names_op_layer(entry.layer)) {
    expect_op_layer_rejection(entry);
  } else if (entry.filters_shape && !names_tf_nn_call(entry.layer)) {
    // The CLI's own check, before it parses the layer (its message, with the invalid_argument code).
    ASSERT_EQ(entry.stage, "filters-shape") << "filters_shape is for tf.nn calls";
    expect_clear_message(entry, Error{ErrorCode::invalid_argument,
                                      std::string("--filters-shape is for tf.nn calls; a ") +
                                          (names_keras_layer(entry.layer) ? "Keras" : "PyTorch") +
                                          " layer's text says its kernel"});
  } else if (names_keras_layer(entry.layer)) {
    expect_keras_rejection(entry);
  } else if (names_tf_nn_call(entry.layer)) {
    expect_tf_nn_rejection(entry);
  } else {
    expect_pytorch_rejection(entry);
  }
  // Rejection is linear in the input: even 2 MB of text takes milliseconds (a generous bound for sanitizers).
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 2000);
}

std::string test_name(const testing::TestParamInfo<HostileEntry>& info) {
  std::string name = info.param.name;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(HostileCatalogue, Rejects, testing::ValuesIn(catalogue()), test_name);

TEST(HostileCatalogueFile, NamesAreUniqueAndEveryStageIsKnown) {
  std::vector<std::string> names;
  for (const HostileEntry& entry : catalogue()) {
    EXPECT_TRUE(entry.stage == "parse" || entry.stage == "shape" || entry.stage == "plan" ||
                (entry.stage == "filters-shape" && entry.filters_shape))
        << entry.name;
    EXPECT_FALSE(entry.fragment.empty()) << entry.name;
    names.push_back(test_name(testing::TestParamInfo<HostileEntry>(entry, 0)));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end()) << "two entries share a test name";
}

// Whether the layer text starts with the class name, bare or after one of `prefixes`, then '('.
bool names_class(const std::string& layer, const std::string& class_name, const std::vector<std::string>& prefixes) {
  for (const std::string& prefix : prefixes) {
    if (layer.rfind(prefix + class_name + "(", 0) == 0) return true;
  }
  return false;
}

// Every argument of every supported layer appears in the catalogue (by name in the fragment of an entry whose
// layer text is that class).
TEST(HostileCatalogueFile, CoversEveryArgumentOfEveryLayer) {
  const std::vector<std::string> layers = {"Conv1d", "Conv2d", "Conv3d",
                                           "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"};
  const std::vector<std::string> arguments = {"in_channels", "out_channels", "kernel_size", "stride", "padding",
                                              "dilation", "groups"};
  for (const std::string& layer : layers) {
    for (const std::string& argument : arguments) {
      bool covered = false;
      for (const HostileEntry& entry : catalogue()) {
        covered = covered || (names_class(entry.layer, layer, {"nn."}) &&
                              entry.fragment.find(argument) != std::string::npos);
      }
      EXPECT_TRUE(covered) << layer << " " << argument;
    }
  }
  for (const char* argument :
       {"output_padding", "bias", "padding_mode", "device", "dtype", "--input-shape", "--filters-shape"}) {
    bool covered = false;
    for (const HostileEntry& entry : catalogue()) covered = covered || entry.fragment.find(argument) != std::string::npos;
    EXPECT_TRUE(covered) << argument;
  }
}

// The same for the op set (pooling, normalization, resizing, padding, pixel shuffle, activations): every parameter
// of every class and function, in the fragment of an entry whose text names that class (with any usual prefix).
TEST(HostileCatalogueFile, CoversEveryArgumentOfEveryOpLayer) {
  for (const OpLayerClassInfo& cls : op_layer_classes()) {
    const std::string bare = cls.name.substr(cls.name.rfind('.') + 1);
    const std::string module = cls.name.substr(0, cls.name.rfind('.') + 1);  // "nn.", "keras.layers.", "tf.nn."
    for (const std::string& parameter : cls.parameters) {
      if (parameter == "input" || parameter == "x" || parameter == "images" || parameter == "tensor") continue;
      bool covered = false;
      for (const HostileEntry& entry : catalogue()) {
        covered = covered || ((names_class(entry.layer, bare, {"", module, "torch." + module, "tf.keras.layers.",
                                                               "layers.", "F.", "torch.nn.functional."})) &&
                              entry.fragment.find(parameter) != std::string::npos);
      }
      EXPECT_TRUE(covered) << cls.name << " " << parameter;
    }
  }
}

// The same for Keras: every argument of every Keras class (keras_args.cpp, Keras 3 signatures), including those
// accepted and ignored (a wrong keyword or a malformed value must still be rejected naming them) and the layer
// keywords every class takes.
TEST(HostileCatalogueFile, CoversEveryArgumentOfEveryKerasLayer) {
  const std::vector<std::string> common = {"kernel_size", "strides", "padding", "data_format", "dilation_rate",
                                           "activation", "use_bias", "bias_initializer", "bias_regularizer",
                                           "activity_regularizer", "bias_constraint",
                                           "name", "trainable", "dtype", "input_shape"};
  const std::vector<std::string> conv = {"filters", "groups", "kernel_initializer", "kernel_regularizer",
                                         "kernel_constraint"};
  const std::vector<std::string> depthwise = {"depth_multiplier", "depthwise_initializer", "depthwise_regularizer",
                                              "depthwise_constraint"};
  const std::vector<std::string> separable = {"filters", "depth_multiplier", "depthwise_initializer",
                                              "pointwise_initializer", "depthwise_regularizer",
                                              "pointwise_regularizer", "depthwise_constraint", "pointwise_constraint"};
  const std::vector<std::string> transpose = {"filters", "output_padding", "kernel_initializer",
                                              "kernel_regularizer", "kernel_constraint"};
  const std::vector<std::pair<std::string, const std::vector<std::string>*>> classes = {
      {"Conv1D", &conv},          {"Conv2D", &conv},          {"Conv3D", &conv},
      {"DepthwiseConv1D", &depthwise}, {"DepthwiseConv2D", &depthwise},
      {"SeparableConv1D", &separable}, {"SeparableConv2D", &separable},
      {"Conv1DTranspose", &transpose}, {"Conv2DTranspose", &transpose}, {"Conv3DTranspose", &transpose}};
  const std::vector<std::string> prefixes = {"", "keras.layers.", "layers."};
  for (const auto& [class_name, own] : classes) {
    std::vector<std::string> arguments = common;
    arguments.insert(arguments.end(), own->begin(), own->end());
    for (const std::string& argument : arguments) {
      bool covered = false;
      for (const HostileEntry& entry : catalogue()) {
        covered = covered || (names_class(entry.layer, class_name, prefixes) &&
                              entry.fragment.find(argument) != std::string::npos);
      }
      EXPECT_TRUE(covered) << class_name << " " << argument;
    }
  }
}

// The same for tf.nn: every argument of every tf.nn function (tf_nn_args.cpp, TF 2 signatures) appears by name in
// the fragment of an entry whose text calls that function. The tensors (input, filters/filter) are opaque to
// convbridge: they are covered by the message for a call that omits them ("... is missing the required argument
// 'input'").
TEST(HostileCatalogueFile, CoversEveryArgumentOfEveryTfNnFunction) {
  const std::vector<std::string> forward = {"input", "filters", "strides", "padding", "data_format", "dilations",
                                            "name"};
  const std::vector<std::string> conv1d = {"input", "filters", "stride", "padding", "data_format", "dilations",
                                           "name"};
  const std::vector<std::string> depthwise = {"input", "filter", "strides", "padding", "data_format", "dilations",
                                              "name"};
  const std::vector<std::string> transposed = {"input", "filters", "output_shape", "strides", "padding",
                                               "data_format", "dilations", "name"};
  const std::vector<std::pair<std::string, const std::vector<std::string>*>> functions = {
      {"conv1d", &conv1d},
      {"conv2d", &forward},
      {"conv3d", &forward},
      {"depthwise_conv2d", &depthwise},
      {"convolution", &forward},
      {"conv1d_transpose", &transposed},
      {"conv2d_transpose", &transposed},
      {"conv3d_transpose", &transposed},
      {"conv_transpose", &transposed}};
  for (const auto& [function, arguments] : functions) {
    for (const std::string& argument : *arguments) {
      // "filters" must not be matched by "filters shape" or "--filters-shape"; input by "--input-shape".
      const std::string wanted = argument == "input" || argument == "filters" || argument == "filter"
                                     ? "is missing the required argument '" + argument + "'"
                                     : argument;
      bool covered = false;
      for (const HostileEntry& entry : catalogue()) {
        covered = covered || (names_class(entry.layer, function, {"tf.nn."}) &&
                              entry.fragment.find(wanted) != std::string::npos);
      }
      EXPECT_TRUE(covered) << "tf.nn." << function << " " << argument;
    }
  }
}

}  // namespace
}  // namespace convbridge
