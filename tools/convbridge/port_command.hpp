// `convbridge port CHECKPOINT --into MODEL.keras -o OUT.weights.h5`: trained PyTorch weights into a Keras model
// written by hand, with no framework installed (convbridge/port/weight_port.hpp).
#pragma once

#include <string>
#include <vector>

#include "cli.hpp"

namespace convbridge::cli {

// `arguments` starts after "port".
CliResult run_port(const std::vector<std::string>& arguments);

}  // namespace convbridge::cli
