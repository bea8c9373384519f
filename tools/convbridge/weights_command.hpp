// `convbridge weights inspect|convert`: weight files read without a framework and without executing anything.
#pragma once

#include <string>
#include <vector>

#include "cli.hpp"

namespace convbridge::cli {

// `arguments` starts after "weights".
CliResult run_weights(const std::vector<std::string>& arguments);

}  // namespace convbridge::cli
