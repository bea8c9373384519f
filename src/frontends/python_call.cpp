#include "frontends/python_call.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include <cctype>

#include "convbridge/checked_math.hpp"

namespace convbridge::frontends {
namespace {

bool is_identifier_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class CallParser {
 public:
  CallParser(std::string_view text, ParameterNames parameter_names, bool accept_floats)
      : text_(text), parameter_names_(parameter_names), accept_floats_(accept_floats) {}

  Result<PyCall> parse() {
    PyCall call;
    skip_space();
    if (at_end()) {
      return make_error(ErrorCode::syntax, "the layer text is empty; expected a call such as nn.Conv2d(3, 16, 3)");
    }
    if (!is_identifier_start(peek())) return fail("expected a layer name such as nn.Conv2d");
    call.callee = dotted_name();
    skip_space();
    // A line pasted from code, "self.conv1 = nn.Conv2d(3, 16, 3)": the call is the right-hand side.
    if (peek() == '=' && peek(1) != '=') {
      consume('=');
      skip_space();
      if (!is_identifier_start(peek())) return fail("expected a layer name such as nn.Conv2d after '='");
      call.callee = dotted_name();
      skip_space();
    }
    if (!consume('(')) return fail(fmt::format("expected '(' after '{}'", call.callee));
    skip_space();
    if (!consume(')')) {
      while (true) {
        CONVBRIDGE_TRY(PyArgument argument, parse_argument(call.callee, call.arguments.size()));
        argument_label_.clear();
        call.arguments.push_back(std::move(argument));
        skip_space();
        if (consume(')')) break;
        if (!consume(',')) return fail("expected ',' or ')' after an argument");
        skip_space();
        if (consume(')')) break;  // trailing comma
      }
    }
    skip_space();
    consume(',');  // an element pasted from an nn.Sequential(...) or a list
    skip_space();
    if (!at_end()) return fail("unexpected text after the closing ')'");
    return call;
  }

 private:
  Result<PyArgument> parse_argument(std::string_view callee, size_t index) {
    PyArgument argument;
    if (parameter_names_ != nullptr) {  // errors inside this argument name it
      const std::span<const std::string_view> names = parameter_names_(callee);
      argument_label_ = index < names.size() ? std::string(names[index]) : fmt::format("argument {}", index + 1);
    }
    // keyword=value: look ahead for an identifier followed by a single '='.
    if (is_identifier_start(peek())) {
      const size_t start = pos_;
      std::string name = identifier();
      skip_space();
      if (peek() == '=' && peek(1) != '=') {
        ++pos_;
        skip_space();
        if (parameter_names_ != nullptr) argument_label_ = printable_excerpt(name, 40);
        argument.keyword = std::move(name);
      } else {
        pos_ = start;
      }
    }
    CONVBRIDGE_TRY(argument.value, parse_value(0));
    return argument;
  }

  Result<PyValue> parse_value(int depth) {
    if (depth > kMaxNesting) return fail(fmt::format("values nested deeper than {} levels", kMaxNesting));
    skip_space();
    const size_t start = pos_;
    if (at_end()) return fail("expected a value");
    PyValue value;
    const char c = peek();
    if (c == '(' || c == '[') {
      const char close = c == '(' ? ')' : ']';
      ++pos_;
      skip_space();
      bool trailing_comma = false;
      while (!consume(close)) {
        CONVBRIDGE_TRY(PyValue item, parse_value(depth + 1));
        value.items.push_back(std::move(item));
        skip_space();
        trailing_comma = consume(',');
        skip_space();
        if (!trailing_comma && peek() != close) return fail(fmt::format("expected ',' or '{}'", close));
      }
      // Python: (3) is the int 3; (3,) and [3] are sequences.
      if (c == '(' && value.items.size() == 1 && !trailing_comma) {
        PyValue inner = std::move(value.items.front());
        inner.source = printable_excerpt(text_.substr(start, pos_ - start));
        return inner;
      }
      value.kind = PyValue::Kind::sequence;
    } else if (c == '\'' || c == '"') {
      ++pos_;
      while (!at_end() && peek() != c) {
        if (peek() == '\\') return fail("escape sequences are not supported in strings");
        value.text.push_back(text_[pos_++]);
      }
      if (!consume(c)) return fail(fmt::format("unterminated string starting at column {}", start + 1), start);
      value.kind = PyValue::Kind::string;
    } else if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && (opaque_depth_ > 0 || accept_floats_) && std::isdigit(static_cast<unsigned char>(peek(1))))) {
      CONVBRIDGE_TRY(value.integer, parse_integer(&value));
      if (value.kind != PyValue::Kind::number) value.kind = PyValue::Kind::integer;
    } else if (is_identifier_start(c)) {
      value.text = dotted_name();
      if (value.text == "True" || value.text == "False") {
        value.kind = PyValue::Kind::boolean;
        value.boolean = value.text == "True";
      } else if (value.text == "None") {
        value.kind = PyValue::Kind::none;
      } else {
        value.kind = PyValue::Kind::name;
      }
      skip_space();
      if (peek() == '(') {
        // A nested call (e.g. kernel_initializer=keras.initializers.HeNormal()) is kept as opaque text: front-ends
        // accept it only where the value cannot change the computation.
        CONVBRIDGE_CHECK(skip_call(depth));
        value.kind = PyValue::Kind::call;
        skip_space();
      }
      // A subscript (tf.shape(x)[0], x.shape[-1]) is opaque too: TF code writes batch sizes that way.
      while (value.kind != PyValue::Kind::boolean && value.kind != PyValue::Kind::none && peek() == '[') {
        CONVBRIDGE_CHECK(skip_bracketed(depth, ']', "a subscript"));
        value.kind = PyValue::Kind::call;
        skip_space();
      }
    } else {
      return fail(fmt::format("unexpected character '{}'", printable(c)));
    }
    value.source = printable_excerpt(text_.substr(start, pos_ - start));
    return value;
  }

  // Skips a subscript "[ ... ]" (or any bracketed list of values), validating its values; it reads nothing.
  Status skip_bracketed(int depth, char close, std::string_view what) {
    if (depth + 1 > kMaxNesting) return fail(fmt::format("values nested deeper than {} levels", kMaxNesting));
    ++pos_;  // the opening bracket
    skip_space();
    while (!consume(close)) {
      CONVBRIDGE_TRY(PyValue ignored, parse_value(depth + 1));
      (void)ignored;
      skip_space();
      if (!consume(',') && peek() != close) return fail(fmt::format("expected ',' or '{}' in {}", close, what));
      skip_space();
    }
    return Ok{};
  }

  // Skips a balanced "( ... )" argument list, validating its values. Its numbers may be any Python int or float
  // literal (keras.regularizers.L2(1e-4)): nothing reads them.
  Status skip_call(int depth) {
    struct OpaqueScope {
      int& counter;
      explicit OpaqueScope(int& c) : counter(c) { ++counter; }
      ~OpaqueScope() { --counter; }
      OpaqueScope(const OpaqueScope&) = delete;
      OpaqueScope& operator=(const OpaqueScope&) = delete;
    } scope(opaque_depth_);
    ++pos_;  // '('
    skip_space();
    while (!consume(')')) {
      if (is_identifier_start(peek())) {  // keyword=
        const size_t start = pos_;
        identifier();
        skip_space();
        if (!(peek() == '=' && peek(1) != '=')) pos_ = start; else { ++pos_; }
      }
      CONVBRIDGE_TRY(PyValue ignored, parse_value(depth + 1));
      (void)ignored;
      skip_space();
      if (!consume(',') && peek() != ')') return fail("expected ',' or ')' in a nested call");
      skip_space();
    }
    return Ok{};
  }

  // An integer literal; with accept_floats_ and `number` given, a float literal too (number->kind = number).
  Result<int64_t> parse_integer(PyValue* number = nullptr) {
    const size_t start = pos_;
    bool negative = false;
    if (peek() == '-' || peek() == '+') {
      negative = peek() == '-';
      ++pos_;
      skip_space();
    }
    const bool fraction_first = (opaque_depth_ > 0 || accept_floats_) && peek() == '.' &&
                                std::isdigit(static_cast<unsigned char>(peek(1)));
    if (!std::isdigit(static_cast<unsigned char>(peek())) && !fraction_first) {
      return fail("expected digits after the sign");
    }
    // The whole number-like token (digits, letters, '_', '.', an exponent's sign), checked as one literal.
    const size_t digits = pos_;
    size_t end = pos_;
    while (end < text_.size() && (is_identifier_char(text_[end]) || text_[end] == '.' ||
                                  ((text_[end] == '+' || text_[end] == '-') &&
                                   (text_[end - 1] == 'e' || text_[end - 1] == 'E')))) {
      ++end;
    }
    const std::string_view token = text_.substr(digits, end - digits);
    const std::string literal = printable_excerpt(text_.substr(start, end - start), 40);
    if (token.find_first_not_of("0123456789_") != std::string_view::npos) {
      if (opaque_depth_ > 0) {
        if (!is_python_float(token)) return fail(fmt::format("{} is not a Python number", literal), start);
        pos_ = end;
        return int64_t{0};  // a float inside a nested call: valid Python, and nothing reads it
      }
      if (accept_floats_ && number != nullptr) {
        if (!is_python_float(token)) return fail(fmt::format("{} is not a Python number", literal), start);
        std::string digits_only;
        for (const char d : token) {
          if (d != '_') digits_only.push_back(d);
        }
        number->number = std::strtod(digits_only.c_str(), nullptr);  // inf for 1e999, as Python
        if (negative) number->number = -number->number;
        number->kind = PyValue::Kind::number;
        pos_ = end;
        return int64_t{0};
      }
      return fail(fmt::format("only decimal integers are accepted here, not {}", literal), start);
    }
    // Python's decimal integer literal: nonzerodigit (["_"] digit)* | "0"+ (["_"] "0")*.
    if (token.back() == '_' || token.find("__") != std::string_view::npos) {
      return fail(fmt::format("{} is not a Python integer: an underscore may only separate two digits (Python: "
                              "\"invalid decimal literal\")",
                              literal),
                  start);
    }
    if (token.front() == '0' && token.find_first_not_of("0_") != std::string_view::npos) {
      return fail(fmt::format("{} is not a Python integer: a non-zero decimal integer cannot start with 0 (Python: "
                              "\"leading zeros in decimal integer literals are not permitted\")",
                              literal),
                  start);
    }
    int64_t magnitude = 0;
    bool overflowed = false;
    for (const char d : token) {
      if (d == '_') continue;
      auto next = checked_mul(magnitude, 10);
      if (next) next = checked_add(*next, d - '0');
      if (!next) overflowed = true; else magnitude = *next;
    }
    pos_ = end;
    if (overflowed && opaque_depth_ == 0) {
      return make_error(ErrorCode::overflow, fmt::format("{}integer {} does not fit in a signed 64-bit integer",
                                                         label_prefix(), printable_excerpt(text_.substr(start, end - start))));
    }
    return negative ? -magnitude : magnitude;
  }

  // A Python floatnumber without its sign: [digitpart] "." digitpart | digitpart "." (either with an exponent), or
  // digitpart exponent; digitpart = digit (["_"] digit)*, exponent = ("e" | "E") ["+" | "-"] digitpart.
  static bool is_python_float(std::string_view token) {
    size_t i = 0;
    const auto digitpart = [&]() {
      if (i >= token.size() || !std::isdigit(static_cast<unsigned char>(token[i]))) return false;
      ++i;
      while (i < token.size()) {
        if (std::isdigit(static_cast<unsigned char>(token[i]))) {
          ++i;
        } else if (token[i] == '_' && i + 1 < token.size() && std::isdigit(static_cast<unsigned char>(token[i + 1]))) {
          i += 2;
        } else {
          break;
        }
      }
      return true;
    };
    const bool integer_part = digitpart();
    bool point = false;
    bool fraction = false;
    if (i < token.size() && token[i] == '.') {
      point = true;
      ++i;
      fraction = digitpart();
    }
    if (!integer_part && !fraction) return false;
    bool exponent = false;
    if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
      ++i;
      if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
      if (!digitpart()) return false;
      exponent = true;
    }
    return i == token.size() && (point || exponent);
  }

  std::string identifier() {
    const size_t start = pos_;
    while (!at_end() && is_identifier_char(peek())) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  std::string dotted_name() {
    std::string name = identifier();
    while (peek() == '.' && is_identifier_start(peek(1))) {
      ++pos_;
      name += '.';
      name += identifier();
    }
    return name;
  }

  static std::string printable(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    return fmt::format("\\x{:02x}", u);
  }

  Error fail(std::string what) { return fail(std::move(what), pos_); }
  Error fail(std::string what, size_t column) {
    // Show at most ~70 characters of context around the column, with a caret under it.
    constexpr size_t kContext = 35;
    const size_t from = column > kContext ? column - kContext : 0;
    const size_t to = std::min(text_.size(), column + kContext);
    std::string excerpt;
    for (size_t i = from; i < to; ++i) {
      const auto u = static_cast<unsigned char>(text_[i]);
      excerpt += (u >= 0x20 && u < 0x7f) ? text_[i] : '?';
    }
    return make_error(ErrorCode::syntax, fmt::format("{}{} (column {})\n  {}{}\n  {}^", label_prefix(), what, column + 1,
                                                     from > 0 ? "..." : "", excerpt,
                                                     std::string(column - from + (from > 0 ? 3 : 0), ' ')));
  }

  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool consume(char c) {
    if (peek() != c || at_end()) return false;
    ++pos_;
    return true;
  }

  // "stride: " while parsing the value of an argument whose name is known, else "".
  std::string label_prefix() const { return argument_label_.empty() ? "" : argument_label_ + ": "; }

  std::string_view text_;
  ParameterNames parameter_names_ = nullptr;
  std::string argument_label_;
  int opaque_depth_ = 0;  // > 0 inside a nested call's arguments
  bool accept_floats_ = false;  // float literals are values (PyValue::Kind::number), not errors
  size_t pos_ = 0;
};

}  // namespace

Result<PyCall> parse_python_call(std::string_view text) { return parse_python_call(text, nullptr); }

Result<PyCall> parse_python_call(std::string_view text, ParameterNames parameter_names, bool accept_floats) {
  if (text.size() > kMaxCallTextBytes) {
    return make_error(ErrorCode::syntax, fmt::format("the layer text is {} bytes long; the limit is {} bytes",
                                                     text.size(), kMaxCallTextBytes));
  }
  return CallParser(text, parameter_names, accept_floats).parse();
}

Result<PyCall> parse_python_call(std::string_view text, ParameterNames parameter_names) {
  return parse_python_call(text, parameter_names, /*accept_floats=*/false);
}

std::string printable_excerpt(std::string_view text, size_t limit) {
  // Past the limit, keep a head short enough that head + "...[N bytes]" stays within about `limit` characters.
  const bool shorten = text.size() > limit;
  const size_t head = limit > 24 ? limit - 20 : 4;
  std::string out;
  for (size_t i = 0; i < text.size() && !(shorten && out.size() >= head); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x20 && u < 0x7f) {
      out += text[i];
    } else {
      out += fmt::format("\\x{:02x}", u);
    }
  }
  if (shorten) out += fmt::format("...[{} bytes]", text.size());
  return out;
}

std::string_view kind_name(PyValue::Kind kind) {
  switch (kind) {
    case PyValue::Kind::integer: return "int";
    case PyValue::Kind::number: return "float";
    case PyValue::Kind::string: return "str";
    case PyValue::Kind::boolean: return "bool";
    case PyValue::Kind::none: return "None";
    case PyValue::Kind::name: return "name";
    case PyValue::Kind::sequence: return "tuple";
    case PyValue::Kind::call: return "call";
  }
  return "?";
}

std::string_view leading_dotted_name(std::string_view text) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  const auto name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; };
  size_t begin = 0;
  while (begin < text.size() && space(text[begin])) ++begin;
  size_t end = begin;
  while (end < text.size() && name_char(text[end])) ++end;
  // "self.conv1 = nn.Conv2d(...)": the name on the right of the assignment (as parse_python_call reads it).
  size_t after = end;
  while (after < text.size() && space(text[after])) ++after;
  if (after < text.size() && text[after] == '=' && (after + 1 >= text.size() || text[after + 1] != '=')) {
    begin = after + 1;
    while (begin < text.size() && space(text[begin])) ++begin;
    end = begin;
    while (end < text.size() && name_char(text[end])) ++end;
  }
  return text.substr(begin, end - begin);
}

}  // namespace convbridge::frontends
