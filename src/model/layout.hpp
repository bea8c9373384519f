// Layout arithmetic shared by the model planners: a target tensor is a source tensor with its axes permuted
// (Layout::perm), and a reshape of the source is free in the target when the axes it merges or splits sit together
// and in order there. Both directions use it: PyTorch -> Keras (channels_first source, channels_last target) and
// Keras -> PyTorch (the reverse).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/model/target_plan.hpp"
#include "convbridge/weight_layout.hpp"

namespace convbridge::model {

std::vector<int> identity_perm(size_t rank);
// (N, C, *spatial) -> (N, *spatial, C): where a PyTorch axis sits in a Keras tensor. Ranks below 3 unchanged.
std::vector<int> channels_last_perm(size_t rank);
// (N, *spatial, C) -> (N, C, *spatial): where a Keras axis sits in a PyTorch tensor. Ranks below 3 unchanged.
std::vector<int> channels_first_perm(size_t rank);
std::vector<int> inverse_perm(const std::vector<int>& perm);
std::vector<int64_t> permuted(const std::vector<int64_t>& shape, const std::vector<int>& perm);
// The target axis holding source axis `dim`, -1 if none.
int position(const Layout& layout, int dim);
std::string py_ints(const std::vector<int64_t>& values);  // "(3,)", "(1, 2)"
std::string py_ints(const std::vector<int>& values);
WeightLayoutChange identity_change(const std::vector<int64_t>& shape);
bool any_unknown(const std::vector<int64_t>& shape);

// Whether moving from `from` to `to` (target axis orders over the same source axes) keeps every axis longer than
// 1 in the same relative order: then it is a reshape, not a data movement.
bool only_unit_axes_move(const std::vector<int64_t>& shape, const std::vector<int>& from, const std::vector<int>& to);

// Groups of a reshape: source axes (longer than 1) whose product equals that of a run of target axes.
struct ReshapeGroup {
  std::vector<int> from, to;
};
// Sizes that vary with the input (kUnknownSize) form groups of their own, matched by equal symbolic expressions.
std::optional<std::vector<ReshapeGroup>> reshape_groups(const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                                                        const std::vector<std::string>& in_symbols = {},
                                                        const std::vector<std::string>& out_symbols = {});
// The target layout after reshaping a tensor laid out as `perm` from `in` to `out` in place (no data movement),
// if each group's source axes are adjacent and in order in the target; batch (axis 0) stays axis 0.
std::optional<std::vector<int>> reshape_in_place(const std::vector<int64_t>& in, const std::vector<int>& perm,
                                                 const std::vector<int64_t>& out,
                                                 const std::vector<std::string>& in_symbols = {},
                                                 const std::vector<std::string>& out_symbols = {});
// A target order for the source axes that makes every reshape group adjacent and in order, moving as little as it
// can: each group's axes take the positions they hold now, in source order.
std::optional<std::vector<int>> order_for_reshape(const std::vector<int64_t>& in, const std::vector<int>& perm,
                                                  const std::vector<int64_t>& out,
                                                  const std::vector<std::string>& in_symbols,
                                                  const std::vector<std::string>& out_symbols);

// A Python identifier for a tensor or layer name, renamed away from keywords, builtins and `reserved` (the names
// the generated file itself uses); with rename_capitalized, also away from CamelCase (the helper classes' names,
// where the identifier is a global of the generated code).
std::string python_identifier(const std::string& text, const std::set<std::string>& reserved,
                              bool rename_capitalized = true);

// A target weight from its source parameter's values (row-major, weight.change.from_shape): the direct route or
// the op-set route through layer_plans; empty when the values are not of that shape.
std::vector<double> convert_weight(const std::vector<LayerPlan>& layer_plans, const TargetWeight& weight,
                                   std::span<const double> parameter);

}  // namespace convbridge::model
