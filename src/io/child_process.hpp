// A forked helper process that runs one untrusted-input job behind a socket, so that a library which can crash on
// malformed input (libhdf5 1.10.8, Debian 12's, segfaults and overflows the heap on some corrupt HDF5 files: found
// by fuzz_keras_weights) takes down only the helper. The parent sees a clear error naming the file instead of a
// crash, and bounds the helper's time (a timeout per reply, then SIGKILL) and memory (RLIMIT_AS, set by the helper
// on itself before each job; not under AddressSanitizer, whose shadow memory needs terabytes of address space).
//
// The two sides exchange frames: an 8-byte little-endian length, then that many bytes. Nothing crosses but bytes:
// the parent validates every reply as it would a file (the helper may be in any state when it answers).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "convbridge/result.hpp"

namespace convbridge::io {

class ChildProcess {
 public:
  // Forks a helper that calls serve(socket) and exits when it returns (or when the parent closes its end).
  // `label` names the file in every error. Nothing of the helper outlives this object: the destructor kills it.
  static Result<ChildProcess> start(std::string label, const std::function<void(int socket)>& serve);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  Status send(std::span<const std::byte> message);
  // The next frame, at most `max_bytes` long, within `timeout`; an error naming the file if the helper died (with
  // its signal), timed out (it is then killed) or sent a frame too long.
  Result<std::vector<std::byte>> receive(uint64_t max_bytes, std::chrono::milliseconds timeout);

 private:
  ChildProcess(std::string label, pid_t pid, int socket) : label_(std::move(label)), pid_(pid), socket_(socket) {}
  Error helper_failed(std::string_view what);
  void stop();

  std::string label_;
  pid_t pid_ = -1;
  int socket_ = -1;
};

// The helper's side of the frames, blocking; false when the parent has gone away.
bool send_frame(int socket, std::span<const std::byte> message);
bool send_frame(int socket, std::span<const std::byte> header, std::span<const std::byte> body);
bool receive_frame(int socket, uint64_t max_bytes, std::vector<std::byte>& message);

#if defined(__SANITIZE_ADDRESS__)
#define CONVBRIDGE_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONVBRIDGE_UNDER_ASAN 1
#endif
#endif
#if defined(CONVBRIDGE_UNDER_ASAN)
inline constexpr bool kHelperMemoryIsCapped = false;  // ASan reserves terabytes of shadow address space
#else
inline constexpr bool kHelperMemoryIsCapped = true;
#endif

// In the helper, before a job that may allocate `job_bytes`: caps the address space at what the helper maps now
// plus twice that plus 1 GiB, so a file that makes the library allocate without end fails that allocation.
void limit_helper_memory(uint64_t job_bytes);

// A small binary encoding for the replies (little-endian integers, length-prefixed strings) and its checked
// decoder: every read is bounds-checked and a short or malformed message is an error, never a read past the end.
class MessageWriter {
 public:
  void u8(uint8_t value) { bytes_.push_back(static_cast<std::byte>(value)); }
  void u64(uint64_t value);
  void string(std::string_view text);
  std::vector<std::byte>& bytes() { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

class MessageReader {
 public:
  explicit MessageReader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  bool u8(uint8_t& value);
  bool u64(uint64_t& value);
  bool string(uint64_t max_size, std::string& text);
  bool at_end() const { return offset_ == bytes_.size(); }

 private:
  std::span<const std::byte> bytes_;
  size_t offset_ = 0;
};

}  // namespace convbridge::io
