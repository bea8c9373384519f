// Keras 3 weight files, read and rewritten through libhdf5's C API: `.weights.h5` (model.save_weights) and the
// `.keras` zip (model.save), whose model.weights.h5 is the same HDF5 layout. The layout and what is refused:
// src/io/keras_weights.cpp and README "Weight files".
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "convbridge/io/weights.hpp"
#include "convbridge/result.hpp"

namespace convbridge::io {

// A Keras weight file: its tensors (WeightFile::tensors(), every HDF5 dataset named by its path with '/' -> '.',
// "layers.conv2d.vars.0") plus what the writer needs to reproduce the file's structure.
class KerasWeightFile : public WeightFile {
 public:
  // Every group's HDF5 path (no leading '/'), parents before children, in the order the tensors are listed:
  // "layers", "layers/conv2d", "layers/conv2d/vars", ..., "vars"; empty groups included.
  const std::vector<std::string>& groups() const { return groups_; }
  // The HDF5 path of tensor i ("layers/conv2d/vars/0"); tensors()[i].name is the same with '.'.
  const std::vector<std::string>& dataset_paths() const { return dataset_paths_; }
  // config.json of a .keras archive, validated as JSON and never interpreted; empty for a .weights.h5.
  const std::string& model_config() const { return model_config_; }
  bool is_keras_archive() const { return !model_config_.empty(); }

 protected:
  std::vector<std::string> groups_;
  std::vector<std::string> dataset_paths_;
  std::string model_config_;
};

// Where a tensor sits in Keras' layout: "layers/functional/layers/conv2d/vars/1" is layer_path
// "layers/functional/layers/conv2d" and var_index 1 (the layer's second variable, in layer.weights order); the
// root model's own "vars/0" has layer_path "".
struct KerasVariable {
  std::string layer_path;
  int64_t var_index = -1;
};
// Tensor i's layer path and variable index; an error (starting with the file's label) when i is out of range or
// its HDF5 path does not end in vars/<N>.
Result<KerasVariable> keras_variable(const KerasWeightFile& file, size_t index);

// libhdf5 1.10.8 (Debian 12's) can crash on corrupt HDF5 files (fuzz_keras_weights found heap overflows and
// segfaults inside it), so by default every libhdf5 call on a file being read runs in a reader process of its own,
// with bounded memory and time: a crash there is an error naming the file (src/io/child_process.hpp).
// `in_process` runs libhdf5 in the calling process instead; it exists for the fuzz target, whose coverage feedback
// must see the walk over the file.
enum class Hdf5Isolation { reader_process, in_process };
void set_hdf5_isolation(Hdf5Isolation isolation);

// Tensor i's bytes (C order, little-endian, exactly tensors()[i].byte_size bytes).
using TensorBytes = std::function<Result<std::vector<std::byte>>(size_t index)>;

// Writes a .weights.h5 with exactly the groups and datasets of `layout` (names, dtypes, shapes, order), each
// dataset's data from `data`, atomically (a temporary file in the destination's directory, renamed when complete;
// a failure leaves nothing behind). Keras' model.load_weights accepts the result for the model `layout` came from.
Status write_keras_weights(const KerasWeightFile& layout, const TensorBytes& data, const std::string& path);

}  // namespace convbridge::io
