#include "frontends/arguments.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "convbridge/frontends.hpp"

namespace convbridge::frontends {

Error invalid_argument(std::string message) { return make_error(ErrorCode::invalid_argument, std::move(message)); }

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closest_name_hint(std::string_view keyword, std::span<const std::string_view> names) {
  // No parameter name is longer than 24 characters: a keyword far longer cannot be within two edits, and the
  // quadratic distance would cost seconds on pasted garbage.
  constexpr size_t kLongestUsefulKeyword = 32;
  if (keyword.size() > kLongestUsefulKeyword) return "";
  for (std::string_view name : names) {
    if (edit_distance(keyword, name) <= 2) return fmt::format(" (did you mean '{}'?)", name);
  }
  return "";
}

Result<BoundArguments> BoundArguments::bind(const PyCall& call, std::string_view class_name,
                                            std::span<const std::string_view> names, size_t required,
                                            std::string_view signature,
                                            std::string (*keyword_hint)(std::string_view)) {
  BoundArguments bound;
  bound.names_.assign(names.begin(), names.end());
  bound.values_.assign(names.size(), nullptr);
  size_t position = 0;
  bool seen_keyword = false;
  for (const PyArgument& argument : call.arguments) {
    if (!argument.keyword) {
      if (seen_keyword) return make_error(ErrorCode::syntax, "positional argument follows keyword argument");
      if (position >= names.size()) {
        return invalid_argument(fmt::format("{} takes at most {} arguments ({} given)", class_name, names.size(),
                                            call.arguments.size()));
      }
      bound.values_[position++] = &argument.value;
      continue;
    }
    seen_keyword = true;
    const auto it = std::find(names.begin(), names.end(), *argument.keyword);
    if (it == names.end()) {
      return make_error(ErrorCode::unknown_argument,
                        fmt::format("{} got an unexpected keyword argument '{}'{}", class_name,
                                    printable_excerpt(*argument.keyword), keyword_hint(*argument.keyword)));
    }
    const auto index = static_cast<size_t>(it - names.begin());
    if (bound.values_[index] != nullptr) {
      return invalid_argument(fmt::format("{} got multiple values for argument '{}'", class_name, *argument.keyword));
    }
    bound.values_[index] = &argument.value;
  }
  for (size_t i = 0; i < required; ++i) {
    if (bound.values_[i] == nullptr) {
      return invalid_argument(fmt::format("{} is missing the required argument '{}' (signature: {}({}))", class_name,
                                          names[i], class_name, signature));
    }
  }
  return bound;
}

bool BoundArguments::given(std::string_view name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  return it != names_.end() && values_[static_cast<size_t>(it - names_.begin())] != nullptr;
}

PyValue BoundArguments::get(std::string_view name, std::string_view default_source) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  if (it != names_.end()) {
    if (const PyValue* value = values_[static_cast<size_t>(it - names_.begin())]) return *value;
  }
  // Defaults may be floats (eps=1e-05): parse them the way the op-set front-ends parse the call itself.
  auto parsed = parse_python_call(fmt::format("f({})", default_source), nullptr, /*accept_floats=*/true);
  return parsed->arguments.front().value;
}

Result<std::vector<int64_t>> int_or_tuple(const PyValue& value, std::string_view name, int rank) {
  auto as_int = [&](const PyValue& v) -> Result<int64_t> {
    if (v.kind != PyValue::Kind::integer) {
      return invalid_argument(fmt::format("{}={} must be an int or a tuple of {} ints, not {}", name, value.source,
                                          rank, kind_name(v.kind)));
    }
    if (v.integer > kMaxSizeArgument || v.integer < -kMaxSizeArgument) {
      return invalid_argument(fmt::format("{}={} is too large (the limit is {})", name, v.source, kMaxSizeArgument));
    }
    return v.integer;
  };
  if (value.kind == PyValue::Kind::sequence) {
    if (value.items.size() != static_cast<size_t>(rank)) {
      return invalid_argument(fmt::format("{}={} has {} entries; a {}-D layer needs an int or {} ints", name,
                                          value.source, value.items.size(), rank, rank));
    }
    std::vector<int64_t> out;
    for (const PyValue& item : value.items) {
      CONVBRIDGE_TRY(int64_t v, as_int(item));
      out.push_back(v);
    }
    return out;
  }
  CONVBRIDGE_TRY(int64_t v, as_int(value));
  return std::vector<int64_t>(static_cast<size_t>(rank), v);
}

}  // namespace convbridge::frontends
