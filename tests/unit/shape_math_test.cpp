// Shape and padding math against hand-computed goldens, one case per trap in the semantics reference.
#include <gtest/gtest.h>

#include "convbridge/shape_math.hpp"

namespace convbridge {
namespace {

TEST(TorchOutputSize, StrideTwoPadOne) {
  EXPECT_EQ(*torch_conv_output_size(224, {1, 1}, 3, 2, 1), 112);  // floor(223/2)+1
  EXPECT_EQ(*torch_conv_output_size(225, {1, 1}, 3, 2, 1), 113);
  EXPECT_EQ(*torch_conv_output_size(32, {1, 1}, 3, 2, 1), 16);
}

TEST(TorchOutputSize, DilationUsesEffectiveKernel) {
  EXPECT_EQ(*torch_conv_output_size(32, {2, 2}, 3, 1, 2), 32);  // eff 5
  EXPECT_EQ(*torch_conv_output_size(10, {0, 0}, 3, 2, 2), 3);   // eff 5: floor(5/2)+1
}

TEST(TorchOutputSize, KernelLargerThanPaddedInputIsRejected) {
  auto r = torch_conv_output_size(2, {0, 0}, 3, 1, 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::input_shape);
  EXPECT_NE(r.error().message.find("Kernel size can't be greater than actual input size"), std::string::npos);
  EXPECT_EQ(*torch_conv_output_size(1, {1, 1}, 3, 1, 1), 1);  // padding makes room
}

TEST(TorchSamePadding, OddUnitGoesAfter) {
  EXPECT_EQ(*torch_same_padding(3, 1), (PadPair{1, 1}));
  EXPECT_EQ(*torch_same_padding(4, 1), (PadPair{1, 2}));
  EXPECT_EQ(*torch_same_padding(3, 2), (PadPair{2, 2}));
  EXPECT_EQ(*torch_same_padding(4, 3), (PadPair{4, 5}));
  EXPECT_EQ(*torch_same_padding(1, 7), (PadPair{0, 0}));
}

// Trap 1: TF 'same' at stride 2 pads (0, 1) at 224 where PyTorch's padding=1 pads (1, 1).
TEST(TfSamePadding, Trap1Stride2DependsOnInputParity) {
  EXPECT_EQ(*tf_same_padding(224, 3, 2, 1), (PadPair{0, 1}));
  EXPECT_EQ(*tf_same_padding(225, 3, 2, 1), (PadPair{1, 1}));
  EXPECT_EQ(*tf_conv_output_size(224, 3, 2, 1, TfPadding::same), 112);
  EXPECT_EQ(*tf_conv_output_size(225, 3, 2, 1, TfPadding::same), 113);
}

// Trap 1, second half: in=8, k=4, s=2: TF 'same' gives 4 outputs, PyTorch padding=k//2=2 gives 5.
TEST(TfSamePadding, Trap1ShapesDifferForEvenKernel) {
  EXPECT_EQ(*tf_conv_output_size(8, 4, 2, 1, TfPadding::same), 4);
  EXPECT_EQ(*tf_same_padding(8, 4, 2, 1), (PadPair{1, 1}));
  EXPECT_EQ(*torch_conv_output_size(8, {2, 2}, 4, 2, 1), 5);
}

// Trap 2: even kernel at stride 1: 'same' splits (1, 2) in both; padding=k//2 gives in+1 outputs.
TEST(TfSamePadding, Trap2EvenKernelStride1) {
  EXPECT_EQ(*tf_same_padding(10, 4, 1, 1), (PadPair{1, 2}));
  EXPECT_EQ(*tf_same_padding(11, 4, 1, 1), (PadPair{1, 2}));
  EXPECT_EQ(*torch_conv_output_size(10, {2, 2}, 4, 1, 1), 11);
}

TEST(TfSamePadding, DilatedAndStrided) {
  // in 11, k 3, d 2 (eff 5), s 2: out 6, need 5*2+5-11 = 4 -> (2, 2)
  EXPECT_EQ(*tf_same_padding(11, 3, 2, 2), (PadPair{2, 2}));
  // in 10: out 5, need 4*2+5-10 = 3 -> (1, 2)
  EXPECT_EQ(*tf_same_padding(10, 3, 2, 2), (PadPair{1, 2}));
  // stride larger than the kernel needs no padding: in 9, k 1, s 4: out 3, need max(0, 2*4+1-9) = 0
  EXPECT_EQ(*tf_same_padding(9, 1, 4, 1), (PadPair{0, 0}));
}

// Trap 10: TF VALID with in < eff can give an empty output without an error; PyTorch raises.
TEST(TfValid, Trap10EmptyOutputInsteadOfError) {
  EXPECT_EQ(*tf_conv_output_size(2, 3, 2, 1, TfPadding::valid), 0);  // (2-3+2)/2 = 0
  EXPECT_FALSE(torch_conv_output_size(2, {0, 0}, 3, 2, 1));
  auto negative = tf_conv_output_size(1, 5, 1, 1, TfPadding::valid);  // (1-5+1) < 0
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.error().code, ErrorCode::input_shape);
}

TEST(TfExplicit, AsymmetricPads) {
  EXPECT_EQ(*tf_conv_output_size(7, 3, 2, 1, TfPadding::explicit_pads, {0, 3}), 4);  // (7+3-3+2)/2 = 4
  EXPECT_EQ(*tf_conv_output_size(8, 3, 2, 1, TfPadding::explicit_pads, {1, 1}), 4);  // (10-3+2)/2 = 4
}

TEST(Overflow, HugeDilationIsAnErrorNotWraparound) {
  auto r = effective_kernel_size(int64_t{1} << 40, int64_t{1} << 40);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::overflow);
  EXPECT_FALSE(torch_conv_output_size(INT64_MAX, {1, 1}, 3, 1, 1));
  EXPECT_FALSE(tf_same_padding(INT64_MAX, INT64_MAX / 2, 1, 3));
}

ConvSpec conv2d(PaddingFill fill, PadPair pad) {
  ConvSpec spec;
  spec.rank = 2;
  spec.in_channels = 3;
  spec.out_channels = 4;
  spec.kernel = {3, 3};
  spec.stride = {1, 1};
  spec.dilation = {1, 1};
  spec.padding = {pad, pad};
  spec.fill = fill;
  return spec;
}

TEST(TorchOutputShape, ChecksChannelsAndPaddingModes) {
  const std::vector<int64_t> input{2, 3, 4, 5};
  EXPECT_EQ(*torch_conv_output_shape(conv2d(PaddingFill::zeros, {1, 1}), input), (std::vector<int64_t>{2, 4, 4, 5}));
  auto wrong_channels = torch_conv_output_shape(conv2d(PaddingFill::zeros, {1, 1}), std::vector<int64_t>{2, 5, 4, 5});
  ASSERT_FALSE(wrong_channels);
  EXPECT_NE(wrong_channels.error().message.find("in_channels=3"), std::string::npos);
  // reflect needs pad < size; circular allows pad == size but not more; replicate allows anything.
  EXPECT_TRUE(torch_conv_output_shape(conv2d(PaddingFill::reflect, {3, 3}), input));
  EXPECT_FALSE(torch_conv_output_shape(conv2d(PaddingFill::reflect, {4, 4}), input));
  EXPECT_TRUE(torch_conv_output_shape(conv2d(PaddingFill::circular, {4, 4}), input));
  EXPECT_FALSE(torch_conv_output_shape(conv2d(PaddingFill::circular, {5, 5}), input));
  EXPECT_TRUE(torch_conv_output_shape(conv2d(PaddingFill::replicate, {9, 9}), input));
  EXPECT_FALSE(torch_conv_output_shape(conv2d(PaddingFill::zeros, {1, 1}), std::vector<int64_t>{2, 3, 4}));
  EXPECT_FALSE(torch_conv_output_shape(conv2d(PaddingFill::zeros, {1, 1}), std::vector<int64_t>{2, 3, 0, 4}));
}

// out = (in-1)*s - 2p + d(k-1) + op + 1
TEST(TorchTransposed, OutputSize) {
  EXPECT_EQ(*torch_conv_transpose_output_size(5, {1, 1}, 3, 2, 1, 1), 10);  // 8 - 2 + 2 + 1 + 1
  EXPECT_EQ(*torch_conv_transpose_output_size(5, {1, 1}, 4, 2, 1, 0), 10);  // 8 - 2 + 3 + 1
  EXPECT_EQ(*torch_conv_transpose_output_size(4, {0, 0}, 3, 1, 3, 2), 12);  // 3 + 6 + 2 + 1
  EXPECT_EQ(*full_transposed_size(5, 3, 2, 2), 13);                          // 4*2 + 5
  auto too_small = torch_conv_transpose_output_size(2, {3, 3}, 3, 1, 1, 0);   // 1 - 6 + 2 + 1 = -2
  ASSERT_FALSE(too_small);
  EXPECT_NE(too_small.error().message.find("Output size is too small"), std::string::npos);
}

// TF's transposed window: 'same' gives in*s starting at max(L - in*s, 0)/2; explicit gives L - b - a + extra.
TEST(TfTransposed, Window) {
  // in 5, k 3, s 2: L = 11, out 10, start (11-10)/2 = 0  (Keras 'same' vs PyTorch p=1, op=1: trap 3)
  auto same = tf_conv_transpose_window(5, 3, 2, TfPadding::same);
  EXPECT_EQ(same->size, 10);
  EXPECT_EQ(same->crop_before, 0);
  // in 5, k 4, s 2: L = 12, out 10, start 1 (equals PyTorch p=1, op=0)
  EXPECT_EQ(tf_conv_transpose_window(5, 4, 2, TfPadding::same)->crop_before, 1);
  // stride larger than the kernel: L = 4*3 + 2 = 14 < in*s = 15: start 0, one output past L
  EXPECT_EQ(tf_conv_transpose_window(5, 2, 3, TfPadding::same)->size, 15);
  auto cropped = tf_conv_transpose_window(5, 3, 2, TfPadding::explicit_pads, {1, 0}, 0);
  EXPECT_EQ(cropped->size, 10);
  EXPECT_EQ(cropped->crop_before, 1);
  EXPECT_FALSE(tf_conv_transpose_window(5, 3, 2, TfPadding::explicit_pads, {0, 0}, 2));  // extra >= stride
}

TEST(Subsample, CeilDivision) {
  EXPECT_EQ(subsample_size(7, 2), 4);
  EXPECT_EQ(subsample_size(8, 2), 4);
  EXPECT_EQ(subsample_size(1, 5), 1);
}

}  // namespace
}  // namespace convbridge
