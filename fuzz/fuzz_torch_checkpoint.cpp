// libFuzzer target: torch.save checkpoints. An input that starts like a zip goes through open_weight_bytes (the zip
// audit, libzip, the checkpoint reader, the symbolic pickle machine); any other input is run as data.pkl by the
// pickle machine directly, with synthetic storages ('0'..'9', each exactly numel elements), so the fuzzer reaches
// the opcodes without having to build a zip around them.
//
// Invariants: errors are one bounded line naming the file; every tensor view stays inside its storage; an accepted
// checkpoint's tensors read exactly their byte size and round-trip through safetensors.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "io/pickle_machine.hpp"
#include "weight_fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convbridge;
  const auto bytes = std::as_bytes(std::span<const uint8_t>(data, size));
  if (size >= 4 && data[0] == 'P' && data[1] == 'K') {
    auto file = io::open_weight_bytes(bytes, "fuzz.pt");
    if (!file) {
      fuzz::check_weight_error(file.error(), "fuzz.pt");
      return 0;
    }
    const auto tensors = fuzz::check_weight_file(**file, "fuzz.pt", int64_t{64} << 20);
    fuzz::check_round_trip(**file, tensors);
    return 0;
  }
  // Synthetic storages: any key of one digit exists and holds exactly what it declares (at most 1 MiB).
  const auto resolver = [](const io::pickle::StorageRequest& request) -> Result<int64_t> {
    const int64_t element = request.dtype ? io::dtype_info(*request.dtype).size : 1;
    const auto bytes_needed = checked_mul(request.numel, element);
    if (request.key.size() != 1 || !std::isdigit(static_cast<unsigned char>(request.key[0])) || !bytes_needed ||
        *bytes_needed > (int64_t{1} << 20)) {
      return make_error(ErrorCode::invalid_argument, "data.pkl: no such storage");
    }
    return *bytes_needed;
  };
  io::pickle::Limits limits;
  limits.max_value_bytes = uint64_t{64} << 20;  // within the fuzzer's memory limit with room to spare
  io::pickle::Machine machine("data.pkl", resolver, limits);
  const Status ran = machine.run(bytes);
  if (!ran) {
    fuzz::check_weight_error(ran.error(), "data.pkl");
    return 0;
  }
  int64_t skipped = 0;
  auto named = machine.named_tensors(skipped);
  if (!named) {
    fuzz::check_weight_error(named.error(), "data.pkl");
    return 0;
  }
  for (const io::pickle::NamedTensor& entry : *named) {
    const io::pickle::Tensor& tensor = machine.tensors().at(entry.tensor);
    const int64_t storage_bytes = machine.storages().at(tensor.storage).bytes;
    const int64_t element = io::dtype_info(tensor.dtype).size;
    if (tensor.numel > 0 && (tensor.storage_offset + tensor.extent_elements) * element > storage_bytes) {
      fuzz::weight_fuzz_fail("a tensor view past its storage: " + entry.name);
    }
  }
  return 0;
}
