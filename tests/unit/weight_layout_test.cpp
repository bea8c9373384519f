// Re-layout is compared bit-for-bit against hand-written index goldens, and the cache-blocked path against the
// simple reference loop on seeded generated shapes, permutations, reshapes and zero taps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "convbridge/checked_math.hpp"
#include "convbridge/weight_layout.hpp"

namespace convbridge {
namespace {

ConvSpec spec_with(int rank, int64_t in, int64_t out, int64_t groups, std::vector<int64_t> kernel) {
  ConvSpec spec;
  spec.rank = rank;
  spec.in_channels = in;
  spec.out_channels = out;
  spec.groups = groups;
  spec.kernel = std::move(kernel);
  return spec;
}

std::vector<float> iota(size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

TEST(WeightLayout, OihwToHwio) {
  // weight (O=2, I=3, H=2, W=1): value = ((o*3 + i)*2 + h)*1 + w.
  const ConvSpec spec = spec_with(2, 3, 2, 1, {2, 1});
  const WeightLayoutChange change = torch_conv_weight_to_tf_conv(spec);
  EXPECT_EQ(change.from_layout, "OIHW");
  EXPECT_EQ(change.to_layout, "HWIO");
  EXPECT_EQ(change.permutation, (std::vector<int>{2, 3, 1, 0}));
  EXPECT_EQ(change.to_shape, (std::vector<int64_t>{2, 1, 3, 2}));
  const std::vector<float> out = apply_layout_change<float>(change, iota(12));
  // out[h][w][i][o] = ((o*3+i)*2+h): h=0: i0:(0,6) i1:(2,8) i2:(4,10); h=1: +1.
  EXPECT_EQ(out, (std::vector<float>{0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11}));
}

TEST(WeightLayout, Rank1And3) {
  const WeightLayoutChange one = torch_conv_weight_to_tf_conv(spec_with(1, 2, 2, 1, {3}));
  EXPECT_EQ(one.from_layout, "OIW");
  EXPECT_EQ(one.to_layout, "WIO");
  // weight (O=2, I=2, W=3): value (o*2+i)*3+w; out[w][i][o].
  EXPECT_EQ(apply_layout_change<float>(one, iota(12)),
            (std::vector<float>{0, 6, 3, 9, 1, 7, 4, 10, 2, 8, 5, 11}));
  const WeightLayoutChange three = torch_conv_weight_to_tf_conv(spec_with(3, 4, 6, 2, {3, 1, 2}));
  EXPECT_EQ(three.from_layout, "OIDHW");
  EXPECT_EQ(three.to_layout, "DHWIO");
  EXPECT_EQ(three.from_shape, (std::vector<int64_t>{6, 2, 3, 1, 2}));
  EXPECT_EQ(three.to_shape, (std::vector<int64_t>{3, 1, 2, 2, 6}));
}

TEST(WeightLayout, DepthwiseKeepsChannelOrder) {
  // C=2, M=2, k=(1, 2): PyTorch (4, 1, 1, 2), value = o*2 + w where o = c*2 + m. Keras (1, 2, C, M).
  const WeightLayoutChange change = torch_conv_weight_to_tf_depthwise(spec_with(2, 2, 4, 2, {1, 2}));
  EXPECT_EQ(change.reshape, (std::vector<int64_t>{2, 2, 1, 2}));
  EXPECT_EQ(change.to_shape, (std::vector<int64_t>{1, 2, 2, 2}));
  // out[h][w][c][m] = (c*2+m)*2 + w
  EXPECT_EQ(apply_layout_change<float>(change, iota(8)), (std::vector<float>{0, 2, 4, 6, 1, 3, 5, 7}));
}

TEST(WeightLayout, TransposedIowToWoiWithZeroTaps) {
  // ConvTranspose1d(in=2, out=1, k=2, dilation=3): weight (I=2, O=1, W=2), value i*2 + w.
  ConvSpec spec = spec_with(1, 2, 1, 1, {2});
  spec.transposed = true;
  spec.dilation = {3};
  const WeightLayoutChange change = torch_conv_transpose_weight_to_tf(spec, {1});
  EXPECT_EQ(change.from_layout, "IOW");
  EXPECT_EQ(change.to_layout, "WOI");
  EXPECT_EQ(change.to_shape, (std::vector<int64_t>{5, 1, 2}));  // (2-1)*3+1 = 4 taps + 1 appended zero
  // out[w'][0][i]: tap 0 at w'=0, tap 1 at w'=3, zeros elsewhere.
  EXPECT_EQ(apply_layout_change<float>(change, iota(4)), (std::vector<float>{0, 2, 0, 0, 0, 0, 1, 3, 0, 0}));
  spec.dilation = {1};
  const WeightLayoutChange plain = torch_conv_transpose_weight_to_tf(spec, {0});
  EXPECT_TRUE(plain.dilate.empty());
  EXPECT_EQ(apply_layout_change<float>(plain, iota(4)), (std::vector<float>{0, 2, 1, 3}));
}

TEST(WeightLayout, MovesBitsUnchanged) {
  // NaN payloads, -0.0, denormals and infinities survive: elements are moved, never recomputed.
  std::vector<float> values = {-0.0f, std::nanf("0x2a"), 1e-45f, -INFINITY, 3.5f, INFINITY};
  const WeightLayoutChange change = torch_conv_weight_to_tf_conv(spec_with(1, 3, 2, 1, {1}));
  const std::vector<float> out = apply_layout_change<float>(change, values);
  const std::vector<float> back = transpose<float>(out, change.to_shape, std::vector<int>{2, 1, 0});
  ASSERT_EQ(back.size(), values.size());
  EXPECT_EQ(std::memcmp(back.data(), values.data(), values.size() * sizeof(float)), 0);
}


// ---- the blocked path against the reference loop ----

// Random bit patterns, NaNs with payloads and denormals included: a copy that went through arithmetic would show.
template <class T>
std::vector<T> random_bits(size_t count, std::mt19937_64& random) {
  std::vector<T> values(count);
  for (T& value : values) {
    const uint64_t bits = random();
    std::memcpy(&value, &bits, sizeof(T));
  }
  return values;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

std::string describe(const WeightLayoutChange& change) {
  const auto list = [](const auto& values) {
    std::string out = "(";
    for (const auto v : values) out += std::to_string(v) + ",";
    return out + ")";
  };
  return "from " + list(change.from_shape) + " reshape " + list(change.reshape) + " perm " +
         list(change.permutation) + " dilate " + list(change.dilate) + " append " + list(change.append_zeros) +
         " to " + list(change.to_shape);
}

// Checks apply_layout_change and apply_layout_change_into (into a buffer of garbage) against the reference.
template <class T>
void expect_matches_reference(const WeightLayoutChange& change, std::mt19937_64& random) {
  const auto count = checked_product(change.from_shape);
  ASSERT_TRUE(count.has_value());
  const std::vector<T> source = random_bits<T>(static_cast<size_t>(*count), random);
  const std::vector<T> want = reference_apply_layout_change<T>(change, source);
  EXPECT_TRUE(same_bits(apply_layout_change<T>(change, source), want)) << describe(change);
  const Result<int64_t> size = layout_change_output_size(change);
  ASSERT_TRUE(size.ok()) << describe(change) << ": " << size.error().message;
  ASSERT_EQ(static_cast<size_t>(*size), want.size()) << describe(change);
  std::vector<T> into = random_bits<T>(want.size(), random);
  apply_layout_change_into<T>(change, source, into);
  EXPECT_TRUE(same_bits(into, want)) << describe(change);
}

// A shape of `rank` axes, mostly short (so every rank stays small), sometimes 1 or long; `budget` caps the count.
std::vector<int64_t> random_shape(size_t rank, int64_t budget, std::mt19937_64& random) {
  std::vector<int64_t> shape;
  int64_t count = 1;
  for (size_t i = 0; i < rank; ++i) {
    const uint64_t kind = random() % 8;
    int64_t extent = kind == 0 ? 1 : kind == 1 ? static_cast<int64_t>(17 + random() % 80) : static_cast<int64_t>(2 + random() % 6);
    extent = std::max<int64_t>(1, std::min(extent, budget / count));
    shape.push_back(extent);
    count *= extent;
  }
  return shape;
}

std::vector<int> random_permutation(size_t rank, std::mt19937_64& random) {
  std::vector<int> permutation(rank);
  std::iota(permutation.begin(), permutation.end(), 0);
  std::shuffle(permutation.begin(), permutation.end(), random);
  return permutation;
}

// `shape` with random neighbours multiplied together: another row-major view of the same elements.
std::vector<int64_t> merged_neighbours(const std::vector<int64_t>& shape, std::mt19937_64& random) {
  std::vector<int64_t> merged;
  for (const int64_t extent : shape) {
    if (!merged.empty() && random() % 3 == 0) {
      merged.back() *= extent;
    } else {
      merged.push_back(extent);
    }
  }
  return merged;
}

WeightLayoutChange permutation_change(std::vector<int64_t> shape, std::vector<int> permutation) {
  WeightLayoutChange change;
  change.from_shape = std::move(shape);
  change.permutation = std::move(permutation);
  for (const int axis : change.permutation) change.to_shape.push_back(change.from_shape[static_cast<size_t>(axis)]);
  return change;
}

template <class T>
void random_changes_match_reference(uint64_t seed) {
  std::mt19937_64 random(seed);
  for (int trial = 0; trial < 400; ++trial) {
    WeightLayoutChange change;
    change.from_layout = "random";
    change.to_layout = "random";
    const size_t rank = random() % 7;  // 0 (a scalar) to 6 axes
    const std::vector<int64_t> read = random_shape(rank, trial % 10 == 0 ? 300000 : 20000, random);
    // A reshape before the transpose: the source is a coarser view of the axes the transpose reads.
    if (random() % 3 == 0) {
      change.from_shape = merged_neighbours(read, random);
      change.reshape = read;
    } else {
      change.from_shape = read;
    }
    change.permutation = random_permutation(rank, random);
    std::vector<int64_t> moved;
    for (const int axis : change.permutation) moved.push_back(read[static_cast<size_t>(axis)]);
    change.to_shape = moved;
    if (rank > 0 && random() % 4 == 0) {  // zero taps on the leading axes, as for a dilated transposed kernel
      const size_t spread = 1 + random() % std::min<size_t>(rank, 3);
      for (size_t i = 0; i < spread; ++i) {
        change.dilate.push_back(static_cast<int64_t>(1 + random() % 3));
        change.append_zeros.push_back(static_cast<int64_t>(random() % 2));
        change.to_shape[i] = (moved[i] - 1) * change.dilate[i] + 1 + change.append_zeros[i];
      }
    } else if (random() % 3 == 0) {
      change.to_shape = merged_neighbours(moved, random);  // the result re-viewed
    }
    expect_matches_reference<T>(change, random);
  }
}

TEST(BlockedRelayout, RandomChangesMatchReferenceFloat) { random_changes_match_reference<float>(15); }
TEST(BlockedRelayout, RandomChangesMatchReferenceDouble) { random_changes_match_reference<double>(16); }

TEST(BlockedRelayout, EveryLayoutPairMatchesReference) {
  std::mt19937_64 random(17);
  for (const int rank : {1, 2, 3}) {
    std::vector<int64_t> kernel = {3, 5, 2};
    kernel.resize(static_cast<size_t>(rank));
    // OIHW -> HWIO, grouped, and back.
    for (const int64_t groups : {1, 4}) {
      const WeightLayoutChange forward = torch_conv_weight_to_tf_conv(spec_with(rank, 24, 40, groups, kernel));
      expect_matches_reference<float>(forward, random);
      expect_matches_reference<double>(forward, random);
      const WeightLayoutChange back = keras_kernel_to_torch(rank, forward.to_shape, forward.to_layout, forward.from_layout);
      expect_matches_reference<float>(back, random);
      expect_matches_reference<double>(back, random);
    }
    // Depthwise, both ways.
    const WeightLayoutChange depthwise = torch_conv_weight_to_tf_depthwise(spec_with(rank, 16, 48, 16, kernel));
    expect_matches_reference<float>(depthwise, random);
    expect_matches_reference<double>(keras_depthwise_kernel_to_torch(rank, depthwise.to_shape), random);
    // Transposed convs: IOHW -> HWOI, dilated, with appended zero taps.
    ConvSpec transposed = spec_with(rank, 12, 20, 1, kernel);
    transposed.transposed = true;
    transposed.dilation.assign(static_cast<size_t>(rank), 1);
    expect_matches_reference<float>(torch_conv_transpose_weight_to_tf(transposed, std::vector<int64_t>(kernel.size(), 0)), random);
    transposed.dilation.assign(static_cast<size_t>(rank), 3);
    const WeightLayoutChange dilated = torch_conv_transpose_weight_to_tf(transposed, std::vector<int64_t>(kernel.size(), 2));
    expect_matches_reference<float>(dilated, random);
    expect_matches_reference<double>(dilated, random);
    // A Keras kernel zero-spread for TF's CPU step.
    std::vector<int64_t> keras_shape = kernel;
    keras_shape.insert(keras_shape.end(), {6, 7});
    expect_matches_reference<float>(keras_kernel_identity(keras_shape, std::vector<int64_t>(kernel.size(), 2), "HWIO"), random);
  }
  // Linear: (out, in) -> (in, out), and a Flatten folded into it: (out, C*H*W) read as (out, C, H, W) -> (H, W, C, out).
  WeightLayoutChange linear;
  linear.from_shape = {300, 257};
  linear.permutation = {1, 0};
  linear.to_shape = {257, 300};
  expect_matches_reference<float>(linear, random);
  // Rows and columns past the panel sizes and not multiples of the 4x4 tiles.
  for (const auto& [rows, columns] : std::vector<std::pair<int64_t, int64_t>>{{37, 3001}, {3001, 45}, {5, 2049}}) {
    expect_matches_reference<float>(permutation_change({rows, columns}, {1, 0}), random);
    expect_matches_reference<double>(permutation_change({rows, columns}, {1, 0}), random);
  }
  WeightLayoutChange flatten;
  flatten.from_shape = {10, 64 * 7 * 7};
  flatten.reshape = {10, 64, 7, 7};
  flatten.permutation = {2, 3, 1, 0};
  flatten.to_shape = {7 * 7 * 64, 10};
  expect_matches_reference<double>(flatten, random);
}

TEST(BlockedRelayout, LargeTensorsOnThreadsMatchReference) {
  // Over the per-thread threshold, so the copy is split between threads where the machine has several.
  std::mt19937_64 random(18);
  // 9 MiB float; 1023 output channels: the longest axis splits unevenly between threads.
  const WeightLayoutChange conv = torch_conv_weight_to_tf_conv(spec_with(2, 257, 1023, 1, {3, 3}));
  expect_matches_reference<float>(conv, random);
  const WeightLayoutChange back = keras_kernel_to_torch(2, {3, 3, 256, 512}, "HWIO", "OIHW");
  expect_matches_reference<double>(back, random);  // 9 MiB double
  WeightLayoutChange identity;  // a reshape-only change is one run, split between the threads
  identity.from_shape = {1 << 21};
  identity.reshape = {1 << 10, 1 << 11};
  identity.permutation = {0, 1};
  expect_matches_reference<float>(identity, random);
}

TEST(BlockedRelayout, ZeroSizedAxesGiveEmptyOrAllZeroResults) {
  std::mt19937_64 random(19);
  WeightLayoutChange empty;
  empty.from_shape = {3, 0, 5};
  empty.permutation = {2, 0, 1};
  empty.to_shape = {5, 3, 0};
  expect_matches_reference<float>(empty, random);
  // An axis of 0 next to axes whose strides alone would overflow: nothing is read or written.
  WeightLayoutChange huge_but_empty;
  huge_but_empty.from_shape = {0, int64_t{1} << 40, int64_t{1} << 40};
  huge_but_empty.permutation = {1, 2, 0};
  EXPECT_EQ(*layout_change_output_size(huge_but_empty), 0);
  EXPECT_TRUE(apply_layout_change<float>(huge_but_empty, std::vector<float>{}).empty());
}

TEST(BlockedRelayout, MalformedChangesAreErrors) {
  WeightLayoutChange change;
  change.from_layout = "OI";
  change.to_layout = "IO";
  change.from_shape = {4, 6};
  change.permutation = {1, 1};
  EXPECT_EQ(layout_change_output_size(change).error().code, ErrorCode::invalid_argument);
  change.permutation = {1};
  EXPECT_EQ(layout_change_output_size(change).error().code, ErrorCode::invalid_argument);
  change.permutation = {1, 0};
  EXPECT_EQ(*layout_change_output_size(change), 24);
  change.reshape = {5, 5};
  EXPECT_EQ(layout_change_output_size(change).error().code, ErrorCode::invalid_argument);
  change.reshape.clear();
  change.from_shape = {int64_t{1} << 32, int64_t{1} << 32};
  EXPECT_EQ(layout_change_output_size(change).error().code, ErrorCode::overflow);
  change.from_shape = {4, -6};
  EXPECT_EQ(layout_change_output_size(change).error().code, ErrorCode::invalid_argument);
  // Zero taps whose spread size overflows.
  WeightLayoutChange taps;
  taps.from_shape = {3, 2};
  taps.permutation = {0, 1};
  taps.dilate = {int64_t{1} << 62};
  taps.append_zeros = {0};
  taps.to_shape = {0, 2};
  EXPECT_EQ(layout_change_output_size(taps).error().code, ErrorCode::overflow);
  taps.dilate = {2};
  EXPECT_EQ(layout_change_output_size(taps).error().code, ErrorCode::invalid_argument);  // to_shape should be 5
  taps.to_shape = {5, 2};
  EXPECT_EQ(*layout_change_output_size(taps), 10);
}

}  // namespace
}  // namespace convbridge
