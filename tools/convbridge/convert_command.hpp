// `convbridge convert MODEL.keras -o DIR`: the Keras -> PyTorch model conversion straight from the file, with no
// framework installed (DIR/model.py and DIR/model.safetensors, as convbridge.convert(...).save(DIR) writes them).
#pragma once

#include <string>
#include <vector>

#include "cli.hpp"

namespace convbridge::cli {

// `arguments` starts after "convert".
CliResult run_convert(const std::vector<std::string>& arguments);

}  // namespace convbridge::cli
