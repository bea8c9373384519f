// Errors as values: every fallible library call returns Result<T>. Exceptions appear only at the Python
// boundary; aborts only for broken internal invariants.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace convbridge {

enum class ErrorCode {
  syntax,            // layer text or shape text that does not parse
  unknown_argument,  // a keyword or layer name the framework does not have
  invalid_argument,  // a value the framework rejects (wrong type, out of range, inconsistent)
  input_shape,       // an input shape the layer cannot take
  overflow,          // a size that does not fit in 64 bits
  unsupported,       // valid in the source framework, not handled by convbridge yet
};

struct Error {
  ErrorCode code;
  std::string message;  // names the argument and the value at fault
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace convbridge

#define CONVBRIDGE_CONCAT_INNER(a, b) a##b
#define CONVBRIDGE_CONCAT(a, b) CONVBRIDGE_CONCAT_INNER(a, b)

// `CONVBRIDGE_TRY(auto x, expr);` declares x from a successful Result or returns its error.
#define CONVBRIDGE_TRY(declaration, expr)                                   \
  auto CONVBRIDGE_CONCAT(convbridge_result_, __LINE__) = (expr);            \
  if (!CONVBRIDGE_CONCAT(convbridge_result_, __LINE__)) {                   \
    return CONVBRIDGE_CONCAT(convbridge_result_, __LINE__).error();         \
  }                                                                          \
  declaration = std::move(CONVBRIDGE_CONCAT(convbridge_result_, __LINE__)).value()

// `CONVBRIDGE_CHECK(status_expr);` returns the error of a failed Status.
#define CONVBRIDGE_CHECK(expr)                                               \
  do {                                                                       \
    auto convbridge_status_ = (expr);                                        \
    if (!convbridge_status_) return convbridge_status_.error();              \
  } while (false)
