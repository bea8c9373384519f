// libFuzzer target: Keras layer text -> parse_keras_layer -> plan_keras_to_torch (unknown sizes, and a known size
// read from the input) -> the explanation, PyTorch and JSON emitters -> verify_plan. The input is
// "<layer text>\0<channels_last input shape>", e.g. "keras.layers.Conv2D(16, 3)\0None,8,8,3"; without the NUL the
// shape is None,...,None,3.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view text = input.substr(0, nul);
  auto layer = convbridge::parse_keras_layer(text);
  if (!layer) {
    convbridge::fuzz::check_error(layer.error(), input);
    return 0;
  }
  std::string shape_text;
  if (nul != std::string_view::npos) {
    shape_text = std::string(input.substr(nul + 1));
  } else {
    for (int i = 0; i <= layer->rank; ++i) shape_text += "None,";
    shape_text += "3";
  }
  auto shape = convbridge::parse_input_shape(shape_text, /*allow_unknown=*/true);
  if (!shape) {
    convbridge::fuzz::check_error(shape.error(), input);
    return 0;
  }
  if (shape->back() == convbridge::kUnknownSize) return 0;  // the CLI refuses this before planning
  auto plan = convbridge::plan_keras_to_torch(*layer, shape->back(), *shape);
  if (!plan) {
    convbridge::fuzz::check_error(plan.error(), input);
    return 0;
  }
  convbridge::fuzz::check_torch_plan(*plan, input);
  return 0;
}
