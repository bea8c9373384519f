// libFuzzer target: the whole pipeline with an input shape. The input is "<layer text>\0<input shape text>":
// parse_pytorch_layer, parse_input_shape, plan_torch_to_tf for that shape, every emitter, verify_plan. Without a
// NUL byte the whole input is the layer text and the plan is for every input size.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t separator = input.find('\0');
  const std::string_view text = input.substr(0, separator);
  auto layer = convbridge::parse_pytorch_layer(text);
  if (!layer) {
    convbridge::fuzz::check_error(layer.error(), input);
    return 0;
  }
  std::optional<std::vector<int64_t>> shape;
  if (separator != std::string_view::npos) {
    auto parsed = convbridge::parse_input_shape(input.substr(separator + 1));
    if (!parsed) {
      convbridge::fuzz::check_error(parsed.error(), input);
      return 0;
    }
    shape = std::move(*parsed);
  }
  convbridge::fuzz::run_pipeline(*layer, shape, input);
  return 0;
}
