// The convbridge command line as a function, so the `convbridge` binary and `python -m convbridge` run the same
// code. It parses arguments (CLI11) and calls the library; it never touches the process's streams itself.
#pragma once

#include <string>
#include <vector>

namespace convbridge::cli {

struct CliResult {
  int exit_status = 0;  // 0 success, 1 verification mismatch (a convbridge bug), 2 invalid input
  std::string out;      // what belongs on stdout
  std::string err;      // what belongs on stderr
};

// `arguments` excludes the program name.
CliResult run(const std::vector<std::string>& arguments);

}  // namespace convbridge::cli
