// numpy .npz: a zip of NAME.npy members (numpy/lib/_npyio_impl.py savez; stored, or deflated by savez_compressed).
// A .npy member (numpy/lib/format.py, "NPY format"): the magic "\x93NUMPY", a version byte pair (1.0: u16 header
// length; 2.0 and 3.0: u32), then the header, a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape':
// (...), } padded with spaces and a newline, read here as data by a small literal parser, never evaluated. Only
// simple dtypes are read (bool, integers, float16/32/64, either byte order); object arrays (pickles), structured,
// string, complex and datetime dtypes are refused by name. numpy refuses headers over 10000 bytes by default
// (format.py _MAX_HEADER_SIZE), and so does this reader.
#include <fmt/format.h>
#include <zip.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <ctime>

#include "convbridge/checked_math.hpp"
#include "io/io_support.hpp"
#include "io/zip_archive.hpp"

namespace convbridge::io {
namespace {

constexpr uint64_t kMaxNpyHeader = 10000;  // numpy/lib/format.py _MAX_HEADER_SIZE
constexpr std::string_view kNpyMagic = "\x93NUMPY";
constexpr size_t kStagingBytes = size_t{1} << 20;

struct NpyHeader {
  DType dtype = DType::float32;
  bool big_endian = false;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  uint64_t data_offset = 0;  // within the member
};

// The header literal: a dict of 'descr' (str), 'fortran_order' (bool), 'shape' (tuple of ints).
class HeaderLiteral {
 public:
  HeaderLiteral(std::string_view text, std::string member) : text_(text), member_(std::move(member)) {}

  Status parse(NpyHeader& header) {
    skip_space();
    if (!eat('{')) return bad("the header is not a dict literal");
    bool has_descr = false, has_order = false, has_shape = false;
    std::string descr;
    while (true) {
      skip_space();
      if (eat('}')) break;
      CONVBRIDGE_TRY(const std::string key, string_literal());
      skip_space();
      if (!eat(':')) return bad("a key without ':'");
      skip_space();
      if (key == "descr") {
        if (peek() == '[') return unsupported("a structured dtype (a list of fields)");
        if (has_descr) return bad("'descr' appears twice");
        CONVBRIDGE_TRY(descr, string_literal());
        has_descr = true;
      } else if (key == "fortran_order") {
        if (has_order) return bad("'fortran_order' appears twice");
        if (text_.substr(at_).starts_with("True")) {
          header.fortran_order = true, at_ += 4;
        } else if (text_.substr(at_).starts_with("False")) {
          header.fortran_order = false, at_ += 5;
        } else {
          return bad("'fortran_order' is not True or False");
        }
        has_order = true;
      } else if (key == "shape") {
        if (has_shape) return bad("'shape' appears twice");
        CONVBRIDGE_TRY(header.shape, integer_tuple());
        has_shape = true;
      } else {
        return bad(fmt::format("the header has a key '{}' (numpy writes exactly descr, fortran_order and shape)",
                               printable(key)));
      }
      skip_space();
      if (eat(',')) continue;
      skip_space();
      if (eat('}')) break;
      return bad("entries not separated by ','");
    }
    skip_space();
    if (at_ != text_.size()) return bad("bytes after the header dict");
    if (!has_descr || !has_order || !has_shape) return bad("the header lacks descr, fortran_order or shape");
    return dtype_from_descr(descr, header);
  }

 private:
  Error bad(std::string message) const {
    return make_error(ErrorCode::invalid_argument, fmt::format(".npy member '{}': {}", member_, message));
  }
  Error unsupported(std::string what) const {
    return make_error(ErrorCode::unsupported, fmt::format(".npy member '{}': {} is not read", member_, what));
  }
  char peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++at_;
    return true;
  }
  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\t')) ++at_;
  }
  Result<std::string> string_literal() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') return bad("expected a quoted string");
    const size_t start = ++at_;
    while (at_ < text_.size() && text_[at_] != quote) {
      if (text_[at_] == '\\') return bad("escapes in a header string");
      ++at_;
    }
    if (at_ >= text_.size()) return bad("an unterminated string");
    return std::string(text_.substr(start, at_++ - start));
  }
  Result<std::vector<int64_t>> integer_tuple() {
    if (!eat('(')) return bad("'shape' is not a tuple");
    std::vector<int64_t> values;
    while (true) {
      skip_space();
      if (eat(')')) return values;
      const size_t start = at_;
      while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) ++at_;
      if (start == at_) return bad("'shape' holds something other than non-negative integers");
      int64_t value = 0;
      const auto [stop, error] = std::from_chars(text_.data() + start, text_.data() + at_, value);
      if (error != std::errc{} || stop != text_.data() + at_) {
        return make_error(ErrorCode::overflow, fmt::format(".npy member '{}': a size beyond 2^63", member_));
      }
      eat('L');  // Python 2 wrote long integers as 3L
      values.push_back(value);
      if (values.size() > 64) return bad("more than 64 dimensions");
      skip_space();
      if (eat(',')) continue;
      skip_space();
      if (eat(')')) return values;
      return bad("'shape' entries not separated by ','");
    }
  }
  Status dtype_from_descr(const std::string& descr, NpyHeader& header) const {
    if (descr.size() < 2) return bad(fmt::format("descr '{}'", printable(descr)));
    const char order = descr[0];
    const std::string_view code = std::string_view(descr).substr(1);
    if (order != '<' && order != '>' && order != '|' && order != '=') {
      return bad(fmt::format("descr '{}' has no byte order", printable(descr)));
    }
    static const std::pair<std::string_view, DType> kCodes[] = {
        {"b1", DType::boolean}, {"u1", DType::uint8}, {"i1", DType::int8},     {"i2", DType::int16},
        {"u2", DType::uint16},  {"i4", DType::int32}, {"u4", DType::uint32},   {"i8", DType::int64},
        {"u8", DType::uint64},  {"f2", DType::float16}, {"f4", DType::float32}, {"f8", DType::float64},
    };
    for (const auto& [name, dtype] : kCodes) {
      if (code == name) {
        header.dtype = dtype;
        header.big_endian = order == '>' || (order == '=' && std::endian::native == std::endian::big);
        return Ok{};
      }
    }
    if (code.starts_with("O")) {
      return make_error(ErrorCode::invalid_argument,
                        fmt::format(".npy member '{}': an object array (descr '{}'), stored as a pickle, is refused "
                                    "(numpy itself needs allow_pickle=True for it)",
                                    member_, printable(descr)));
    }
    return unsupported(fmt::format("dtype '{}' (complex, string, datetime, void and extended types)", printable(descr)));
  }

  std::string_view text_;
  std::string member_;
  size_t at_ = 0;
};

// C order from Fortran order: output element i (C order) comes from the column-major offset of the same index.
std::vector<std::byte> fortran_to_c(const std::vector<std::byte>& data, const std::vector<int64_t>& shape,
                                    int64_t element_size) {
  std::vector<std::byte> out(data.size());
  const size_t rank = shape.size();
  std::vector<int64_t> strides(rank, 1), counter(rank, 0);
  for (size_t d = 1; d < rank; ++d) strides[d] = strides[d - 1] * shape[d - 1];
  const auto size = static_cast<size_t>(element_size);
  const size_t count = data.size() / size;
  int64_t source = 0;
  for (size_t i = 0; i < count; ++i) {
    std::memcpy(out.data() + i * size, data.data() + static_cast<size_t>(source) * size, size);
    for (size_t d = rank; d-- > 0;) {
      if (++counter[d] < shape[d]) {
        source += strides[d];
        break;
      }
      source -= (shape[d] - 1) * strides[d];
      counter[d] = 0;
    }
  }
  return out;
}

class MemberReader final : public TensorReader {
 public:
  MemberReader(std::unique_ptr<ZipEntryReader> entry, int64_t element_size, bool swap)
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

class NpzFile final : public WeightFile {
 public:
  NpzFile(std::shared_ptr<ZipArchive> archive, std::string label) : archive_(std::move(archive)) {
    format_ = WeightFormat::npz;
    label_ = std::move(label);
    archive_->send_notes_to(&notes_);
  }

  Status load() {
    size_t fortran = 0;
    for (const ZipEntry& entry : archive_->entries()) {
      const std::string shown = printable(entry.name);
      if (!entry.name.ends_with(".npy") || entry.name.size() == 4) {
        return file_error(label_, ErrorCode::invalid_argument,
                          fmt::format("member '{}' is not a NAME.npy array, as numpy.savez writes", shown));
      }
      if (!is_valid_utf8(entry.name)) {
        return file_error(label_, ErrorCode::invalid_argument, fmt::format("member name '{}' is not valid UTF-8", shown));
      }
      CONVBRIDGE_TRY(NpyHeader header, read_header(entry));
      TensorInfo info;
      info.name = entry.name.substr(0, entry.name.size() - 4);
      info.dtype = header.dtype;
      info.shape = header.shape;
      CONVBRIDGE_TRY(info.byte_size, tensor_byte_size(label_, info.name, info.shape, info.dtype));
      if (entry.size - header.data_offset != static_cast<uint64_t>(info.byte_size)) {
        return file_error(label_, ErrorCode::invalid_argument,
                          fmt::format("member '{}' holds {} data bytes but its shape {} of {} needs {}", shown,
                                      entry.size - header.data_offset, shape_string(info.shape),
                                      dtype_info(info.dtype).name, info.byte_size));
      }
      fortran += header.fortran_order ? 1 : 0;
      tensors_.push_back(std::move(info));
      headers_.push_back(header);
      members_.push_back(&entry);
    }
    description_ = fmt::format("numpy .npz ({} member(s){})", tensors_.size(),
                               fortran ? fmt::format(", {} in Fortran order, read as C order", fortran) : std::string());
    return Ok{};
  }

  Result<std::unique_ptr<TensorReader>> open_tensor(size_t index) override {
    if (index >= tensors_.size()) return file_error(label_, ErrorCode::invalid_argument, fmt::format("no tensor {}", index));
    const NpyHeader& header = headers_[index];
    const int64_t element_size = dtype_info(header.dtype).size;
    const auto length = static_cast<uint64_t>(tensors_[index].byte_size);
    CONVBRIDGE_TRY(auto reader, archive_->open_entry(*members_[index], header.data_offset, length));
    if (!header.fortran_order) {
      return std::unique_ptr<TensorReader>(new MemberReader(std::move(reader), element_size, header.big_endian));
    }
    std::vector<std::byte> data(static_cast<size_t>(length));
    for (size_t filled = 0; filled < data.size();) {
      CONVBRIDGE_TRY(const size_t n, reader->read(std::span<std::byte>(data).subspan(filled)));
      if (n == 0) return file_error(label_, ErrorCode::invalid_argument, "a member ended early");
      filled += n;
    }
    if (header.big_endian) swap_element_bytes(data, element_size);
    return std::unique_ptr<TensorReader>(new BufferTensorReader(fortran_to_c(data, header.shape, element_size)));
  }

 private:
  Result<NpyHeader> read_header(const ZipEntry& entry) {
    const std::string shown = printable(entry.name);
    const auto bad = [&](std::string message) {
      return file_error(label_, ErrorCode::invalid_argument, fmt::format("member '{}': {}", shown, message));
    };
    if (entry.size < 10) return bad("too short for a .npy header");
    const uint64_t preamble = std::min<uint64_t>(entry.size, 12 + kMaxNpyHeader);
    CONVBRIDGE_TRY(auto reader, archive_->open_entry(entry, 0, preamble));
    std::vector<std::byte> bytes(static_cast<size_t>(preamble));
    for (size_t filled = 0; filled < bytes.size();) {
      CONVBRIDGE_TRY(const size_t n, reader->read(std::span<std::byte>(bytes).subspan(filled)));
      if (n == 0) return bad("ends inside its header");
      filled += n;
    }
    if (std::memcmp(bytes.data(), kNpyMagic.data(), kNpyMagic.size()) != 0) return bad("no \\x93NUMPY magic");
    const auto major = std::to_integer<int>(bytes[6]);
    uint64_t header_length = 0, header_start = 0;
    if (major == 1) {
      header_length = load_u16(&bytes[8]), header_start = 10;
    } else if (major == 2 || major == 3) {
      if (bytes.size() < 12) return bad("too short for a .npy 2.0 header");
      header_length = load_u32(&bytes[8]), header_start = 12;
    } else {
      return bad(fmt::format(".npy format version {}.{} (1.0 to 3.0 exist)", major, std::to_integer<int>(bytes[7])));
    }
    if (header_length > kMaxNpyHeader) {
      return bad(fmt::format("a {} byte header (numpy reads at most {})", header_length, kMaxNpyHeader));
    }
    if (header_start + header_length > bytes.size()) return bad("its header runs past the member");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + header_start),
                                static_cast<size_t>(header_length));
    if (major < 3 && !std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
      return bad("a header that is not ASCII (only version 3.0 allows UTF-8)");
    }
    NpyHeader header;
    HeaderLiteral literal(text, shown);
    if (auto parsed = literal.parse(header); !parsed) {
      return file_error(label_, parsed.error().code, parsed.error().message);
    }
    header.data_offset = header_start + header_length;
    return header;
  }

  std::shared_ptr<ZipArchive> archive_;
  std::vector<NpyHeader> headers_;
  std::vector<const ZipEntry*> members_;
};

// ---- writer: libzip pulls each member through this source, so no tensor is held beyond a staging buffer ----------

struct MemberSource {
  WeightFile* weights = nullptr;
  size_t index = 0;
  std::string preamble;  // magic, version, header length, header
  uint64_t total = 0;
  std::unique_ptr<TensorReader> reader;
  std::vector<std::byte> staging;
  size_t staged = 0, served = 0, preamble_served = 0;
  uint64_t delivered = 0;
  std::optional<Error> failure;
  zip_error_t error{};
};

zip_int64_t member_source_callback(void* userdata, void* data, zip_uint64_t length, zip_source_cmd_t command) {
  auto* state = static_cast<MemberSource*>(userdata);
  const auto failed = [&](Error error) -> zip_int64_t {
    if (!state->failure) state->failure = std::move(error);
    zip_error_set(&state->error, ZIP_ER_READ, 0);
    return -1;
  };
  switch (command) {
    case ZIP_SOURCE_OPEN: {
      auto reader = state->weights->open_tensor(state->index);
      if (!reader) return failed(reader.error());
      state->reader = std::move(*reader);
      state->staging.resize(kStagingBytes);
      state->staged = state->served = state->preamble_served = 0;
      state->delivered = 0;
      return 0;
    }
    case ZIP_SOURCE_READ: {
      auto* out = static_cast<std::byte*>(data);
      zip_uint64_t written = 0;
      while (written < length) {
        if (state->preamble_served < state->preamble.size()) {
          const size_t n = std::min<size_t>(static_cast<size_t>(length - written), state->preamble.size() - state->preamble_served);
          std::memcpy(out + written, state->preamble.data() + state->preamble_served, n);
          state->preamble_served += n;
          written += n;
          continue;
        }
        if (state->served == state->staged) {
          auto n = state->reader->read(state->staging);
          if (!n) return failed(n.error());
          if (*n == 0) break;
          state->staged = *n;
          state->served = 0;
        }
        const size_t n = std::min<size_t>(static_cast<size_t>(length - written), state->staged - state->served);
        std::memcpy(out + written, state->staging.data() + state->served, n);
        state->served += n;
        written += n;
      }
      state->delivered += written;
      if (written == 0 && state->delivered != state->total) {
        const TensorInfo& info = state->weights->tensors()[state->index];
        return failed(file_error(state->weights->label(), ErrorCode::invalid_argument,
                                 fmt::format("tensor '{}' yielded fewer bytes than its shape needs", printable(info.name))));
      }
      return static_cast<zip_int64_t>(written);
    }
    case ZIP_SOURCE_CLOSE:
      state->reader.reset();
      std::vector<std::byte>().swap(state->staging);
      return 0;
    case ZIP_SOURCE_STAT: {
      auto* stat = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, length, &state->error);
      if (!stat) return -1;
      zip_stat_init(stat);
      stat->valid |= ZIP_STAT_SIZE | ZIP_STAT_MTIME;
      stat->size = state->total;
      stat->mtime = 1577836800;  // 2020-01-01: fixed, so the same tensors give the same file
      return sizeof(*stat);
    }
    case ZIP_SOURCE_ERROR:
      return zip_error_to_data(&state->error, data, length);
    case ZIP_SOURCE_FREE:
      return 0;  // the state belongs to write_npz
    case ZIP_SOURCE_SUPPORTS:
      return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
                                            ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
    default:
      zip_error_set(&state->error, ZIP_ER_OPNOTSUPP, 0);
      return -1;
  }
}

// The .npy preamble numpy's write_array_header_1_0/2_0 produces: the dict repr, padded with spaces and a final
// newline so the data starts on a 64-byte boundary (format.py ARRAY_ALIGN).
std::string npy_preamble(const TensorInfo& info) {
  std::string shape = "(";
  for (size_t i = 0; i < info.shape.size(); ++i) shape += fmt::format("{}{}", i ? ", " : "", info.shape[i]);
  shape += info.shape.size() == 1 ? ",)" : ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   dtype_info(info.dtype).numpy_descr, shape);
  const bool version_1 = header.size() + 1 + 10 <= 65535;
  const size_t fixed = version_1 ? 10 : 12;
  const size_t padded = (fixed + header.size() + 1 + 63) / 64 * 64;
  header.append(padded - fixed - header.size() - 1, ' ');
  header += '\n';
  std::string out(kNpyMagic);
  out += static_cast<char>(version_1 ? 1 : 2);
  out += '\0';
  const uint64_t length = header.size();
  for (size_t i = 0; i < (version_1 ? 2u : 4u); ++i) out += static_cast<char>((length >> (8 * i)) & 0xFF);
  return out + header;
}

}  // namespace

Result<std::unique_ptr<WeightFile>> open_npz(std::shared_ptr<ByteSource> source, std::shared_ptr<ZipArchive> archive) {
  auto file = std::make_unique<NpzFile>(std::move(archive), source->label());
  CONVBRIDGE_CHECK(file->load());
  return std::unique_ptr<WeightFile>(std::move(file));
}

Status write_npz(WeightFile& weights, const std::string& path) {
  const auto& tensors = weights.tensors();
  for (const TensorInfo& info : tensors) {
    if (dtype_info(info.dtype).numpy_descr.empty()) {
      return file_error(path, ErrorCode::unsupported,
                        fmt::format("tensor '{}' is {}, which numpy has no dtype for: write .safetensors instead",
                                    printable(info.name), dtype_info(info.dtype).name));
    }
  }
  CONVBRIDGE_TRY(auto output, AtomicOutputFile::create(path));
  CONVBRIDGE_CHECK(output.close_descriptor());  // libzip writes the temporary file itself

  int code = 0;
  zip_t* archive = zip_open(output.temporary_path().c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (!archive) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    const std::string message = zip_error_strerror(&error);
    zip_error_fini(&error);
    return file_error(path, ErrorCode::invalid_argument, fmt::format("cannot create the zip: {}", message));
  }
  std::vector<std::unique_ptr<MemberSource>> members;
  const auto abandon = [&](Error error) -> Status {
    zip_discard(archive);
    return error;
  };
  for (size_t index = 0; index < tensors.size(); ++index) {
    auto member = std::make_unique<MemberSource>();
    member->weights = &weights;
    member->index = index;
    member->preamble = npy_preamble(tensors[index]);
    member->total = member->preamble.size() + static_cast<uint64_t>(tensors[index].byte_size);
    zip_error_init(&member->error);
    zip_source_t* source = zip_source_function(archive, member_source_callback, member.get());
    if (!source) return abandon(file_error(path, ErrorCode::invalid_argument, zip_strerror(archive)));
    const zip_int64_t added = zip_file_add(archive, (tensors[index].name + ".npy").c_str(), source, ZIP_FL_ENC_UTF_8);
    if (added < 0) {
      zip_source_free(source);
      return abandon(file_error(path, ErrorCode::invalid_argument,
                                fmt::format("cannot add '{}': {}", printable(tensors[index].name), zip_strerror(archive))));
    }
    // np.savez stores its members uncompressed.
    if (zip_set_file_compression(archive, static_cast<zip_uint64_t>(added), ZIP_CM_STORE, 0) != 0) {
      return abandon(file_error(path, ErrorCode::invalid_argument, zip_strerror(archive)));
    }
    members.push_back(std::move(member));
  }
  if (zip_close(archive) != 0) {
    std::string message = zip_strerror(archive);
    zip_discard(archive);
    for (const auto& member : members) {
      if (member->failure) return *member->failure;
    }
    return file_error(path, ErrorCode::invalid_argument, fmt::format("writing the zip failed: {}", message));
  }
  for (const auto& member : members) zip_error_fini(&member->error);
  return output.commit();
}

}  // namespace convbridge::io
