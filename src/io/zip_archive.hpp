// Zip archives read through libzip, after an audit of their layout that libzip 1.7 does not make: every entry's
// local header and data lie before the central directory, no two entries overlap, nothing follows the end record,
// and a deflated entry does not declare more than deflate can produce. libzip's view (names, sizes) must agree
// with the audit entry by entry, so the two parsers cannot be played against each other.
// Sources: PKWARE APPNOTE.TXT 6.3.10, sections 4.3.7 (local header), 4.3.12 (central header), 4.3.14-4.3.16 (ZIP64
// and end records), 4.5.3 (ZIP64 extra field); zlib's technical details (deflate's limit is 1032:1).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/io_support.hpp"

struct zip;
struct zip_file;

namespace convbridge::io {

struct ZipEntry {
  std::string name;  // the name's bytes as stored
  uint64_t index = 0;
  uint64_t size = 0;             // uncompressed
  uint64_t compressed_size = 0;
  bool stored = true;            // method 0; otherwise deflate (method 8), the only other one accepted
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;      // of the (compressed) data in the archive
};

class ZipEntryReader;

class ZipArchive {
 public:
  // Whether the bytes start like a zip (a local header, or the end record of an empty archive).
  static bool looks_like_zip(const ByteSource& source);
  static Result<std::shared_ptr<ZipArchive>> open(std::shared_ptr<ByteSource> source);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  const std::string& label() const { return source_->label(); }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;
  // Bytes [offset, offset + length) of the entry's uncompressed data, read sequentially.
  Result<std::unique_ptr<ZipEntryReader>> open_entry(const ZipEntry& entry, uint64_t offset, uint64_t length);
  // The whole entry, refused when it is larger than `limit` bytes.
  Result<std::vector<std::byte>> read_entry(const ZipEntry& entry, uint64_t limit);
  // Where CRC mismatches are noted as entries are read (torch may write data whose CRC it never checks: a note,
  // not an error): the archive's own list, or the weight file's.
  std::vector<std::string>& notes() { return *note_sink_; }
  void send_notes_to(std::vector<std::string>* sink) { note_sink_ = sink; }

 private:
  explicit ZipArchive(std::shared_ptr<ByteSource> source) : source_(std::move(source)) {}
  std::shared_ptr<ByteSource> source_;
  zip* archive_ = nullptr;
  std::vector<ZipEntry> entries_;
  std::vector<std::string> notes_;
  std::vector<std::string>* note_sink_ = &notes_;
  friend class ZipEntryReader;
};

class ZipEntryReader {
 public:
  ~ZipEntryReader();
  ZipEntryReader(const ZipEntryReader&) = delete;
  ZipEntryReader& operator=(const ZipEntryReader&) = delete;
  // Fills a prefix of `out`; 0 once the requested range is done. A short entry is an error.
  Result<size_t> read(std::span<std::byte> out);
  uint64_t remaining() const { return remaining_; }

 private:
  ZipEntryReader(ZipArchive& archive, const ZipEntry& entry, zip_file* file, uint64_t length, bool whole_entry)
      : archive_(archive), entry_(entry), file_(file), remaining_(length), whole_entry_(whole_entry) {}
  ZipArchive& archive_;
  const ZipEntry& entry_;
  zip_file* file_;
  uint64_t remaining_;
  bool whole_entry_;  // reading the entry from its start to its end: libzip can then check the CRC
  friend class ZipArchive;
};

}  // namespace convbridge::io
