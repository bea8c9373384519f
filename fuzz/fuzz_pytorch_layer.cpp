// libFuzzer target: PyTorch layer text -> parse_pytorch_layer -> plan_torch_to_tf (every input size) -> every
// emitter -> verify_plan. The input is the layer text exactly, e.g. "nn.Conv2d(3, 16, 3, stride=2)".
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto layer = convbridge::parse_pytorch_layer(text);
  if (!layer) {
    convbridge::fuzz::check_error(layer.error(), text);
    return 0;
  }
  if (layer->text != text) convbridge::fuzz::fuzz_fail("the parsed layer does not keep its text", text);
  convbridge::fuzz::run_pipeline(*layer, std::nullopt, text);
  return 0;
}
