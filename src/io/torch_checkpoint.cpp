// torch.save zip checkpoints (the default format since PyTorch 1.6). Layout (torch/serialization.py
// _save/_load, caffe2/serialize/inline_container.cc): entries under one "<prefix>/" directory, data.pkl (the object,
// storages as persistent ids), data/<key> (each storage's raw bytes), byteorder ("little"/"big", absent = little),
// version, .format_version, .storage_alignment. TorchScript archives (torch.jit.save) hold constants.pkl and code/.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "convbridge/checked_math.hpp"
#include "io/io_support.hpp"
#include "io/pickle_machine.hpp"
#include "io/zip_archive.hpp"

namespace convbridge::io {
namespace {

constexpr uint64_t kMaxDataPklBytes = uint64_t{128} << 20;

// Contiguous bytes of one storage entry, byte-swapped to little-endian where the archive is big-endian.
class StorageRangeReader final : public TensorReader {
 public:
  StorageRangeReader(std::unique_ptr<ZipEntryReader> entry, int64_t element_size, bool swap)
      : entry_(std::move(entry)), element_size_(element_size), swap_(swap) {}
  Result<size_t> read(std::span<std::byte> out) override {
    const size_t whole = out.size() - out.size() % static_cast<size_t>(element_size_);
    if (whole == 0) return size_t{0};
    CONVBRIDGE_TRY(const size_t n, entry_->read(out.first(whole)));
    if (swap_) swap_element_bytes(out.first(n), element_size_);
    return n;
  }

 private:
  std::unique_ptr<ZipEntryReader> entry_;
  int64_t element_size_;
  bool swap_;
};

class TorchCheckpoint final : public WeightFile {
 public:
  TorchCheckpoint(std::shared_ptr<ZipArchive> archive, std::string prefix, bool big_endian)
      : archive_(std::move(archive)), prefix_(std::move(prefix)), big_endian_(big_endian) {
    archive_->send_notes_to(&notes_);
  }

  Status load(const ZipEntry& data_pkl) {
    CONVBRIDGE_TRY(const auto program, archive_->read_entry(data_pkl, kMaxDataPklBytes));
    const std::string pickle_label = fmt::format("{}: {}", label_, printable(data_pkl.name));
    pickle::Machine machine(pickle_label, [this](const pickle::StorageRequest& request) { return resolve(request); });
    CONVBRIDGE_CHECK(machine.run(program));
    int64_t skipped = 0;
    CONVBRIDGE_TRY(const auto named, machine.named_tensors(skipped));
    globals_ = machine.globals();
    std::set<std::string> names;
    for (const pickle::NamedTensor& entry : named) {
      if (!is_valid_utf8(entry.name)) {
        return file_error(label_, ErrorCode::invalid_argument,
                          fmt::format("tensor name '{}' is not valid UTF-8", printable(entry.name)));
      }
      if (!names.insert(entry.name).second) {
        return file_error(label_, ErrorCode::invalid_argument,
                          fmt::format("two tensors are both named '{}' (names join keys with '.')", printable(entry.name)));
      }
      const pickle::Tensor& tensor = machine.tensors()[entry.tensor];
      TensorInfo info;
      info.name = entry.name;
      info.dtype = tensor.dtype;
      info.shape = tensor.sizes;
      CONVBRIDGE_TRY(info.byte_size, tensor_byte_size(label_, info.name, info.shape, info.dtype));
      tensors_.push_back(std::move(info));
      views_.push_back(tensor);
      view_storage_keys_.push_back(machine.storages()[tensor.storage].key);
    }
    int64_t refused = 0;
    for (const PickleGlobal& global : globals_) refused += global.refused_calls;
    if (refused) {
      notes_.push_back(fmt::format("{} call(s) of globals outside the fixed table were recorded, not run (kept inert)",
                                   refused));
    }
    if (skipped) notes_.push_back(fmt::format("{} value(s) that are not tensors were skipped", skipped));
    description_ = fmt::format("PyTorch torch.save zip (archive '{}', {}-endian, pickle protocol {})", printable(prefix_),
                               big_endian_ ? "big" : "little", machine.protocol());
    return Ok{};
  }

  Result<std::unique_ptr<TensorReader>> open_tensor(size_t index) override {
    if (index >= tensors_.size()) return file_error(label_, ErrorCode::invalid_argument, fmt::format("no tensor {}", index));
    const pickle::Tensor& view = views_[index];
    const ZipEntry* entry = archive_->find(storage_entry_name(view_storage_keys_[index]));
    const int64_t element_size = dtype_info(view.dtype).size;
    const uint64_t start = static_cast<uint64_t>(view.storage_offset) * static_cast<uint64_t>(element_size);
    if (view.numel == 0) return std::unique_ptr<TensorReader>(new BufferTensorReader({}));
    if (is_c_contiguous(view)) {
      CONVBRIDGE_TRY(auto reader, archive_->open_entry(*entry, start, static_cast<uint64_t>(tensors_[index].byte_size)));
      auto out = std::make_unique<StorageRangeReader>(std::move(reader), element_size, big_endian_);
      return std::unique_ptr<TensorReader>(std::move(out));
    }
    // A strided view (a transpose, an expand, a slice): read the bytes it spans, then gather them in C order.
    const uint64_t span_bytes = static_cast<uint64_t>(view.extent_elements) * static_cast<uint64_t>(element_size);
    CONVBRIDGE_TRY(auto reader, archive_->open_entry(*entry, start, span_bytes));
    std::vector<std::byte> spanned(static_cast<size_t>(span_bytes));
    for (size_t filled = 0; filled < spanned.size();) {
      CONVBRIDGE_TRY(const size_t n, reader->read(std::span<std::byte>(spanned).subspan(filled)));
      if (n == 0) return file_error(label_, ErrorCode::invalid_argument, "a storage ended early");
      filled += n;
    }
    if (big_endian_) swap_element_bytes(spanned, element_size);
    std::vector<std::byte> gathered(static_cast<size_t>(tensors_[index].byte_size));
    const size_t rank = view.sizes.size();
    std::vector<int64_t> counter(rank, 0);
    int64_t source = 0;
    const auto size = static_cast<size_t>(element_size);
    for (int64_t i = 0; i < view.numel; ++i) {
      std::memcpy(gathered.data() + static_cast<size_t>(i) * size, spanned.data() + static_cast<size_t>(source) * size, size);
      for (size_t d = rank; d-- > 0;) {  // odometer over the view's indices, last dimension fastest
        if (++counter[d] < view.sizes[d]) {
          source += view.strides[d];
          break;
        }
        source -= (view.sizes[d] - 1) * view.strides[d];
        counter[d] = 0;
      }
    }
    return std::unique_ptr<TensorReader>(new BufferTensorReader(std::move(gathered)));
  }

 private:
  std::string storage_entry_name(const std::string& key) const { return prefix_ + "/data/" + key; }

  static bool is_c_contiguous(const pickle::Tensor& view) {
    int64_t expected = 1;
    for (size_t d = view.sizes.size(); d-- > 0;) {
      if (view.sizes[d] != 1 && view.strides[d] != expected) return false;
      expected *= view.sizes[d];
    }
    return true;
  }

  // persistent_load: the record data/<key> must exist and hold exactly numel elements of the storage's type
  // (CVE-2026-24747: torch < 2.10 trusted numel against the record size).
  Result<int64_t> resolve(const pickle::StorageRequest& request) {
    const std::string name = storage_entry_name(request.key);
    const ZipEntry* entry = archive_->find(name);
    if (!entry) {
      return file_error(label_, ErrorCode::invalid_argument,
                        fmt::format("storage '{}' has no record {}", printable(request.key), printable(name)));
    }
    const int64_t element_size = request.dtype ? dtype_info(*request.dtype).size : 1;
    const auto expected = checked_mul(request.numel, element_size);
    if (!expected || static_cast<uint64_t>(*expected) != entry->size) {
      return file_error(label_, ErrorCode::invalid_argument,
                        fmt::format("storage '{}' declares {} elements of {} bytes but its record {} holds {} bytes",
                                    printable(request.key), request.numel, element_size, printable(name), entry->size));
    }
    return *expected;
  }

  std::shared_ptr<ZipArchive> archive_;
  std::string prefix_;
  bool big_endian_;
  std::vector<pickle::Tensor> views_;
  std::vector<std::string> view_storage_keys_;

  friend Result<std::unique_ptr<WeightFile>> io::open_torch_zip(std::shared_ptr<ByteSource>, std::shared_ptr<ZipArchive>);
};

}  // namespace

Result<std::unique_ptr<WeightFile>> open_torch_zip(std::shared_ptr<ByteSource> source,
                                                   std::shared_ptr<ZipArchive> archive) {
  const std::string& label = source->label();
  const auto& entries = archive->entries();
  // The prefix is the first entry's directory (inline_container.cc reads it the same way); never hard-coded.
  const std::string& first = entries.front().name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos || slash == 0) {
    return file_error(label, ErrorCode::invalid_argument, "a zip whose first entry is not inside an archive directory");
  }
  const std::string prefix = first.substr(0, slash);
  for (const ZipEntry& entry : entries) {
    if (entry.name.ends_with("/constants.pkl") || entry.name == prefix + "/code/" ||
        entry.name.starts_with(prefix + "/code/")) {
      return file_error(label, ErrorCode::unsupported,
                        "a TorchScript archive (torch.jit.save): it holds code, and convbridge reads only torch.save "
                        "checkpoints; load it where you trust it and torch.save(model.state_dict())");
    }
  }
  const ZipEntry* data_pkl = archive->find(prefix + "/data.pkl");
  if (!data_pkl) {
    return file_error(label, ErrorCode::invalid_argument,
                      fmt::format("a zip without {}/data.pkl: not a torch.save checkpoint", printable(prefix)));
  }
  bool big_endian = false;
  if (const ZipEntry* byteorder = archive->find(prefix + "/byteorder")) {
    CONVBRIDGE_TRY(const auto bytes, archive->read_entry(*byteorder, 16));
    const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (text != "little" && text != "big") {
      return file_error(label, ErrorCode::invalid_argument,
                        fmt::format("the byteorder record says '{}' (torch writes 'little' or 'big')", printable(text)));
    }
    big_endian = text == "big";
  }
  auto checkpoint = std::make_unique<TorchCheckpoint>(archive, prefix, big_endian);
  checkpoint->format_ = WeightFormat::torch_zip;
  checkpoint->label_ = label;
  CONVBRIDGE_CHECK(checkpoint->load(*data_pkl));
  return std::unique_ptr<WeightFile>(std::move(checkpoint));
}

}  // namespace convbridge::io
