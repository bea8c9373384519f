// Argument handling shared by the framework front-ends: binding a parsed call to a Python signature, size
// arguments (int or tuple), and "did you mean" hints.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/result.hpp"
#include "frontends/python_call.hpp"

namespace convbridge::frontends {

Error invalid_argument(std::string message);

// Levenshtein distance between two keywords.
size_t edit_distance(std::string_view a, std::string_view b);

// " (did you mean 'x'?)" for a keyword within two edits of a parameter name, else "".
std::string closest_name_hint(std::string_view keyword, std::span<const std::string_view> names);

// A call's arguments bound to a signature the way Python binds them: positionals first, then keywords, no
// duplicates, required parameters present.
class BoundArguments {
 public:
  static Result<BoundArguments> bind(const PyCall& call, std::string_view class_name,
                                     std::span<const std::string_view> names, size_t required,
                                     std::string_view signature, std::string (*keyword_hint)(std::string_view));
  bool given(std::string_view name) const;
  // The value bound to `name`, or `default_source` parsed as a Python literal.
  PyValue get(std::string_view name, std::string_view default_source) const;

 private:
  std::vector<std::string_view> names_;
  std::vector<const PyValue*> values_;
};

// A size argument: an int, or a tuple/list of `rank` ints, each within kMaxSizeArgument in magnitude.
Result<std::vector<int64_t>> int_or_tuple(const PyValue& value, std::string_view name, int rank);

}  // namespace convbridge::frontends
