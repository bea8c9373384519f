// safetensors: u64 little-endian N, N bytes of JSON header, then the data. The validation rules are the reference
// reader's (huggingface/safetensors, safetensors/src/tensor.rs: SafeTensors::read_metadata and Metadata::validate;
// README "Format"): N <= 100,000,000 (MAX_HEADER_SIZE); the header is UTF-8 JSON that starts with '{' and may be
// padded with spaces; keys are unique; "__metadata__" maps strings to strings; tensors sorted by data_offsets must
// start at 0 and follow each other with no gap or overlap (begin == previous end, end >= begin); end - begin ==
// product(shape) x dtype size, computed with checked multiplication; and the last end is exactly the rest of the
// file (no trailing bytes: no polyglots). Data is little-endian and C order. The header is parsed with a SAX
// handler, so a large header costs its entries, not a JSON document tree.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <numeric>
#include <unordered_set>

#include "convbridge/checked_math.hpp"
#include "io/io_support.hpp"

namespace convbridge::io {
namespace {

constexpr uint64_t kMaxHeaderSize = 100'000'000;  // tensor.rs MAX_HEADER_SIZE
constexpr size_t kCopyChunk = size_t{4} << 20;

struct HeaderEntry {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  std::vector<uint64_t> offsets;
  bool has_dtype = false, has_shape = false, has_offsets = false;
};

// Builds the entries straight from the parser's events: one tensor record each, duplicates detected per object.
class HeaderHandler final : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::vector<HeaderEntry> tensors;
  std::string problem;

  bool null() override { return scalar("null", false); }
  bool boolean(bool) override { return scalar("a boolean", false); }
  bool number_integer(number_integer_t value) override {
    return value < 0 ? scalar("a negative number", false) : number(static_cast<uint64_t>(value));
  }
  bool number_unsigned(number_unsigned_t value) override { return number(value); }
  bool number_float(number_float_t, const string_t&) override { return scalar("a non-integer number", false); }
  bool binary(binary_t&) override { return scalar("binary data", false); }
  bool string(string_t& value) override {
    if (stack_.empty()) return refuse("the header is a string, not an object");
    const Context context = stack_.back();
    if (context == Context::metadata) return true;  // a str -> str entry
    if (context == Context::tensor && field_ == "dtype") {
      tensors.back().dtype = value;
      tensors.back().has_dtype = true;
      return true;
    }
    return scalar("a string", true);
  }

  bool start_object(std::size_t) override {
    if (stack_.empty()) {
      stack_.push_back(Context::top);
      return true;
    }
    switch (stack_.back()) {
      case Context::top:
        if (top_key_ == "__metadata__") {
          stack_.push_back(Context::metadata);
        } else {
          HeaderEntry entry;
          entry.name = top_key_;
          tensors.push_back(std::move(entry));
          tensor_keys_.clear();
          stack_.push_back(Context::tensor);
        }
        return true;
      case Context::tensor:
        if (field_ == "dtype" || field_ == "shape" || field_ == "data_offsets") {
          return refuse(fmt::format("tensor '{}': \"{}\" is an object", printable(tensors.back().name), field_));
        }
        stack_.push_back(Context::skip);  // a field the reference reader ignores too
        return true;
      case Context::skip:
        stack_.push_back(Context::skip);
        return true;
      default:
        return refuse("__metadata__ values must be strings, not objects");
    }
  }
  bool end_object() override {
    if (stack_.back() == Context::tensor) {
      const HeaderEntry& entry = tensors.back();
      if (!entry.has_dtype || !entry.has_shape || !entry.has_offsets) {
        return refuse(fmt::format("tensor '{}' lacks {}", printable(entry.name),
                                  !entry.has_dtype ? "\"dtype\"" : !entry.has_shape ? "\"shape\"" : "\"data_offsets\""));
      }
      if (entry.offsets.size() != 2) {
        return refuse(fmt::format("tensor '{}': data_offsets has {} entries, not [begin, end]", printable(entry.name),
                                  entry.offsets.size()));
      }
    }
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (stack_.empty()) return refuse("the header is an array, not an object");
    switch (stack_.back()) {
      case Context::tensor:
        if (field_ == "shape" || field_ == "data_offsets") {
          (field_ == "shape" ? tensors.back().has_shape : tensors.back().has_offsets) = true;
          stack_.push_back(field_ == "shape" ? Context::shape : Context::offsets);
          return true;
        }
        if (field_ == "dtype") return refuse(fmt::format("tensor '{}': \"dtype\" is an array", printable(tensors.back().name)));
        stack_.push_back(Context::skip);
        return true;
      case Context::skip:
        stack_.push_back(Context::skip);
        return true;
      case Context::top:
        return refuse(fmt::format("entry '{}' is an array, not an object", printable(top_key_)));
      case Context::metadata:
        return refuse("__metadata__ values must be strings, not arrays");
      default:
        return refuse("a nested array in a shape or data_offsets");
    }
  }
  bool end_array() override {
    stack_.pop_back();
    return true;
  }
  bool key(string_t& value) override {
    switch (stack_.back()) {
      case Context::top:
        if (!top_keys_.insert(value).second) return refuse(fmt::format("the key '{}' appears twice", printable(value)));
        top_key_ = value;
        return true;
      case Context::tensor:
        if (!tensor_keys_.insert(value).second) {
          return refuse(fmt::format("tensor '{}' has the key '{}' twice", printable(tensors.back().name), printable(value)));
        }
        field_ = value;
        return true;
      case Context::metadata:
        if (!metadata_seen_.insert(value).second) {
          return refuse(fmt::format("__metadata__ has the key '{}' twice", printable(value)));
        }
        return true;
      default:
        return true;
    }
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& error) override {
    if (problem.empty()) problem = fmt::format("the header is not valid JSON (at byte {}: {})", position, error.what());
    return false;
  }

 private:
  enum class Context { top, metadata, tensor, shape, offsets, skip };

  bool refuse(std::string message) {
    if (problem.empty()) problem = std::move(message);
    return false;
  }
  // A scalar where the structure allows one (a skipped field), or an error naming what it is.
  bool scalar(const char* what, bool) {
    if (stack_.empty()) return refuse(fmt::format("the header is {}, not an object", what));
    switch (stack_.back()) {
      case Context::skip: return true;
      case Context::tensor:
        if (field_ == "dtype" || field_ == "shape" || field_ == "data_offsets") {
          return refuse(fmt::format("tensor '{}': \"{}\" is {}", printable(tensors.back().name), field_, what));
        }
        return true;
      case Context::top:
        if (top_key_ == "__metadata__" && std::string_view(what) == "null") return true;  // Option::None
        return refuse(fmt::format("entry '{}' is {}, not an object", printable(top_key_), what));
      case Context::metadata: return refuse(fmt::format("__metadata__ values must be strings, not {}", what));
      default: return refuse(fmt::format("a shape or data_offsets entry is {}, not a non-negative integer", what));
    }
  }
  bool number(uint64_t value) {
    if (stack_.empty()) return refuse("the header is a number, not an object");
    switch (stack_.back()) {
      case Context::shape: tensors.back().shape.push_back(value); return true;
      case Context::offsets: tensors.back().offsets.push_back(value); return true;
      default: return scalar("a number", true);
    }
  }

  std::vector<Context> stack_;
  std::unordered_set<std::string> top_keys_, tensor_keys_, metadata_seen_;
  std::string top_key_, field_;
};

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(kLastDType); ++i) {
    if (dtype_info(static_cast<DType>(i)).safetensors == name) return static_cast<DType>(i);
  }
  return std::nullopt;
}

// Dtypes the reference format has and convbridge does not carry (sub-byte, complex, FNUZ and E8M0 floats).
bool is_reference_dtype(std::string_view name) {
  static const char* const kOthers[] = {"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"};
  return std::any_of(std::begin(kOthers), std::end(kOthers), [&](const char* other) { return name == other; });
}

class RangeReader final : public TensorReader {
 public:
  RangeReader(std::shared_ptr<ByteSource> source, uint64_t offset, uint64_t length)
      : source_(std::move(source)), offset_(offset), remaining_(length) {}
  Result<size_t> read(std::span<std::byte> out) override {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), remaining_));
    if (n == 0) return size_t{0};
    CONVBRIDGE_CHECK(source_->read_at(offset_, out.first(n)));
    offset_ += n;
    remaining_ -= n;
    return n;
  }

 private:
  std::shared_ptr<ByteSource> source_;
  uint64_t offset_;
  uint64_t remaining_;
};

class SafetensorsFile final : public WeightFile {
 public:
  SafetensorsFile(std::shared_ptr<ByteSource> source, uint64_t data_start)
      : source_(std::move(source)), data_start_(data_start) {
    format_ = WeightFormat::safetensors;
    label_ = source_->label();
  }
  void add(TensorInfo info, uint64_t begin) {
    tensors_.push_back(std::move(info));
    begins_.push_back(begin);
  }

  Result<std::unique_ptr<TensorReader>> open_tensor(size_t index) override {
    if (index >= tensors_.size()) return file_error(label_, ErrorCode::invalid_argument, fmt::format("no tensor {}", index));
    return std::unique_ptr<TensorReader>(
        new RangeReader(source_, data_start_ + begins_[index], static_cast<uint64_t>(tensors_[index].byte_size)));
  }
  void describe(uint64_t header_size) { description_ = fmt::format("safetensors ({} byte header)", header_size); }

 private:
  std::shared_ptr<ByteSource> source_;
  uint64_t data_start_;
  std::vector<uint64_t> begins_;  // data offset of each tensor
};

Error header_error(const ByteSource& source, std::string message, ErrorCode code = ErrorCode::invalid_argument) {
  return file_error(source.label(), code, fmt::format("safetensors: {}", message));
}

}  // namespace

Result<std::unique_ptr<WeightFile>> open_safetensors(std::shared_ptr<ByteSource> source) {
  if (source->size() < 8) return header_error(*source, "shorter than the 8-byte header size (HeaderTooSmall)");
  std::byte size_bytes[8];
  CONVBRIDGE_CHECK(source->read_at(0, size_bytes));
  const uint64_t header_size = load_u64(size_bytes);
  if (header_size > kMaxHeaderSize) {
    return header_error(*source, fmt::format("the header size {} exceeds the reference reader's limit of {} bytes "
                                             "(HeaderTooLarge)",
                                             header_size, kMaxHeaderSize));
  }
  if (header_size > source->size() - 8) {
    return header_error(*source, fmt::format("the header size {} runs past the end of the file ({} bytes; "
                                             "InvalidHeaderLength)",
                                             header_size, source->size()));
  }
  CONVBRIDGE_TRY(const auto header_bytes, read_range(*source, 8, header_size));
  const std::string_view header(reinterpret_cast<const char*>(header_bytes.data()), header_bytes.size());
  if (header.empty() || header.front() != '{') return header_error(*source, "the header does not start with '{'");
  if (!is_valid_utf8(header)) return header_error(*source, "the header is not valid UTF-8");
  HeaderHandler handler;
  const bool parsed = nlohmann::json::sax_parse(header, &handler, nlohmann::json::input_format_t::json, true);
  if (!parsed || !handler.problem.empty()) {
    return header_error(*source, handler.problem.empty() ? std::string("the header is not valid JSON") : handler.problem);
  }

  // Metadata::validate: sorted by data_offsets, contiguous from 0, sizes matching shape x dtype.
  std::vector<HeaderEntry>& entries = handler.tensors;
  std::stable_sort(entries.begin(), entries.end(),
                   [](const HeaderEntry& a, const HeaderEntry& b) { return a.offsets < b.offsets; });
  auto file = std::make_unique<SafetensorsFile>(source, 8 + header_size);
  uint64_t position = 0;
  for (HeaderEntry& entry : entries) {
    const std::string shown = printable(entry.name);
    const auto dtype = dtype_from_safetensors(entry.dtype);
    if (!dtype) {
      if (is_reference_dtype(entry.dtype)) {
        return header_error(*source, fmt::format("tensor '{}' has dtype {}, which convbridge does not carry", shown,
                                                 entry.dtype), ErrorCode::unsupported);
      }
      return header_error(*source, fmt::format("tensor '{}' has an unknown dtype '{}'", shown, printable(entry.dtype)));
    }
    const uint64_t begin = entry.offsets[0], end = entry.offsets[1];
    if (begin != position || end < begin) {
      return header_error(*source, fmt::format("tensor '{}' has data_offsets [{}, {}] where the previous tensor ends at "
                                               "{}: tensors must follow each other with no gap or overlap (InvalidOffset)",
                                               shown, begin, end, position));
    }
    TensorInfo info;
    info.name = entry.name;
    info.dtype = *dtype;
    for (uint64_t size : entry.shape) {
      if (size > static_cast<uint64_t>(INT64_MAX)) {
        return header_error(*source, fmt::format("tensor '{}' has a size beyond 2^63 in its shape", shown), ErrorCode::overflow);
      }
      info.shape.push_back(static_cast<int64_t>(size));
    }
    auto bytes = tensor_byte_size(source->label(), info.name, info.shape, info.dtype);
    if (!bytes) {
      return header_error(*source, fmt::format("tensor '{}': its shape {} times {} bytes overflows (ValidationOverflow)",
                                               shown, shape_string(info.shape), dtype_info(info.dtype).size),
                          ErrorCode::overflow);
    }
    if (static_cast<uint64_t>(*bytes) != end - begin) {
      return header_error(*source, fmt::format("tensor '{}' of shape {} and dtype {} needs {} bytes but data_offsets "
                                               "[{}, {}] hold {} (TensorInvalidInfo)",
                                               shown, shape_string(info.shape), entry.dtype, *bytes, begin, end,
                                               end - begin));
    }
    info.byte_size = *bytes;
    file->add(std::move(info), begin);
    position = end;
  }
  if (position != source->size() - 8 - header_size) {
    return header_error(*source, fmt::format("the tensors cover {} data bytes but the file holds {} after the header "
                                             "(MetadataIncompleteBuffer: no trailing bytes)",
                                             position, source->size() - 8 - header_size));
  }
  file->describe(header_size);
  return std::unique_ptr<WeightFile>(std::move(file));
}

// ---- writer -----------------------------------------------------------------------------------------------------

namespace {

// Position in the reference `enum Dtype`, which lists dtypes "in increasing alignment order".
int reference_alignment_rank(DType dtype) {
  static constexpr std::string_view kOrder[] = {"BOOL", "F4",  "F6_E2M3", "F6_E3M2", "U8",  "I8",  "F8_E5M2",
                                                "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16",
                                                "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"};
  const std::string_view name = dtype_info(dtype).safetensors;
  return static_cast<int>(std::find(std::begin(kOrder), std::end(kOrder), name) - std::begin(kOrder));
}

// Copies one tensor's bytes from its reader to `write`, checking the count.
template <class Write>
Status copy_tensor(WeightFile& source, size_t index, std::vector<std::byte>& buffer, Write&& write) {
  const TensorInfo& info = source.tensors()[index];
  CONVBRIDGE_TRY(auto reader, source.open_tensor(index));
  uint64_t copied = 0;
  while (true) {
    CONVBRIDGE_TRY(const size_t n, reader->read(buffer));
    if (n == 0) break;
    copied += n;
    if (copied > static_cast<uint64_t>(info.byte_size)) break;
    CONVBRIDGE_CHECK(write(std::span<const std::byte>(buffer.data(), n)));
  }
  if (copied != static_cast<uint64_t>(info.byte_size)) {
    return file_error(source.label(), ErrorCode::invalid_argument,
                      fmt::format("tensor '{}' yielded {} bytes where its shape needs {}", printable(info.name), copied,
                                  info.byte_size));
  }
  return Ok{};
}

}  // namespace

Status write_safetensors(WeightFile& source, const std::string& path) {
  const auto& tensors = source.tensors();
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  // The reference writer's order (tensor.rs prepare): descending dtype alignment, then name.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int rank_a = reference_alignment_rank(tensors[a].dtype), rank_b = reference_alignment_rank(tensors[b].dtype);
    if (rank_a != rank_b) return rank_a > rank_b;
    return tensors[a].name < tensors[b].name;
  });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  for (size_t index : order) {
    const TensorInfo& info = tensors[index];
    if (info.name == "__metadata__") {
      return file_error(path, ErrorCode::invalid_argument, "a tensor named '__metadata__' cannot be written to safetensors");
    }
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_info(info.dtype).safetensors;
    entry["shape"] = info.shape;
    entry["data_offsets"] = {offset, offset + static_cast<uint64_t>(info.byte_size)};
    header[info.name] = std::move(entry);
    offset += static_cast<uint64_t>(info.byte_size);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& error) {
    return file_error(path, ErrorCode::invalid_argument, fmt::format("a tensor name cannot be written: {}", error.what()));
  }
  text.resize((text.size() + 7) / 8 * 8, ' ');  // the reference writer pads the header to a multiple of 8
  if (text.size() > kMaxHeaderSize) {
    return file_error(path, ErrorCode::invalid_argument,
                      fmt::format("the header would be {} bytes, past safetensors' limit of {}", text.size(), kMaxHeaderSize));
  }

  CONVBRIDGE_TRY(auto output, AtomicOutputFile::create(path));
  std::byte size_bytes[8];
  store_u64(size_bytes, text.size());
  CONVBRIDGE_CHECK(output.write(size_bytes));
  CONVBRIDGE_CHECK(output.write(std::as_bytes(std::span<const char>(text))));
  std::vector<std::byte> buffer(kCopyChunk);
  for (size_t index : order) {
    CONVBRIDGE_CHECK(copy_tensor(source, index, buffer, [&](std::span<const std::byte> bytes) { return output.write(bytes); }));
  }
  return output.commit();
}

// Shared with the .npz writer.
Status copy_tensor_bytes(WeightFile& source, size_t index, std::vector<std::byte>& buffer,
                         const std::function<Status(std::span<const std::byte>)>& write) {
  return copy_tensor(source, index, buffer, write);
}

}  // namespace convbridge::io
