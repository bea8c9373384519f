// The reader process behind every libhdf5 read (src/io/child_process.hpp): a helper that crashes, hangs, exits,
// sends too much or allocates without end gives the parent an error naming the file, never a crash or a hang of
// its own; frames and the reply encoding round-trip and refuse short or oversized input.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/child_process.hpp"

namespace convbridge::io {
namespace {

using namespace std::chrono_literals;

std::span<const std::byte> as_bytes(const std::string& text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

std::string as_text(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

TEST(ChildProcess, EchoesFramesUntilTheParentCloses) {
  auto child = ChildProcess::start("echo.h5", [](int socket) {
    std::vector<std::byte> message;
    while (receive_frame(socket, 1 << 20, message)) send_frame(socket, message);
  });
  ASSERT_TRUE(child) << child.error().message;
  for (const std::string& text : std::vector<std::string>{"first", "", std::string(100000, 'x')}) {
    ASSERT_TRUE(child->send(as_bytes(text)));
    auto reply = child->receive(1 << 20, 10s);
    ASSERT_TRUE(reply) << reply.error().message;
    EXPECT_EQ(as_text(*reply), text);
  }
}

TEST(ChildProcess, ACrashIsAnErrorNamingTheFileAndTheSignal) {
  auto child = ChildProcess::start("crash.weights.h5", [](int) { ::raise(SIGSEGV); });
  ASSERT_TRUE(child);
  auto reply = child->receive(1024, 10s);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, ErrorCode::invalid_argument);
  EXPECT_TRUE(reply.error().message.starts_with("crash.weights.h5: libhdf5 failed on this file"))
      << reply.error().message;
  EXPECT_NE(reply.error().message.find("signal 11"), std::string::npos) << reply.error().message;
  // The helper is gone: later calls fail cleanly, sending to it raises no SIGPIPE.
  EXPECT_FALSE(child->send(as_bytes("again")));
  EXPECT_FALSE(child->receive(1024, 1s));
}

TEST(ChildProcess, AnExitWithoutAReplyIsAnError) {
  auto child = ChildProcess::start("exit.h5", [](int) { ::_exit(3); });
  ASSERT_TRUE(child);
  auto reply = child->receive(1024, 10s);
  ASSERT_FALSE(reply);
  EXPECT_NE(reply.error().message.find("exited with status 3"), std::string::npos) << reply.error().message;
}

TEST(ChildProcess, AHangIsStoppedAtTheTimeout) {
  auto child = ChildProcess::start("hang.h5", [](int) {
    for (;;) ::pause();
  });
  ASSERT_TRUE(child);
  const auto start = std::chrono::steady_clock::now();
  auto reply = child->receive(1024, 300ms);
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(reply);
  EXPECT_NE(reply.error().message.find("did not finish"), std::string::npos) << reply.error().message;
  EXPECT_LT(waited, 5s);  // bounded by the timeout, not by the helper
}

TEST(ChildProcess, AFrameLongerThanExpectedIsRefusedUnread) {
  auto child = ChildProcess::start("long.h5", [](int socket) {
    send_frame(socket, as_bytes(std::string(5000, 'y')));
    for (;;) ::pause();
  });
  ASSERT_TRUE(child);
  auto reply = child->receive(4096, 10s);
  ASSERT_FALSE(reply);
  EXPECT_NE(reply.error().message.find("5000 bytes, more than the 4096 expected"), std::string::npos)
      << reply.error().message;
}

TEST(ChildProcess, TheHelpersMemoryIsCapped) {
  if (!kHelperMemoryIsCapped) GTEST_SKIP() << "no RLIMIT_AS under AddressSanitizer";
  auto child = ChildProcess::start("memory.h5", [](int socket) {
    limit_helper_memory(uint64_t{64} << 20);
    // 16 GiB is far past what the helper maps now + 2 x 64 MiB + 1 GiB: the allocation must fail.
    void* big = std::malloc(size_t{16} << 30);
    send_frame(socket, as_bytes(big ? "allocated" : "refused"));
  });
  ASSERT_TRUE(child);
  auto reply = child->receive(64, 10s);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(as_text(*reply), "refused");
}

TEST(MessageReader, RoundTripsAndRefusesShortOrOversizedInput) {
  MessageWriter writer;
  writer.u8(7);
  writer.u64(uint64_t{1} << 40);
  writer.string("layers/conv2d/vars/0");
  const std::vector<std::byte> bytes = writer.bytes();
  MessageReader reader(bytes);
  uint8_t tag = 0;
  uint64_t number = 0;
  std::string text;
  ASSERT_TRUE(reader.u8(tag) && reader.u64(number) && reader.string(100, text));
  EXPECT_EQ(tag, 7);
  EXPECT_EQ(number, uint64_t{1} << 40);
  EXPECT_EQ(text, "layers/conv2d/vars/0");
  EXPECT_TRUE(reader.at_end());
  EXPECT_FALSE(reader.u8(tag));  // nothing past the end
  for (size_t cut = 0; cut < bytes.size(); ++cut) {  // every truncation fails somewhere, never reads past it
    MessageReader short_reader(std::span<const std::byte>(bytes).first(cut));
    EXPECT_FALSE(short_reader.u8(tag) && short_reader.u64(number) && short_reader.string(100, text)) << cut;
  }
  MessageReader limited(bytes);
  ASSERT_TRUE(limited.u8(tag) && limited.u64(number));
  EXPECT_FALSE(limited.string(5, text));  // a string over its bound
}

}  // namespace
}  // namespace convbridge::io
