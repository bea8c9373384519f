// Weight files read and written without a framework and without executing anything: PyTorch torch.save zip
// checkpoints (.pt/.pth/.bin, whose data.pkl is read by a symbolic pickle machine that calls nothing), safetensors
// and numpy .npz. Every size, offset and extent in a file is validated with checked arithmetic before it is used;
// tensor data is read on demand, one tensor at a time, so a file's tensors never all sit in memory at once.
// Formats and their attacks: docs in ../shared/reference/file-formats.md, summarized in README "Weight files".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/result.hpp"

namespace convbridge::io {

// Element types the readers and writers carry bit for bit. Complex, quantized, sub-byte and string types are
// refused by name where a file holds them.
enum class DType : uint8_t {
  boolean,
  uint8,
  int8,
  int16,
  uint16,
  int32,
  uint32,
  int64,
  uint64,
  float16,
  bfloat16,
  float32,
  float64,
  float8_e4m3fn,
  float8_e5m2,  // keep kLastDType in step
};
// The last enumerator: every DType is in [0, kLastDType] (for decoding a dtype number or walking them all).
inline constexpr DType kLastDType = DType::float8_e5m2;

struct DTypeInfo {
  DType dtype;
  std::string_view name;         // PyTorch's spelling without "torch.": "float32", "bool", "float8_e4m3fn"
  std::string_view safetensors;  // the safetensors header name: "F32", "BOOL", "F8_E4M3"
  std::string_view numpy_descr;  // the .npy descr, little-endian ("<f4", "|b1"); empty where numpy has no dtype
  int64_t size;                  // bytes per element
};

const DTypeInfo& dtype_info(DType dtype);

struct TensorInfo {
  std::string name;  // path components joined with '.': "model.layer1.0.conv1.weight", "optimizer.state.0.exp_avg"
  DType dtype;
  std::vector<int64_t> shape;
  int64_t byte_size = 0;  // elements x element size, checked
};

enum class WeightFormat { torch_zip, safetensors, npz, keras_h5 };  // keras_h5: .weights.h5 and .keras

// A global a pickle names (module.name) and what the symbolic machine did with it. Nothing is ever imported or
// called: "known" globals are interpreted from a fixed table (a tensor rebuild, an OrderedDict, a storage type);
// every other one stays an inert name, and a call to it (REDUCE, NEWOBJ, INST, OBJ) is recorded, not run.
struct PickleGlobal {
  std::string name;         // "torch._utils._rebuild_tensor_v2", "argparse.Namespace"
  std::string meaning;      // "rebuilds a tensor", "kept inert"
  bool known = false;       // interpreted from the fixed table
  int64_t references = 0;   // GLOBAL / STACK_GLOBAL / INST occurrences
  int64_t refused_calls = 0;  // calls of an inert global that were not run
};

// Sequential reader of one tensor's bytes: C order, little-endian, exactly TensorInfo::byte_size bytes in all.
class TensorReader {
 public:
  virtual ~TensorReader() = default;
  // Fills a prefix of `out` (a whole number of elements when out.size() >= 8) and returns its length; 0 at the end.
  virtual Result<size_t> read(std::span<std::byte> out) = 0;
};

class WeightFile {
 public:
  virtual ~WeightFile() = default;
  WeightFormat format() const { return format_; }
  const std::string& label() const { return label_; }  // the path (or name) errors quote
  // One line: "PyTorch torch.save zip (archive 'ck', little-endian, pickle protocol 2)".
  const std::string& description() const { return description_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::vector<PickleGlobal>& globals() const { return globals_; }  // empty for safetensors and .npz
  // Notes that are not errors (a CRC that torch wrote unchecked, values that were not tensors). Data reads add to it.
  const std::vector<std::string>& notes() const { return notes_; }

  virtual Result<std::unique_ptr<TensorReader>> open_tensor(size_t index) = 0;
  // The whole tensor in one buffer (C order, little-endian).
  Result<std::vector<std::byte>> read_tensor(size_t index);

 protected:
  WeightFormat format_ = WeightFormat::safetensors;
  std::string label_;
  std::string description_;
  std::vector<TensorInfo> tensors_;
  std::vector<PickleGlobal> globals_;
  std::vector<std::string> notes_;
};

// Tensors a conversion computed, held in memory, for the writers (write_safetensors, write_npz).
class MemoryWeightFile final : public WeightFile {
 public:
  explicit MemoryWeightFile(std::string label);
  // `bytes`: C order, little-endian, exactly product(shape) x element size (checked).
  Status add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<std::byte> bytes);
  Result<std::unique_ptr<TensorReader>> open_tensor(size_t index) override;

 private:
  std::vector<std::vector<std::byte>> data_;
};

// Recognizes the format from the file's bytes (never from its name) and validates its whole structure: every
// header, entry, storage and tensor extent. HDF5 files are read as Keras .weights.h5 and Keras .keras zips through
// their model.weights.h5 (both a KerasWeightFile, convbridge/io/keras_weights.hpp). Legacy (pre-1.6) torch.save
// files, TorchScript archives and plain pickles are errors that say what the file is. Errors start with the label: "ck.pt: ...".
Result<std::unique_ptr<WeightFile>> open_weight_file(const std::string& path);
// The same on bytes in memory (the fuzz targets); `bytes` must outlive the returned file.
Result<std::unique_ptr<WeightFile>> open_weight_bytes(std::span<const std::byte> bytes, std::string label);

// Writers: every tensor of `source`, bit for bit, under its name. The output appears atomically: it is written to
// a temporary file in the destination's directory and renamed over `path` only when complete, so a failure (a bad
// tensor, a full disk) leaves nothing behind. safetensors follows the reference writer: tensors ordered by dtype
// alignment then name, header padded with spaces to a multiple of 8. .npz is numpy's layout (np.savez): a stored
// zip of NAME.npy members.
Status write_safetensors(WeightFile& source, const std::string& path);
Status write_npz(WeightFile& source, const std::string& path);

}  // namespace convbridge::io
