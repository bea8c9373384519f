// A small parser for one Python call expression made of literals, as users paste layer constructors:
//   nn.Conv2d(3, 16, kernel_size=(3, 3), padding='same', bias=False, dtype=torch.float32)
// It evaluates nothing; it only recognises ints, strings, True/False/None, dotted names and tuples/lists.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/result.hpp"

namespace convbridge::frontends {

inline constexpr size_t kMaxCallTextBytes = 64 * 1024;
inline constexpr int kMaxNesting = 8;

struct PyValue {
  enum class Kind { integer, number, string, boolean, none, name, sequence, call };
  Kind kind = Kind::none;
  int64_t integer = 0;
  double number = 0.0;  // Kind::number: a float literal (only when the parser accepts floats)
  bool boolean = false;
  std::string text;  // string contents, or the dotted name (of the callee, for a call)
  std::vector<PyValue> items;
  std::string source;  // the literal as written, for error messages (made printable by printable_excerpt)
};

struct PyArgument {
  std::optional<std::string> keyword;
  PyValue value;
};

struct PyCall {
  std::string callee;  // dotted name, e.g. "torch.nn.Conv2d"
  std::vector<PyArgument> arguments;
};

// Parses `text` as one call. Errors name the column and show a caret under it.
Result<PyCall> parse_python_call(std::string_view text);

// The callee's parameter names in positional order (empty when the callee is unknown).
using ParameterNames = std::span<const std::string_view> (*)(std::string_view callee);

// As above; a syntax error inside an argument also names that argument ("stride: ..."), by its keyword or, for a
// positional argument, by parameter_names(callee) ("argument 12" past the end).
Result<PyCall> parse_python_call(std::string_view text, ParameterNames parameter_names);

// As above; with accept_floats, float literals (1e-5, 0.2, .5, -1.5) parse as Kind::number values. The conv
// front-ends leave it off: every conv argument is an int, and "only decimal integers" is the clearer error there.
Result<PyCall> parse_python_call(std::string_view text, ParameterNames parameter_names, bool accept_floats);

// `text` as it may be quoted in an error message: printable ASCII kept, every other byte (newline, escape,
// UTF-8) written as \xNN, and text longer than `limit` shortened to its start and its length in bytes.
std::string printable_excerpt(std::string_view text, size_t limit = 100);

std::string_view kind_name(PyValue::Kind kind);

// The dotted name a text starts with ("keras.layers.Conv2D" for "keras.layers.Conv2D(16, (3, 3"), read without
// parsing the arguments, so that a front-end can claim text whose arguments do not parse.
std::string_view leading_dotted_name(std::string_view text);

}  // namespace convbridge::frontends
