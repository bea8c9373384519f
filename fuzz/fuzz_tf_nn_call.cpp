// libFuzzer target: tf.nn call text and --filters-shape text -> parse_filters_shape -> parse_tf_nn_call ->
// plan_tf_nn_to_torch (no input shape: every size unknown; and a known size read from the input) -> the
// explanation, PyTorch and JSON emitters -> verify_plan. The input is
// "<call text>\0<filters shape>[\0<channels_last input shape>]", e.g. "tf.nn.conv2d(x, w, 2, 'SAME')\0003,3,4,8".
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t first_nul = input.find('\0');
  const std::string_view text = input.substr(0, first_nul);
  std::string_view filters_text = "3,3,4,8";
  std::optional<std::string_view> shape_text;
  if (first_nul != std::string_view::npos) {
    filters_text = input.substr(first_nul + 1);
    if (const size_t second_nul = filters_text.find('\0'); second_nul != std::string_view::npos) {
      shape_text = filters_text.substr(second_nul + 1);
      filters_text = filters_text.substr(0, second_nul);
    }
  }
  auto filters_shape = convbridge::parse_filters_shape(filters_text);
  if (!filters_shape) {
    convbridge::fuzz::check_error(filters_shape.error(), input);
    return 0;
  }
  auto call = convbridge::parse_tf_nn_call(text, *filters_shape);
  if (!call) {
    convbridge::fuzz::check_error(call.error(), input);
    return 0;
  }
  std::optional<std::vector<int64_t>> shape;
  if (shape_text) {
    auto parsed = convbridge::parse_input_shape(*shape_text, /*allow_unknown=*/true);
    if (!parsed) {
      convbridge::fuzz::check_error(parsed.error(), input);
      return 0;
    }
    shape = *parsed;
  }
  auto plan = convbridge::plan_tf_nn_to_torch(*call, shape);
  if (!plan) {
    convbridge::fuzz::check_error(plan.error(), input);
    return 0;
  }
  convbridge::fuzz::check_torch_plan(*plan, input);
  return 0;
}
