// The Keras .weights.h5 reader and writer on small HDF5 files built here with libhdf5's C API: the Keras layout
// (numeric vars order, empty groups, dtypes, big-endian data), every refusal the reader makes (links, external and
// virtual data, filters, non-numeric types, sizes, nesting, object counts, truncated and fake files), from a path
// and from memory, and the writer's round trip and its leaving nothing behind on failure.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "convbridge/io/keras_weights.hpp"
#include "convbridge/io/weights.hpp"

namespace convbridge::io {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const fs::path directory = fs::temp_directory_path() / ("convbridge-keras-test-" + std::to_string(::getpid()));
  fs::create_directories(directory);
  return directory / name;
}

std::vector<std::byte> slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

// Builds an HDF5 file at `name` with `build(file)` and returns its path.
std::string make_h5(const std::string& name, const std::function<void(hid_t)>& build) {
  const std::string path = scratch(name).string();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  EXPECT_GE(file, 0);
  build(file);
  H5Fclose(file);
  return path;
}

void add_dataset(hid_t where, const char* name, hid_t type, std::vector<hsize_t> dims, const void* data,
                 hid_t dcpl = H5P_DEFAULT, hid_t memory_type = H5I_INVALID_HID) {
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t dataset = H5Dcreate2(where, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(dataset, 0) << name;
  if (data) H5Dwrite(dataset, memory_type >= 0 ? memory_type : type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(dataset);
  H5Sclose(space);
}

void add_group(hid_t where, const char* name) { H5Gclose(H5Gcreate2(where, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)); }

// A dataset creation property list with chunks of `chunk` (the caller closes it).
hid_t chunked(std::vector<hsize_t> chunk) {
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
  return dcpl;
}

// A refusal from a path and from memory, with the fragment in a message that starts with the label.
void expect_refused(const std::string& path, const std::string& fragment) {
  const auto from_path = open_weight_file(path);
  ASSERT_FALSE(from_path) << path << " was accepted";
  EXPECT_EQ(from_path.error().message.rfind(path + ": ", 0), 0u) << from_path.error().message;
  EXPECT_NE(from_path.error().message.find(fragment), std::string::npos) << from_path.error().message;
  const std::vector<std::byte> bytes = slurp(path);
  const auto from_memory = open_weight_bytes(bytes, "image");
  ASSERT_FALSE(from_memory) << path << " was accepted from memory";
  EXPECT_NE(from_memory.error().message.find(fragment), std::string::npos) << from_memory.error().message;
}

std::string keras_like() {
  return make_h5("keras_like.weights.h5", [](hid_t file) {
    add_group(file, "layers");
    add_group(file, "layers/conv2d");
    add_group(file, "layers/conv2d/vars");
    add_group(file, "layers/re_lu");
    add_group(file, "layers/re_lu/vars");
    add_group(file, "vars");
    const hid_t vars = H5Gopen2(file, "layers/conv2d/vars", H5P_DEFAULT);
    for (int i = 0; i < 12; ++i) {
      std::vector<float> values(static_cast<size_t>(i + 1));
      for (size_t j = 0; j < values.size(); ++j) values[j] = static_cast<float>(i * 100 + static_cast<int>(j));
      add_dataset(vars, std::to_string(i).c_str(), H5T_IEEE_F32LE, {values.size()}, values.data());
    }
    H5Gclose(vars);
  });
}

TEST(KerasWeights, ReadsTheLayoutInKerasOrder) {
  const auto opened = open_weight_file(keras_like());
  ASSERT_TRUE(opened) << opened.error().message;
  const auto* file = dynamic_cast<const KerasWeightFile*>(opened->get());
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->format(), WeightFormat::keras_h5);
  EXPECT_EQ(file->groups(), (std::vector<std::string>{"layers", "layers/conv2d", "layers/conv2d/vars", "layers/re_lu",
                                                      "layers/re_lu/vars", "vars"}));
  ASSERT_EQ(file->tensors().size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(file->tensors()[i].name, "layers.conv2d.vars." + std::to_string(i));  // vars/10 after vars/9
    EXPECT_EQ(file->tensors()[i].shape, std::vector<int64_t>{static_cast<int64_t>(i + 1)});
  }
  auto data = (*opened)->read_tensor(10);
  ASSERT_TRUE(data);
  float first = 0;
  std::memcpy(&first, data->data(), 4);
  EXPECT_EQ(first, 1000.0f);
  EXPECT_TRUE(file->model_config().empty());
}

TEST(KerasWeights, BigEndianBoolFloat16AndIntegers) {
  const auto path = make_h5("types.weights.h5", [](hid_t file) {
    const float big[2] = {1.5f, -2.0f};
    add_dataset(file, "big", H5T_IEEE_F32BE, {2}, big, H5P_DEFAULT, H5T_NATIVE_FLOAT);  // stored big-endian
    const hid_t boolean = H5Tenum_create(H5T_STD_I8LE);
    signed char no = 0, yes = 1;
    H5Tenum_insert(boolean, "FALSE", &no);
    H5Tenum_insert(boolean, "TRUE", &yes);
    const signed char flags[3] = {1, 0, 1};
    add_dataset(file, "flag", boolean, {3}, flags);
    H5Tclose(boolean);
    const hid_t half = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(half, 15, 10, 5, 0, 10);
    H5Tset_size(half, 2);
    H5Tset_ebias(half, 15);
    const uint16_t halves[2] = {0x3c00, 0xc000};
    const hid_t half_memory = H5Tcopy(half);
    const hid_t space = H5Screate_simple(1, std::vector<hsize_t>{2}.data(), nullptr);
    const hid_t dataset = H5Dcreate2(file, "half", half, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(dataset, half_memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, halves);
    H5Dclose(dataset);
    H5Sclose(space);
    H5Tclose(half_memory);
    H5Tclose(half);
    const int64_t longs[1] = {-7};
    add_dataset(file, "long", H5T_STD_I64BE, {1}, longs, H5P_DEFAULT, H5T_NATIVE_INT64);
  });
  const auto opened = open_weight_file(path);
  ASSERT_TRUE(opened) << opened.error().message;
  auto& file = **opened;
  ASSERT_EQ(file.tensors().size(), 4u);
  EXPECT_EQ(file.tensors()[0].name, "big");
  EXPECT_EQ(file.tensors()[0].dtype, DType::float32);
  EXPECT_EQ(file.tensors()[1].dtype, DType::boolean);
  EXPECT_EQ(file.tensors()[2].dtype, DType::float16);
  EXPECT_EQ(file.tensors()[3].dtype, DType::int64);
  auto big = file.read_tensor(0);
  ASSERT_TRUE(big);
  std::vector<std::byte> expected_big(8);
  const float big_values[2] = {1.5f, -2.0f};
  std::memcpy(expected_big.data(), big_values, 8);
  EXPECT_EQ(*big, expected_big);
  auto flags = file.read_tensor(1);
  ASSERT_TRUE(flags);
  EXPECT_EQ(*flags, (std::vector<std::byte>{std::byte{1}, std::byte{0}, std::byte{1}}));
  auto halves = file.read_tensor(2);
  ASSERT_TRUE(halves);
  EXPECT_EQ(*halves, (std::vector<std::byte>{std::byte{0x00}, std::byte{0x3c}, std::byte{0x00}, std::byte{0xc0}}));
  auto longs = file.read_tensor(3);
  ASSERT_TRUE(longs);
  int64_t value = 0;
  std::memcpy(&value, longs->data(), 8);
  EXPECT_EQ(value, -7);
}

// Every read goes through the reader process by default; the in-process path (the fuzz target's) must list and
// read exactly the same, from a path and from memory.
TEST(KerasWeights, TheReaderProcessReadsWhatThisProcessReads) {
  const std::string big_endian = make_h5("agree.weights.h5", [](hid_t file) {
    const double values[3] = {1.0, -2.5, 1e300};
    add_dataset(file, "big", H5T_IEEE_F64BE, {3}, values, H5P_DEFAULT, H5T_NATIVE_DOUBLE);
  });
  for (const std::string& path : {keras_like(), big_endian}) {
    auto isolated = open_weight_file(path);
    set_hdf5_isolation(Hdf5Isolation::in_process);
    auto local = open_weight_file(path);
    const std::vector<std::byte> bytes = slurp(path);
    auto local_memory = open_weight_bytes(bytes, "image");
    set_hdf5_isolation(Hdf5Isolation::reader_process);
    auto isolated_memory = open_weight_bytes(bytes, "image");
    ASSERT_TRUE(isolated && local && local_memory && isolated_memory) << path;
    for (auto [one, other] : {std::pair{isolated->get(), local->get()}, std::pair{isolated_memory->get(), local_memory->get()}}) {
      const auto& a = dynamic_cast<const KerasWeightFile&>(*one);
      const auto& b = dynamic_cast<const KerasWeightFile&>(*other);
      EXPECT_EQ(a.groups(), b.groups());
      EXPECT_EQ(a.dataset_paths(), b.dataset_paths());
      ASSERT_EQ(a.tensors().size(), b.tensors().size());
      for (size_t i = 0; i < a.tensors().size(); ++i) {
        EXPECT_EQ(a.tensors()[i].shape, b.tensors()[i].shape);
        EXPECT_EQ(a.tensors()[i].dtype, b.tensors()[i].dtype);
        auto x = one->read_tensor(i);
        auto y = other->read_tensor(i);
        ASSERT_TRUE(x && y);
        EXPECT_EQ(*x, *y) << a.tensors()[i].name;
      }
    }
  }
}

// Files on which Debian 12's libhdf5 1.10.8 itself crashes (found by fuzz_keras_weights; tests/hostile/hdf5/
// README.md says which crash each one is). In the reader process each is an error naming the file, from a path
// and from memory; this process survives.
TEST(KerasWeights, ALibhdf5CrashIsAnErrorNamingTheFile) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(CONVBRIDGE_HOSTILE_HDF5)) {
    if (entry.path().extension() != ".h5" && entry.path().extension() != ".keras") continue;
    ++files;
    const std::string path = entry.path().string();
    const auto from_path = open_weight_file(path);
    ASSERT_FALSE(from_path) << path << " was accepted";
    EXPECT_EQ(from_path.error().message.rfind(path + ": ", 0), 0u) << from_path.error().message;
    const auto from_memory = open_weight_bytes(slurp(path), "image.weights.h5");
    ASSERT_FALSE(from_memory) << path << " was accepted from memory";
    EXPECT_EQ(from_memory.error().message.rfind("image.weights.h5: ", 0), 0u) << from_memory.error().message;
  }
  EXPECT_GE(files, 1);
}

TEST(KerasWeights, RefusesSoftExternalAndUserDefinedLinks) {
  const float one = 1.0f;
  expect_refused(make_h5("soft.weights.h5",
                         [&](hid_t file) {
                           add_dataset(file, "real", H5T_IEEE_F32LE, {1}, &one);
                           H5Lcreate_soft("/real", file, "alias", H5P_DEFAULT, H5P_DEFAULT);
                         }),
                 "is a soft link");
  expect_refused(make_h5("external.weights.h5",
                         [](hid_t file) {
                           H5Lcreate_external("/etc/passwd", "/x", file, "elsewhere", H5P_DEFAULT, H5P_DEFAULT);
                         }),
                 "is an external link");
  expect_refused(make_h5("user_defined.weights.h5",
                         [](hid_t file) {
                           H5L_class_t link_class{};
                           link_class.version = H5L_LINK_CLASS_T_VERS;
                           link_class.id = static_cast<H5L_type_t>(200);
                           link_class.comment = "test";
                           // libhdf5 registers no class without a traversal callback; this one resolves nothing.
                           link_class.trav_func = [](const char*, hid_t, const void*, size_t, hid_t, hid_t) -> hid_t {
                             return H5I_INVALID_HID;
                           };
                           H5Lregister(&link_class);
                           H5Lcreate_ud(file, "custom", static_cast<H5L_type_t>(200), "x", 1, H5P_DEFAULT, H5P_DEFAULT);
                         }),
                 "is a user-defined link");
}

TEST(KerasWeights, RefusesExternalAndVirtualDatasets) {
  expect_refused(make_h5("external_data.weights.h5",
                         [](hid_t file) {
                           const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
                           H5Pset_external(dcpl, "/etc/hostname", 0, 16);
                           add_dataset(file, "x", H5T_IEEE_F32LE, {4}, nullptr, dcpl);
                           H5Pclose(dcpl);
                         }),
                 "external files");
  const std::string source = make_h5("virtual_source.h5", [](hid_t file) {
    const float values[4] = {1, 2, 3, 4};
    add_dataset(file, "x", H5T_IEEE_F32LE, {4}, values);
  });
  expect_refused(make_h5("virtual.weights.h5",
                         [&](hid_t file) {
                           const hsize_t dims[1] = {4};
                           const hid_t space = H5Screate_simple(1, dims, nullptr);
                           const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
                           H5Pset_virtual(dcpl, space, source.c_str(), "/x", space);
                           add_dataset(file, "v", H5T_IEEE_F32LE, {4}, nullptr, dcpl);
                           H5Pclose(dcpl);
                           H5Sclose(space);
                         }),
                 "virtual dataset");
}

TEST(KerasWeights, RefusesUnknownFilters) {
  expect_refused(make_h5("filter.weights.h5",
                         [](hid_t file) {
                           const hid_t dcpl = chunked({4});
                           H5Pset_filter(dcpl, 32001, H5Z_FLAG_OPTIONAL, 0, nullptr);
                           const float values[4] = {1, 2, 3, 4};
                           add_dataset(file, "x", H5T_IEEE_F32LE, {4}, values, dcpl);
                           H5Pclose(dcpl);
                         }),
                 "uses filter 32001");
  // deflate + shuffle + fletcher32 are read.
  const auto path = make_h5("deflate.weights.h5", [](hid_t file) {
    const hid_t dcpl = chunked({64});
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 6);
    H5Pset_fletcher32(dcpl);
    std::vector<float> values(1000, 2.5f);
    add_dataset(file, "x", H5T_IEEE_F32LE, {1000}, values.data(), dcpl);
    H5Pclose(dcpl);
  });
  auto opened = open_weight_file(path);
  ASSERT_TRUE(opened) << opened.error().message;
  auto data = (*opened)->read_tensor(0);
  ASSERT_TRUE(data) << data.error().message;
  float last = 0;
  std::memcpy(&last, data->data() + 3996, 4);
  EXPECT_EQ(last, 2.5f);
}

TEST(KerasWeights, RefusesNonNumericTypes) {
  expect_refused(make_h5("string.weights.h5",
                         [](hid_t file) {
                           const hid_t type = H5Tcopy(H5T_C_S1);
                           H5Tset_size(type, 4);
                           add_dataset(file, "s", type, {2}, "abcdefgh");
                           H5Tclose(type);
                         }),
                 "a string type");
  expect_refused(make_h5("compound.weights.h5",
                         [](hid_t file) {
                           const hid_t type = H5Tcreate(H5T_COMPOUND, 8);
                           H5Tinsert(type, "a", 0, H5T_NATIVE_FLOAT);
                           H5Tinsert(type, "b", 4, H5T_NATIVE_FLOAT);
                           add_dataset(file, "c", type, {1}, nullptr);
                           H5Tclose(type);
                         }),
                 "a compound");
  expect_refused(make_h5("enum.weights.h5",
                         [](hid_t file) {
                           const hid_t type = H5Tenum_create(H5T_NATIVE_INT);
                           int red = 0, green = 1, blue = 2;
                           H5Tenum_insert(type, "RED", &red);
                           H5Tenum_insert(type, "GREEN", &green);
                           H5Tenum_insert(type, "BLUE", &blue);
                           add_dataset(file, "e", type, {1}, nullptr);
                           H5Tclose(type);
                         }),
                 "an enum");
  expect_refused(make_h5("reference.weights.h5",
                         [](hid_t file) { add_dataset(file, "r", H5T_STD_REF_OBJ, {1}, nullptr); }),
                 "a reference");
  expect_refused(make_h5("vlen.weights.h5",
                         [](hid_t file) {
                           const hid_t type = H5Tvlen_create(H5T_NATIVE_FLOAT);
                           add_dataset(file, "v", type, {1}, nullptr);
                           H5Tclose(type);
                         }),
                 "a variable-length");
}

TEST(KerasWeights, RefusesImpossibleSizes) {
  // 2^40 float32 elements in a tiny file: chunked with nothing written, so it costs nothing to build.
  expect_refused(make_h5("shape_bomb.weights.h5",
                         [](hid_t file) {
                           const hid_t dcpl = chunked({1024});
                           add_dataset(file, "x", H5T_IEEE_F32LE, {hsize_t{1} << 40}, nullptr, dcpl);
                           H5Pclose(dcpl);
                         }),
                 "more than a");
  // Contiguous and never written (late allocation): 4 MiB declared in a file of a few kB.
  expect_refused(make_h5("contiguous.weights.h5",
                         [](hid_t file) { add_dataset(file, "x", H5T_IEEE_F32LE, {hsize_t{1} << 20}, nullptr); }),
                 "more than a");
  expect_refused(make_h5("overflow.weights.h5",
                         [](hid_t file) {
                           const hid_t dcpl = chunked({1, 1, 1});
                           add_dataset(file, "x", H5T_IEEE_F64LE, {hsize_t{1} << 30, hsize_t{1} << 30, hsize_t{1} << 10},
                                       nullptr, dcpl);
                           H5Pclose(dcpl);
                         }),
                 "more bytes than fit in 64 bits");
  expect_refused(make_h5("big_chunk.weights.h5",
                         [](hid_t file) {
                           const hid_t dcpl = chunked({hsize_t{1} << 27});
                           add_dataset(file, "x", H5T_IEEE_F32LE, {hsize_t{1} << 27}, nullptr, dcpl);
                           H5Pclose(dcpl);
                         }),
                 "chunks of more than 256 MiB");
}

TEST(KerasWeights, RefusesDeepNestingAndTooManyObjects) {
  expect_refused(make_h5("deep.weights.h5",
                         [](hid_t file) {
                           std::string path;
                           for (int i = 0; i < 40; ++i) {
                             path += (i ? "/g" : "g");
                             add_group(file, path.c_str());
                           }
                         }),
                 "nest more than 32 deep");
  expect_refused(make_h5("many.weights.h5",
                         [](hid_t file) {
                           add_group(file, "g");
                           for (int i = 0; i < 100001; ++i) {
                             H5Lcreate_hard(file, "g", file, ("l" + std::to_string(i)).c_str(), H5P_DEFAULT, H5P_DEFAULT);
                           }
                         }),
                 "more than 100000 objects");
}

TEST(KerasWeights, RefusesTruncatedAndFakeFiles) {
  const std::vector<std::byte> whole = slurp(keras_like());
  for (size_t keep : {whole.size() / 2, size_t{600}, size_t{8}}) {
    const std::vector<std::byte> part(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(keep));
    const auto opened = open_weight_bytes(part, "cut.weights.h5");
    EXPECT_FALSE(opened) << keep;
    if (!opened) {
      EXPECT_EQ(opened.error().message.rfind("cut.weights.h5: ", 0), 0u) << opened.error().message;
    }
  }
  std::vector<std::byte> fake(4096, std::byte{0x5a});
  const unsigned char signature[] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  std::memcpy(fake.data(), signature, 8);
  const auto opened = open_weight_bytes(fake, "fake.h5");
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("fake.h5: not a readable HDF5 file (libhdf5: "), std::string::npos)
      << opened.error().message;
}

TEST(KerasWeights, WriterRoundTripsAndLeavesNothingOnFailure) {
  const auto opened = open_weight_file(keras_like());
  ASSERT_TRUE(opened);
  const auto& layout = dynamic_cast<const KerasWeightFile&>(**opened);
  const std::string out = scratch("written.weights.h5").string();
  const Status written = write_keras_weights(
      layout,
      [&](size_t index) -> Result<std::vector<std::byte>> {
        std::vector<std::byte> bytes(static_cast<size_t>(layout.tensors()[index].byte_size), std::byte{0});
        const float value = static_cast<float>(index) + 0.25f;
        for (size_t at = 0; at < bytes.size(); at += 4) std::memcpy(bytes.data() + at, &value, 4);
        return bytes;
      },
      out);
  ASSERT_TRUE(written) << written.error().message;
  const auto again = open_weight_file(out);
  ASSERT_TRUE(again) << again.error().message;
  const auto& reread = dynamic_cast<const KerasWeightFile&>(**again);
  EXPECT_EQ(reread.groups(), layout.groups());
  ASSERT_EQ(reread.tensors().size(), layout.tensors().size());
  for (size_t i = 0; i < layout.tensors().size(); ++i) {
    EXPECT_EQ(reread.tensors()[i].name, layout.tensors()[i].name);
    EXPECT_EQ(reread.tensors()[i].shape, layout.tensors()[i].shape);
    auto data = (*again)->read_tensor(i);
    ASSERT_TRUE(data);
    float value = 0;
    std::memcpy(&value, data->data(), 4);
    EXPECT_EQ(value, static_cast<float>(i) + 0.25f);
  }
  const std::string failed = scratch("failed.weights.h5").string();
  const Status refused = write_keras_weights(
      layout,
      [](size_t index) -> Result<std::vector<std::byte>> {
        if (index == 3) return make_error(ErrorCode::invalid_argument, "source broke");
        return std::vector<std::byte>(static_cast<size_t>(index + 1) * 4);
      },
      failed);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "source broke");
  for (const auto& entry : fs::directory_iterator(fs::path(failed).parent_path())) {
    EXPECT_EQ(entry.path().filename().string().find("failed.weights.h5"), std::string::npos) << entry.path();
  }
}

TEST(KerasWeights, SplitsDatasetPathsIntoLayerPathAndVarIndex) {
  const auto path = make_h5("variables.weights.h5", [](hid_t file) {
    const float one = 1;
    add_group(file, "layers");
    add_group(file, "layers/functional");
    add_group(file, "layers/functional/layers");
    add_group(file, "layers/functional/layers/conv2d");
    add_group(file, "layers/functional/layers/conv2d/vars");
    add_dataset(file, "layers/functional/layers/conv2d/vars/11", H5T_IEEE_F32LE, {1}, &one);
    add_group(file, "vars");
    add_dataset(file, "vars/0", H5T_IEEE_F32LE, {1}, &one);
    add_dataset(file, "zz", H5T_IEEE_F32LE, {1}, &one);
  });
  const auto opened = open_weight_file(path);
  ASSERT_TRUE(opened) << opened.error().message;
  const auto& file = dynamic_cast<const KerasWeightFile&>(**opened);
  ASSERT_EQ(file.dataset_paths(), (std::vector<std::string>{"layers/functional/layers/conv2d/vars/11", "vars/0", "zz"}));
  const auto nested = keras_variable(file, 0);
  ASSERT_TRUE(nested) << nested.error().message;
  EXPECT_EQ(nested->layer_path, "layers/functional/layers/conv2d");
  EXPECT_EQ(nested->var_index, 11);
  const auto root = keras_variable(file, 1);
  ASSERT_TRUE(root) << root.error().message;
  EXPECT_EQ(root->layer_path, "");
  EXPECT_EQ(root->var_index, 0);
  const auto stray = keras_variable(file, 2);
  ASSERT_FALSE(stray);
  EXPECT_NE(stray.error().message.find("'zz' is not a Keras variable"), std::string::npos) << stray.error().message;
  EXPECT_FALSE(keras_variable(file, 3));
}

}  // namespace
}  // namespace convbridge::io
