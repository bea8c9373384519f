#include "io/io_support.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "convbridge/checked_math.hpp"

namespace convbridge::io {
namespace {

class FileSource final : public ByteSource {
 public:
  FileSource(std::string label, int fd, uint64_t size) : fd_(fd), size_(size) { label_ = std::move(label); }
  ~FileSource() override { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  uint64_t size() const override { return size_; }
  int file_descriptor() const override { return fd_; }

  Status read_at(uint64_t offset, std::span<std::byte> out) const override {
    uint64_t end = 0;
    if (add_overflows(offset, out.size(), end) || end > size_) {
      return file_error(label_, ErrorCode::invalid_argument,
                        fmt::format("a read of {} bytes at offset {} is past the end of the file ({} bytes)",
                                    out.size(), offset, size_));
    }
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return file_error(label_, ErrorCode::invalid_argument,
                          n < 0 ? fmt::format("read failed: {}", std::strerror(errno))
                                : std::string("the file shrank while it was read"));
      }
      done += static_cast<size_t>(n);
    }
    return Ok{};
  }

 private:
  int fd_;
  uint64_t size_;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::span<const std::byte> bytes, std::string label) : bytes_(bytes) { label_ = std::move(label); }
  uint64_t size() const override { return bytes_.size(); }
  std::span<const std::byte> memory() const override { return bytes_; }
  Status read_at(uint64_t offset, std::span<std::byte> out) const override {
    uint64_t end = 0;
    if (add_overflows(offset, out.size(), end) || end > bytes_.size()) {
      return file_error(label_, ErrorCode::invalid_argument,
                        fmt::format("a read of {} bytes at offset {} is past the end of the file ({} bytes)",
                                    out.size(), offset, bytes_.size()));
    }
    if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return Ok{};
  }

 private:
  std::span<const std::byte> bytes_;
};

}  // namespace

Result<std::shared_ptr<ByteSource>> open_file_source(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return file_error(path, ErrorCode::invalid_argument, fmt::format("cannot open: {}", std::strerror(errno)));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return file_error(path, ErrorCode::invalid_argument, "not a regular file");
  }
  return std::shared_ptr<ByteSource>(std::make_shared<FileSource>(path, fd, static_cast<uint64_t>(info.st_size)));
}

std::shared_ptr<ByteSource> memory_source(std::span<const std::byte> bytes, std::string label) {
  return std::make_shared<MemorySource>(bytes, std::move(label));
}

Result<std::vector<std::byte>> read_range(const ByteSource& source, uint64_t offset, uint64_t length) {
  uint64_t end = 0;
  if (add_overflows(offset, length, end) || end > source.size()) {
    return file_error(source.label(), ErrorCode::invalid_argument,
                      fmt::format("{} bytes at offset {} are past the end of the file ({} bytes)", length, offset,
                                  source.size()));
  }
  std::vector<std::byte> bytes(static_cast<size_t>(length));
  CONVBRIDGE_CHECK(source.read_at(offset, bytes));
  return bytes;
}

void swap_element_bytes(std::span<std::byte> data, int64_t element_size) {
  if (element_size <= 1) return;
  const auto size = static_cast<size_t>(element_size);
  for (size_t at = 0; at + size <= data.size(); at += size) std::reverse(data.begin() + at, data.begin() + at + size);
}

std::string printable(std::string_view text, size_t limit) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  }
  if (text.size() > limit) out += fmt::format("...[{} bytes]", text.size());
  return out;
}

// Unicode 15, table 3-7 (well-formed UTF-8 byte sequences).
bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;
      if (c == 0xED) high = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;  // nothing above U+10FFFF
    } else {
      return false;
    }
    if (i + length > n) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if (next < (k == 1 ? low : 0x80) || next > (k == 1 ? high : 0xBF)) return false;
    }
    i += length;
  }
  return true;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  if (shape.size() == 1) out += ",";
  return out + ")";
}

Result<int64_t> tensor_byte_size(std::string_view label, std::string_view name, const std::vector<int64_t>& shape,
                                 DType dtype) {
  for (int64_t size : shape) {
    if (size < 0) {
      return file_error(label, ErrorCode::invalid_argument,
                        fmt::format("tensor '{}' has a negative size in its shape {}", printable(name),
                                    shape_string(shape)));
    }
  }
  const auto elements = checked_product(shape);
  const auto bytes = elements ? checked_mul(*elements, dtype_info(dtype).size) : std::nullopt;
  if (!bytes) {
    return file_error(label, ErrorCode::overflow,
                      fmt::format("tensor '{}' of shape {} has more bytes than fit in 64 bits", printable(name),
                                  shape_string(shape)));
  }
  return *bytes;
}

// ---- dtypes -----------------------------------------------------------------------------------------------------

const DTypeInfo& dtype_info(DType dtype) {
  // safetensors names: safetensors/src/tensor.rs `enum Dtype`; numpy descr: the array-interface type strings.
  static constexpr DTypeInfo kTable[] = {
      {DType::boolean, "bool", "BOOL", "|b1", 1},
      {DType::uint8, "uint8", "U8", "|u1", 1},
      {DType::int8, "int8", "I8", "|i1", 1},
      {DType::int16, "int16", "I16", "<i2", 2},
      {DType::uint16, "uint16", "U16", "<u2", 2},
      {DType::int32, "int32", "I32", "<i4", 4},
      {DType::uint32, "uint32", "U32", "<u4", 4},
      {DType::int64, "int64", "I64", "<i8", 8},
      {DType::uint64, "uint64", "U64", "<u8", 8},
      {DType::float16, "float16", "F16", "<f2", 2},
      {DType::bfloat16, "bfloat16", "BF16", "", 2},
      {DType::float32, "float32", "F32", "<f4", 4},
      {DType::float64, "float64", "F64", "<f8", 8},
      {DType::float8_e4m3fn, "float8_e4m3fn", "F8_E4M3", "", 1},
      {DType::float8_e5m2, "float8_e5m2", "F8_E5M2", "", 1},
  };
  return kTable[static_cast<size_t>(dtype)];
}

Result<std::vector<std::byte>> WeightFile::read_tensor(size_t index) {
  if (index >= tensors_.size()) {
    return file_error(label_, ErrorCode::invalid_argument, fmt::format("no tensor number {}", index));
  }
  const TensorInfo& info = tensors_[index];
  CONVBRIDGE_TRY(auto reader, open_tensor(index));
  std::vector<std::byte> bytes(static_cast<size_t>(info.byte_size));
  size_t filled = 0;
  while (filled < bytes.size()) {
    CONVBRIDGE_TRY(const size_t n, reader->read(std::span<std::byte>(bytes).subspan(filled)));
    if (n == 0) break;
    filled += n;
  }
  std::byte extra[8];
  CONVBRIDGE_TRY(const size_t more, reader->read(extra));
  if (filled != bytes.size() || more != 0) {
    return file_error(label_, ErrorCode::invalid_argument,
                      fmt::format("tensor '{}' yielded {} bytes where its shape needs {}", printable(info.name),
                                  filled + more, bytes.size()));
  }
  return bytes;
}

// ---- atomic output ----------------------------------------------------------------------------------------------

Result<AtomicOutputFile> AtomicOutputFile::create(const std::string& path) {
  const std::filesystem::path destination(path);
  if (destination.filename().empty()) {
    return file_error(path, ErrorCode::invalid_argument, "the output path names a directory, not a file");
  }
  std::filesystem::path directory = destination.parent_path();
  if (directory.empty()) directory = ".";
  std::string pattern = (directory / ("." + destination.filename().string() + ".convbridge-XXXXXX")).string();
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) {
    return file_error(path, ErrorCode::invalid_argument,
                      fmt::format("cannot create a temporary file in {}: {}", directory.string(), std::strerror(errno)));
  }
  // mkstemp makes the file 0600; the result gets the permissions a plain create would (0666 less the umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, static_cast<mode_t>(0666 & ~mask));
  return AtomicOutputFile(path, pattern, fd);
}

AtomicOutputFile::AtomicOutputFile(AtomicOutputFile&& other) noexcept
    : path_(std::move(other.path_)),
      temporary_path_(std::move(other.temporary_path_)),
      fd_(other.fd_),
      committed_(other.committed_) {
  other.fd_ = -1;
  other.committed_ = true;  // the moved-from object owns nothing to remove
}

AtomicOutputFile::~AtomicOutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temporary_path_.c_str());
}

Status AtomicOutputFile::write(std::span<const std::byte> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return file_error(path_, ErrorCode::invalid_argument, fmt::format("write failed: {}", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return Ok{};
}

Status AtomicOutputFile::close_descriptor() {
  if (fd_ >= 0) {
    const int status = ::close(fd_);
    fd_ = -1;
    if (status != 0) {
      return file_error(path_, ErrorCode::invalid_argument, fmt::format("close failed: {}", std::strerror(errno)));
    }
  }
  return Ok{};
}

Status AtomicOutputFile::commit() {
  if (fd_ >= 0 && ::fsync(fd_) != 0) {
    return file_error(path_, ErrorCode::invalid_argument, fmt::format("fsync failed: {}", std::strerror(errno)));
  }
  CONVBRIDGE_CHECK(close_descriptor());
  if (::rename(temporary_path_.c_str(), path_.c_str()) != 0) {
    return file_error(path_, ErrorCode::invalid_argument, fmt::format("cannot rename the temporary file {} into place: {}",
                                                                     temporary_path_, std::strerror(errno)));
  }
  committed_ = true;
  return Ok{};
}

}  // namespace convbridge::io
