// Shape math, validation and descriptions of window pooling (PoolOp) and adaptive/global pooling (AdaptivePoolOp).
// The output-size rule is PyTorch's pooling_output_shape_pad_lr (aten/src/ATen/native/Pool.h) and TF's 'SAME'
// rule (tensorflow/core/framework/kernel_shape_util.cc GetWindowedOutputSizeVerbose); the adaptive windows are
// start_index / end_index of aten/src/ATen/native/AdaptivePooling.h.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "convbridge/checked_math.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {
namespace {

constexpr int kMaxPoolRank = 3;

std::string_view axis_name(int rank, int axis) {
  static constexpr std::string_view k1[] = {"L"};
  static constexpr std::string_view k2[] = {"H", "W"};
  static constexpr std::string_view k3[] = {"D", "H", "W"};
  if (rank == 1) return k1[axis];
  if (rank == 2) return k2[axis];
  return k3[axis];
}

std::string sizes_text(const std::vector<int64_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += "x";
    out += values[i] < 0 ? std::string("None") : std::to_string(values[i]);
  }
  return out;
}

bool all_equal_to(const std::vector<int64_t>& values, int64_t v) {
  for (int64_t x : values) {
    if (x != v) return false;
  }
  return true;
}

Error invalid_op(std::string message) { return make_error(ErrorCode::invalid_argument, std::move(message)); }

std::string pool_name(const PoolOp& op) { return op.kind == PoolKind::max ? "max pooling" : "average pooling"; }

}  // namespace

int64_t pool_effective_kernel(const PoolOp& op, int axis) {
  const auto a = static_cast<size_t>(axis);
  return (op.kernel[a] - 1) * op.dilation[a] + 1;
}

bool pool_is_padding(const PoolOp& op) {
  return all_equal_to(op.kernel, 1) && all_equal_to(op.stride, 1) && op.padding == PoolPadding::explicit_pads;
}

Status validate(const PoolOp& op) {
  if (op.rank < 1 || op.rank > kMaxPoolRank) {
    return invalid_op(fmt::format("pooling has spatial rank {}; 1, 2 or 3 are supported", op.rank));
  }
  const auto rank = static_cast<size_t>(op.rank);
  if (op.kernel.size() != rank || op.stride.size() != rank || op.dilation.size() != rank ||
      (op.padding == PoolPadding::explicit_pads && op.pads.size() != rank)) {
    return invalid_op(fmt::format("pooling of rank {} needs {} kernel, stride, dilation and pad entries", op.rank,
                                  op.rank));
  }
  for (size_t i = 0; i < rank; ++i) {
    if (op.kernel[i] <= 0 || op.kernel[i] > kMaxSizeArgument) {
      return invalid_op(fmt::format("pooling kernel size {} must be in 1..{}", op.kernel[i], kMaxSizeArgument));
    }
    if (op.stride[i] <= 0 || op.stride[i] > kMaxSizeArgument) {
      return invalid_op(fmt::format("pooling stride {} must be in 1..{}", op.stride[i], kMaxSizeArgument));
    }
    if (op.dilation[i] <= 0 || op.dilation[i] > kMaxSizeArgument) {
      return invalid_op(fmt::format("pooling dilation {} must be in 1..{}", op.dilation[i], kMaxSizeArgument));
    }
    if (op.kind == PoolKind::average && op.dilation[i] != 1) {
      return invalid_op("average pooling has no dilation");
    }
    if (op.padding == PoolPadding::explicit_pads &&
        (op.pads[i].before < 0 || op.pads[i].after < 0 || op.pads[i].before > kMaxSizeArgument ||
         op.pads[i].after > kMaxSizeArgument)) {
      return invalid_op(fmt::format("pooling pads ({}, {}) must be in 0..{}", op.pads[i].before, op.pads[i].after,
                                    kMaxSizeArgument));
    }
  }
  if ((op.divisor == AverageDivisor::fixed) != (op.divisor_override != 0)) {
    return invalid_op("a fixed average divisor needs a non-zero divisor_override, and only it has one");
  }
  if (op.kind == PoolKind::max && op.divisor == AverageDivisor::fixed) {
    return invalid_op("max pooling has no divisor");
  }
  return Ok{};
}

Result<PadPair> pool_pads(const PoolOp& op, int axis, int64_t in) {
  const auto a = static_cast<size_t>(axis);
  if (op.padding == PoolPadding::explicit_pads) return op.pads[a];
  // TF 'SAME': out = ceil(in / s); need = max((out - 1) * s + eff - in, 0); before = need / 2, the rest after.
  const int64_t stride = op.stride[a];
  const int64_t out = (in + stride - 1) / stride;  // in, stride <= 2^31: no overflow
  const auto span = checked_add(*checked_mul(out - 1, stride), pool_effective_kernel(op, axis));
  if (!span) return make_error(ErrorCode::overflow, "pooling window span overflows 64 bits");
  const int64_t need = std::max<int64_t>(*span - in, 0);
  return PadPair{need / 2, need - need / 2};
}

Result<int64_t> pool_output_size(const PoolOp& op, int axis, int64_t in) {
  const auto a = static_cast<size_t>(axis);
  const int64_t stride = op.stride[a];
  if (op.padding == PoolPadding::tf_same) return (in + stride - 1) / stride;
  const PadPair pads = op.pads[a];
  const int64_t effective = pool_effective_kernel(op, axis);
  if (op.input_covers_kernel && in < op.kernel[a]) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("{} {}: axis {} of size {} is smaller than the kernel size {} (PyTorch's avg_pool3d "
                                  "checks the size before padding: \"input image smaller than kernel size\")",
                                  pool_name(op), "3-D", axis_name(op.rank, axis), in, op.kernel[a]));
  }
  // Every term is at most 2^31 (validate, kMaxSizeArgument) except `in`, which comes from a shape: check it.
  const auto padded = checked_add(in, pads.before + pads.after);
  if (!padded) return make_error(ErrorCode::overflow, fmt::format("input size {} plus the pads overflows", in));
  const int64_t numerator = *padded - effective + (op.ceil_mode ? stride - 1 : 0);
  int64_t out = floor_div(numerator, stride) + 1;
  // PyTorch: "ensure that the last pooling starts inside the image" (Pool.h pooling_output_shape_pad_lr).
  if (op.ceil_mode && (out - 1) * stride >= in + pads.before) --out;
  if (out < 1) {
    return make_error(ErrorCode::input_shape,
                      fmt::format("{} with kernel {} (dilated extent {}) and pads ({}, {}): axis {} of size {} gives "
                                  "output size {} (PyTorch: \"Output size is too small\"); the padded axis must "
                                  "hold the kernel extent",
                                  pool_name(op), op.kernel[a], effective, pads.before, pads.after,
                                  axis_name(op.rank, axis), in, out));
  }
  return out;
}

Result<std::vector<int64_t>> output_shape(const PoolOp& op, std::span<const int64_t> input_shape) {
  CONVBRIDGE_CHECK(ops::check_input_rank(input_shape, op.rank, pool_name(op)));
  std::vector<int64_t> out(input_shape.begin(), input_shape.end());
  for (int axis = 0; axis < op.rank; ++axis) {
    CONVBRIDGE_TRY(out[static_cast<size_t>(axis) + 2],
                   pool_output_size(op, axis, input_shape[static_cast<size_t>(axis) + 2]));
  }
  return out;
}

Status validate(const AdaptivePoolOp& op) {
  if (op.rank < 1 || op.rank > kMaxPoolRank) {
    return invalid_op(fmt::format("adaptive pooling has spatial rank {}; 1, 2 or 3 are supported", op.rank));
  }
  if (op.output_size.size() != static_cast<size_t>(op.rank)) {
    return invalid_op(fmt::format("adaptive pooling of rank {} needs {} output sizes", op.rank, op.rank));
  }
  for (const int64_t size : op.output_size) {
    if ((size <= 0 && size != kUnknownSize) || size > kMaxSizeArgument) {
      return invalid_op(fmt::format("adaptive pooling output size {} must be in 1..{} or None", size,
                                    kMaxSizeArgument));
    }
  }
  if (!op.keep_dims && !all_equal_to(op.output_size, 1)) {
    return invalid_op("adaptive pooling drops the spatial axes only when every output size is 1");
  }
  return Ok{};
}

Result<std::vector<int64_t>> output_shape(const AdaptivePoolOp& op, std::span<const int64_t> input_shape) {
  CONVBRIDGE_CHECK(ops::check_input_rank(input_shape, op.rank,
                                         op.kind == PoolKind::max ? "adaptive max pooling" : "adaptive average pooling"));
  if (!op.keep_dims) return std::vector<int64_t>{input_shape[0], input_shape[1]};
  std::vector<int64_t> out(input_shape.begin(), input_shape.end());
  for (size_t axis = 0; axis < op.output_size.size(); ++axis) {
    if (op.output_size[axis] != kUnknownSize) out[axis + 2] = op.output_size[axis];
  }
  return out;
}

// i * in / out with i < out <= 2^31 and `in` from a shape: 128-bit products keep it exact for any int64 input.
__extension__ typedef __int128 Wide;
int64_t adaptive_start(int64_t i, int64_t in, int64_t out) {
  return static_cast<int64_t>((static_cast<Wide>(i) * in) / out);
}

int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  const Wide numerator = static_cast<Wide>(i + 1) * in;
  return static_cast<int64_t>((numerator + out - 1) / out);
}

namespace ops {

std::string describe(const PoolOp& op) {
  std::vector<std::string> pads;
  if (op.padding == PoolPadding::explicit_pads) {
    for (int axis = 0; axis < op.rank; ++axis) {
      const PadPair p = op.pads[static_cast<size_t>(axis)];
      pads.push_back(fmt::format("{} ({}, {})", axis_name(op.rank, axis), p.before, p.after));
    }
  }
  std::string pads_text;
  for (size_t i = 0; i < pads.size(); ++i) pads_text += (i > 0 ? " " : "") + pads[i];
  if (pool_is_padding(op)) {
    if (op.kind == PoolKind::max) return fmt::format("padding with -inf, pads {}", pads_text);
    if (op.divisor == AverageDivisor::fixed && op.divisor_override == 1) {
      return fmt::format("padding with zeros, pads {}", pads_text);
    }
  }
  std::string out = fmt::format("{} {} stride {}", pool_name(op), sizes_text(op.kernel), sizes_text(op.stride));
  if (!all_equal_to(op.dilation, 1)) out += fmt::format(" dilation {}", sizes_text(op.dilation));
  if (op.padding == PoolPadding::tf_same) {
    out += ", TF 'SAME' pads (split from the input size, the extra one after)";
  } else {
    out += ", pads " + pads_text;
    if (op.ceil_mode) out += ", ceil_mode: a last window that starts inside the input";
  }
  if (op.kind == PoolKind::max) return out + " (padding is -inf)";
  switch (op.divisor) {
    case AverageDivisor::window_clipped_to_padding:
      return out + ", divides by the window clipped to the padded input (count_include_pad=True)";
    case AverageDivisor::valid_elements:
      return out + ", divides by the input elements in the window (padding excluded)";
    case AverageDivisor::fixed:
      return out + fmt::format(", divides by {} (divisor_override)", op.divisor_override);
  }
  return out;
}

std::vector<OpWeight> weights_of(const PoolOp&, std::span<const int64_t>) { return {}; }
int rank_of(const PoolOp& op) { return op.rank; }

std::string describe(const AdaptivePoolOp& op) {
  const std::string kind = op.kind == PoolKind::max ? "max" : "average";
  if (all_equal_to(op.output_size, 1)) {
    return fmt::format("global {} pooling over the {}-D spatial axes{}", kind, op.rank,
                       op.keep_dims ? " (kept as size 1)" : ", output (N, C)");
  }
  return fmt::format("adaptive {} pooling to {} (None keeps the size): output i of an axis of size n reads "
                     "[floor(i*n/out), ceil((i+1)*n/out))",
                     kind, sizes_text(op.output_size));
}

std::vector<OpWeight> weights_of(const AdaptivePoolOp&, std::span<const int64_t>) { return {}; }
int rank_of(const AdaptivePoolOp& op) { return op.rank; }

}  // namespace ops
}  // namespace convbridge
