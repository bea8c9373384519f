// Layout arithmetic shared by the model planners (src/model/keras_model_planner.cpp, torch_model_planner.cpp).
#include "model/layout.hpp"

#include "convbridge/checked_math.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <numeric>

namespace convbridge::model {

std::vector<int> identity_perm(size_t rank) {
  std::vector<int> perm(rank);
  std::iota(perm.begin(), perm.end(), 0);
  return perm;
}

// (N, C, *spatial) -> (N, *spatial, C); ranks below 3 stay as they are.
std::vector<int> channels_last_perm(size_t rank) {
  if (rank < 3) return identity_perm(rank);
  std::vector<int> perm = {0};
  for (size_t i = 2; i < rank; ++i) perm.push_back(static_cast<int>(i));
  perm.push_back(1);
  return perm;
}

std::vector<int64_t> permuted(const std::vector<int64_t>& shape, const std::vector<int>& perm) {
  std::vector<int64_t> out;
  for (const int axis : perm) out.push_back(shape[static_cast<size_t>(axis)]);
  return out;
}

int position(const Layout& layout, int dim) {
  for (size_t i = 0; i < layout.perm.size(); ++i) {
    if (layout.perm[i] == dim) return static_cast<int>(i);
  }
  return -1;
}

std::string py_ints(const std::vector<int64_t>& values) {
  if (values.size() == 1) return fmt::format("({},)", values[0]);
  return fmt::format("({})", fmt::join(values, ", "));
}
std::string py_ints(const std::vector<int>& values) {
  return py_ints(std::vector<int64_t>(values.begin(), values.end()));
}

WeightLayoutChange identity_change(const std::vector<int64_t>& shape) {
  WeightLayoutChange change;
  change.from_shape = shape;
  change.permutation = identity_perm(shape.size());
  change.to_shape = shape;
  return change;
}

// Whether moving from `from` to `to` (target axis orders over the same source axes) keeps every axis longer than
// 1 in the same relative order: then it is a reshape, not a data movement.
bool only_unit_axes_move(const std::vector<int64_t>& shape, const std::vector<int>& from, const std::vector<int>& to) {
  std::vector<int> a, b;
  for (const int axis : from) {
    if (shape[static_cast<size_t>(axis)] != 1) a.push_back(axis);
  }
  for (const int axis : to) {
    if (shape[static_cast<size_t>(axis)] != 1) b.push_back(axis);
  }
  return a == b;
}

bool any_unknown(const std::vector<int64_t>& shape) {
  return std::find(shape.begin(), shape.end(), kUnknownSize) != shape.end();
}


// Sizes that vary with the input (kUnknownSize) form groups of their own, matched by equal symbolic expressions.
std::optional<std::vector<ReshapeGroup>> reshape_groups(const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                                                        const std::vector<std::string>& in_symbols,
                                                        const std::vector<std::string>& out_symbols) {
  const auto symbol = [](const std::vector<std::string>& symbols, int axis) {
    return static_cast<size_t>(axis) < symbols.size() ? symbols[static_cast<size_t>(axis)] : std::string();
  };
  std::vector<int> a, b;
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i] != 1) a.push_back(static_cast<int>(i));
  }
  for (size_t j = 1; j < out.size(); ++j) {
    if (out[j] != 1) b.push_back(static_cast<int>(j));
  }
  std::vector<ReshapeGroup> groups;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (i >= a.size() || j >= b.size()) return std::nullopt;
    ReshapeGroup group;
    int64_t pa = in[static_cast<size_t>(a[i])], pb = out[static_cast<size_t>(b[j])];
    if (pa == kUnknownSize || pb == kUnknownSize) {
      const std::string sa = symbol(in_symbols, a[i]);
      if (pa != pb || sa.empty() || sa != symbol(out_symbols, b[j])) return std::nullopt;
      group.from.push_back(a[i++]);
      group.to.push_back(b[j++]);
      groups.push_back(std::move(group));
      continue;
    }
    group.from.push_back(a[i++]);
    group.to.push_back(b[j++]);
    while (pa != pb) {
      if ((i < a.size() && in[static_cast<size_t>(a[i])] == kUnknownSize && pa < pb) ||
          (j < b.size() && out[static_cast<size_t>(b[j])] == kUnknownSize && pb < pa)) {
        return std::nullopt;
      }
      if (pa < pb) {
        if (i >= a.size()) return std::nullopt;
        pa *= in[static_cast<size_t>(a[i])];
        group.from.push_back(a[i++]);
      } else {
        if (j >= b.size()) return std::nullopt;
        pb *= out[static_cast<size_t>(b[j])];
        group.to.push_back(b[j++]);
      }
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

// The target layout after reshaping a tensor laid out as `perm` from `in` to `out` in place (no data movement),
// if each group's source axes are adjacent and in order in the target; batch (axis 0) stays axis 0.
std::optional<std::vector<int>> reshape_in_place(const std::vector<int64_t>& in, const std::vector<int>& perm,
                                                 const std::vector<int64_t>& out,
                                                 const std::vector<std::string>& in_symbols,
                                                 const std::vector<std::string>& out_symbols) {
  if (perm.empty() || perm[0] != 0) return std::nullopt;
  const auto groups = reshape_groups(in, out, in_symbols, out_symbols);
  if (!groups) return std::nullopt;
  // Rank of each axis longer than 1 in target order.
  std::map<int, int> order;
  for (const int axis : perm) {
    if (axis != 0 && in[static_cast<size_t>(axis)] != 1) order[axis] = static_cast<int>(order.size());
  }
  std::vector<std::pair<int, const ReshapeGroup*>> placed;
  for (const ReshapeGroup& group : *groups) {
    for (size_t k = 1; k < group.from.size(); ++k) {
      if (order[group.from[k]] != order[group.from[k - 1]] + 1) return std::nullopt;
    }
    placed.emplace_back(order[group.from[0]], &group);
  }
  std::sort(placed.begin(), placed.end());
  std::vector<int> result = {0};
  for (const auto& [rank, group] : placed) result.insert(result.end(), group->to.begin(), group->to.end());
  // Axes of length 1 of the output: right after their predecessor.
  for (size_t j = 1; j < out.size(); ++j) {
    if (out[j] != 1) continue;
    const auto before = std::find(result.begin(), result.end(), static_cast<int>(j) - 1);
    result.insert(before == result.end() ? result.end() : before + 1, static_cast<int>(j));
  }
  if (result.size() != out.size()) return std::nullopt;
  return result;
}

// A target order for the source axes that makes every reshape group adjacent and in order, moving as little as it
// can: each group's axes take the positions they hold now, in source order.
std::optional<std::vector<int>> order_for_reshape(const std::vector<int64_t>& in, const std::vector<int>& perm,
                                                  const std::vector<int64_t>& out,
                                                  const std::vector<std::string>& in_symbols,
                                                  const std::vector<std::string>& out_symbols) {
  const auto groups = reshape_groups(in, out, in_symbols, out_symbols);
  if (!groups) return std::nullopt;
  std::vector<int> result = perm;
  for (const ReshapeGroup& group : *groups) {
    std::vector<int> slots;
    for (const int axis : group.from) {
      for (size_t i = 0; i < perm.size(); ++i) {
        if (perm[i] == axis) slots.push_back(static_cast<int>(i));
      }
    }
    std::sort(slots.begin(), slots.end());
    for (size_t k = 0; k < slots.size(); ++k) result[static_cast<size_t>(slots[k])] = group.from[k];
  }
  if (reshape_in_place(in, result, out, in_symbols, out_symbols)) return result;
  return identity_perm(in.size());
}

// (N, *spatial, C) -> (N, C, *spatial); ranks below 3 stay as they are.
std::vector<int> channels_first_perm(size_t rank) {
  if (rank < 3) return identity_perm(rank);
  std::vector<int> perm = {0, static_cast<int>(rank) - 1};
  for (size_t i = 1; i + 1 < rank; ++i) perm.push_back(static_cast<int>(i));
  return perm;
}

std::vector<int> inverse_perm(const std::vector<int>& perm) {
  std::vector<int> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<int>(i);
  return inverse;
}

std::string python_identifier(const std::string& text, const std::set<std::string>& reserved, bool rename_capitalized) {
  std::string out;
  for (const char c : text) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "t_" + out;
  // Python keywords and constants, and the names of the generated file itself; CamelCase names are left to the
  // helper classes it embeds.
  static const std::set<std::string> python = {
      "None",   "True",  "False", "and",      "as",     "assert", "async", "await", "break",  "class",
      "continue", "def", "del",   "elif",     "else",   "except", "finally", "for", "from",   "global",
      "if",     "import", "in",   "is",       "lambda", "nonlocal", "not", "or",    "pass",   "raise",
      "return", "try",   "while", "with",     "yield",  "print",  "len",   "range", "super",  "object",
      "type",   "tuple", "list",  "dict",     "int",    "float",  "str",   "self",  "os",     "json"};
  if (rename_capitalized && std::isupper(static_cast<unsigned char>(out[0]))) out = "t_" + out;
  if (python.count(out) || reserved.count(out)) out += "_";
  return out;
}

std::vector<double> convert_weight(const std::vector<LayerPlan>& layer_plans, const TargetWeight& weight,
                                   std::span<const double> parameter) {
  if (!weight.constant) {  // values of another shape would be read out of bounds
    const auto expected = checked_product(weight.change.from_shape);
    if (!expected || static_cast<size_t>(*expected) != parameter.size()) return {};
  }
  if (weight.layer_plan < 0) return apply_layout_change<double>(weight.change, parameter);
  const LayerPlan& layer = layer_plans[static_cast<size_t>(weight.layer_plan)];
  const FrameworkWeight& target =
      layer.steps[static_cast<size_t>(weight.step)].weights[static_cast<size_t>(weight.step_weight)];
  if (weight.constant) {
    const auto count = checked_product(target.from_neutral.to_shape);
    return std::vector<double>(static_cast<size_t>(count.value_or(0)), weight.fill);
  }
  const std::vector<double> neutral = source_weight_to_neutral(layer, static_cast<size_t>(weight.source_weight), parameter);
  return neutral_to_target_weight(target, neutral);
}

}  // namespace convbridge::model
