// The hostile-input catalogue (tests/hostile/catalogue.json, format in tests/hostile/catalogue.py): every entry is
// rejected by the library at the stage it names, with the expected error code and a message that contains the
// fragment naming the argument and value, quickly, and in a form the CLI can print as one line (plus the excerpt
// and caret of a syntax error). One test per entry: HostileCatalogue/Rejects.Entry/<name>.
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

#include "convbridge/frontends.hpp"
#include "convbridge/planner.hpp"

#ifndef CONVBRIDGE_HOSTILE_CATALOGUE
#error "CONVBRIDGE_HOSTILE_CATALOGUE must name tests/hostile/catalogue.json"
#endif

namespace convbridge {
namespace {

struct HostileEntry {
  std::string name;
  std::string layer;
  std::optional<std::string> input_shape;
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

std::vector<HostileEntry> load_catalogue() {
  std::ifstream file(CONVBRIDGE_HOSTILE_CATALOGUE);
  if (!file) throw std::runtime_error("cannot read " CONVBRIDGE_HOSTILE_CATALOGUE);
  const nlohmann::json catalogue = nlohmann::json::parse(file);
  std::vector<HostileEntry> entries;
  for (const nlohmann::json& raw : catalogue) {
    HostileEntry entry;
    entry.name = raw.at("name").get<std::string>();
    entry.layer = expand(raw.at("layer"));
    if (raw.contains("input_shape")) entry.input_shape = expand(raw["input_shape"]);
    entry.stage = raw.at("stage").get<std::string>();
    entry.code = raw.at("code").get<std::string>();
    entry.fragment = raw.at("fragment").get<std::string>();
    entries.push_back(std::move(entry));
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

TEST_P(Rejects, Entry) {
  const HostileEntry& entry = GetParam();
  const auto start = std::chrono::steady_clock::now();
  auto layer = parse_pytorch_layer(entry.layer);
  if (entry.stage == "parse") {
    ASSERT_FALSE(layer) << "the layer was accepted";
    expect_clear_message(entry, layer.error());
  } else {
    ASSERT_TRUE(layer) << layer.error().message;
    ASSERT_TRUE(entry.input_shape) << "a " << entry.stage << "-stage entry needs an input_shape";
    auto shape = parse_input_shape(*entry.input_shape);
    if (entry.stage == "shape") {
      ASSERT_FALSE(shape) << "the input shape was accepted";
      expect_clear_message(entry, shape.error());
    } else {
      ASSERT_EQ(entry.stage, "plan");
      ASSERT_TRUE(shape) << shape.error().message;
      auto plan = plan_torch_to_tf(*layer, *shape);
      ASSERT_FALSE(plan) << "the layer was planned for this input shape";
      expect_clear_message(entry, plan.error());
    }
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
    EXPECT_TRUE(entry.stage == "parse" || entry.stage == "shape" || entry.stage == "plan") << entry.name;
    EXPECT_FALSE(entry.fragment.empty()) << entry.name;
    names.push_back(test_name(testing::TestParamInfo<HostileEntry>(entry, 0)));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end()) << "two entries share a test name";
}

// Every argument of every supported layer appears in the catalogue (by name in a fragment).
TEST(HostileCatalogueFile, CoversEveryArgumentOfEveryLayer) {
  const std::vector<std::string> layers = {"Conv1d", "Conv2d", "Conv3d",
                                           "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"};
  const std::vector<std::string> arguments = {"in_channels", "out_channels", "kernel_size", "stride", "padding",
                                              "dilation", "groups"};
  for (const std::string& layer : layers) {
    for (const std::string& argument : arguments) {
      bool covered = false;
      for (const HostileEntry& entry : catalogue()) {
        covered = covered || (entry.layer.find("nn." + layer + "(") == 0 &&
                              entry.fragment.find(argument) != std::string::npos);
      }
      EXPECT_TRUE(covered) << layer << " " << argument;
    }
  }
  for (const char* argument : {"output_padding", "bias", "padding_mode", "device", "dtype", "--input-shape"}) {
    bool covered = false;
    for (const HostileEntry& entry : catalogue()) covered = covered || entry.fragment.find(argument) != std::string::npos;
    EXPECT_TRUE(covered) << argument;
  }
}

}  // namespace
}  // namespace convbridge
