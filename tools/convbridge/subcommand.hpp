// What the subcommands (`weights`, `port`, `convert`) share: parsing their arguments with CLI11 into one result.
#pragma once

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"

namespace convbridge::cli {

// Parses `arguments` into `app`'s options. nullopt when they parsed; otherwise what to return: --help's text
// (status 0) or one `convbridge: error:` line naming the problem (status 2).
inline std::optional<CliResult> parse_subcommand(CLI::App& app, const std::vector<std::string>& arguments,
                                                 std::string_view command) {
  const auto error_line = [](const std::string& message) {
    return CliResult{2, "", fmt::format("convbridge: error: {}\n", message)};
  };
  try {
    app.parse(std::vector<std::string>(arguments.rbegin(), arguments.rend()));  // CLI11 takes them reversed
  } catch (const CLI::ParseError& error) {
    std::ostringstream out, err;
    const int status = app.exit(error, out, err);
    if (status == 0) return CliResult{0, out.str(), err.str()};  // --help
    return error_line(fmt::format("{} (see {} --help)", error.what(), command));
  } catch (const std::exception& error) {
    return error_line(fmt::format("a command-line value is malformed ({})", error.what()));
  }
  return std::nullopt;
}

}  // namespace convbridge::cli
