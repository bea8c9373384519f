#include "io/zip_archive.hpp"

#include <zip.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <unistd.h>

namespace convbridge::io {
namespace {

// APPNOTE 4.3.7, 4.3.12, 4.3.14, 4.3.15, 4.3.16.
constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint64_t kEndRecordSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kMaxCommentSize = 0xFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;

// Bounds on what one archive may declare, far above any checkpoint (a storage per entry) or .npz.
constexpr uint64_t kMaxEntries = uint64_t{1} << 18;
constexpr uint64_t kMaxCentralDirectoryBytes = uint64_t{128} << 20;
// zlib's technical details: "the limit is 1032:1" for deflate; the slack covers tiny entries.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr uint64_t kDeflateSlackBytes = 4096;

Error zip_error(const ByteSource& source, std::string message) {
  return file_error(source.label(), ErrorCode::invalid_argument, fmt::format("zip: {}", message));
}

struct CentralDirectory {
  uint64_t entries = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};

// The end record, exactly at the end of the file (a comment may follow it; any other byte is refused), and the
// ZIP64 end record when its locator precedes it.
Result<CentralDirectory> find_central_directory(const ByteSource& source) {
  const uint64_t file_size = source.size();
  if (file_size < kEndRecordSize) return zip_error(source, fmt::format("{} bytes is too short for a zip", file_size));
  const uint64_t tail_size = std::min(file_size, kEndRecordSize + kMaxCommentSize);
  CONVBRIDGE_TRY(const auto tail, read_range(source, file_size - tail_size, tail_size));
  std::optional<uint64_t> end_at;  // position in `tail`
  for (uint64_t at = tail_size - kEndRecordSize + 1; at-- > 0;) {
    if (load_u32(&tail[at]) == kEndSignature && at + kEndRecordSize + load_u16(&tail[at + 20]) == tail_size) {
      end_at = at;
      break;
    }
  }
  if (!end_at) {
    return zip_error(source, "no end-of-central-directory record at the end of the file (truncated, or bytes after it)");
  }
  const std::byte* end = &tail[*end_at];
  const uint64_t end_position = file_size - tail_size + *end_at;
  CentralDirectory directory;
  const uint16_t disk = load_u16(end + 4), directory_disk = load_u16(end + 6);
  const uint16_t entries_here = load_u16(end + 8);
  directory.entries = load_u16(end + 10);
  directory.size = load_u32(end + 12);
  directory.offset = load_u32(end + 16);
  uint64_t directory_end_limit = end_position;  // where the central directory must end

  const bool has_locator =
      end_position >= kZip64LocatorSize &&
      [&] {
        std::byte signature[4];
        return source.read_at(end_position - kZip64LocatorSize, signature).ok() &&
               load_u32(signature) == kZip64LocatorSignature;
      }();
  if (has_locator) {
    CONVBRIDGE_TRY(const auto locator, read_range(source, end_position - kZip64LocatorSize, kZip64LocatorSize));
    const uint64_t zip64_end_position = load_u64(&locator[8]);
    uint64_t zip64_end_stop = 0;
    if (load_u32(&locator[4]) != 0 || load_u32(&locator[16]) > 1) return zip_error(source, "a multi-disk archive");
    if (add_overflows(zip64_end_position, kZip64EndSize, zip64_end_stop) ||
        zip64_end_stop > end_position - kZip64LocatorSize) {
      return zip_error(source, fmt::format("the ZIP64 end record offset {} is outside the file", zip64_end_position));
    }
    CONVBRIDGE_TRY(const auto zip64_end, read_range(source, zip64_end_position, kZip64EndSize));
    if (load_u32(&zip64_end[0]) != kZip64EndSignature) {
      return zip_error(source, fmt::format("no ZIP64 end record at offset {}", zip64_end_position));
    }
    if (load_u32(&zip64_end[16]) != 0 || load_u32(&zip64_end[20]) != 0) return zip_error(source, "a multi-disk archive");
    const uint64_t zip64_entries_here = load_u64(&zip64_end[24]);
    directory.entries = load_u64(&zip64_end[32]);
    directory.size = load_u64(&zip64_end[40]);
    directory.offset = load_u64(&zip64_end[48]);
    if (zip64_entries_here != directory.entries) return zip_error(source, "a multi-disk archive");
    directory_end_limit = zip64_end_position;
  } else {
    if (disk != 0 || directory_disk != 0 || entries_here != directory.entries) {
      return zip_error(source, "a multi-disk archive");
    }
    if (directory.entries == 0xFFFF || directory.size == 0xFFFFFFFF || directory.offset == 0xFFFFFFFF) {
      return zip_error(source, "the end record defers to a ZIP64 record that is missing");
    }
  }
  uint64_t directory_end = 0;
  if (add_overflows(directory.offset, directory.size, directory_end) || directory_end != directory_end_limit) {
    return zip_error(source, fmt::format("the central directory ({} bytes at offset {}) does not end where the end "
                                         "record starts (offset {})",
                                         directory.size, directory.offset, directory_end_limit));
  }
  if (directory.entries > kMaxEntries) {
    return zip_error(source, fmt::format("{} entries (at most {} are read)", directory.entries, kMaxEntries));
  }
  if (directory.size > kMaxCentralDirectoryBytes || directory.entries * kCentralHeaderSize > directory.size) {
    return zip_error(source, fmt::format("a central directory of {} bytes cannot hold {} entries", directory.size,
                                         directory.entries));
  }
  return directory;
}

// The entries of the central directory, each checked against its local header.
Result<std::vector<ZipEntry>> audit_entries(const ByteSource& source, const CentralDirectory& directory) {
  CONVBRIDGE_TRY(const auto central, read_range(source, directory.offset, directory.size));
  std::vector<ZipEntry> entries;
  entries.reserve(static_cast<size_t>(directory.entries));
  std::set<std::string> names;
  uint64_t at = 0;
  for (uint64_t i = 0; i < directory.entries; ++i) {
    if (at + kCentralHeaderSize > central.size() || load_u32(&central[at]) != kCentralHeaderSignature) {
      return zip_error(source, fmt::format("central directory entry {} is missing or malformed", i));
    }
    const std::byte* header = &central[at];
    const uint16_t flags = load_u16(header + 8), method = load_u16(header + 10);
    uint64_t compressed = load_u32(header + 20), size = load_u32(header + 24);
    const uint16_t name_length = load_u16(header + 28), extra_length = load_u16(header + 30),
                   comment_length = load_u16(header + 32), disk = load_u16(header + 34);
    uint64_t local_offset = load_u32(header + 42);
    const uint64_t record_size = kCentralHeaderSize + name_length + extra_length + comment_length;
    if (at + record_size > central.size()) {
      return zip_error(source, fmt::format("central directory entry {} runs past the directory", i));
    }
    ZipEntry entry;
    entry.index = i;
    entry.name.assign(reinterpret_cast<const char*>(header + kCentralHeaderSize), name_length);
    const std::string shown = printable(entry.name);
    // ZIP64 extra field (4.5.3): the 64-bit values, present only for the fields saturated in the header.
    const std::byte* extra = header + kCentralHeaderSize + name_length;
    for (uint64_t e = 0; e + 4 <= extra_length;) {
      const uint16_t id = load_u16(extra + e), length = load_u16(extra + e + 2);
      if (e + 4 + length > extra_length) return zip_error(source, fmt::format("entry '{}': malformed extra field", shown));
      if (id == kZip64ExtraId) {
        uint64_t field = e + 4;
        const uint64_t field_end = e + 4 + length;
        for (uint64_t* value : {&size, &compressed, &local_offset}) {
          if (*value != 0xFFFFFFFF) continue;
          if (field + 8 > field_end) return zip_error(source, fmt::format("entry '{}': short ZIP64 extra field", shown));
          *value = load_u64(extra + field);
          field += 8;
        }
      }
      e += 4 + uint64_t{length};
    }
    if (disk != 0 && disk != 0xFFFF) return zip_error(source, "a multi-disk archive");
    if (entry.name.empty() || entry.name.find('\0') != std::string::npos) {
      return zip_error(source, fmt::format("entry {} has an empty name or a NUL byte in it ('{}')", i, shown));
    }
    if (!names.insert(entry.name).second) {
      return zip_error(source, fmt::format("two entries are named '{}' (which one a reader takes is ambiguous)", shown));
    }
    if (flags & 0x1) return zip_error(source, fmt::format("entry '{}' is encrypted", shown));
    if (method == 0) {
      if (compressed != size) {
        return zip_error(source, fmt::format("stored entry '{}' declares {} bytes but holds {}", shown, size, compressed));
      }
    } else if (method == 8) {
      entry.stored = false;
      uint64_t bound = 0;
      if (mul_overflows(compressed, kMaxDeflateRatio, bound) || add_overflows(bound, kDeflateSlackBytes, bound) ||
          size > bound) {
        return zip_error(source, fmt::format("entry '{}' declares {} bytes from {} compressed, more than deflate can "
                                             "produce (a zip bomb)",
                                             shown, size, compressed));
      }
    } else {
      return zip_error(source, fmt::format("entry '{}' uses compression method {} (only stored and deflate are read)",
                                           shown, method));
    }
    entry.size = size;
    entry.compressed_size = compressed;
    entry.local_header_offset = local_offset;

    // The local header: same name, and the data after it ends before the central directory.
    uint64_t local_end = 0;
    if (add_overflows(local_offset, kLocalHeaderSize, local_end) || local_end > directory.offset) {
      return zip_error(source, fmt::format("entry '{}' starts at offset {}, past the entries' area", shown, local_offset));
    }
    CONVBRIDGE_TRY(const auto local, read_range(source, local_offset, kLocalHeaderSize));
    if (load_u32(&local[0]) != kLocalHeaderSignature) {
      return zip_error(source, fmt::format("entry '{}' has no local header at offset {}", shown, local_offset));
    }
    const uint16_t local_name_length = load_u16(&local[26]), local_extra_length = load_u16(&local[28]);
    if (local_name_length != name_length || load_u16(&local[8]) != method) {
      return zip_error(source, fmt::format("entry '{}': its local header disagrees with the central directory", shown));
    }
    uint64_t data_end = 0;
    if (add_overflows(local_end, uint64_t{local_name_length} + local_extra_length, entry.data_offset) ||
        add_overflows(entry.data_offset, compressed, data_end) || data_end > directory.offset) {
      return zip_error(source, fmt::format("entry '{}' ({} bytes at offset {}) runs past the entries' area (offset {})",
                                           shown, compressed, local_offset, directory.offset));
    }
    CONVBRIDGE_TRY(const auto local_name, read_range(source, local_end, local_name_length));
    if (std::memcmp(local_name.data(), entry.name.data(), name_length) != 0) {
      return zip_error(source, fmt::format("entry '{}': its local header names another file", shown));
    }
    entries.push_back(std::move(entry));
    at += record_size;
  }
  if (at != central.size()) return zip_error(source, "bytes left over in the central directory");

  // No two entries share bytes (overlapping entries are how non-recursive zip bombs multiply their data).
  std::vector<const ZipEntry*> by_offset;
  for (const ZipEntry& entry : entries) by_offset.push_back(&entry);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->local_header_offset < b->local_header_offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const ZipEntry& before = *by_offset[i - 1];
    if (by_offset[i]->local_header_offset < before.data_offset + before.compressed_size) {
      return zip_error(source, fmt::format("entries '{}' and '{}' overlap", printable(before.name),
                                           printable(by_offset[i]->name)));
    }
  }
  return entries;
}

std::string libzip_message(zip_error_t* error) {
  std::string message = zip_error_strerror(error);
  zip_error_fini(error);
  return message;
}

}  // namespace

bool ZipArchive::looks_like_zip(const ByteSource& source) {
  std::byte magic[4];
  if (source.size() < 4 || !source.read_at(0, magic).ok()) return false;
  const uint32_t signature = load_u32(magic);
  return signature == kLocalHeaderSignature || signature == kEndSignature;
}

Result<std::shared_ptr<ZipArchive>> ZipArchive::open(std::shared_ptr<ByteSource> source) {
  CONVBRIDGE_TRY(const CentralDirectory directory, find_central_directory(*source));
  CONVBRIDGE_TRY(auto entries, audit_entries(*source, directory));

  std::shared_ptr<ZipArchive> archive(new ZipArchive(source));
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* zip_source = nullptr;
  if (source->file_descriptor() >= 0) {
    const int fd = ::dup(source->file_descriptor());
    FILE* file = fd >= 0 ? ::fdopen(fd, "rb") : nullptr;
    if (!file) {
      if (fd >= 0) ::close(fd);
      return zip_error(*source, "cannot reopen the file for libzip");
    }
    // libzip owns `file` from here (closed when the source is freed).
    zip_source = zip_source_filep_create(file, 0, static_cast<zip_int64_t>(source->size()), &error);
    if (!zip_source) std::fclose(file);
  } else {
    const auto bytes = source->memory();
    zip_source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  }
  if (!zip_source) return zip_error(*source, fmt::format("libzip: {}", libzip_message(&error)));
  // ZIP_CHECKCONS: libzip compares every local header with its central directory entry too.
  archive->archive_ = zip_open_from_source(zip_source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (!archive->archive_) {
    zip_source_free(zip_source);
    return zip_error(*source, fmt::format("libzip: {}", libzip_message(&error)));
  }
  zip_error_fini(&error);

  // libzip and the audit must read the same archive.
  const zip_int64_t count = zip_get_num_entries(archive->archive_, 0);
  if (count < 0 || static_cast<uint64_t>(count) != entries.size()) {
    return zip_error(*source, fmt::format("libzip finds {} entries where the central directory lists {}", count,
                                          entries.size()));
  }
  for (ZipEntry& entry : entries) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive->archive_, entry.index, ZIP_FL_ENC_RAW, &stat) != 0 || !stat.name ||
        entry.name != stat.name || stat.size != entry.size || stat.comp_size != entry.compressed_size ||
        (stat.comp_method == ZIP_CM_STORE) != entry.stored) {
      return zip_error(*source, fmt::format("libzip reads entry '{}' differently from its central directory record",
                                            printable(entry.name)));
    }
  }
  archive->entries_ = std::move(entries);
  return archive;
}

ZipArchive::~ZipArchive() {
  if (archive_) zip_discard(archive_);
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  for (const ZipEntry& entry : entries_) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

Result<std::unique_ptr<ZipEntryReader>> ZipArchive::open_entry(const ZipEntry& entry, uint64_t offset,
                                                               uint64_t length) {
  uint64_t end = 0;
  if (add_overflows(offset, length, end) || end > entry.size) {
    return zip_error(*source_, fmt::format("{} bytes at offset {} are past the end of entry '{}' ({} bytes)", length,
                                           offset, printable(entry.name), entry.size));
  }
  zip_file_t* file = zip_fopen_index(archive_, entry.index, 0);
  if (!file) {
    return zip_error(*source_, fmt::format("cannot open entry '{}': {}", printable(entry.name),
                                           zip_strerror(archive_)));
  }
  std::unique_ptr<ZipEntryReader> reader(
      new ZipEntryReader(*this, entry, file, length, offset == 0 && length == entry.size));
  if (offset == 0) return reader;
  if (entry.stored) {
    if (zip_fseek(file, static_cast<zip_int64_t>(offset), SEEK_SET) != 0) {
      return zip_error(*source_, fmt::format("cannot seek in entry '{}': {}", printable(entry.name),
                                             zip_file_strerror(file)));
    }
    return reader;
  }
  // Deflated data cannot be sought: inflate and drop the bytes before `offset`.
  std::vector<std::byte> scratch(std::min<uint64_t>(offset, uint64_t{1} << 20));
  for (uint64_t skipped = 0; skipped < offset;) {
    const uint64_t want = std::min<uint64_t>(scratch.size(), offset - skipped);
    const zip_int64_t n = zip_fread(file, scratch.data(), want);
    if (n <= 0) {
      return zip_error(*source_, fmt::format("entry '{}' is shorter than it declares", printable(entry.name)));
    }
    skipped += static_cast<uint64_t>(n);
  }
  return reader;
}

Result<std::vector<std::byte>> ZipArchive::read_entry(const ZipEntry& entry, uint64_t limit) {
  if (entry.size > limit) {
    return zip_error(*source_, fmt::format("entry '{}' is {} bytes (at most {} are read)", printable(entry.name),
                                           entry.size, limit));
  }
  CONVBRIDGE_TRY(auto reader, open_entry(entry, 0, entry.size));
  std::vector<std::byte> bytes(static_cast<size_t>(entry.size));
  size_t filled = 0;
  while (filled < bytes.size()) {
    CONVBRIDGE_TRY(const size_t n, reader->read(std::span<std::byte>(bytes).subspan(filled)));
    if (n == 0) break;
    filled += n;
  }
  return bytes;
}

ZipEntryReader::~ZipEntryReader() { zip_fclose(file_); }

Result<size_t> ZipEntryReader::read(std::span<std::byte> out) {
  const uint64_t want = std::min<uint64_t>(out.size(), remaining_);
  if (want == 0) return size_t{0};
  uint64_t done = 0;
  while (done < want) {
    const zip_int64_t n = zip_fread(file_, out.data() + done, want - done);
    if (n <= 0) {
      return zip_error(*archive_.source_, fmt::format("entry '{}' ends early or cannot be read ({})",
                                                      printable(entry_.name), n < 0 ? zip_file_strerror(file_) : "end of data"));
    }
    done += static_cast<uint64_t>(n);
  }
  remaining_ -= done;
  if (remaining_ == 0 && whole_entry_) {
    // libzip checks the CRC when a read reaches the end of the entry; torch may write CRCs it never checks
    // (PyTorchFileWriter's set_crc32_options(False)), so a mismatch is a note.
    std::byte probe[1];
    if (zip_fread(file_, probe, 1) != 0) {
      archive_.notes().push_back(fmt::format("zip entry '{}': {} (the data is read as stored)", printable(entry_.name),
                                            zip_file_strerror(file_)));
    }
  }
  return static_cast<size_t>(done);
}

}  // namespace convbridge::io
