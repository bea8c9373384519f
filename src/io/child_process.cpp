// See child_process.hpp. POSIX only: fork, socketpair, poll, setrlimit, waitpid.
#include "io/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "io/io_support.hpp"

namespace convbridge::io {
namespace {

bool write_all(int socket, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a helper that died makes this fail with EPIPE instead of killing the parent with SIGPIPE.
    const ssize_t written = ::send(socket, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    bytes = bytes.subspan(static_cast<size_t>(written));
  }
  return true;
}

// Reads exactly bytes.size() bytes; in the parent a deadline bounds the wait (the helper may hang in the library).
enum class ReadResult { ok, closed, timed_out, failed };
ReadResult read_all(int socket, std::span<std::byte> bytes, std::chrono::steady_clock::time_point deadline,
                    bool with_deadline) {
  while (!bytes.empty()) {
    if (with_deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return ReadResult::timed_out;
      pollfd ready{socket, POLLIN, 0};
      const int polled = ::poll(&ready, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
      if (polled < 0 && errno == EINTR) continue;
      if (polled < 0) return ReadResult::failed;
      if (polled == 0) return ReadResult::timed_out;
    }
    const ssize_t got = ::recv(socket, bytes.data(), bytes.size(), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got == 0) return ReadResult::closed;
    if (got < 0) return ReadResult::failed;
    bytes = bytes.subspan(static_cast<size_t>(got));
  }
  return ReadResult::ok;
}

// Frame lengths and u64 fields: 8 bytes, little-endian (io_support's load_u64/store_u64).
std::array<std::byte, 8> length_bytes(uint64_t length) {
  std::array<std::byte, 8> out{};
  store_u64(out.data(), length);
  return out;
}

// What the helper maps now (/proc/self/statm's first field, in pages); 0 when unknown. Plain system calls: the
// helper is a fork of a process that may have had other threads, so it avoids anything that takes library locks.
uint64_t mapped_bytes() {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128] = {};
  const ssize_t got = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  uint64_t pages = 0;
  for (ssize_t i = 0; i < got && text[i] >= '0' && text[i] <= '9'; ++i) pages = pages * 10 + static_cast<uint64_t>(text[i] - '0');
  const long page = ::sysconf(_SC_PAGESIZE);
  return pages * static_cast<uint64_t>(page > 0 ? page : 4096);
}

}  // namespace

Result<ChildProcess> ChildProcess::start(std::string label, const std::function<void(int socket)>& serve) {
  int sockets[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    return file_error(label, ErrorCode::unsupported,
                      fmt::format("cannot create the socket for the HDF5 reader process: {}", std::strerror(errno)));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::close(sockets[0]);
    ::close(sockets[1]);
    return file_error(label, ErrorCode::unsupported,
                      fmt::format("cannot start the HDF5 reader process: {}", std::strerror(error)));
  }
  if (pid == 0) {
    // The helper: no core dumps of a crash, no files written (it only reads), then the job. _exit skips atexit
    // handlers and static destructors, which belong to the parent (and LeakSanitizer's exit check).
    ::close(sockets[0]);
    rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);
    ::setrlimit(RLIMIT_FSIZE, &none);
    // A crash ends the helper at once: the handlers it inherited (Python's faulthandler, a sanitizer's) would
    // print the parent's stacks as if the parent had crashed.
    for (int signal : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(signal, SIG_DFL);
    serve(sockets[1]);
    ::_exit(0);
  }
  ::close(sockets[1]);
  return ChildProcess(std::move(label), pid, sockets[0]);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : label_(std::move(other.label_)), pid_(other.pid_), socket_(other.socket_) {
  other.pid_ = -1;
  other.socket_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    stop();
    label_ = std::move(other.label_);
    pid_ = other.pid_;
    socket_ = other.socket_;
    other.pid_ = -1;
    other.socket_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() { stop(); }

// The helper holds no state worth keeping: it is killed, then reaped so no zombie is left.
void ChildProcess::stop() {
  if (socket_ >= 0) ::close(socket_);
  socket_ = -1;
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

// Why the helper stopped answering: reaped here, so the message can say which signal ended it.
Error ChildProcess::helper_failed(std::string_view what) {
  std::string how = "it stopped answering";
  if (pid_ > 0) {
    int status = 0;
    pid_t reaped = -1;
    for (int tries = 0; tries < 200; ++tries) {  // up to 2 s for the helper's exit to be reported
      reaped = ::waitpid(pid_, &status, WNOHANG);
      if (reaped != 0) break;
      ::usleep(10000);
    }
    if (reaped == pid_) {
      pid_ = -1;
      if (WIFSIGNALED(status)) {
        const int signal = WTERMSIG(status);
        how = fmt::format("it was killed by signal {} ({})", signal, ::strsignal(signal));
      } else if (WIFEXITED(status)) {
        how = fmt::format("it exited with status {}", WEXITSTATUS(status));
      }
    }
  }
  stop();
  return file_error(label_, ErrorCode::invalid_argument,
                    fmt::format("libhdf5 failed on this file in convbridge's reader process ({}, {}): the file is "
                                "malformed or hostile; nothing from it was used",
                                what, how));
}

Status ChildProcess::send(std::span<const std::byte> message) {
  if (socket_ < 0) return file_error(label_, ErrorCode::invalid_argument, "the HDF5 reader process has stopped");
  if (!send_frame(socket_, message)) return helper_failed("while sending it a request");
  return Ok{};
}

Result<std::vector<std::byte>> ChildProcess::receive(uint64_t max_bytes, std::chrono::milliseconds timeout) {
  if (socket_ < 0) return file_error(label_, ErrorCode::invalid_argument, "the HDF5 reader process has stopped");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<std::byte, 8> header{};
  auto got = read_all(socket_, header, deadline, true);
  uint64_t length = got == ReadResult::ok ? load_u64(header.data()) : 0;
  if (got == ReadResult::ok && length > max_bytes) {
    stop();
    return file_error(label_, ErrorCode::invalid_argument,
                      fmt::format("the HDF5 reader process sent a reply of {} bytes, more than the {} expected",
                                  length, max_bytes));
  }
  std::vector<std::byte> message;
  if (got == ReadResult::ok) {
    message.resize(static_cast<size_t>(length));
    got = read_all(socket_, message, deadline, true);
  }
  if (got == ReadResult::timed_out) {
    stop();
    return file_error(label_, ErrorCode::invalid_argument,
                      fmt::format("libhdf5 did not finish with this file within {} s, so it was stopped: the file "
                                  "is malformed or hostile",
                                  timeout.count() / 1000));
  }
  if (got != ReadResult::ok) return helper_failed("while it was reading");
  return message;
}

bool send_frame(int socket, std::span<const std::byte> message) { return send_frame(socket, message, {}); }

bool send_frame(int socket, std::span<const std::byte> header, std::span<const std::byte> body) {
  const auto length = length_bytes(static_cast<uint64_t>(header.size()) + body.size());
  return write_all(socket, length) && write_all(socket, header) && write_all(socket, body);
}

bool receive_frame(int socket, uint64_t max_bytes, std::vector<std::byte>& message) {
  std::array<std::byte, 8> header{};
  const auto never = std::chrono::steady_clock::time_point::max();
  if (read_all(socket, header, never, false) != ReadResult::ok) return false;
  const uint64_t length = load_u64(header.data());
  if (length > max_bytes) return false;
  message.resize(static_cast<size_t>(length));
  return read_all(socket, message, never, false) == ReadResult::ok;
}

void limit_helper_memory(uint64_t job_bytes) {
  if (!kHelperMemoryIsCapped) {
    (void)job_bytes;
    return;
  }
  constexpr uint64_t kSlack = uint64_t{1} << 30;
  uint64_t limit = 0;
  if (mul_overflows(job_bytes, uint64_t{2}, limit) || add_overflows(limit, kSlack, limit) ||
      add_overflows(limit, mapped_bytes(), limit)) {
    limit = RLIM_INFINITY;
  }
  rlimit current{};
  if (::getrlimit(RLIMIT_AS, &current) != 0) return;
  // Only the soft limit, so the next job can raise it again; never above a hard limit set from outside.
  rlimit wanted{static_cast<rlim_t>(limit), current.rlim_max};
  if (current.rlim_max != RLIM_INFINITY && wanted.rlim_cur > current.rlim_max) wanted.rlim_cur = current.rlim_max;
  ::setrlimit(RLIMIT_AS, &wanted);
}

void MessageWriter::u64(uint64_t value) {
  const auto bytes = length_bytes(value);
  bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
}

void MessageWriter::string(std::string_view text) {
  u64(text.size());
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  bytes_.insert(bytes_.end(), data, data + text.size());
}

bool MessageReader::u8(uint8_t& value) {
  if (offset_ >= bytes_.size()) return false;
  value = static_cast<uint8_t>(bytes_[offset_++]);
  return true;
}

bool MessageReader::u64(uint64_t& value) {
  if (bytes_.size() - offset_ < 8) return false;
  value = load_u64(bytes_.data() + offset_);
  offset_ += 8;
  return true;
}

bool MessageReader::string(uint64_t max_size, std::string& text) {
  uint64_t size = 0;
  if (!u64(size) || size > max_size || size > bytes_.size() - offset_) return false;
  text.assign(reinterpret_cast<const char*>(bytes_.data() + offset_), static_cast<size_t>(size));
  offset_ += static_cast<size_t>(size);
  return true;
}

}  // namespace convbridge::io
