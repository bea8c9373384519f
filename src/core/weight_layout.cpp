#include "convbridge/weight_layout.hpp"

#include "convbridge/checked_math.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <system_error>
#include <string>
#include <thread>

namespace convbridge {

WeightLayoutChange torch_conv_weight_to_tf_conv(const ConvSpec& spec) {
  const std::string spatial(spatial_letters(spec.rank));
  WeightLayoutChange change;
  change.from_layout = "OI" + spatial;
  change.to_layout = spatial + "IO";
  change.from_shape = {spec.out_channels, spec.in_channels / spec.groups};
  change.from_shape.insert(change.from_shape.end(), spec.kernel.begin(), spec.kernel.end());
  for (int i = 0; i < spec.rank; ++i) change.permutation.push_back(i + 2);
  change.permutation.push_back(1);
  change.permutation.push_back(0);
  for (int axis : change.permutation) change.to_shape.push_back(change.from_shape[static_cast<size_t>(axis)]);
  return change;
}

WeightLayoutChange torch_conv_weight_to_tf_depthwise(const ConvSpec& spec) {
  // PyTorch output channel c*M + m reads input channel c (groups == C), so (C*M, 1, *k) reshapes to (C, M, *k)
  // without moving data; Keras DepthwiseConv kernels are (*k, C, M) with the same c*M + m output order.
  const std::string spatial(spatial_letters(spec.rank));
  const int64_t multiplier = spec.out_channels / spec.in_channels;
  WeightLayoutChange change;
  change.from_layout = "OI" + spatial;
  change.to_layout = spatial + "CM";
  change.from_shape = {spec.out_channels, 1};
  change.from_shape.insert(change.from_shape.end(), spec.kernel.begin(), spec.kernel.end());
  change.reshape = {spec.in_channels, multiplier};
  change.reshape.insert(change.reshape.end(), spec.kernel.begin(), spec.kernel.end());
  for (int i = 0; i < spec.rank; ++i) change.permutation.push_back(i + 2);
  change.permutation.push_back(0);
  change.permutation.push_back(1);
  for (int axis : change.permutation) change.to_shape.push_back(change.reshape[static_cast<size_t>(axis)]);
  return change;
}

WeightLayoutChange torch_conv_transpose_weight_to_tf(const ConvSpec& spec, const std::vector<int64_t>& append_zeros) {
  const std::string spatial(spatial_letters(spec.rank));
  WeightLayoutChange change;
  change.from_layout = "IO" + spatial;
  change.to_layout = spatial + "OI";
  change.from_shape = torch_weight_shape(spec);
  for (int i = 0; i < spec.rank; ++i) change.permutation.push_back(i + 2);
  change.permutation.push_back(1);
  change.permutation.push_back(0);
  for (int axis : change.permutation) change.to_shape.push_back(change.from_shape[static_cast<size_t>(axis)]);
  bool inserts = false;
  for (size_t i = 0; i < static_cast<size_t>(spec.rank); ++i) {
    inserts = inserts || spec.dilation[i] > 1 || append_zeros[i] > 0;
  }
  if (inserts) {
    change.dilate = spec.dilation;
    change.append_zeros = append_zeros;
    for (size_t i = 0; i < static_cast<size_t>(spec.rank); ++i) {
      change.to_shape[i] = (spec.kernel[i] - 1) * spec.dilation[i] + 1 + append_zeros[i];
    }
  }
  return change;
}

WeightLayoutChange keras_kernel_to_torch(int rank, const std::vector<int64_t>& keras_shape, std::string_view letters_from,
                                         std::string_view letters_to) {
  WeightLayoutChange change;
  change.from_layout = std::string(letters_from);
  change.to_layout = std::string(letters_to);
  change.from_shape = keras_shape;
  change.permutation = {rank + 1, rank};
  for (int i = 0; i < rank; ++i) change.permutation.push_back(i);
  for (int axis : change.permutation) change.to_shape.push_back(keras_shape[static_cast<size_t>(axis)]);
  return change;
}

WeightLayoutChange keras_depthwise_kernel_to_torch(int rank, const std::vector<int64_t>& keras_shape) {
  const std::string spatial(spatial_letters(rank));
  WeightLayoutChange change;
  change.from_layout = spatial + "CM";
  change.to_layout = "OI" + spatial;
  change.from_shape = keras_shape;
  change.permutation = {rank, rank + 1};
  for (int i = 0; i < rank; ++i) change.permutation.push_back(i);
  // (C, M, *k) viewed as (C*M, 1, *k): output channel c*M + m, PyTorch's depthwise order.
  change.to_shape = {keras_shape[static_cast<size_t>(rank)] * keras_shape[static_cast<size_t>(rank) + 1], 1};
  for (int i = 0; i < rank; ++i) change.to_shape.push_back(keras_shape[static_cast<size_t>(i)]);
  return change;
}

WeightLayoutChange keras_kernel_identity(const std::vector<int64_t>& keras_shape, const std::vector<int64_t>& dilate,
                                         std::string_view letters) {
  WeightLayoutChange change;
  change.from_layout = change.to_layout = std::string(letters);
  change.from_shape = change.to_shape = keras_shape;
  for (int i = 0; i < static_cast<int>(keras_shape.size()); ++i) change.permutation.push_back(i);
  if (std::any_of(dilate.begin(), dilate.end(), [](int64_t d) { return d > 1; })) {
    change.dilate = dilate;
    change.append_zeros.assign(dilate.size(), 0);
    for (size_t i = 0; i < dilate.size(); ++i) change.to_shape[i] = (keras_shape[i] - 1) * dilate[i] + 1;
  }
  return change;
}

// ---- the blocked copy behind apply_layout_change ----
//
// Every change is one strided copy: each destination axis has an extent, the stride at which the source holds it
// (row-major strides of the reshaped source, permuted) and its own stride (row-major strides of the destination,
// times the dilation on spatial axes, which leaves the zero taps between). Two ways to copy it, both bringing each
// source and destination cache line in about once, where the reference loop fetches a source line per element:
//   - a transpose proper (the destination's contiguous axis is not the source's: every conv kernel pair) goes in
//     panels of 4x4 register tiles that read the source as a few sequential streams (BlockedCopy::sweep_panels);
//   - any other copy halves its longest axis until a block fits in the L1 cache, then runs a plain loop: the
//     cache-oblivious scheme of Frigo, Leiserson, Prokop and Ramachandran, "Cache-Oblivious Algorithms" (FOCS
//     1999), section 3. Measured on the transposes it reached about half the panels' speed: its Z-order is no
//     stream a hardware prefetcher follows.
namespace {

// One axis of a strided copy.
struct CopyAxis {
  int64_t extent;
  int64_t source_stride;       // elements between neighbours along this axis in the source
  int64_t destination_stride;  // and in the destination
};

// Bytes in a block copied by the plain loop: read and written, with the unused ends of the lines they touch, they
// stay within a 32-48 KiB L1 data cache.
constexpr int64_t kBlockBytes = 16 * 1024;
// A thread costs tens of microseconds to start and join: below a few MiB one thread finishes first.
constexpr int64_t kBytesPerThread = 4 * 1024 * 1024;

// Drops axes of extent 1, orders the rest outermost-first by destination stride (so the plain loop writes the
// destination in order) and fuses neighbours that are contiguous in both tensors: OIHW -> HWIO becomes the 3-D
// (O, I, HW) -> (HW, I, O), a reshape-only change one contiguous run.
std::vector<CopyAxis> simplified(std::vector<CopyAxis> axes) {
  std::erase_if(axes, [](const CopyAxis& axis) { return axis.extent == 1; });
  std::stable_sort(axes.begin(), axes.end(),
                   [](const CopyAxis& a, const CopyAxis& b) { return a.destination_stride > b.destination_stride; });
  std::vector<CopyAxis> fused;
  for (const CopyAxis& axis : axes) {
    if (!fused.empty()) {
      CopyAxis& outer = fused.back();
      // No overflow: the fused extent is at most the element count, which was checked.
      if (outer.source_stride == axis.source_stride * axis.extent &&
          outer.destination_stride == axis.destination_stride * axis.extent) {
        outer = CopyAxis{outer.extent * axis.extent, axis.source_stride, axis.destination_stride};
        continue;
      }
    }
    fused.push_back(axis);
  }
  return fused;
}

// Copies `count` elements `source_stride` and `destination_stride` apart.
template <class T>
void copy_row(const T* source, T* destination, int64_t count, int64_t source_stride, int64_t destination_stride) {
  if (source_stride == 1 && destination_stride == 1) {
    std::copy_n(source, count, destination);  // a contiguous run: memmove
  } else if (destination_stride == 1) {
    for (int64_t i = 0; i < count; ++i) destination[i] = source[i * source_stride];
  } else {
    for (int64_t i = 0; i < count; ++i) destination[i * destination_stride] = source[i * source_stride];
  }
}

// 4x4 tiles transposed in registers: four 4-element loads from four source rows, four 4-element stores into four
// destination rows, where element by element copying pays a load and a store per element and reads each source
// row with a stride. Written with the compiler's vector extensions (GCC >= 12 and Clang have
// __builtin_shufflevector), which become SSE shuffles on x86-64's baseline and NEON on AArch64. Loads and stores go
// through memcpy: rows need not be aligned. Shuffles move bits: NaN payloads and signed zeros are kept.
constexpr int64_t kTile = 4;
// Contiguous destination elements per panel (sweep_panels): 1 KiB of each destination row, read from 256 (float)
// or 128 (double) source streams. Source-contiguous elements per panel: at most 1024 destination rows are open at
// a time (their lines stay in L2). Chosen by alternating runs on this 2-core machine (bench/relayout_bench.cpp
// and the same copy in a loop): 1 KiB rows beat 256 B by a quarter on HWIO -> OIHW and tied elsewhere, 2 and
// 4 KiB lost up to a third; 128, 1024 and 4096 columns were within the run-to-run noise of each other. Blocks of
// the halving scheme reached about half the panels' speed.
template <class T>
constexpr int64_t kPanelRows = 1024 / sizeof(T);
constexpr int64_t kPanelColumns = 1024;
typedef float Float4 __attribute__((vector_size(16)));
typedef double Double2 __attribute__((vector_size(16)));

template <class Vector, class T>
Vector load(const T* from) {
  Vector v;
  std::memcpy(&v, from, sizeof v);
  return v;
}
template <class Vector, class T>
void store(T* to, Vector v) {
  std::memcpy(to, &v, sizeof v);
}

// destination[c * destination_row + r] = source[row[r] + c] for r, c in [0, 4).
inline void transpose_tile(const float* source, const int64_t* row, float* destination, int64_t destination_row) {
  const Float4 r0 = load<Float4>(source + row[0]), r1 = load<Float4>(source + row[1]),
               r2 = load<Float4>(source + row[2]), r3 = load<Float4>(source + row[3]);
  const Float4 low01 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5), high01 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
  const Float4 low23 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5), high23 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
  store(destination, __builtin_shufflevector(low01, low23, 0, 1, 4, 5));
  store(destination + destination_row, __builtin_shufflevector(low01, low23, 2, 3, 6, 7));
  store(destination + 2 * destination_row, __builtin_shufflevector(high01, high23, 0, 1, 4, 5));
  store(destination + 3 * destination_row, __builtin_shufflevector(high01, high23, 2, 3, 6, 7));
}
inline void transpose_tile(const double* source, const int64_t* row, double* destination, int64_t destination_row) {
  for (int64_t r = 0; r < kTile; r += 2) {  // four 2x2 sub-tiles, one pair of source rows at a time
    for (int64_t k = 0; k < kTile; k += 2) {
      const Double2 upper = load<Double2>(source + row[r] + k);
      const Double2 lower = load<Double2>(source + row[r + 1] + k);
      store(destination + k * destination_row + r, __builtin_shufflevector(upper, lower, 0, 2));
      store(destination + (k + 1) * destination_row + r, __builtin_shufflevector(upper, lower, 1, 3));
    }
  }
}

// destination[c * destination_row + r] = source[row_offsets[r] + c] for r < rows, c < columns: a panel of a
// transpose whose source rows and destination rows are both contiguous. The last tile of a row or column that is
// not a multiple of 4 long overlaps the one before it, writing a few elements twice with the same value: no
// element-by-element tail for the 9 taps of a 3x3 kernel.
template <class T>
void transpose_panel(const T* source, const std::vector<int64_t>& row_offsets, T* destination,
                     int64_t destination_row, int64_t columns) {
  const auto row_count = static_cast<int64_t>(row_offsets.size());
  const int64_t* row = row_offsets.data();
  if (row_count < kTile || columns < kTile) {
    for (int64_t c = 0; c < columns; ++c) {
      for (int64_t r = 0; r < row_count; ++r) destination[c * destination_row + r] = source[row[r] + c];
    }
    return;
  }
  for (int64_t next_column = 0; next_column < columns; next_column += kTile) {
    const int64_t c = std::min(next_column, columns - kTile);
    for (int64_t next_row = 0; next_row < row_count; next_row += kTile) {
      const int64_t r = std::min(next_row, row_count - kTile);
      transpose_tile(source + c, row + r, destination + c * destination_row + r, destination_row);
    }
  }
}

// The recursive blocking over simplified axes (at least one).
template <class T>
class BlockedCopy {
 public:
  explicit BlockedCopy(std::vector<CopyAxis> axes) : axes_(std::move(axes)) {
    const size_t rank = axes_.size();
    const CopyAxis& inner = axes_.back();
    // A run contiguous in both tensors is copied whole (memmove); halving it would only add calls.
    contiguous_inner_ = inner.source_stride == 1 && inner.destination_stride == 1;
    // A transpose proper: the destination's inner axis is contiguous there, and another axis is the source's
    // contiguous one. Those two are copied by 4x4 tiles; the rest of the axes are an odometer around them.
    column_axis_ = rank;
    if (!contiguous_inner_ && inner.destination_stride == 1) {
      for (size_t i = 0; i + 1 < rank; ++i) {
        if (axes_[i].source_stride == 1) column_axis_ = i;
      }
    }
    const size_t row_axis = rank - 1;
    for (size_t i = 0; i < rank; ++i) {
      if (column_axis_ < rank ? (i != column_axis_ && i != row_axis) : i + 1 < rank) outer_axes_.push_back(i);
    }
    panel_axes_ = outer_axes_;
    std::stable_sort(panel_axes_.begin(), panel_axes_.end(),
                     [&](size_t a, size_t b) { return axes_[a].source_stride > axes_[b].source_stride; });
    // The next destination axis continues the inner one's run when its stride is the inner axis' whole extent.
    group_axis_ = rank;
    if (column_axis_ < rank && rank >= 2 && rank - 2 != column_axis_ &&
        axes_[rank - 2].destination_stride == axes_[rank - 1].extent) {
      group_axis_ = rank - 2;
    }
    for (const size_t axis : panel_axes_) {
      if (axis != group_axis_) grouped_panel_axes_.push_back(axis);
    }
  }

  // Copies the block of `extents` (one per axis) starting at these offsets.
  void copy(const T* source, T* destination, std::vector<int64_t> extents) const {
    std::vector<int64_t> index(axes_.size(), 0);  // the odometer, reused by every block
    if (column_axis_ < axes_.size()) {
      sweep_panels(source, destination, extents, index);
    } else {
      halve(source, destination, extents, index);
    }
  }

 private:
  void halve(const T* source, T* destination, std::vector<int64_t>& extents, std::vector<int64_t>& index) const {
    int64_t volume = 1;
    size_t longest = axes_.size();
    const size_t splittable = contiguous_inner_ ? axes_.size() - 1 : axes_.size();
    for (size_t i = 0; i < axes_.size(); ++i) {
      volume *= extents[i];
      if (i < splittable && extents[i] > 1 && (longest == axes_.size() || extents[i] > extents[longest])) longest = i;
    }
    if (longest == axes_.size() || volume * static_cast<int64_t>(sizeof(T)) <= kBlockBytes) {
      plain_loop(source, destination, extents, index);
      return;
    }
    const int64_t whole = extents[longest];
    const int64_t first = whole / 2;
    extents[longest] = first;
    halve(source, destination, extents, index);
    extents[longest] = whole - first;
    halve(source + first * axes_[longest].source_stride, destination + first * axes_[longest].destination_stride,
          extents, index);
    extents[longest] = whole;
  }

  // A transpose proper, in panels of about kPanelRows contiguous destination elements: within a panel every other
  // axis runs in source order, so the panel's source rows are each read front to back (streams the hardware
  // prefetcher follows) and each destination row gets the panel's elements, whole cache lines, at once. Halving
  // blocks (below) read the source in Z-order instead, which no prefetcher follows, and with power-of-two row
  // strides map a block's rows onto a few cache sets. When the destination's inner axis is short and whole (the 9
  // taps of HWIO -> OIHW), a panel takes several positions of the next axis too (7 input channels: 63 contiguous
  // elements per output channel), whose source rows the row offsets list.
  void sweep_panels(const T* source, T* destination, const std::vector<int64_t>& extents,
                    std::vector<int64_t>& index) const {
    const size_t rank = axes_.size();
    const size_t row_axis = rank - 1;
    const int64_t columns = extents[column_axis_];
    const int64_t panel_columns = std::min(kPanelColumns, columns);
    const bool grouped = group_axis_ < rank && extents[row_axis] == axes_[row_axis].extent &&
                         extents[row_axis] * 2 <= kPanelRows<T>;
    // The axis panels step along, how far per step, and the source offsets of one panel's rows.
    const size_t step_axis = grouped ? group_axis_ : row_axis;
    const int64_t step = grouped ? std::min(kPanelRows<T> / extents[row_axis], extents[group_axis_])
                                 : std::min(kPanelRows<T>, extents[row_axis]);
    std::vector<int64_t> row_offsets;
    for (int64_t g = 0; g < (grouped ? step : 1); ++g) {
      for (int64_t r = 0; r < (grouped ? extents[row_axis] : step); ++r) {
        row_offsets.push_back((grouped ? g * axes_[group_axis_].source_stride : 0) + r * axes_[row_axis].source_stride);
      }
    }
    const std::vector<size_t>& odometer = grouped ? grouped_panel_axes_ : panel_axes_;
    for (int64_t next_column = 0; next_column < columns; next_column += panel_columns) {
      const int64_t column = std::min(next_column, columns - panel_columns);
      for (int64_t next = 0; next < extents[step_axis]; next += step) {
        const int64_t first = std::min(next, extents[step_axis] - step);  // the last panel overlaps the one before
        const T* panel_source = source + first * axes_[step_axis].source_stride + column;
        T* panel_destination = destination + first * axes_[step_axis].destination_stride +
                               column * axes_[column_axis_].destination_stride;
        for_each_offset(odometer, extents, index, [&](int64_t source_offset, int64_t destination_offset) {
          transpose_panel(panel_source + source_offset, row_offsets, panel_destination + destination_offset,
                          axes_[column_axis_].destination_stride, panel_columns);
        });
      }
    }
  }

  // Calls visit(source offset, destination offset) for every index of `axes` (an odometer, last axis fastest).
  template <class Visit>
  void for_each_offset(const std::vector<size_t>& axes, const std::vector<int64_t>& extents,
                       std::vector<int64_t>& index, const Visit& visit) const {
    for (const size_t axis : axes) index[axis] = 0;
    int64_t source_offset = 0;
    int64_t destination_offset = 0;
    while (true) {
      visit(source_offset, destination_offset);
      size_t k = axes.size();
      while (k-- > 0) {
        const size_t axis = axes[k];
        if (++index[axis] < extents[axis]) {
          source_offset += axes_[axis].source_stride;
          destination_offset += axes_[axis].destination_stride;
          break;
        }
        index[axis] = 0;
        source_offset -= (extents[axis] - 1) * axes_[axis].source_stride;
        destination_offset -= (extents[axis] - 1) * axes_[axis].destination_stride;
      }
      if (k == static_cast<size_t>(-1)) return;  // every index wrapped: done
    }
  }

  // A block of a copy that is no transpose proper (the inner axis strided in both tensors, or contiguous in
  // both): rows of the destination's inner axis, an odometer over the rest in destination order.
  void plain_loop(const T* source, T* destination, const std::vector<int64_t>& extents,
                  std::vector<int64_t>& index) const {
    const CopyAxis& inner = axes_.back();
    for_each_offset(outer_axes_, extents, index, [&](int64_t source_offset, int64_t destination_offset) {
      copy_row(source + source_offset, destination + destination_offset, extents.back(), inner.source_stride,
               inner.destination_stride);
    });
  }

  std::vector<CopyAxis> axes_;
  bool contiguous_inner_ = false;
  size_t column_axis_;              // the source's contiguous axis when tiles apply, else axes_.size()
  std::vector<size_t> outer_axes_;  // the odometer's axes, outermost first
  std::vector<size_t> panel_axes_;  // the same in source order, for panels
  size_t group_axis_;               // the axis a panel may take several positions of, else axes_.size()
  std::vector<size_t> grouped_panel_axes_;  // panel_axes_ without it
};

// Copies along `axes` (any order; sizes already checked, none 0), blocked, on up to hardware_concurrency threads.
template <class T>
void strided_copy(const T* source, T* destination, std::vector<CopyAxis> axes) {
  axes = simplified(std::move(axes));
  if (axes.empty()) {  // a single element
    *destination = *source;
    return;
  }
  const BlockedCopy<T> copier(axes);
  std::vector<int64_t> extents;
  int64_t elements = 1;
  for (const CopyAxis& axis : axes) {
    extents.push_back(axis.extent);
    elements *= axis.extent;
  }
  // Threads each take a contiguous range of the longest axis: their destination elements are disjoint.
  size_t longest = 0;
  for (size_t i = 1; i < axes.size(); ++i) {
    if (axes[i].extent > axes[longest].extent) longest = i;
  }
  const int64_t hardware = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t by_size = std::max<int64_t>(1, elements * static_cast<int64_t>(sizeof(T)) / kBytesPerThread);
  const int64_t parts = std::min({hardware, by_size, axes[longest].extent});
  if (parts == 1) {
    copier.copy(source, destination, extents);
    return;
  }
  const auto part = [&](int64_t p) {
    // Part p starts at p * (extent / parts) plus one for each earlier part that takes one of the remainder: no
    // product larger than the extent.
    const int64_t share = axes[longest].extent / parts;
    const int64_t remainder = axes[longest].extent % parts;
    const int64_t begin = p * share + std::min(p, remainder);
    std::vector<int64_t> part_extents = extents;
    part_extents[longest] = share + (p < remainder ? 1 : 0);
    copier.copy(source + begin * axes[longest].source_stride, destination + begin * axes[longest].destination_stride,
                part_extents);
  };
  std::vector<std::thread> workers;
  int64_t started = 1;  // part 0 runs on this thread
  try {
    for (; started < parts; ++started) workers.emplace_back(part, started);
  } catch (const std::system_error&) {
    // No thread to be had (a process at its limit): this thread copies what no worker took.
    for (int64_t p = started; p < parts; ++p) part(p);
  }
  part(0);
  for (std::thread& worker : workers) worker.join();
}

// The strided copy a change is, with every size checked.
struct LayoutCopy {
  std::vector<CopyAxis> axes;  // in destination axis order
  int64_t source_elements = 0;
  int64_t destination_elements = 0;
  bool zero_taps = false;  // the destination has entries no source element lands on: they are 0
};

Error bad_change(const WeightLayoutChange& change, const std::string& what) {
  return make_error(ErrorCode::invalid_argument,
                    "weight layout change " + change.from_layout + " -> " + change.to_layout + ": " + what);
}

Error too_large(const WeightLayoutChange& change) {
  return make_error(ErrorCode::overflow, "weight layout change " + change.from_layout + " -> " + change.to_layout +
                                             ": a size does not fit in 64 bits");
}

// Row-major strides of `shape`, checked (an axis of extent 0 elsewhere does not make a large stride harmless).
std::optional<std::vector<int64_t>> row_major_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) {
    const auto stride = checked_mul(strides[i], shape[i]);
    if (!stride) return std::nullopt;
    strides[i - 1] = *stride;
  }
  return strides;
}

// Elements in a tensor of `shape`: 0 when an axis is 0, whatever the others (whose product alone may overflow).
std::optional<int64_t> element_count(const std::vector<int64_t>& shape) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  return checked_product(shape);
}

Result<LayoutCopy> plan_layout_copy(const WeightLayoutChange& change) {
  const std::vector<int64_t>& shape = change.reshape.empty() ? change.from_shape : change.reshape;
  for (const std::vector<int64_t>* sizes : {&change.from_shape, &change.reshape, &change.to_shape}) {
    if (std::any_of(sizes->begin(), sizes->end(), [](int64_t v) { return v < 0; })) {
      return bad_change(change, "a negative size");
    }
  }
  const auto source_elements = element_count(change.from_shape);
  const auto read_elements = element_count(shape);
  if (!source_elements || !read_elements) return too_large(change);
  if (*read_elements != *source_elements) return bad_change(change, "the reshape changes the element count");
  const size_t rank = shape.size();
  if (change.permutation.size() != rank) return bad_change(change, "the permutation has the wrong length");
  std::vector<bool> seen(rank, false);
  for (const int axis : change.permutation) {
    if (axis < 0 || static_cast<size_t>(axis) >= rank || seen[static_cast<size_t>(axis)]) {
      return bad_change(change, "the axes are not a permutation");
    }
    seen[static_cast<size_t>(axis)] = true;
  }
  std::vector<int64_t> moved_shape;
  for (const int axis : change.permutation) moved_shape.push_back(shape[static_cast<size_t>(axis)]);

  // The destination: the transposed shape, or, with zero taps, to_shape with taps dilate[i] apart.
  std::vector<int64_t> destination_shape = moved_shape;
  std::vector<int64_t> tap_spacing(rank, 1);
  const bool zero_taps = !change.dilate.empty();
  if (zero_taps) {
    if (change.dilate.size() > rank || change.append_zeros.size() != change.dilate.size() ||
        change.to_shape.size() != rank) {
      return bad_change(change, "the zero taps do not match the axes");
    }
    for (size_t i = 0; i < change.dilate.size(); ++i) {
      if (change.dilate[i] < 1 || change.append_zeros[i] < 0) return bad_change(change, "a dilation below 1");
      if (moved_shape[i] == 0) continue;  // nothing to spread
      const auto spread = checked_mul(moved_shape[i] - 1, change.dilate[i]);
      const auto extent = spread ? checked_add(*spread, 1 + change.append_zeros[i]) : std::nullopt;
      if (!extent) return too_large(change);
      if (*extent != change.to_shape[i]) return bad_change(change, "to_shape is not the zero-tapped shape");
      destination_shape[i] = *extent;
      tap_spacing[i] = change.dilate[i];
    }
    for (size_t i = change.dilate.size(); i < rank; ++i) {
      if (change.to_shape[i] != moved_shape[i]) return bad_change(change, "to_shape is not the zero-tapped shape");
    }
  }
  const auto destination_elements = element_count(destination_shape);
  if (!destination_elements) return too_large(change);
  // Without zero taps to_shape only re-views the transposed data (a depthwise (C, M, *k) as (C*M, 1, *k)); an empty
  // to_shape means the transposed shape itself.
  if (!zero_taps && !change.to_shape.empty()) {
    const auto viewed = element_count(change.to_shape);
    if (!viewed) return too_large(change);
    if (*viewed != *destination_elements) return bad_change(change, "to_shape changes the element count");
  }
  LayoutCopy copy;
  copy.source_elements = *source_elements;
  copy.destination_elements = *destination_elements;
  copy.zero_taps = zero_taps;
  // Nothing to move: the strides of an empty tensor may not fit in 64 bits, and need not.
  if (copy.source_elements == 0) return copy;
  const auto source_strides = row_major_strides(shape);
  const auto destination_strides = row_major_strides(destination_shape);
  if (!source_strides || !destination_strides) return too_large(change);
  for (size_t i = 0; i < rank; ++i) {
    const auto stride = checked_mul((*destination_strides)[i], tap_spacing[i]);
    if (!stride) return too_large(change);
    copy.axes.push_back(CopyAxis{moved_shape[i], (*source_strides)[static_cast<size_t>(change.permutation[i])], *stride});
  }
  return copy;
}

// A change the caller promised is well-formed; a broken promise is a convbridge bug, not an input error.
LayoutCopy checked_plan(const WeightLayoutChange& change, size_t source_size) {
  Result<LayoutCopy> copy = plan_layout_copy(change);
  if (!copy || static_cast<uint64_t>(copy->source_elements) != source_size) std::abort();
  return std::move(copy).value();
}

}  // namespace

Result<int64_t> layout_change_output_size(const WeightLayoutChange& change) {
  CONVBRIDGE_TRY(const LayoutCopy copy, plan_layout_copy(change));
  return copy.destination_elements;
}

template <class T>
void apply_layout_change_into(const WeightLayoutChange& change, std::span<const T> source, std::span<T> destination) {
  LayoutCopy copy = checked_plan(change, source.size());
  if (static_cast<uint64_t>(copy.destination_elements) != destination.size()) std::abort();
  if (copy.zero_taps) std::fill(destination.begin(), destination.end(), T(0));
  if (copy.source_elements > 0) strided_copy(source.data(), destination.data(), std::move(copy.axes));
}

template <class T>
std::vector<T> apply_layout_change(const WeightLayoutChange& change, std::span<const T> source) {
  LayoutCopy copy = checked_plan(change, source.size());
  std::vector<T> out(static_cast<size_t>(copy.destination_elements));  // zeros: the taps between stay so
  if (copy.source_elements > 0) strided_copy(source.data(), out.data(), std::move(copy.axes));
  return out;
}

template <class T>
std::vector<T> transpose(std::span<const T> source, std::span<const int64_t> shape, std::span<const int> permutation) {
  WeightLayoutChange change;
  change.from_shape.assign(shape.begin(), shape.end());
  change.permutation.assign(permutation.begin(), permutation.end());
  return apply_layout_change(change, source);
}

template std::vector<float> transpose<float>(std::span<const float>, std::span<const int64_t>, std::span<const int>);
template std::vector<double> transpose<double>(std::span<const double>, std::span<const int64_t>, std::span<const int>);
template std::vector<float> apply_layout_change<float>(const WeightLayoutChange&, std::span<const float>);
template std::vector<double> apply_layout_change<double>(const WeightLayoutChange&, std::span<const double>);
template void apply_layout_change_into<float>(const WeightLayoutChange&, std::span<const float>, std::span<float>);
template void apply_layout_change_into<double>(const WeightLayoutChange&, std::span<const double>, std::span<double>);

}  // namespace convbridge
