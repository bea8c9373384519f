// Shape text from the command line (--input-shape, --filters-shape): Python-literal sizes, checked and bounded.
#include <fmt/format.h>

#include "convbridge/frontends.hpp"
#include "frontends/python_call.hpp"

namespace convbridge {

namespace {

using frontends::PyValue;

// A comma-separated shape given on the command line as `option`, e.g. "1,3,32,32" or "(None, 32, 32, 3)".
Result<std::vector<int64_t>> parse_shape_text(std::string_view text, bool allow_unknown, std::string_view option,
                                              std::string_view example) {
  auto bad = [&](std::string why) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("{} '{}' {}; expected comma-separated sizes such as {}", option,
                                  frontends::printable_excerpt(text), why, example));
  };
  constexpr size_t kMaxShapeTextBytes = 4096;  // a rank-3 shape of 10-digit sizes is under 100 bytes
  if (text.size() > kMaxShapeTextBytes) {
    return bad(fmt::format("is {} bytes long; the limit is {} bytes", text.size(), kMaxShapeTextBytes));
  }
  auto call = frontends::parse_python_call(fmt::format("shape({})", text));
  if (!call) {
    // Overflow messages are one line without a column; syntax errors' columns would count the "shape(" prefix.
    return bad(call.error().code == ErrorCode::overflow ? fmt::format("does not parse: {}", call.error().message)
                                                        : std::string("does not parse"));
  }
  std::vector<const PyValue*> values;
  for (const auto& argument : call->arguments) {
    if (argument.keyword) return bad("contains a keyword");
    if (argument.value.kind == PyValue::Kind::sequence && call->arguments.size() == 1) {
      for (const auto& item : argument.value.items) values.push_back(&item);
    } else {
      values.push_back(&argument.value);
    }
  }
  if (values.empty()) return bad("is empty");
  std::vector<int64_t> shape;
  for (const PyValue* value : values) {
    if (allow_unknown && value->kind == PyValue::Kind::none) {
      shape.push_back(kUnknownSize);
      continue;
    }
    if (value->kind != PyValue::Kind::integer) return bad(fmt::format("has a non-integer entry '{}'", value->source));
    if (value->integer <= 0) return bad(fmt::format("has the size {}; every size must be positive", value->source));
    if (value->integer > kMaxSizeArgument) {
      return bad(fmt::format("has the size {}, above the limit {}", value->source, kMaxSizeArgument));
    }
    shape.push_back(value->integer);
  }
  return shape;
}

}  // namespace

Result<std::vector<int64_t>> parse_input_shape(std::string_view text, bool allow_unknown) {
  return parse_shape_text(text, allow_unknown, "--input-shape", allow_unknown ? "None,32,32,3" : "1,3,32,32");
}

Result<std::vector<int64_t>> parse_filters_shape(std::string_view text) {
  return parse_shape_text(text, false, "--filters-shape", "3,3,16,32");
}

}  // namespace convbridge
