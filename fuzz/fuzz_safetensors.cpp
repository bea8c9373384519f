// libFuzzer target: safetensors files, straight into the safetensors reader (whatever the first bytes are).
// Invariants: errors are one bounded line naming the file; an accepted file's tensors are contiguous, cover the
// data exactly, read exactly their byte size, and round-trip through the writer bit for bit.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/io_support.hpp"
#include "weight_fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convbridge;
  const auto bytes = std::as_bytes(std::span<const uint8_t>(data, size));
  auto file = io::open_safetensors(io::memory_source(bytes, "fuzz.safetensors"));
  if (!file) {
    fuzz::check_weight_error(file.error(), "fuzz.safetensors");
    return 0;
  }
  int64_t total = 0;
  for (const io::TensorInfo& info : (*file)->tensors()) total += info.byte_size;
  if (size < 8 || static_cast<uint64_t>(total) > size - 8) fuzz::weight_fuzz_fail("tensors larger than the file");
  const auto tensors = fuzz::check_weight_file(**file, "fuzz.safetensors", int64_t{64} << 20);
  fuzz::check_round_trip(**file, tensors);
  return 0;
}
