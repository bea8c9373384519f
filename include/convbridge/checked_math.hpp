// Overflow-checked integer arithmetic for every size that comes from a user or a file.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace convbridge {

inline std::optional<int64_t> checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<int64_t> checked_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<int64_t> checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Product of all values (an element count); nullopt on overflow.
inline std::optional<int64_t> checked_product(std::span<const int64_t> values) {
  int64_t r = 1;
  for (int64_t v : values) {
    auto next = checked_mul(r, v);
    if (!next) return std::nullopt;
    r = *next;
  }
  return r;
}

// Floor division for a possibly negative numerator and a positive denominator (C++ truncates toward zero).
inline int64_t floor_div(int64_t numerator, int64_t denominator) {
  int64_t q = numerator / denominator;
  if ((numerator % denominator != 0) && (numerator < 0)) --q;
  return q;
}

}  // namespace convbridge
