// The weight-file readers and writers on the catalogue tests/hostile/make_hostile_files.py builds (ctest runs it
// first, into CONVBRIDGE_WEIGHT_FILES): every hostile file is refused, from a path and from memory, with its code
// and a one-line message that names the file and contains the catalogue's fragment, and nothing it asks for runs
// (the marker file never appears); every valid file yields exactly its tensors, bit for bit, and survives a round
// trip through both writers. Writers leave nothing behind when they fail.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "convbridge/io/weights.hpp"

#ifndef CONVBRIDGE_WEIGHT_FILES
#error "CONVBRIDGE_WEIGHT_FILES must name the directory make_hostile_files.py writes"
#endif

namespace convbridge::io {
namespace {

namespace fs = std::filesystem;

const nlohmann::json& catalogue() {
  static const nlohmann::json parsed = [] {
    std::ifstream file(fs::path(CONVBRIDGE_WEIGHT_FILES) / "catalogue.json");
    if (!file) throw std::runtime_error("no catalogue.json: run tests/hostile/make_hostile_files.py first");
    return nlohmann::json::parse(file);
  }();
  return parsed;
}

std::string path_of(const nlohmann::json& entry) {
  return (fs::path(CONVBRIDGE_WEIGHT_FILES) / entry["file"].get<std::string>()).string();
}

std::vector<std::byte> file_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

std::string code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::syntax: return "syntax";
    case ErrorCode::unknown_argument: return "unknown_argument";
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::input_shape: return "input_shape";
    case ErrorCode::overflow: return "overflow";
    case ErrorCode::unsupported: return "unsupported";
  }
  return "?";
}

std::string hex(const std::vector<std::byte>& bytes) {
  std::string out;
  for (std::byte b : bytes) out += fmt::format("{:02x}", std::to_integer<unsigned>(b));
  return out;
}

// A fresh, empty directory for outputs.
fs::path scratch_directory(const std::string& name) {
  const fs::path directory = fs::temp_directory_path() / ("convbridge-weights-test-" + name + "-" +
                                                          std::to_string(::getpid()));
  fs::remove_all(directory);
  fs::create_directories(directory);
  return directory;
}

size_t entries_in(const fs::path& directory) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(directory), fs::directory_iterator()));
}

void expect_refused(const nlohmann::json& entry, const Error& error, const std::string& label) {
  const std::string& message = error.message;
  EXPECT_EQ(code_name(error.code), entry["code"].get<std::string>()) << entry["name"] << ": " << message;
  EXPECT_NE(message.find(entry["fragment"].get<std::string>()), std::string::npos)
      << entry["name"] << ": the message lacks '" << entry["fragment"].get<std::string>() << "': " << message;
  EXPECT_TRUE(message.starts_with(label + ": ")) << entry["name"] << ": the message does not name the file: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << entry["name"] << ": more than one line: " << message;
  EXPECT_LE(message.size(), 600u) << entry["name"] << ": " << message;
}

TEST(WeightFileCatalogue, EveryHostileFileIsRefusedAndNothingRuns) {
  const fs::path output = scratch_directory("hostile");
  ASSERT_GE(catalogue()["hostile"].size(), 90u);
  for (const nlohmann::json& entry : catalogue()["hostile"]) {
    SCOPED_TRACE(entry["name"].get<std::string>());
    const std::string path = path_of(entry);
    const auto start = std::chrono::steady_clock::now();
    auto opened = open_weight_file(path);
    if (opened) {
      // Structure can only be refused at open time; data faults would show when writing. Either way: refused,
      // and no output file.
      const Status written = write_safetensors(**opened, (output / "out.safetensors").string());
      ASSERT_FALSE(written) << entry["name"] << " was accepted: " << (*opened)->description();
      expect_refused(entry, written.error(), path);
    } else {
      expect_refused(entry, opened.error(), path);
    }
    // The same bytes from memory (the fuzz targets' path) give the same verdict.
    const auto bytes = file_bytes(path);
    auto from_memory = open_weight_bytes(bytes, "memory");
    ASSERT_FALSE(from_memory) << entry["name"] << " was accepted from memory";
    expect_refused(entry, from_memory.error(), "memory");
    EXPECT_EQ(entries_in(output), 0u) << "an output or temporary file was left behind";
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30.0);
  }
  EXPECT_FALSE(fs::exists(catalogue()["marker"].get<std::string>())) << "a hostile file executed its command";
  fs::remove_all(output);
}

void expect_tensors(WeightFile& file, const nlohmann::json& expected, const std::string& context) {
  ASSERT_EQ(file.tensors().size(), expected.size()) << context;
  for (const nlohmann::json& want : expected) {
    const std::string name = want["name"];
    const auto found = std::find_if(file.tensors().begin(), file.tensors().end(),
                                    [&](const TensorInfo& info) { return info.name == name; });
    ASSERT_NE(found, file.tensors().end()) << context << ": no tensor " << name;
    EXPECT_EQ(dtype_info(found->dtype).name, want["dtype"].get<std::string>()) << context << ": " << name;
    EXPECT_EQ(found->shape, want["shape"].get<std::vector<int64_t>>()) << context << ": " << name;
    auto bytes = file.read_tensor(static_cast<size_t>(found - file.tensors().begin()));
    ASSERT_TRUE(bytes) << context << ": " << bytes.error().message;
    EXPECT_EQ(hex(*bytes), want["hex"].get<std::string>()) << context << ": " << name;
  }
}

TEST(WeightFileCatalogue, ValidFilesReadBitForBitAndRoundTrip) {
  const fs::path output = scratch_directory("valid");
  ASSERT_GE(catalogue()["valid"].size(), 8u);
  for (const nlohmann::json& entry : catalogue()["valid"]) {
    const std::string name = entry["name"];
    SCOPED_TRACE(name);
    auto opened = open_weight_file(path_of(entry));
    ASSERT_TRUE(opened) << opened.error().message;
    expect_tensors(**opened, entry["tensors"], name);
    const auto bytes = file_bytes(path_of(entry));
    auto from_memory = open_weight_bytes(bytes, "memory");
    ASSERT_TRUE(from_memory) << from_memory.error().message;
    expect_tensors(**from_memory, entry["tensors"], name + " (memory)");

    const std::string safetensors_path = (output / (name + ".safetensors")).string();
    ASSERT_TRUE(write_safetensors(**opened, safetensors_path));
    auto reread = open_weight_file(safetensors_path);
    ASSERT_TRUE(reread) << reread.error().message;
    expect_tensors(**reread, entry["tensors"], name + " -> safetensors");

    const bool numpy_dtypes = std::all_of((*opened)->tensors().begin(), (*opened)->tensors().end(),
                                          [](const TensorInfo& info) { return !dtype_info(info.dtype).numpy_descr.empty(); });
    const std::string npz_path = (output / (name + ".npz")).string();
    const Status npz = write_npz(**opened, npz_path);
    if (!numpy_dtypes) {
      ASSERT_FALSE(npz);
      EXPECT_NE(npz.error().message.find("numpy has no dtype"), std::string::npos) << npz.error().message;
      EXPECT_FALSE(fs::exists(npz_path));
      continue;
    }
    ASSERT_TRUE(npz) << npz.error().message;
    auto reread_npz = open_weight_file(npz_path);
    ASSERT_TRUE(reread_npz) << reread_npz.error().message;
    expect_tensors(**reread_npz, entry["tensors"], name + " -> npz");
  }
  // Only the outputs themselves: no temporary file survived a successful write.
  for (const auto& item : fs::directory_iterator(output)) {
    EXPECT_FALSE(item.path().filename().string().starts_with(".")) << item.path();
  }
  fs::remove_all(output);
}

TEST(WeightFilePickle, KnownAndInertGlobalsAreReported) {
  const nlohmann::json& entries = catalogue()["valid"];
  const auto entry = std::find_if(entries.begin(), entries.end(),
                                  [](const nlohmann::json& e) { return e["name"] == "torch_training_checkpoint"; });
  ASSERT_NE(entry, entries.end());
  auto opened = open_weight_file(path_of(*entry));
  ASSERT_TRUE(opened) << opened.error().message;
  bool saw_namespace = false, saw_rebuild = false;
  for (const PickleGlobal& global : (*opened)->globals()) {
    if (global.name == "argparse.Namespace") {
      saw_namespace = true;
      EXPECT_FALSE(global.known);
      EXPECT_EQ(global.refused_calls, 1);
      EXPECT_EQ(global.meaning, "kept inert");
    }
    if (global.name == "torch._utils._rebuild_tensor_v2") {
      saw_rebuild = true;
      EXPECT_TRUE(global.known);
      EXPECT_EQ(global.refused_calls, 0);
    }
  }
  EXPECT_TRUE(saw_namespace);
  EXPECT_TRUE(saw_rebuild);
}

// A weight file whose second tensor fails to read: the writers must then leave no file and no temporary file.
class FailingWeights final : public WeightFile {
 public:
  FailingWeights() {
    label_ = "failing";
    tensors_.push_back(TensorInfo{"ok", DType::float32, {2}, 8});
    tensors_.push_back(TensorInfo{"broken", DType::float32, {2}, 8});
  }
  Result<std::unique_ptr<TensorReader>> open_tensor(size_t index) override {
    if (index == 1) return make_error(ErrorCode::invalid_argument, "failing: tensor 'broken' cannot be read");
    struct Reader final : TensorReader {
      bool done = false;
      Result<size_t> read(std::span<std::byte> out) override {
        if (done) return size_t{0};
        done = true;
        std::fill_n(out.begin(), 8, std::byte{1});
        return size_t{8};
      }
    };
    return std::unique_ptr<TensorReader>(new Reader());
  }
};

TEST(WeightFileWriters, AFailureLeavesNothingBehind) {
  const fs::path output = scratch_directory("atomic");
  FailingWeights weights;
  // An existing file at the destination survives a failed write unchanged.
  const fs::path existing = output / "existing.safetensors";
  std::ofstream(existing) << "previous";
  for (const fs::path& path : {output / "new.safetensors", output / "new.npz", existing}) {
    const Status written = path.extension() == ".npz" ? write_npz(weights, path.string())
                                                      : write_safetensors(weights, path.string());
    ASSERT_FALSE(written) << path;
    EXPECT_NE(written.error().message.find("broken"), std::string::npos) << written.error().message;
  }
  EXPECT_EQ(entries_in(output), 1u) << "only the existing file is left";
  std::ifstream kept(existing);
  std::string text;
  kept >> text;
  EXPECT_EQ(text, "previous");
  EXPECT_FALSE(write_safetensors(weights, (output / "no" / "such" / "dir.safetensors").string()));
  fs::remove_all(output);
}

}  // namespace
}  // namespace convbridge::io
