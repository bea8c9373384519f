// Output-size and per-side padding formulas of both frameworks, as small pure functions shared by the planner,
// the engine and the explanation. Each cites the upstream function it mirrors. All arithmetic is checked.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "convbridge/conv_spec.hpp"
#include "convbridge/result.hpp"

namespace convbridge {

// (k - 1) * d + 1: the extent one kernel window covers.
Result<int64_t> effective_kernel_size(int64_t kernel, int64_t dilation);

// PyTorch forward conv (aten/src/ATen/native/ConvUtils.h conv_output_size):
//   out = floor((in + before + after - eff) / stride) + 1; fails when the padded input is shorter than eff.
Result<int64_t> torch_conv_output_size(int64_t in, PadPair pad, int64_t kernel, int64_t stride, int64_t dilation);

// PyTorch transposed conv (torch/nn/modules/conv.py _ConvTransposeNd, ConvUtils.h):
//   out = (in - 1) * s - before - after + (k - 1) * d + output_padding + 1; fails unless out > 0.
Result<int64_t> torch_conv_transpose_output_size(int64_t in, PadPair pad, int64_t kernel, int64_t stride,
                                                 int64_t dilation, int64_t output_padding);

// Full transposed length L = (in - 1) * s + (k - 1) * d + 1: every input position times every kernel tap.
Result<int64_t> full_transposed_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation);

// PyTorch padding='same' (torch/nn/modules/conv.py _ConvNd.__init__): total = d*(k-1),
// before = total // 2, after = total - before (the odd unit goes after).
Result<PadPair> torch_same_padding(int64_t kernel, int64_t dilation);

// TensorFlow padding modes (tensorflow/core/framework/kernel_shape_util.cc GetWindowedOutputSizeVerbose).
enum class TfPadding { valid, same, explicit_pads };

// TF 'SAME': out = ceil(in / s); need = max(0, (out-1)*s + eff - in); before = need / 2, after = need - before.
// Depends on `in` whenever stride > 1.
Result<PadPair> tf_same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation);

// TF output size for VALID / SAME / EXPLICIT. VALID with in < eff yields (in - eff + s) / s, which TF accepts when
// it is 0 (an empty output) and rejects when negative; this function mirrors that.
Result<int64_t> tf_conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, TfPadding padding,
                                    PadPair explicit_pad = {});

// One axis of a TF transposed convolution (tf.nn.conv_transpose as Keras' ConvNDTranspose calls it), with z the
// full transposed result of length L = (in-1)*s + kernel_extent: the output has `size` elements and
// y[x] = z[x + crop_before] (0 past L). 'same' (output_padding None): size = in*s, crop = max(L-size, 0)/2
// (conv_grad_input_ops.h derives it from the forward SAME padding of `size`). Explicit pads (before, after) with
// 0 <= extra < s: size = L - before - after + extra, crop = before.
struct TransposedWindow {
  int64_t size = 0;
  int64_t crop_before = 0;
};
Result<TransposedWindow> tf_conv_transpose_window(int64_t in, int64_t kernel_extent, int64_t stride,
                                                  TfPadding padding, PadPair pads = {}, int64_t extra = 0);

// Strided slice x[::s] of a length-n axis: ceil(n / s) elements.
int64_t subsample_size(int64_t n, int64_t stride);

// Output shape (N, C_out, *spatial) of a PyTorch conv (forward or transposed) for input (N, C_in, *spatial),
// including the checks PyTorch makes at forward time: channel count, kernel not larger than the padded input,
// reflect pad < size, circular pad <= size, a positive transposed output size.
Result<std::vector<int64_t>> torch_conv_output_shape(const ConvSpec& spec, std::span<const int64_t> input_shape);

}  // namespace convbridge
