// libFuzzer target: Keras weight files through open_weight_bytes, i.e. an HDF5 .weights.h5 (libhdf5 on a file
// image in memory) or a .keras zip (the zip audit, then its model.weights.h5), with every refusal of
// src/io/keras_weights.cpp in the way. Invariants: errors are one bounded line naming the file; an accepted file's
// tensors read exactly their byte size; every dataset path is a group path + name and keras_variable() never fails
// badly; and the layout writer reproduces the file: write_keras_weights(file, its own bytes) reads back with the
// same groups, dataset paths, dtypes, shapes and bytes. libhdf5 runs in this process, so coverage feedback sees
// the walk; every accepted file is then read again through the reader process (what the CLI and Python use), which
// must list and read exactly the same.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "convbridge/io/keras_weights.hpp"
#include "convbridge/io/weights.hpp"
#include "weight_fuzz_support.hpp"

namespace {

using namespace convbridge;

void check_keras_round_trip(const io::KerasWeightFile& file, const std::vector<std::vector<std::byte>>& data) {
  if (data.size() != file.tensors().size()) return;  // over the byte budget: not read
  static const std::string directory = [] {
    const char* shm = "/dev/shm";
    return std::filesystem::is_directory(shm) ? std::string(shm) : std::filesystem::temp_directory_path().string();
  }();
  const std::string path = directory + "/convbridge-fuzz-" + std::to_string(::getpid()) + ".weights.h5";
  const Status written = io::write_keras_weights(
      file, [&](size_t index) -> Result<std::vector<std::byte>> { return data[index]; }, path);
  if (!written) {
    // libhdf5 refuses some names a file can hold (e.g. "." segments it normalizes); anything else is a bug.
    if (written.error().message.find("cannot create") != std::string::npos) return;
    fuzz::weight_fuzz_fail("an accepted Keras file did not write: " + written.error().message);
  }
  auto reread = io::open_weight_file(path);
  std::filesystem::remove(path);
  if (!reread) fuzz::weight_fuzz_fail("the written .weights.h5 did not read back: " + reread.error().message);
  const auto* copy = dynamic_cast<const io::KerasWeightFile*>(reread->get());
  if (!copy) fuzz::weight_fuzz_fail("the written .weights.h5 is not a Keras file");
  // The writer lists links in name order as h5py does (Keras' own files); a fuzzed file whose groups index
  // creation order can come back in another order, so the comparison is by path.
  auto sorted = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    return names;
  };
  if (sorted(copy->groups()) != sorted(file.groups())) fuzz::weight_fuzz_fail("the writer changed the groups");
  if (sorted(copy->dataset_paths()) != sorted(file.dataset_paths())) {
    fuzz::weight_fuzz_fail("the writer changed the datasets");
  }
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const io::TensorInfo& want = file.tensors()[i];
    const auto found = std::find(copy->dataset_paths().begin(), copy->dataset_paths().end(), file.dataset_paths()[i]);
    const auto j = static_cast<size_t>(found - copy->dataset_paths().begin());
    const io::TensorInfo& got = copy->tensors()[j];
    auto bytes = (*reread)->read_tensor(j);
    if (got.dtype != want.dtype || got.shape != want.shape || !bytes || *bytes != data[i]) {
      fuzz::weight_fuzz_fail("the writer changed " + want.name);
    }
  }
}

// The reader process (the default isolation) against this process's own read of an accepted file.
void check_reader_process(std::span<const std::byte> bytes, const std::string& label, const io::KerasWeightFile& file,
                          const std::vector<std::vector<std::byte>>& data) {
  io::set_hdf5_isolation(io::Hdf5Isolation::reader_process);
  auto isolated = io::open_weight_bytes(bytes, label);
  io::set_hdf5_isolation(io::Hdf5Isolation::in_process);
  if (!isolated) fuzz::weight_fuzz_fail("the reader process refused an accepted file: " + isolated.error().message);
  const auto* copy = dynamic_cast<const io::KerasWeightFile*>(isolated->get());
  if (!copy || copy->groups() != file.groups() || copy->dataset_paths() != file.dataset_paths() ||
      copy->tensors().size() != file.tensors().size()) {
    fuzz::weight_fuzz_fail("the reader process listed another structure");
  }
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const io::TensorInfo& a = file.tensors()[i];
    const io::TensorInfo& b = copy->tensors()[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.byte_size != b.byte_size) {
      fuzz::weight_fuzz_fail("the reader process listed " + a.name + " differently");
    }
    if (i < data.size()) {
      auto read = (*isolated)->read_tensor(i);
      if (!read || *read != data[i]) fuzz::weight_fuzz_fail("the reader process read " + a.name + " differently");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  io::set_hdf5_isolation(io::Hdf5Isolation::in_process);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string label = "fuzz.weights.h5";
  const auto bytes = std::as_bytes(std::span<const uint8_t>(data, size));
  auto opened = io::open_weight_bytes(bytes, label);
  if (!opened) {
    fuzz::check_weight_error(opened.error(), label);
    return 0;
  }
  const auto* keras = dynamic_cast<const io::KerasWeightFile*>(opened->get());
  if (!keras) return 0;  // another format (the zip seeds can mutate into an .npz): its own target checks it
  if (keras->dataset_paths().size() != keras->tensors().size()) fuzz::weight_fuzz_fail("paths and tensors differ");
  for (size_t i = 0; i < keras->tensors().size(); ++i) {
    std::string dotted = keras->dataset_paths()[i];
    for (char& c : dotted) c = c == '/' ? '.' : c;
    if (dotted != keras->tensors()[i].name) fuzz::weight_fuzz_fail("a tensor name that is not its path");
    const auto variable = io::keras_variable(*keras, i);
    if (!variable) fuzz::check_weight_error(variable.error(), label);
  }
  const auto tensors = fuzz::check_weight_file(**opened, label, int64_t{16} << 20);
  check_keras_round_trip(*keras, tensors);
  check_reader_process(bytes, label, *keras, tensors);
  return 0;
}
