// libFuzzer target: .npz archives, through the zip audit and libzip into the .npz reader (whatever the members are
// named). Invariants: errors are one bounded line naming the file; an accepted archive's arrays read exactly their
// byte size (Fortran-order ones transposed to C order) and round-trip through safetensors bit for bit.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/io_support.hpp"
#include "io/zip_archive.hpp"
#include "weight_fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convbridge;
  const auto bytes = std::as_bytes(std::span<const uint8_t>(data, size));
  auto source = io::memory_source(bytes, "fuzz.npz");
  auto archive = io::ZipArchive::open(source);
  if (!archive) {
    fuzz::check_weight_error(archive.error(), "fuzz.npz");
    return 0;
  }
  auto file = io::open_npz(source, *archive);
  if (!file) {
    fuzz::check_weight_error(file.error(), "fuzz.npz");
    return 0;
  }
  const auto tensors = fuzz::check_weight_file(**file, "fuzz.npz", int64_t{64} << 20);
  fuzz::check_round_trip(**file, tensors);
  return 0;
}
