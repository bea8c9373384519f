// open_weight_file: recognizes the format from the file's first bytes, never from its name, and says what a file
// is when it is a format convbridge does not read (legacy torch.save, TorchScript, plain pickles, .npy); HDF5 files are read as Keras .weights.h5.
#include <fmt/format.h>

#include <algorithm>

#include "io/io_support.hpp"
#include "io/zip_archive.hpp"

namespace convbridge::io {
namespace {

// torch/serialization.py: legacy files start with pickle.dump(MAGIC_NUMBER, protocol=2), MAGIC_NUMBER =
// 0x1950a86a20f9469cfc6c: PROTO 2, LONG1 of 10 bytes, little-endian.
constexpr unsigned char kLegacyTorchStart[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                               0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr unsigned char kHdf5Signature[] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

bool starts_with(const std::vector<std::byte>& head, std::span<const unsigned char> prefix) {
  return head.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), head.begin(),
                    [](unsigned char a, std::byte b) { return std::byte{a} == b; });
}

Result<std::unique_ptr<WeightFile>> open_zip(std::shared_ptr<ByteSource> source) {
  CONVBRIDGE_TRY(auto archive, ZipArchive::open(source));
  const auto& entries = archive->entries();
  const std::string& label = source->label();
  if (entries.empty()) return file_error(label, ErrorCode::invalid_argument, "an empty zip: no tensors");
  const auto has = [&](auto&& predicate) { return std::any_of(entries.begin(), entries.end(), predicate); };
  if (has([](const ZipEntry& e) { return e.name.ends_with("/data.pkl") || e.name.ends_with("/constants.pkl"); })) {
    return open_torch_zip(source, archive);
  }
  if (has([](const ZipEntry& e) { return e.name == "config.json"; }) &&
      has([](const ZipEntry& e) { return e.name == "model.weights.h5" || e.name == "metadata.json"; })) {
    return open_keras_archive(source, archive);
  }
  if (std::all_of(entries.begin(), entries.end(), [](const ZipEntry& e) { return e.name.ends_with(".npy"); })) {
    return open_npz(source, archive);
  }
  return file_error(label, ErrorCode::invalid_argument,
                    fmt::format("a zip that is neither a torch.save checkpoint (no <archive>/data.pkl) nor an .npz "
                                "(member '{}' is not NAME.npy)",
                                printable(std::find_if(entries.begin(), entries.end(),
                                                       [](const ZipEntry& e) { return !e.name.ends_with(".npy"); })
                                              ->name)));
}

Result<std::unique_ptr<WeightFile>> open_source(std::shared_ptr<ByteSource> source) {
  const std::string& label = source->label();
  CONVBRIDGE_TRY(const auto head, read_range(*source, 0, std::min<uint64_t>(source->size(), 512)));
  if (head.empty()) return file_error(label, ErrorCode::invalid_argument, "an empty file");
  if (ZipArchive::looks_like_zip(*source)) return open_zip(source);
  if (starts_with(head, kLegacyTorchStart)) {
    return file_error(label, ErrorCode::unsupported,
                      "a legacy torch.save file (the pre-1.6 format of stacked pickles): re-save it with torch >= 1.6 "
                      "where you trust it: torch.save(torch.load(f, weights_only=True), out)");
  }
  // safetensors: a u64 header size that fits the file, then JSON starting with '{' (README "Format": MUST begin
  // with '{'). Checked before the pickle and tar signatures: a header size of 128 + 256k starts with byte 0x80.
  const bool brace_at_8 = head.size() >= 9 && std::to_integer<char>(head[8]) == '{';
  if (brace_at_8 && load_u64(head.data()) <= source->size() - 8) return open_safetensors(source);
  if (head.size() >= 262 && std::memcmp(head.data() + 257, "ustar", 5) == 0) {
    return file_error(label, ErrorCode::unsupported,
                      "a tar archive (torch.save's legacy tar format, PyTorch <= 0.1.10, or another tar): not read");
  }
  if (std::to_integer<unsigned>(head[0]) == 0x80) {
    return file_error(label, ErrorCode::unsupported,
                      "a bare pickle, not a torch.save zip checkpoint: convbridge reads pickles only inside torch.save "
                      "archives");
  }
  if (starts_with(head, kHdf5Signature)) {
    return open_keras_h5(source);
  }
  if (head.size() >= 6 && std::memcmp(head.data(), "\x93NUMPY", 6) == 0) {
    return file_error(label, ErrorCode::unsupported, "a single .npy array: save it into an .npz (numpy.savez)");
  }
  // A '{' at byte 8 with an impossible header size: a damaged safetensors file (the reader says which rule fails).
  if (brace_at_8) return open_safetensors(source);
  return file_error(label, ErrorCode::invalid_argument,
                    "not a weight file convbridge recognizes (a torch.save zip, safetensors or .npz)");
}

}  // namespace

Result<std::unique_ptr<WeightFile>> open_weight_file(const std::string& path) {
  CONVBRIDGE_TRY(auto source, open_file_source(path));
  return open_source(std::move(source));
}

Result<std::unique_ptr<WeightFile>> open_weight_bytes(std::span<const std::byte> bytes, std::string label) {
  return open_source(memory_source(bytes, std::move(label)));
}

MemoryWeightFile::MemoryWeightFile(std::string label) {
  label_ = std::move(label);
  description_ = "tensors in memory";
}

Status MemoryWeightFile::add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<std::byte> bytes) {
  CONVBRIDGE_TRY(const int64_t size, tensor_byte_size(label_, name, shape, dtype));
  if (static_cast<size_t>(size) != bytes.size()) {
    return make_error(ErrorCode::invalid_argument, fmt::format("{}: tensor '{}' has {} bytes; its shape needs {}", label_,
                                                               name, bytes.size(), size));
  }
  tensors_.push_back(TensorInfo{std::move(name), dtype, std::move(shape), size});
  data_.push_back(std::move(bytes));
  return Ok{};
}

Result<std::unique_ptr<TensorReader>> MemoryWeightFile::open_tensor(size_t index) {
  if (index >= data_.size()) return make_error(ErrorCode::invalid_argument, fmt::format("{}: no tensor {}", label_, index));
  return std::unique_ptr<TensorReader>(std::make_unique<SpanTensorReader>(data_[index]));  // valid while the file is
}

}  // namespace convbridge::io
