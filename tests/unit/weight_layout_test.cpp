// Re-layout is compared bit-for-bit against hand-written index goldens.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>

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

}  // namespace
}  // namespace convbridge
