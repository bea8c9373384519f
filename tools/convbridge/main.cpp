// The convbridge binary: hands its arguments to cli::run and writes what it returns.
#include <cstdio>

#include "cli.hpp"

int main(int argc, char** argv) {
  const convbridge::cli::CliResult result = convbridge::cli::run(std::vector<std::string>(argv + 1, argv + argc));
  std::fwrite(result.out.data(), 1, result.out.size(), stdout);
  std::fwrite(result.err.data(), 1, result.err.size(), stderr);
  if (std::fflush(stdout) != 0) return 2;  // e.g. a full disk: never report success for a partial file
  return result.exit_status;
}
