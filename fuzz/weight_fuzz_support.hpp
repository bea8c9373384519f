// Shared by the weight-file fuzz targets: a file the readers accepted must keep its promises. Every tensor reads
// exactly its byte size (product(shape) x element size), errors are one bounded line naming the file, and a small
// file round-trips through the safetensors writer and reader bit for bit.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "convbridge/checked_math.hpp"
#include "convbridge/io/weights.hpp"

namespace convbridge::fuzz {

[[noreturn]] inline void weight_fuzz_fail(const std::string& what) {
  std::fprintf(stderr, "\n*** convbridge weights fuzz invariant violated: %s\n", what.c_str());
  std::abort();
}

inline void check_weight_error(const Error& error, const std::string& label) {
  if (error.message.empty()) weight_fuzz_fail("an empty error message");
  if (error.message.find('\n') != std::string::npos) weight_fuzz_fail("a multi-line error: " + error.message);
  if (error.message.size() > 2000) weight_fuzz_fail("an error over 2000 bytes: " + error.message.substr(0, 300));
  if (!error.message.starts_with(label + ": ")) weight_fuzz_fail("an error that does not name the file: " + error.message);
}

// Reads every tensor of an accepted file (bounded by `byte_budget` in total) and checks its size; returns the
// bytes when the total stayed within the budget.
inline std::vector<std::vector<std::byte>> check_weight_file(io::WeightFile& file, const std::string& label,
                                                             int64_t byte_budget) {
  std::vector<std::vector<std::byte>> data;
  int64_t total = 0;
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const io::TensorInfo& info = file.tensors()[i];
    const auto numel = checked_product(info.shape);
    const auto byte_size = numel ? checked_mul(*numel, io::dtype_info(info.dtype).size) : std::nullopt;
    if (!byte_size || *byte_size != info.byte_size) {
      weight_fuzz_fail("a tensor whose byte size is not its shape's: " + info.name);
    }
    total += info.byte_size;
    if (total > byte_budget) return {};
    auto bytes = file.read_tensor(i);
    if (!bytes) {
      check_weight_error(bytes.error(), label);
      return {};
    }
    if (static_cast<int64_t>(bytes->size()) != info.byte_size) weight_fuzz_fail("a read of the wrong size: " + info.name);
    data.push_back(std::move(*bytes));
  }
  return data;
}

// Writes an accepted file to safetensors and reads it back: the same names, dtypes, shapes and bytes.
inline void check_round_trip(io::WeightFile& file, const std::vector<std::vector<std::byte>>& data) {
  if (data.size() != file.tensors().size() || file.tensors().empty()) return;
  static const std::string directory = [] {
    const char* shm = "/dev/shm";
    return std::filesystem::is_directory(shm) ? std::string(shm) : std::filesystem::temp_directory_path().string();
  }();
  const std::string path = directory + "/convbridge-fuzz-" + std::to_string(::getpid()) + ".safetensors";
  const Status written = io::write_safetensors(file, path);
  if (!written) {
    if (written.error().message.find("__metadata__") != std::string::npos) return;  // a name the format reserves
    weight_fuzz_fail("an accepted file did not write: " + written.error().message);
  }
  auto reread = io::open_weight_file(path);
  if (!reread) weight_fuzz_fail("the written safetensors did not read back: " + reread.error().message);
  if ((*reread)->tensors().size() != file.tensors().size()) weight_fuzz_fail("the round trip lost tensors");
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const io::TensorInfo& want = file.tensors()[i];
    size_t j = 0;
    while (j < (*reread)->tensors().size() && (*reread)->tensors()[j].name != want.name) ++j;
    if (j == (*reread)->tensors().size()) weight_fuzz_fail("the round trip lost " + want.name);
    const io::TensorInfo& got = (*reread)->tensors()[j];
    auto bytes = (*reread)->read_tensor(j);
    if (got.dtype != want.dtype || got.shape != want.shape || !bytes || *bytes != data[i]) {
      weight_fuzz_fail("the round trip changed " + want.name);
    }
  }
  std::filesystem::remove(path);
}

}  // namespace convbridge::fuzz
