#include "convbridge/shape_math.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "convbridge/checked_math.hpp"

namespace convbridge {
namespace {

Error overflow(std::string_view what) {
  return make_error(ErrorCode::overflow, fmt::format("{} does not fit in a signed 64-bit integer", what));
}

}  // namespace

Result<int64_t> effective_kernel_size(int64_t kernel, int64_t dilation) {
  auto span = checked_mul(kernel - 1, dilation);
  if (!span || *span > INT64_MAX - 1) {
    return overflow(fmt::format("the dilated kernel extent (kernel_size-1)*dilation+1 = ({}-1)*{}+1", kernel, dilation));
  }
  return *span + 1;
}

Result<int64_t> torch_conv_output_size(int64_t in, PadPair pad, int64_t kernel, int64_t stride, int64_t dilation) {
  CONVBRIDGE_TRY(const int64_t eff, effective_kernel_size(kernel, dilation));
  auto padded = checked_add(in, pad.before);
  if (padded) padded = checked_add(*padded, pad.after);
  if (!padded) return overflow(fmt::format("the padded input size {}+{}+{}", in, pad.before, pad.after));
  if (*padded < eff) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("input size {} padded to {} is smaller than the dilated kernel extent {} "
                                  "(PyTorch: \"Kernel size can't be greater than actual input size\")",
                                  in, *padded, eff));
  }
  return (*padded - eff) / stride + 1;
}

Result<int64_t> full_transposed_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation) {
  CONVBRIDGE_TRY(const int64_t eff, effective_kernel_size(kernel, dilation));
  auto length = checked_mul(in - 1, stride);
  if (length) length = checked_add(*length, eff);
  if (!length) return overflow(fmt::format("the transposed output length ({}-1)*{}+{}", in, stride, eff));
  return *length;
}

Result<int64_t> torch_conv_transpose_output_size(int64_t in, PadPair pad, int64_t kernel, int64_t stride,
                                                 int64_t dilation, int64_t output_padding) {
  CONVBRIDGE_TRY(const int64_t full, full_transposed_size(in, kernel, stride, dilation));
  auto out = checked_sub(full, pad.before);
  if (out) out = checked_sub(*out, pad.after);
  if (out) out = checked_add(*out, output_padding);
  if (!out) return overflow("the transposed output size");
  if (*out <= 0) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("input size {} gives a transposed output size of {} (PyTorch: \"Output size is too "
                                  "small\")",
                                  in, *out));
  }
  return *out;
}

Result<PadPair> torch_same_padding(int64_t kernel, int64_t dilation) {
  CONVBRIDGE_TRY(const int64_t eff, effective_kernel_size(kernel, dilation));
  const int64_t total = eff - 1;
  return PadPair{total / 2, total - total / 2};
}

Result<PadPair> tf_same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation) {
  CONVBRIDGE_TRY(const int64_t eff, effective_kernel_size(kernel, dilation));
  const int64_t out = in / stride + (in % stride != 0 ? 1 : 0);
  auto covered = checked_mul(out - 1, stride);
  if (covered) covered = checked_add(*covered, eff);
  if (!covered) return overflow(fmt::format("the TF 'same' window extent for input size {}", in));
  const int64_t need = std::max<int64_t>(0, *covered - in);
  return PadPair{need / 2, need - need / 2};
}

Result<int64_t> tf_conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, TfPadding padding,
                                    PadPair explicit_pad) {
  CONVBRIDGE_TRY(const int64_t eff, effective_kernel_size(kernel, dilation));
  if (padding == TfPadding::same) return in / stride + (in % stride != 0 ? 1 : 0);
  int64_t padded = in;
  if (padding == TfPadding::explicit_pads) {
    auto sum = checked_add(in, explicit_pad.before);
    if (sum) sum = checked_add(*sum, explicit_pad.after);
    if (!sum) return overflow(fmt::format("the padded input size {}+{}+{}", in, explicit_pad.before, explicit_pad.after));
    padded = *sum;
  }
  // TF computes (padded - eff + stride) / stride with C++ division and rejects a negative result.
  auto numerator = checked_sub(padded, eff);
  if (numerator) numerator = checked_add(*numerator, stride);
  if (!numerator) return overflow("the TF output size numerator");
  if (*numerator < 0) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("TF: computed output size would be negative (input {} < kernel extent {})", padded, eff));
  }
  return *numerator / stride;
}

Result<TransposedWindow> tf_conv_transpose_window(int64_t in, int64_t kernel_extent, int64_t stride,
                                                  TfPadding padding, PadPair pads, int64_t extra) {
  CONVBRIDGE_TRY(const int64_t full, full_transposed_size(in, kernel_extent, stride, 1));
  if (padding == TfPadding::same) {
    auto size = checked_mul(in, stride);
    if (!size) return overflow(fmt::format("the transposed output size {}*{}", in, stride));
    return TransposedWindow{*size, std::max<int64_t>(full - *size, 0) / 2};
  }
  if (extra < 0 || extra >= stride) {
    return make_error(ErrorCode::invalid_argument,
                      fmt::format("TF needs 0 <= output_padding < stride, got {} with stride {}", extra, stride));
  }
  const int64_t before = padding == TfPadding::explicit_pads ? pads.before : 0;
  const int64_t after = padding == TfPadding::explicit_pads ? pads.after : 0;
  const int64_t size = full - before - after + extra;  // |values| < 2^62: no overflow
  if (size <= 0) {
    return make_error(ErrorCode::input_shape, fmt::format("the TF transposed output size would be {}", size));
  }
  return TransposedWindow{size, before};
}

int64_t subsample_size(int64_t n, int64_t stride) { return n / stride + (n % stride != 0 ? 1 : 0); }

Result<std::vector<int64_t>> torch_conv_output_shape(const ConvSpec& spec, std::span<const int64_t> input_shape) {
  const auto rank = static_cast<size_t>(spec.rank);
  const std::string_view letters = spatial_letters(spec.rank);
  if (input_shape.size() != rank + 2) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("input shape ({}) has {} dimensions; {} expects {}: N,C,{}",
                                  fmt::join(input_shape, ","), input_shape.size(), torch_class_name(spec), rank + 2,
                                  fmt::join(letters, ",")));
  }
  for (size_t i = 0; i < input_shape.size(); ++i) {
    if (input_shape[i] <= 0) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("input shape ({}): dimension {} is {}; every size must be positive",
                                    fmt::join(input_shape, ","), i, input_shape[i]));
    }
  }
  if (!checked_product(input_shape)) {
    return overflow(fmt::format("the element count of input shape ({})", fmt::join(input_shape, ",")));
  }
  if (input_shape[1] != spec.in_channels) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("input shape ({}) has {} channels; the layer expects in_channels={}",
                                  fmt::join(input_shape, ","), input_shape[1], spec.in_channels));
  }
  std::vector<int64_t> out{input_shape[0], spec.out_channels};
  for (size_t i = 0; i < rank; ++i) {
    const int64_t in = input_shape[i + 2];
    const PadPair pad = spec.padding[i];
    const char axis = letters[i];
    // F.pad checks (torch/nn/functional.py pad -> aten padding kernels).
    if (spec.fill == PaddingFill::reflect && (pad.before >= in || pad.after >= in)) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("padding_mode='reflect' needs padding smaller than the input: {}={} but padding "
                                    "is ({}, {}) (PyTorch: \"Padding size should be less than the corresponding input "
                                    "dimension\")",
                                    axis, in, pad.before, pad.after));
    }
    if (spec.fill == PaddingFill::circular && (pad.before > in || pad.after > in)) {
      return make_error(ErrorCode::input_shape,
                        fmt::format("padding_mode='circular' needs padding no larger than the input: {}={} but "
                                    "padding is ({}, {}) (PyTorch: \"Padding value causes wrapping around more than "
                                    "once\")",
                                    axis, in, pad.before, pad.after));
    }
    auto size = spec.transposed ? torch_conv_transpose_output_size(in, pad, spec.kernel[i], spec.stride[i],
                                                                   spec.dilation[i], spec.output_padding[i])
                                : torch_conv_output_size(in, pad, spec.kernel[i], spec.stride[i], spec.dilation[i]);
    if (!size) return make_error(size.error().code, fmt::format("{}: {}", axis, size.error().message));
    out.push_back(*size);
  }
  return out;
}

}  // namespace convbridge
