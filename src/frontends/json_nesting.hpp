// How deep a parsed JSON document nests, counted without recursion: the graph front-ends refuse documents deeper
// than they need before anything recurses over them (json::dump(), the emitters).
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace convbridge {

// The deepest nesting of arrays and objects in the document, stopping once it passes `limit`.
inline int json_nesting_depth(const nlohmann::json& root, int limit) {
  int deepest = 0;
  std::vector<std::pair<const nlohmann::json*, int>> pending = {{&root, 0}};
  while (!pending.empty()) {
    const auto [value, depth] = pending.back();
    pending.pop_back();
    if (!value->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    if (deepest > limit) return deepest;
    for (const nlohmann::json& child : *value) pending.emplace_back(&child, depth + 1);
  }
  return deepest;
}

}  // namespace convbridge
