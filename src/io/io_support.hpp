// What the weight-file readers share: random access to the file's bytes, little-endian decoding, checked extents,
// and the error spelling ("<label>: <problem>").
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/io/weights.hpp"
#include "convbridge/result.hpp"

namespace convbridge::io {

// Random access to an immutable byte string: an open file (pread) or a buffer in memory.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly out.size() bytes at offset; an error if [offset, offset + size) is not inside the source.
  virtual Status read_at(uint64_t offset, std::span<std::byte> out) const = 0;
  // The open file's descriptor, or -1 for memory.
  virtual int file_descriptor() const { return -1; }
  // The bytes, for memory; empty for files.
  virtual std::span<const std::byte> memory() const { return {}; }
  const std::string& label() const { return label_; }

 protected:
  std::string label_;
};

Result<std::shared_ptr<ByteSource>> open_file_source(const std::string& path);
std::shared_ptr<ByteSource> memory_source(std::span<const std::byte> bytes, std::string label);

// Reads [offset, offset + length) into a new buffer, after checking it lies inside the source.
Result<std::vector<std::byte>> read_range(const ByteSource& source, uint64_t offset, uint64_t length);

// "<label>: <message>", as every reader's error starts.
inline Error file_error(std::string_view label, ErrorCode code, std::string message) {
  return make_error(code, fmt::format("{}: {}", label, message));
}

inline uint16_t load_u16(const std::byte* p) {
  return static_cast<uint16_t>(std::to_integer<uint16_t>(p[0]) | (std::to_integer<uint16_t>(p[1]) << 8));
}
inline uint32_t load_u32(const std::byte* p) {
  return static_cast<uint32_t>(load_u16(p)) | (static_cast<uint32_t>(load_u16(p + 2)) << 16);
}
inline uint64_t load_u64(const std::byte* p) {
  return static_cast<uint64_t>(load_u32(p)) | (static_cast<uint64_t>(load_u32(p + 4)) << 32);
}
inline void store_u64(std::byte* p, uint64_t value) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>((value >> (8 * i)) & 0xFF);
}

// Unsigned checked arithmetic for byte offsets (sizes from a file are u64).
inline bool add_overflows(uint64_t a, uint64_t b, uint64_t& sum) { return __builtin_add_overflow(a, b, &sum); }
inline bool mul_overflows(uint64_t a, uint64_t b, uint64_t& product) { return __builtin_mul_overflow(a, b, &product); }

// Reverses the bytes of every element in place (big-endian data to little-endian).
void swap_element_bytes(std::span<std::byte> data, int64_t element_size);

// Text quoted in an error: printable ASCII as is, other bytes as \xNN, at most `limit` bytes shown.
std::string printable(std::string_view text, size_t limit = 80);

// Whether `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text);

std::string shape_string(const std::vector<int64_t>& shape);  // "(4, 3, 3, 3)", "()" for a scalar

// Byte size of a tensor: product(shape) x element size, or an overflow error naming the tensor.
Result<int64_t> tensor_byte_size(std::string_view label, std::string_view name, const std::vector<int64_t>& shape,
                                 DType dtype);

// TensorReaders over bytes already in memory. This one reads bytes that outlive the reader (a MemoryWeightFile's
// own tensors): nothing is copied until read().
class SpanTensorReader final : public TensorReader {
 public:
  explicit SpanTensorReader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  Result<size_t> read(std::span<std::byte> out) override {
    const size_t n = std::min(out.size(), bytes_.size() - position_);
    if (n) std::memcpy(out.data(), bytes_.data() + position_, n);
    position_ += n;
    return n;
  }

 private:
  std::span<const std::byte> bytes_;
  size_t position_ = 0;
};

// Reads bytes it owns, from `start` on (a reply whose first bytes are a header is kept as it came, not shifted).
class BufferTensorReader final : public TensorReader {
 public:
  explicit BufferTensorReader(std::vector<std::byte> bytes, size_t start = 0)
      : bytes_(std::move(bytes)), reader_(std::span<const std::byte>(bytes_).subspan(std::min(start, bytes_.size()))) {}
  Result<size_t> read(std::span<std::byte> out) override { return reader_.read(out); }

 private:
  std::vector<std::byte> bytes_;
  SpanTensorReader reader_;
};

// Streams tensor `index` of `source` through `buffer` into `write`, checking it yields exactly its byte size.
Status copy_tensor_bytes(WeightFile& source, size_t index, std::vector<std::byte>& buffer,
                         const std::function<Status(std::span<const std::byte>)>& write);

// Readers of the individual formats (open_weight_file dispatches on the file's first bytes).
Result<std::unique_ptr<WeightFile>> open_safetensors(std::shared_ptr<ByteSource> source);
class ZipArchive;
Result<std::unique_ptr<WeightFile>> open_torch_zip(std::shared_ptr<ByteSource> source,
                                                   std::shared_ptr<ZipArchive> archive);
Result<std::unique_ptr<WeightFile>> open_npz(std::shared_ptr<ByteSource> source, std::shared_ptr<ZipArchive> archive);
// Keras (keras_weights.cpp): an HDF5 .weights.h5, and a .keras zip (config.json + model.weights.h5).
Result<std::unique_ptr<WeightFile>> open_keras_h5(std::shared_ptr<ByteSource> source);
Result<std::unique_ptr<WeightFile>> open_keras_archive(std::shared_ptr<ByteSource> source,
                                                       std::shared_ptr<ZipArchive> archive);

// An output file that appears under its name only when committed: bytes go to a temporary file in the same
// directory (so the final rename is atomic on POSIX), which the destructor removes unless commit() succeeded.
class AtomicOutputFile {
 public:
  static Result<AtomicOutputFile> create(const std::string& path);
  AtomicOutputFile(AtomicOutputFile&& other) noexcept;
  AtomicOutputFile& operator=(AtomicOutputFile&&) = delete;
  AtomicOutputFile(const AtomicOutputFile&) = delete;
  ~AtomicOutputFile();

  const std::string& temporary_path() const { return temporary_path_; }
  Status write(std::span<const std::byte> bytes);
  // Closes our descriptor (a writer such as libzip then writes temporary_path() itself).
  Status close_descriptor();
  // Flushes, closes and renames the temporary file to the destination.
  Status commit();

 private:
  AtomicOutputFile(std::string path, std::string temporary_path, int fd)
      : path_(std::move(path)), temporary_path_(std::move(temporary_path)), fd_(fd) {}
  std::string path_;
  std::string temporary_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace convbridge::io
