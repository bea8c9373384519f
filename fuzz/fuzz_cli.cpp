// libFuzzer target: the command line. The input is the argument vector (without the program name), entries
// separated by NUL bytes, e.g. "translate\0nn.Conv2d(3, 16, 3)\0--input-shape\0001,3,8,8\0--emit\0json".
// Checks the CLI contract: exit status 0, 1 or 2; nothing on stdout on an error; one "convbridge: error:" line;
// status 1 (the reference engine found a wrong plan) is a convbridge bug and fails the run.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "fuzz_support.hpp"

namespace {

constexpr size_t kMaxArguments = 64;

// Lines of `text` that start with `prefix`.
size_t lines_starting_with(std::string_view text, std::string_view prefix) {
  size_t n = 0;
  for (size_t at = 0; at < text.size();) {
    if (text.substr(at, prefix.size()) == prefix) ++n;
    const size_t newline = text.find('\n', at);
    if (newline == std::string_view::npos) break;
    at = newline + 1;
  }
  return n;
}

// cli::run verifies every plan, so an argument vector that names a layer whose verification the harness guard
// refuses (see fuzz_support.hpp) is skipped: every layer text in it is tried with no shape and every shape text.
bool verification_is_cheap(const std::vector<std::string>& arguments) {
  std::vector<std::optional<std::vector<int64_t>>> shapes{std::nullopt};
  for (const std::string& argument : arguments) {
    std::string_view text = argument;
    if (text.rfind("--input-shape=", 0) == 0) text.remove_prefix(14);
    if (auto shape = convbridge::parse_input_shape(text)) shapes.emplace_back(std::move(*shape));
  }
  for (const std::string& argument : arguments) {
    auto layer = convbridge::parse_pytorch_layer(argument);
    if (!layer) continue;
    for (const auto& shape : shapes) {
      auto plan = convbridge::plan_torch_to_tf(*layer, shape);
      if (plan && !convbridge::fuzz::verification_is_cheap(*plan)) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> arguments;
  size_t start = 0;
  while (start <= input.size() && arguments.size() < kMaxArguments) {
    const size_t end = std::min(input.find('\0', start), input.size());
    arguments.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }
  if (!verification_is_cheap(arguments)) return 0;

  const convbridge::cli::CliResult result = convbridge::cli::run(arguments);
  using convbridge::fuzz::fuzz_fail;
  switch (result.exit_status) {
    case 0:
      // Success may say on stderr what stdout cannot carry (a likely mistake, a skipped check), one
      // "convbridge: warning:" or "convbridge: note:" line each; nothing else.
      for (size_t line = 0; line < result.err.size();) {
        const size_t end = result.err.find('\n', line);
        const std::string_view text = std::string_view(result.err).substr(line, end - line);
        if (end == std::string::npos || !(text.starts_with("convbridge: warning: ") ||
                                          text.starts_with("convbridge: note: "))) {
          fuzz_fail("exit 0 with something on stderr that is not a warning or note line: " + result.err, input);
        }
        line = end + 1;
      }
      break;
    case 1:
      fuzz_fail("exit 1: the reference engine found a plan that does not reproduce PyTorch:\n" + result.err, input);
    case 2:
      if (!result.out.empty()) fuzz_fail("exit 2 with something on stdout", input);
      if (result.err.empty()) fuzz_fail("exit 2 without a message", input);
      // A library error is one "convbridge: error:" line (a syntax error adds an excerpt and a caret below it);
      // user text quoted in it must not start another such line. CLI11's usage errors carry no prefix.
      if (result.err.rfind("convbridge: error: ", 0) == 0 && lines_starting_with(result.err, "convbridge: error:") != 1) {
        fuzz_fail("more than one error line: " + result.err, input);
      }
      break;
    default:
      fuzz_fail("exit status " + std::to_string(result.exit_status), input);
  }
  return 0;
}
