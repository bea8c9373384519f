// Keras 3 weight files through libhdf5's C API: `.weights.h5` (model.save_weights) and `.keras` (model.save, a zip
// of config.json, metadata.json and model.weights.h5).
//
// The layout Keras writes (keras/src/saving/saving_lib.py, checked against Keras 3.15.1's save_weights on a
// Functional model with Conv2D, BatchNormalization, ReLU, Flatten, Dense and a nested Functional model):
// - _save_state walks the model by *attribute path* (_walk_saveable): a Functional model's layers live under
//   `layers/<snake_case class name>[_N]` (`layers/conv2d`, `layers/batch_normalization`, `layers/re_lu`,
//   `layers/input_layer`), never under layer.name; a nested model is one more level, `layers/functional/layers/
//   conv2d`. The root model's own variables sit in `/vars`.
// - H5IOStore._create_h5_group makes `<path>/vars` and sets the store's metadata as attributes on it: Keras 3.15
//   writes a string attribute `name` (the layer's name, "conv2d_1") on every vars group. Variables are datasets
//   `vars/0`, `vars/1`, ... (trainable then non-trainable: BatchNormalization's gamma, beta, moving_mean,
//   moving_variance), with no attributes except `dtype`="bfloat16" on bfloat16 variables (H5IOStore.__setitem__).
// - Layers without variables (ReLU, Flatten, InputLayer) still get `layers/<name>/vars`, empty; h5py creates the
//   groups without link creation order, so a group's links iterate in name order ("vars/10" before "vars/2"),
//   which is why this reader sorts an all-numeric group numerically. No compression or chunking is used: datasets
//   are contiguous, float32 unless the layer's dtype says otherwise (float16, float64).
// - The loader (safe_get_h5_group / safe_get_h5_dataset) refuses soft and external links, external and virtual
//   datasets, and datasets declaring > 4 GiB and > 1000x their stored bytes. This reader refuses those and more
//   (user-defined links, filters other than deflate/shuffle/fletcher32, non-numeric types, too deep, too many
//   objects, chunks over 256 MiB); plugins are never loaded (H5PLset_loading_state(0)).
// libhdf5's Debian build is not thread-safe: every libhdf5 call here holds one process-wide mutex.
#include "convbridge/io/keras_weights.hpp"

#include <fmt/format.h>
#include <hdf5.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <new>
#include <optional>
#include <set>

#include "convbridge/checked_math.hpp"
#include "io/child_process.hpp"
#include "io/io_support.hpp"
#include "io/zip_archive.hpp"

namespace convbridge::io {
namespace {

constexpr int kMaxDepth = 32;
constexpr int64_t kMaxObjects = 100000;
constexpr int kMaxRank = 32;
constexpr uint64_t kMaxChunkBytes = uint64_t{256} << 20;
constexpr uint64_t kMaxDeflateRatio = 1032;  // zlib's technical details: deflate's limit is 1032:1
constexpr uint64_t kMaxConfigBytes = uint64_t{64} << 20;

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}
using Lock = std::lock_guard<std::recursive_mutex>;

// In a forked reader process: the parent held the mutex across fork() (so no other thread was inside libhdf5),
// but glibc records a mutex's owner by kernel thread id, which the child's one thread does not share, so the
// child's copy would never unlock. The POSIX way (an atfork child handler's job): construct it afresh.
void reset_hdf5_mutex_in_child() { new (&hdf5_mutex()) std::recursive_mutex(); }

// Once per process, before any file is opened: no error printing on stderr (the error stack becomes our message)
// and no filter plugins loaded from HDF5_PLUGIN_PATH (a plugin is code a file could ask us to run).
void initialize_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] {
    Lock lock(hdf5_mutex());
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    H5PLset_loading_state(0);
  });
}

// The error stack as text, innermost problem last ("H5Fopen: unable to open file; truncated file: eof = ..."),
// then cleared.
std::string hdf5_stack() {
  std::vector<std::string> parts;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* error, void* data) -> herr_t {
        auto& out = *static_cast<std::vector<std::string>*>(data);
        if (error->desc && *error->desc && out.size() < 4) out.push_back(error->desc);
        return 0;
      },
      &parts);
  H5Eclear2(H5E_DEFAULT);
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : "; ") + part;
  return text.empty() ? "no detail" : text;
}

Error hdf5_error(std::string_view label, std::string_view what) {
  return file_error(label, ErrorCode::invalid_argument, fmt::format("{} (libhdf5: {})", what, hdf5_stack()));
}

// An hid_t closed (under the mutex) when it goes out of scope.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Hid(Hid&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = H5I_INVALID_HID; }
  Hid& operator=(Hid&& other) noexcept {
    std::swap(id_, other.id_);
    std::swap(close_, other.close_);
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() {
    if (id_ >= 0 && close_) {
      Lock lock(hdf5_mutex());
      close_(id_);
    }
  }
  hid_t get() const { return id_; }
  hid_t release() {
    const hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

std::string dotted(std::string path) {
  std::replace(path.begin(), path.end(), '/', '.');
  return path;
}

const char* type_class_name(H5T_class_t type_class) {
  switch (type_class) {
    case H5T_STRING: return "a string";
    case H5T_COMPOUND: return "a compound (struct)";
    case H5T_ENUM: return "an enum";
    case H5T_REFERENCE: return "a reference";
    case H5T_VLEN: return "a variable-length";
    case H5T_ARRAY: return "an array";
    case H5T_OPAQUE: return "an opaque";
    case H5T_BITFIELD: return "a bitfield";
    case H5T_TIME: return "a time";
    default: return "an unknown";
  }
}

// The io::DType of a dataset's HDF5 type and whether it is big-endian. Floats must be IEEE 754 binary16/32/64
// bit for bit (h5py builds float16 as a 2-byte IEEE type); integers are plain 8..64-bit; numpy bool is h5py's
// enum {FALSE = 0, TRUE = 1} over int8 (h5py/_conv and h5t.py: numpy bool maps to that enum), read as bool.
Result<std::pair<DType, bool>> dtype_of(std::string_view label, const std::string& name, hid_t type) {
  const H5T_class_t type_class = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  const bool big = H5Tget_order(type) == H5T_ORDER_BE;
  const auto refuse = [&](std::string what) {
    return file_error(label, ErrorCode::unsupported,
                      fmt::format("dataset '{}' has {} type, which is not read", printable(name), what));
  };
  if (type_class == H5T_FLOAT) {
    size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
    const size_t ebias = H5Tget_ebias(type);
    const bool plain = H5Tget_offset(type) == 0 && H5Tget_precision(type) == size * 8 &&
                       H5Tget_norm(type) == H5T_NORM_IMPLIED && spos == size * 8 - 1 && mpos == 0;
    if (plain && size == 2 && epos == 10 && esize == 5 && msize == 10 && ebias == 15) return std::pair{DType::float16, big};
    if (plain && size == 4 && epos == 23 && esize == 8 && msize == 23 && ebias == 127) return std::pair{DType::float32, big};
    if (plain && size == 8 && epos == 52 && esize == 11 && msize == 52 && ebias == 1023) return std::pair{DType::float64, big};
    return refuse(fmt::format("a {}-byte floating-point that is not IEEE binary16/32/64", size));
  }
  if (type_class == H5T_INTEGER) {
    if (H5Tget_offset(type) != 0 || H5Tget_precision(type) != size * 8) return refuse("a padded integer");
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    switch (size) {
      case 1: return std::pair{is_signed ? DType::int8 : DType::uint8, false};
      case 2: return std::pair{is_signed ? DType::int16 : DType::uint16, big};
      case 4: return std::pair{is_signed ? DType::int32 : DType::uint32, big};
      case 8: return std::pair{is_signed ? DType::int64 : DType::uint64, big};
      default: return refuse(fmt::format("a {}-byte integer", size));
    }
  }
  if (type_class == H5T_ENUM && size == 1 && H5Tget_nmembers(type) == 2) {
    Hid base(H5Tget_super(type), H5Tclose);
    bool is_bool = base.valid() && H5Tget_class(base.get()) == H5T_INTEGER && H5Tget_sign(base.get()) == H5T_SGN_2;
    for (unsigned i = 0; is_bool && i < 2; ++i) {
      signed char value = 0;
      char* member = H5Tget_member_name(type, i);
      is_bool = member && H5Tget_member_value(type, i, &value) >= 0 &&
                std::string_view(member) == (value ? "TRUE" : "FALSE") && value == static_cast<signed char>(i);
      if (member) H5free_memory(member);
    }
    H5Eclear2(H5E_DEFAULT);
    if (is_bool) return std::pair{DType::boolean, false};
  }
  return refuse(type_class_name(type_class));
}

struct DatasetInfo {
  TensorInfo tensor;
  bool big_endian = false;
};

// Validates one dataset's type, shape, storage and filters; nothing is read.
Result<DatasetInfo> inspect_dataset(std::string_view label, const std::string& path, hid_t dataset,
                                    uint64_t file_size) {
  Hid type(H5Dget_type(dataset), H5Tclose);
  Hid space(H5Dget_space(dataset), H5Sclose);
  Hid dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (!type.valid() || !space.valid() || !dcpl.valid()) {
    return hdf5_error(label, fmt::format("dataset '{}' cannot be opened", printable(path)));
  }
  DatasetInfo info;
  info.tensor.name = dotted(path);
  CONVBRIDGE_TRY(const auto dtype, dtype_of(label, path, type.get()));
  info.tensor.dtype = dtype.first;
  info.big_endian = dtype.second;

  const H5S_class_t space_class = H5Sget_simple_extent_type(space.get());
  if (space_class == H5S_SIMPLE) {
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0 || rank > kMaxRank) {
      return file_error(label, ErrorCode::invalid_argument,
                        fmt::format("dataset '{}' has {} dimensions (at most {} are read)", printable(path), rank,
                                    kMaxRank));
    }
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    for (hsize_t dim : dims) {
      if (dim > static_cast<hsize_t>(INT64_MAX)) {
        return file_error(label, ErrorCode::overflow, fmt::format("dataset '{}' has a size beyond 2^63", printable(path)));
      }
      info.tensor.shape.push_back(static_cast<int64_t>(dim));
    }
  } else if (space_class != H5S_SCALAR) {
    return file_error(label, ErrorCode::unsupported,
                      fmt::format("dataset '{}' has a null dataspace (no shape), which is not read", printable(path)));
  }
  CONVBRIDGE_TRY(info.tensor.byte_size, tensor_byte_size(label, info.tensor.name, info.tensor.shape, info.tensor.dtype));

  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  if (layout == H5D_VIRTUAL) {
    return file_error(label, ErrorCode::unsupported,
                      fmt::format("dataset '{}' is a virtual dataset (its data would come from other files), which is "
                                  "refused",
                                  printable(path)));
  }
  if (layout != H5D_COMPACT && layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED) {
    return hdf5_error(label, fmt::format("dataset '{}' has an unknown storage layout", printable(path)));
  }
  if (H5Pget_external_count(dcpl.get()) != 0) {
    return file_error(label, ErrorCode::unsupported,
                      fmt::format("dataset '{}' keeps its data in external files, which is refused", printable(path)));
  }
  const int filters = H5Pget_nfilters(dcpl.get());
  if (filters < 0) return hdf5_error(label, fmt::format("dataset '{}' has an unreadable filter pipeline", printable(path)));
  bool deflated = false;
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0, config = 0;
    size_t values = 0;
    char name[64] = {};
    const H5Z_filter_t filter = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &values, nullptr,
                                               sizeof name, name, &config);
    if (filter == H5Z_FILTER_DEFLATE) {
      deflated = true;
    } else if (filter != H5Z_FILTER_SHUFFLE && filter != H5Z_FILTER_FLETCHER32) {
      H5Eclear2(H5E_DEFAULT);
      return file_error(label, ErrorCode::unsupported,
                        fmt::format("dataset '{}' uses filter {} ('{}'): only deflate, shuffle and fletcher32 are "
                                    "read (filter plugins are never loaded)",
                                    printable(path), static_cast<long>(filter), printable(name)));
    }
  }
  if (layout == H5D_CHUNKED) {
    hsize_t chunk[H5S_MAX_RANK] = {};
    const int rank = H5Pget_chunk(dcpl.get(), H5S_MAX_RANK, chunk);
    uint64_t bytes = static_cast<uint64_t>(dtype_info(info.tensor.dtype).size);
    for (int i = 0; i < rank; ++i) {
      if (mul_overflows(bytes, chunk[i], bytes)) bytes = UINT64_MAX;
    }
    if (rank < 0 || bytes > kMaxChunkBytes) {
      return file_error(label, ErrorCode::invalid_argument,
                        fmt::format("dataset '{}' has chunks of more than 256 MiB, which are refused", printable(path)));
    }
  }
  // Data that is not deflated cannot hold more bytes than the file; deflated data at most 1032 times as many.
  uint64_t limit = file_size;
  if (deflated && mul_overflows(file_size, kMaxDeflateRatio, limit)) limit = UINT64_MAX;
  if (static_cast<uint64_t>(info.tensor.byte_size) > limit) {
    return file_error(label, ErrorCode::invalid_argument,
                      fmt::format("dataset '{}' of shape {} declares {} bytes, more than a {}-byte file can hold{}",
                                  printable(path), shape_string(info.tensor.shape), info.tensor.byte_size, file_size,
                                  deflated ? " deflated" : ""));
  }
  return info;
}

// Whether every name is a decimal number (Keras' vars/0, vars/1, ...): then they are listed numerically.
bool all_numeric(const std::vector<std::string>& names) {
  return std::all_of(names.begin(), names.end(), [](const std::string& name) {
    return !name.empty() && name.size() <= 18 &&
           std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
  });
}

// File image callbacks that hand libhdf5 the caller's bytes instead of copies (the core driver then reads them in
// place; the file is opened read-only, so nothing writes to them). libhdf5 calls image_malloc + image_memcpy for
// the property list and for the open file (H5Pset_file_image, H5FD_core_open: HDF5 1.10 "HDF5 File Image
// Operations", RFC 2011): malloc returns the image itself, memcpy onto itself is a no-op, free releases nothing.
// This is H5LTopen_file_image's H5LT_FILE_IMAGE_DONT_COPY | DONT_RELEASE without its reference-counted user data,
// which libhdf5_hl 1.10.8 leaks (72 bytes per open, found by fuzz_keras_weights' LeakSanitizer).
struct ImageView {
  const std::byte* data = nullptr;
  size_t size = 0;
};

H5FD_file_image_callbacks_t in_place_image_callbacks(ImageView* view) {
  H5FD_file_image_callbacks_t callbacks{};
  callbacks.image_malloc = [](size_t size, H5FD_file_image_op_t, void* udata) -> void* {
    auto* image = static_cast<ImageView*>(udata);
    return size == image->size ? const_cast<std::byte*>(image->data) : nullptr;
  };
  callbacks.image_memcpy = [](void* dest, const void* src, size_t size, H5FD_file_image_op_t, void* udata) -> void* {
    auto* image = static_cast<ImageView*>(udata);
    return dest == src && dest == image->data && size == image->size ? dest : nullptr;
  };
  callbacks.image_realloc = [](void*, size_t, H5FD_file_image_op_t, void*) -> void* { return nullptr; };
  callbacks.image_free = [](void*, H5FD_file_image_op_t, void*) -> herr_t { return 0; };
  callbacks.udata_copy = [](void* udata) -> void* { return udata; };
  callbacks.udata_free = [](void*) -> herr_t { return 0; };
  callbacks.udata = view;
  return callbacks;
}

// One HDF5 file open in libhdf5, in this process: walked once (every group and dataset validated), then read one
// dataset at a time. Runs inside the reader process (see KerasH5File), or in the caller's own process when
// isolation is off (the fuzz target, whose coverage must see this code).
class LocalHdf5File {
 public:
  // `image` (a file in memory, used in place) when it is not empty, else the file behind `source`.
  static Result<std::unique_ptr<LocalHdf5File>> open(const ByteSource& source, std::span<const std::byte> image) {
    initialize_hdf5();
    Lock lock(hdf5_mutex());
    auto file = std::unique_ptr<LocalHdf5File>(new LocalHdf5File());
    file->label_ = source.label();
    const std::string& label = file->label_;
    uint64_t file_size = image.size();
    if (!image.empty()) {
      // The image is used in place, read-only: neither copied nor released by libhdf5. Each open gets its own
      // name: the core driver takes two open files of the same name for one file.
      static std::atomic<uint64_t> counter{0};
      file->view_ = ImageView{image.data(), image.size()};
      H5FD_file_image_callbacks_t callbacks = in_place_image_callbacks(&file->view_);
      Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
      if (!fapl.valid() || H5Pset_fapl_core(fapl.get(), 64 << 10, false) < 0 ||
          H5Pset_file_image_callbacks(fapl.get(), &callbacks) < 0 ||
          H5Pset_file_image(fapl.get(), const_cast<std::byte*>(image.data()), image.size()) < 0) {
        return hdf5_error(label, "cannot set up the in-memory file image");
      }
      const std::string name = fmt::format("convbridge-image-{}", counter.fetch_add(1));
      file->file_ = Hid(H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
    } else {
      Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
      H5Pset_file_locking(fapl.get(), false, true);  // >= 1.10.7: read-only media and NFS open too
      // The descriptor we already hold, so libhdf5 reads the very file we checked.
      const int fd = source.file_descriptor();
      std::string path = fmt::format("/proc/self/fd/{}", fd);
      if (fd < 0 || !std::filesystem::exists(path)) path = label;
      file->file_ = Hid(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
      file_size = source.size();
    }
    if (!file->file_.valid()) return hdf5_error(label, "not a readable HDF5 file");
    CONVBRIDGE_CHECK(file->walk(file_size));
    return file;
  }

  ~LocalHdf5File() {
    Lock lock(hdf5_mutex());
    file_ = Hid();
  }

  const std::vector<std::string>& groups() const { return groups_; }
  const std::vector<std::string>& dataset_paths() const { return dataset_paths_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  Result<std::vector<std::byte>> read(size_t index) {
    if (index >= tensors_.size()) {
      return make_error(ErrorCode::invalid_argument, fmt::format("{}: no tensor {}", label_, index));
    }
    Lock lock(hdf5_mutex());
    const TensorInfo& info = tensors_[index];
    std::vector<std::byte> bytes(static_cast<size_t>(info.byte_size));
    if (!bytes.empty()) {
      Hid dataset(H5Dopen2(file_.get(), dataset_paths_[index].c_str(), H5P_DEFAULT), H5Dclose);
      Hid type(dataset.valid() ? H5Dget_type(dataset.get()) : H5I_INVALID_HID, H5Tclose);
      Hid memory_type(type.valid() ? H5Tcopy(type.get()) : H5I_INVALID_HID, H5Tclose);
      if (!memory_type.valid() || (dtype_info(info.dtype).size > 1 && H5Tset_order(memory_type.get(), H5T_ORDER_LE) < 0) ||
          H5Dread(dataset.get(), memory_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) < 0) {
        return hdf5_error(label_, fmt::format("dataset '{}' cannot be read", printable(dataset_paths_[index])));
      }
    }
    return bytes;
  }

 private:
  LocalHdf5File() = default;

  // Depth-first, a group's links in its index order (numeric for vars/N), every link checked to be a hard link to
  // a group or a dataset that was not reached before.
  Status walk(uint64_t file_size) {
    int64_t objects = 0;
    std::set<haddr_t> seen;
    return walk_group(file_.get(), "", 0, objects, seen, file_size);
  }

  Status walk_group(hid_t group, const std::string& prefix, int depth, int64_t& objects, std::set<haddr_t>& seen,
                    uint64_t file_size) {
    const std::string where = prefix.empty() ? "the root group" : fmt::format("group '{}'", printable(prefix));
    if (depth > kMaxDepth) {
      return file_error(label_, ErrorCode::invalid_argument,
                        fmt::format("groups nest more than {} deep at {}", kMaxDepth, where));
    }
    H5G_info_t info;
    if (H5Gget_info(group, &info) < 0) return hdf5_error(label_, fmt::format("{} cannot be listed", where));
    if (info.nlinks > static_cast<hsize_t>(kMaxObjects - objects)) {
      return file_error(label_, ErrorCode::invalid_argument,
                        fmt::format("more than {} objects (at {}), which is refused", kMaxObjects, where));
    }
    objects += static_cast<int64_t>(info.nlinks);
    // Creation order when the file tracks and indexes it (h5py track_order=True), else name order.
    H5_index_t index = H5_INDEX_NAME;
    {
      Hid gcpl(H5Gget_create_plist(group), H5Pclose);
      unsigned flags = 0;
      if (gcpl.valid() && H5Pget_link_creation_order(gcpl.get(), &flags) >= 0 && (flags & H5P_CRT_ORDER_INDEXED)) {
        index = H5_INDEX_CRT_ORDER;
      }
    }
    std::vector<std::string> names;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const ssize_t length = H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (length <= 0 || length > 65535) return hdf5_error(label_, fmt::format("a link in {} has no usable name", where));
      std::string name(static_cast<size_t>(length) + 1, '\0');
      H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
      name.resize(static_cast<size_t>(length));
      names.push_back(std::move(name));
    }
    if (all_numeric(names)) {
      std::stable_sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        uint64_t x = 0, y = 0;
        std::from_chars(a.data(), a.data() + a.size(), x);
        std::from_chars(b.data(), b.data() + b.size(), y);
        return x < y;
      });
    }
    for (const std::string& name : names) {
      const std::string path = prefix.empty() ? name : prefix + "/" + name;
      if (name.find('/') != std::string::npos || name == "." ) {
        return file_error(label_, ErrorCode::invalid_argument, fmt::format("a link named '{}' in {}", printable(name), where));
      }
      H5L_info_t link;
      if (H5Lget_info(group, name.c_str(), &link, H5P_DEFAULT) < 0) {
        return hdf5_error(label_, fmt::format("link '{}' cannot be read", printable(path)));
      }
      if (link.type != H5L_TYPE_HARD) {
        const char* kind = link.type == H5L_TYPE_SOFT       ? "a soft link"
                           : link.type == H5L_TYPE_EXTERNAL ? "an external link (to another file)"
                                                            : "a user-defined link";
        return file_error(label_, ErrorCode::unsupported,
                          fmt::format("'{}' is {}, which is refused (Keras' loader refuses links too)",
                                      printable(path), kind));
      }
      if (!seen.insert(link.u.address).second) {
        return file_error(label_, ErrorCode::invalid_argument,
                          fmt::format("'{}' is a second hard link to an object already listed", printable(path)));
      }
      H5O_info_t object;
      if (H5Oget_info_by_name2(group, name.c_str(), &object, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
        return hdf5_error(label_, fmt::format("object '{}' cannot be read", printable(path)));
      }
      if (object.type == H5O_TYPE_GROUP) {
        groups_.push_back(path);
        Hid child(H5Gopen2(group, name.c_str(), H5P_DEFAULT), H5Gclose);
        if (!child.valid()) return hdf5_error(label_, fmt::format("group '{}' cannot be opened", printable(path)));
        CONVBRIDGE_CHECK(walk_group(child.get(), path, depth + 1, objects, seen, file_size));
      } else if (object.type == H5O_TYPE_DATASET) {
        Hid dataset(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose);
        if (!dataset.valid()) return hdf5_error(label_, fmt::format("dataset '{}' cannot be opened", printable(path)));
        CONVBRIDGE_TRY(DatasetInfo dataset_info, inspect_dataset(label_, path, dataset.get(), file_size));
        tensors_.push_back(std::move(dataset_info.tensor));
        dataset_paths_.push_back(path);
      } else {
        return file_error(label_, ErrorCode::unsupported,
                          fmt::format("'{}' is a named datatype or an unknown object, not a group or dataset",
                                      printable(path)));
      }
    }
    return Ok{};
  }

  std::string label_;
  std::vector<std::string> groups_;
  std::vector<std::string> dataset_paths_;
  std::vector<TensorInfo> tensors_;
  ImageView view_;  // the image callbacks' user data: lives as long as the file
  Hid file_;
};

// Whether libhdf5 runs in a reader process (the default) or in this one (set_hdf5_isolation).
std::atomic<bool> hdf5_in_process{false};

// The reader process's replies: a tag byte, then the structure, a dataset's bytes or an error.
enum ReplyTag : uint8_t { kReplyStructure = 'S', kReplyBytes = 'B', kReplyError = 'E' };
constexpr uint64_t kMaxStructureBytes = uint64_t{256} << 20;
constexpr uint64_t kMaxNameBytes = 65535;
constexpr size_t kMaxErrorBytes = 2000;
constexpr std::chrono::milliseconds kWalkTimeout{120000};

std::vector<std::byte> error_reply(const Error& error) {
  MessageWriter reply;
  reply.u8(kReplyError);
  reply.u8(static_cast<uint8_t>(error.code));
  reply.string(std::string_view(error.message).substr(0, kMaxErrorBytes));
  return std::move(reply.bytes());
}

// The reader process: opens and walks the file with libhdf5, sends what it found, then answers one dataset index
// at a time until the parent closes the socket. Memory is capped before each job (limit_helper_memory).
void serve_hdf5_file(int socket, const ByteSource& source, std::span<const std::byte> image) {
  reset_hdf5_mutex_in_child();
  limit_helper_memory(image.empty() ? source.size() : image.size());
  auto opened = LocalHdf5File::open(source, image);
  if (!opened) {
    send_frame(socket, error_reply(opened.error()));
    return;
  }
  LocalHdf5File& file = **opened;
  MessageWriter structure;
  structure.u8(kReplyStructure);
  structure.u64(file.groups().size());
  for (const std::string& group : file.groups()) structure.string(group);
  structure.u64(file.tensors().size());
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const TensorInfo& tensor = file.tensors()[i];
    structure.string(file.dataset_paths()[i]);
    structure.u8(static_cast<uint8_t>(tensor.dtype));
    structure.u64(tensor.shape.size());
    for (int64_t dim : tensor.shape) structure.u64(static_cast<uint64_t>(dim));
  }
  if (!send_frame(socket, structure.bytes())) return;
  std::vector<std::byte> request;
  while (receive_frame(socket, 8, request)) {
    MessageReader reader(request);
    uint64_t index = 0;
    if (!reader.u64(index) || index >= file.tensors().size()) return;
    limit_helper_memory(static_cast<uint64_t>(file.tensors()[index].byte_size));
    auto bytes = file.read(static_cast<size_t>(index));
    const std::byte tag{kReplyBytes};
    const bool sent = bytes ? send_frame(socket, std::span(&tag, 1), *bytes) : send_frame(socket, error_reply(bytes.error()));
    if (!sent) return;
  }
}

// A reply that is an error: the reader process's own message (already naming the file), kept to one bounded line.
Error reply_error(std::string_view label, MessageReader& reader) {
  uint8_t code = 0;
  std::string message;
  if (!reader.u8(code) || code > static_cast<uint8_t>(ErrorCode::unsupported) || !reader.string(kMaxErrorBytes, message) ||
      !reader.at_end()) {
    return file_error(label, ErrorCode::invalid_argument, "the HDF5 reader process sent a malformed error");
  }
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (!message.starts_with(std::string(label) + ": ")) message = fmt::format("{}: {}", label, message);
  return Error{static_cast<ErrorCode>(code), std::move(message)};
}

class KerasH5File final : public KerasWeightFile {
 public:
  static Result<std::unique_ptr<KerasWeightFile>> open(std::shared_ptr<ByteSource> source,
                                                       std::span<const std::byte> image,
                                                       std::vector<std::byte> owned_image, std::string model_config,
                                                       std::string description) {
    auto file = std::unique_ptr<KerasH5File>(new KerasH5File());
    file->format_ = WeightFormat::keras_h5;
    file->label_ = source->label();
    file->source_ = std::move(source);
    file->owned_image_ = std::move(owned_image);
    file->model_config_ = std::move(model_config);
    file->description_ = std::move(description);
    if (!file->owned_image_.empty()) image = file->owned_image_;
    if (hdf5_in_process.load()) {
      CONVBRIDGE_TRY(file->local_, LocalHdf5File::open(*file->source_, image));
      file->groups_ = file->local_->groups();
      file->dataset_paths_ = file->local_->dataset_paths();
      file->tensors_ = file->local_->tensors();
    } else {
      CONVBRIDGE_CHECK(file->start_reader_process(image));
    }
    return std::unique_ptr<KerasWeightFile>(std::move(file));
  }

  Result<std::unique_ptr<TensorReader>> open_tensor(size_t index) override {
    if (index >= tensors_.size()) {
      return make_error(ErrorCode::invalid_argument, fmt::format("{}: no tensor {}", label_, index));
    }
    if (local_) {
      CONVBRIDGE_TRY(auto bytes, local_->read(index));
      return std::unique_ptr<TensorReader>(std::make_unique<BufferTensorReader>(std::move(bytes)));
    }
    std::lock_guard<std::mutex> lock(reader_mutex_);
    const uint64_t byte_size = static_cast<uint64_t>(tensors_[index].byte_size);
    MessageWriter request;
    request.u64(index);
    CONVBRIDGE_CHECK(reader_->send(request.bytes()));
    // A minute, plus a second for every 10 MB the dataset holds (a disk or an inflate at 10 MB/s).
    const std::chrono::milliseconds timeout{60000 + static_cast<int64_t>(byte_size / 10000)};
    CONVBRIDGE_TRY(auto reply, reader_->receive(byte_size + 1, timeout));
    MessageReader reader(reply);
    uint8_t tag = 0;
    reader.u8(tag);
    if (tag == kReplyError) return reply_error(label_, reader);
    if (tag != kReplyBytes || reply.size() != byte_size + 1) {
      return file_error(label_, ErrorCode::invalid_argument,
                        fmt::format("the HDF5 reader process sent {} bytes for dataset '{}' of {} bytes", reply.size(),
                                    printable(dataset_paths_[index]), byte_size));
    }
    // The dataset is the reply after its tag byte, read where it arrived.
    return std::unique_ptr<TensorReader>(std::make_unique<BufferTensorReader>(std::move(reply), 1));
  }

 private:
  KerasH5File() = default;

  Status start_reader_process(std::span<const std::byte> image) {
    {
      // Held across fork: no other thread is inside libhdf5 (or holds its mutex) in the copy the reader gets.
      Lock lock(hdf5_mutex());
      const ByteSource& source = *source_;
      CONVBRIDGE_TRY(reader_, ChildProcess::start(label_, [&](int socket) { serve_hdf5_file(socket, source, image); }));
    }
    CONVBRIDGE_TRY(const auto reply, reader_->receive(kMaxStructureBytes, kWalkTimeout));
    return decode_structure(reply);
  }

  // The reader process's account of the file, checked as strictly as a file: bounded counts and names, known
  // dtypes, ranks and sizes, every byte size recomputed with checked arithmetic, nothing left over.
  Status decode_structure(std::span<const std::byte> reply) {
    MessageReader reader(reply);
    uint8_t tag = 0;
    reader.u8(tag);
    if (tag == kReplyError) return reply_error(label_, reader);
    const auto malformed = [&] {
      return file_error(label_, ErrorCode::invalid_argument, "the HDF5 reader process sent a malformed file listing");
    };
    uint64_t groups = 0, datasets = 0;
    if (tag != kReplyStructure || !reader.u64(groups) || groups > static_cast<uint64_t>(kMaxObjects)) return malformed();
    for (uint64_t i = 0; i < groups; ++i) {
      std::string group;
      if (!reader.string(kMaxNameBytes * kMaxDepth, group) || group.empty()) return malformed();
      groups_.push_back(std::move(group));
    }
    if (!reader.u64(datasets) || datasets > static_cast<uint64_t>(kMaxObjects) - groups) return malformed();
    for (uint64_t i = 0; i < datasets; ++i) {
      std::string path;
      uint8_t dtype = 0;
      uint64_t rank = 0;
      if (!reader.string(kMaxNameBytes * kMaxDepth, path) || path.empty() || !reader.u8(dtype) ||
          dtype > static_cast<uint8_t>(kLastDType) || !reader.u64(rank) || rank > kMaxRank) {
        return malformed();
      }
      TensorInfo tensor;
      tensor.name = dotted(path);
      tensor.dtype = static_cast<DType>(dtype);
      for (uint64_t d = 0; d < rank; ++d) {
        uint64_t dim = 0;
        if (!reader.u64(dim) || dim > static_cast<uint64_t>(INT64_MAX)) return malformed();
        tensor.shape.push_back(static_cast<int64_t>(dim));
      }
      CONVBRIDGE_TRY(tensor.byte_size, tensor_byte_size(label_, tensor.name, tensor.shape, tensor.dtype));
      dataset_paths_.push_back(std::move(path));
      tensors_.push_back(std::move(tensor));
    }
    if (!reader.at_end()) return malformed();
    return Ok{};
  }

  std::shared_ptr<ByteSource> source_;
  std::vector<std::byte> owned_image_;     // before local_: libhdf5 reads it in place until local_ is gone
  std::unique_ptr<LocalHdf5File> local_;   // isolation off
  std::optional<ChildProcess> reader_;     // isolation on: the reader process
  std::mutex reader_mutex_;                // one request and its reply at a time
};

// The HDF5 type a dtype is written as: little-endian IEEE floats and integers; float16 as h5py builds it
// (an IEEE f32 reshaped to binary16), bool as h5py's enum {FALSE, TRUE} over int8.
Result<Hid> hdf5_type_for(DType dtype) {
  switch (dtype) {
    case DType::float32: return Hid(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
    case DType::float64: return Hid(H5Tcopy(H5T_IEEE_F64LE), H5Tclose);
    case DType::int8: return Hid(H5Tcopy(H5T_STD_I8LE), H5Tclose);
    case DType::uint8: return Hid(H5Tcopy(H5T_STD_U8LE), H5Tclose);
    case DType::int16: return Hid(H5Tcopy(H5T_STD_I16LE), H5Tclose);
    case DType::uint16: return Hid(H5Tcopy(H5T_STD_U16LE), H5Tclose);
    case DType::int32: return Hid(H5Tcopy(H5T_STD_I32LE), H5Tclose);
    case DType::uint32: return Hid(H5Tcopy(H5T_STD_U32LE), H5Tclose);
    case DType::int64: return Hid(H5Tcopy(H5T_STD_I64LE), H5Tclose);
    case DType::uint64: return Hid(H5Tcopy(H5T_STD_U64LE), H5Tclose);
    case DType::float16: {
      Hid type(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
      if (H5Tset_fields(type.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(type.get(), 2) < 0 ||
          H5Tset_ebias(type.get(), 15) < 0) {
        return make_error(ErrorCode::invalid_argument, "cannot build the float16 HDF5 type");
      }
      return type;
    }
    case DType::boolean: {
      Hid type(H5Tenum_create(H5T_STD_I8LE), H5Tclose);
      signed char no = 0, yes = 1;
      H5Tenum_insert(type.get(), "FALSE", &no);
      H5Tenum_insert(type.get(), "TRUE", &yes);
      return type;
    }
    default:
      return make_error(ErrorCode::unsupported,
                        fmt::format("{} cannot be written to a .weights.h5 by convbridge", dtype_info(dtype).name));
  }
}

}  // namespace

void set_hdf5_isolation(Hdf5Isolation isolation) { hdf5_in_process.store(isolation == Hdf5Isolation::in_process); }

Result<std::unique_ptr<WeightFile>> open_keras_h5(std::shared_ptr<ByteSource> source) {
  std::span<const std::byte> image = source->memory();
  CONVBRIDGE_TRY(auto file, KerasH5File::open(source, image, {}, "", "Keras .weights.h5 (HDF5)"));
  return std::unique_ptr<WeightFile>(std::move(file));
}

Result<std::unique_ptr<WeightFile>> open_keras_archive(std::shared_ptr<ByteSource> source,
                                                       std::shared_ptr<ZipArchive> archive) {
  const std::string& label = source->label();
  const ZipEntry* config = archive->find("config.json");
  const ZipEntry* weights = archive->find("model.weights.h5");
  if (!config) return file_error(label, ErrorCode::invalid_argument, "a .keras archive without config.json");
  if (!weights) {
    return file_error(label, ErrorCode::unsupported,
                      "a .keras archive without model.weights.h5 (sharded or npz weights are not read)");
  }
  CONVBRIDGE_TRY(const auto config_bytes, archive->read_entry(*config, kMaxConfigBytes));
  std::string config_text(reinterpret_cast<const char*>(config_bytes.data()), config_bytes.size());
  // Validated as JSON, never interpreted: nothing config.json names is imported or built.
  const nlohmann::json parsed = nlohmann::json::parse(config_text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return file_error(label, ErrorCode::invalid_argument, "config.json is not a JSON object");
  }
  std::string model_name = "?", class_name = "?";
  if (parsed.contains("class_name") && parsed["class_name"].is_string()) {
    class_name = parsed["class_name"].get<std::string>();
  }
  if (parsed.contains("config") && parsed["config"].is_object() && parsed["config"].contains("name") &&
      parsed["config"]["name"].is_string()) {
    model_name = parsed["config"]["name"].get<std::string>();
  }
  std::string keras_version;
  if (const ZipEntry* metadata = archive->find("metadata.json")) {
    CONVBRIDGE_TRY(const auto metadata_bytes, archive->read_entry(*metadata, kMaxConfigBytes));
    const nlohmann::json meta = nlohmann::json::parse(metadata_bytes.begin(), metadata_bytes.end(), nullptr, false);
    if (meta.is_object() && meta.contains("keras_version") && meta["keras_version"].is_string()) {
      keras_version = meta["keras_version"].get<std::string>();
    }
  }
  const std::string description =
      fmt::format("Keras .keras model '{}' (class {}{}), weights in model.weights.h5 (HDF5)", printable(model_name),
                  printable(class_name), keras_version.empty() ? "" : ", Keras " + printable(keras_version));
  // A stored member of a file in memory is used in place; otherwise the member is read once into memory.
  std::span<const std::byte> image;
  std::vector<std::byte> owned;
  const std::span<const std::byte> memory = source->memory();
  uint64_t end = 0;
  if (weights->stored && !memory.empty() && !add_overflows(weights->data_offset, weights->size, end) &&
      end <= memory.size()) {
    image = memory.subspan(static_cast<size_t>(weights->data_offset), static_cast<size_t>(weights->size));
  } else {
    CONVBRIDGE_TRY(owned, archive->read_entry(*weights, weights->size));
  }
  if (image.empty() && owned.empty()) return file_error(label, ErrorCode::invalid_argument, "model.weights.h5 is empty");
  CONVBRIDGE_TRY(auto file, KerasH5File::open(source, image, std::move(owned), std::move(config_text), description));
  return std::unique_ptr<WeightFile>(std::move(file));
}

Result<KerasVariable> keras_variable(const KerasWeightFile& file, size_t index) {
  if (index >= file.dataset_paths().size()) {
    return file_error(file.label(), ErrorCode::invalid_argument, fmt::format("no tensor {}", index));
  }
  const std::string& path = file.dataset_paths()[index];
  const size_t slash = path.rfind('/');
  const std::string_view number = slash == std::string::npos ? std::string_view(path)
                                                              : std::string_view(path).substr(slash + 1);
  const std::string_view parent = slash == std::string::npos ? std::string_view() : std::string_view(path).substr(0, slash);
  KerasVariable variable;
  const auto parsed = std::from_chars(number.data(), number.data() + number.size(), variable.var_index);
  const bool numeric = !number.empty() && parsed.ec == std::errc() && parsed.ptr == number.data() + number.size() &&
                       variable.var_index >= 0;
  if (!numeric || !(parent == "vars" || parent.ends_with("/vars"))) {
    return file_error(file.label(), ErrorCode::invalid_argument,
                      fmt::format("dataset '{}' is not a Keras variable (<layer path>/vars/<N>)", printable(path)));
  }
  variable.layer_path = parent == "vars" ? std::string() : std::string(parent.substr(0, parent.size() - 5));
  return variable;
}

Status write_keras_weights(const KerasWeightFile& layout, const TensorBytes& data, const std::string& path) {
  if (layout.dataset_paths().size() != layout.tensors().size()) {
    return file_error(path, ErrorCode::invalid_argument, "the layout's datasets and tensors do not match");
  }
  CONVBRIDGE_TRY(AtomicOutputFile output, AtomicOutputFile::create(path));
  CONVBRIDGE_CHECK(output.close_descriptor());
  initialize_hdf5();
  {
    Lock lock(hdf5_mutex());
    Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_file_locking(fapl.get(), false, true);
    Hid file(H5Fcreate(output.temporary_path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
    if (!file.valid()) return hdf5_error(path, "cannot create the HDF5 file");
    for (const std::string& group : layout.groups()) {
      Hid created(H5Gcreate2(file.get(), group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      if (!created.valid()) return hdf5_error(path, fmt::format("cannot create group '{}'", printable(group)));
    }
    for (size_t i = 0; i < layout.tensors().size(); ++i) {
      const TensorInfo& tensor = layout.tensors()[i];
      const std::string& name = layout.dataset_paths()[i];
      CONVBRIDGE_TRY(Hid type, hdf5_type_for(tensor.dtype));
      std::vector<hsize_t> dims(tensor.shape.begin(), tensor.shape.end());
      Hid space(tensor.shape.empty() ? H5Screate(H5S_SCALAR)
                                     : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                H5Sclose);
      Hid dataset(H5Dcreate2(file.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                  H5Dclose);
      if (!dataset.valid()) return hdf5_error(path, fmt::format("cannot create dataset '{}'", printable(name)));
      CONVBRIDGE_TRY(const std::vector<std::byte> bytes, data(i));
      if (bytes.size() != static_cast<uint64_t>(tensor.byte_size)) {
        return file_error(path, ErrorCode::invalid_argument,
                          fmt::format("tensor '{}' was given {} bytes where its shape {} needs {}", printable(tensor.name),
                                      bytes.size(), shape_string(tensor.shape), tensor.byte_size));
      }
      if (!bytes.empty() && H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) < 0) {
        return hdf5_error(path, fmt::format("cannot write dataset '{}'", printable(name)));
      }
    }
    if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) return hdf5_error(path, "cannot flush the HDF5 file");
    if (H5Fclose(file.release()) < 0) return hdf5_error(path, "cannot close the HDF5 file");
  }
  return output.commit();
}

}  // namespace convbridge::io
