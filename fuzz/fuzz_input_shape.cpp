// libFuzzer target: --input-shape text -> parse_input_shape, with and without Keras' None entries.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

namespace {

void check(std::string_view text, bool allow_unknown) {
  auto shape = convbridge::parse_input_shape(text, allow_unknown);
  if (!shape) {
    convbridge::fuzz::check_error(shape.error(), text);
    if (shape.error().message.rfind("--input-shape ", 0) != 0) {
      convbridge::fuzz::fuzz_fail("an input-shape error that does not name --input-shape: " + shape.error().message,
                                  text);
    }
    return;
  }
  if (shape->empty()) convbridge::fuzz::fuzz_fail("an empty shape was accepted", text);
  for (int64_t v : *shape) {
    const bool unknown = allow_unknown && v == convbridge::kUnknownSize;
    if (!unknown && (v <= 0 || v > convbridge::kMaxSizeArgument)) {
      convbridge::fuzz::fuzz_fail("accepted the size " + std::to_string(v), text);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check(text, false);
  check(text, true);
  return 0;
}
