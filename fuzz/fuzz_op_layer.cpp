// libFuzzer target: a layer of the op set (pooling, normalization, resizing, padding, pixel shuffle, activations;
// PyTorch, Keras or TensorFlow text) -> parse_op_layer -> plan_op_layer, with every size unknown and with the input
// shape given after a NUL ("nn.MaxPool2d(3, 2, 1, ceil_mode=True)\01,4,9,9"; None entries allowed) -> the
// explanation, code and JSON emitters -> verify_plan (the reference engine must find no mismatch).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "convbridge/layer_plan.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view text = input.substr(0, nul);
  (void)convbridge::names_op_layer(text);
  auto layer = convbridge::parse_op_layer(text);
  if (!layer) {
    convbridge::fuzz::check_error(layer.error(), input);
    return 0;
  }
  std::optional<std::vector<int64_t>> shape;
  if (nul != std::string_view::npos) {
    auto parsed = convbridge::parse_input_shape(input.substr(nul + 1), /*allow_unknown=*/true);
    if (!parsed) {
      convbridge::fuzz::check_error(parsed.error(), input);
      return 0;
    }
    shape = *parsed;
  }
  auto plan = convbridge::plan_op_layer(*layer, shape);
  if (!plan) {
    convbridge::fuzz::check_error(plan.error(), input);
    return 0;
  }
  convbridge::fuzz::check_layer_plan(*plan, input);
  return 0;
}
