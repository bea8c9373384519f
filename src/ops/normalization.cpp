// Shape math, validation and descriptions of the normalization ops (convbridge/ops/normalization.hpp).
// The run-time checks mirror the source frameworks:
//   PyTorch torch/nn/modules/batchnorm.py (BatchNorm1d/2d/3d._check_input_dim: "expected 4D input (got 3D input)"),
//   torch/nn/modules/instancenorm.py (_InstanceNorm._check_input_dim), torch/nn/functional.py (group_norm,
//   layer_norm: "Given normalized_shape=..., expected input with shape [*, ...]");
//   Keras keras/src/layers/normalization/group_normalization.py (GroupNormalization.build: "Number of groups (..)
//   cannot be more than the number of channels (..)", "must be a multiple of the number of channels").
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "convbridge/checked_math.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/ops/op.hpp"
#include "ops/op_kinds.hpp"

namespace convbridge {
namespace {

Error input_error(std::string message) { return make_error(ErrorCode::input_shape, std::move(message)); }

std::string number_text(double value) { return fmt::format("{}", value); }

// The input ranks a layer demanding spatial rank `rank` takes: BatchNorm1d takes (N, C) and (N, C, L); the others
// exactly rank + 2 dimensions; rank 0 any rank from 2 on.
Status check_norm_rank(std::span<const int64_t> input_shape, int rank, bool accepts_unspatial, std::string_view what) {
  const size_t dims = input_shape.size();
  if (dims < 2) {
    return input_error(fmt::format("{} takes (N, C, *spatial) input: a shape with at least 2 entries, got {}", what,
                                   dims));
  }
  if (rank > 0) {
    const size_t wanted = static_cast<size_t>(rank) + 2;
    if (dims != wanted && !(accepts_unspatial && dims == 2)) {
      return input_error(fmt::format("{} expected {}D input (got {}D input)", what,
                                     accepts_unspatial ? fmt::format("2D or {}", wanted) : std::to_string(wanted), dims));
    }
  }
  for (const int64_t size : input_shape) {
    if (size <= 0) return input_error(fmt::format("{} got an input shape with the size {}", what, size));
  }
  CONVBRIDGE_TRY(auto elements, [&]() -> Result<int64_t> {
    if (auto n = checked_product(input_shape)) return *n;
    return input_error(fmt::format("{}: the input shape ({}) has more elements than fit in 64 bits", what,
                                   fmt::join(input_shape, ", ")));
  }());
  (void)elements;
  return Ok{};
}

std::string affine_text(bool scale, bool center) {
  if (scale && center) return "gamma and beta";
  if (scale) return "gamma, no beta";
  if (center) return "beta, no gamma";
  return "no gamma or beta";
}

}  // namespace

double momentum_complement(double momentum) {
  // A 15-digit decimal round-trips: the shortest text of the result reads back as the same double.
  const double exact = 1.0 - momentum;
  const double rounded = std::stod(fmt::format("{:.15g}", exact));
  // 1 - momentum is exact to half an ulp of 1 (the subtraction's rounding), whatever the size of the result.
  const double one_ulp = std::nextafter(1.0, 2.0) - 1.0;
  return std::abs(rounded - exact) <= one_ulp ? rounded : exact;
}

Status validate(const BatchNormOp& op) {
  if (op.channels < 0) return make_error(ErrorCode::invalid_argument, fmt::format("num_features={} must be positive", op.channels));
  if (!(op.epsilon >= 0.0) || !std::isfinite(op.epsilon)) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("eps={} is not translated: the variance plus eps is square-rooted, so a negative or "
                                  "non-finite eps gives NaN for small variances",
                                  op.epsilon));
  }
  if (!std::isfinite(op.momentum_torch)) {
    return make_error(ErrorCode::invalid_argument, fmt::format("momentum={} must be a finite float", op.momentum_torch));
  }
  if (op.rank < 0 || op.rank > 3) {
    return make_error(ErrorCode::unsupported, fmt::format("batch norm of spatial rank {} is not supported", op.rank));
  }
  return Ok{};
}

Result<std::vector<int64_t>> output_shape(const BatchNormOp& op, std::span<const int64_t> input_shape) {
  CONVBRIDGE_CHECK(validate(op));
  const std::string what = op.rank > 0 ? fmt::format("BatchNorm{}d", op.rank) : "batch normalization";
  CONVBRIDGE_CHECK(check_norm_rank(input_shape, op.rank, /*accepts_unspatial=*/op.rank == 1, what));
  if (op.channels > 0 && input_shape[1] != op.channels) {
    // PyTorch: "running_mean should contain 4 elements not 3" (aten batch_norm); the channel axis is at fault.
    return input_error(fmt::format("{} was built for {} channels (num_features), but the input has {} channels",
                                   what, op.channels, input_shape[1]));
  }
  return std::vector<int64_t>(input_shape.begin(), input_shape.end());
}

Status validate(const NormOp& op) {
  if (!(op.epsilon >= 0.0) || !std::isfinite(op.epsilon)) {
    return make_error(ErrorCode::unsupported,
                      fmt::format("eps={} is not translated: the variance plus eps is square-rooted, so a negative or "
                                  "non-finite eps gives NaN for small variances",
                                  op.epsilon));
  }
  if (op.channels < 0) return make_error(ErrorCode::invalid_argument, fmt::format("num_channels={} must be positive", op.channels));
  switch (op.axes) {
    case NormAxes::group:
      if (op.groups < 0) return make_error(ErrorCode::invalid_argument, fmt::format("groups={} must be positive", op.groups));
      // Divisibility is a property of the input's channel count: output_shape checks it (the PyTorch front-end
      // checks GroupNorm's own num_channels as GroupNorm.__init__ does).
      break;
    case NormAxes::trailing:
      if (op.normalized_shape.empty()) {
        return make_error(ErrorCode::unsupported, "normalized_shape=() normalizes over no axis: not translated");
      }
      for (const int64_t size : op.normalized_shape) {
        if (size <= 0) {
          return make_error(ErrorCode::invalid_argument,
                            fmt::format("normalized_shape=({}) must hold positive sizes",
                                        fmt::join(op.normalized_shape, ", ")));
        }
      }
      if (!checked_product(op.normalized_shape)) {
        return make_error(ErrorCode::invalid_argument,
                          fmt::format("normalized_shape=({}) has more elements than fit in 64 bits",
                                      fmt::join(op.normalized_shape, ", ")));
      }
      break;
    case NormAxes::channel: break;
  }
  return Ok{};
}

Result<std::vector<int64_t>> output_shape(const NormOp& op, std::span<const int64_t> input_shape) {
  if (op.axes == NormAxes::group && op.groups > 0 && input_shape.size() >= 2 && input_shape[1] > 0) {
    const int64_t channels = input_shape[1];
    // Keras GroupNormalization.build and PyTorch F.group_norm ("Expected number of channels in input to be
    // divisible by num_groups") check this on the input; first, so that a Keras layer whose channel count the
    // input gives is told in Keras' words.
    if (op.groups > channels) {
      return input_error(fmt::format("Number of groups ({}) cannot be more than the number of channels ({})",
                                     op.groups, channels));
    }
    if (channels % op.groups != 0) {
      return input_error(fmt::format("the input's {} channels are not divisible into {} groups", channels, op.groups));
    }
  }
  CONVBRIDGE_CHECK(validate(op));
  const char* what = op.axes == NormAxes::group     ? "group normalization"
                     : op.axes == NormAxes::trailing ? "LayerNorm"
                                                     : "channel layer normalization";
  CONVBRIDGE_CHECK(check_norm_rank(input_shape, op.rank, /*accepts_unspatial=*/false, what));
  const int64_t channels = input_shape[1];
  if (op.axes != NormAxes::trailing && op.channels > 0 && channels != op.channels) {
    return input_error(fmt::format("{} was built for {} channels, but the input has {} channels", what, op.channels,
                                   channels));
  }
  if (op.axes == NormAxes::trailing) {
    const size_t k = op.normalized_shape.size();
    const bool matches = input_shape.size() >= k &&
                         std::equal(op.normalized_shape.begin(), op.normalized_shape.end(), input_shape.end() - static_cast<std::ptrdiff_t>(k));
    if (!matches) {
      // The wording of torch/nn/functional.py layer_norm's check (aten/src/ATen/native/layer_norm.h).
      return input_error(fmt::format("Given normalized_shape=[{}], expected input with shape [*, {}], but got input "
                                     "of size [{}]",
                                     fmt::join(op.normalized_shape, ", "), fmt::join(op.normalized_shape, ", "),
                                     fmt::join(input_shape, ", ")));
    }
  }
  return std::vector<int64_t>(input_shape.begin(), input_shape.end());
}

std::vector<int64_t> norm_parameter_shape(const NormOp& op, std::span<const int64_t> input_shape) {
  if (op.axes == NormAxes::trailing) return op.normalized_shape;
  const int64_t channels = op.channels > 0 ? op.channels : input_shape.size() >= 2 ? input_shape[1] : kUnknownSize;
  return {channels};
}

namespace ops {

std::string describe(const BatchNormOp& op) {
  const std::string channels = op.channels > 0 ? fmt::format(" of {} channels", op.channels) : "";
  if (op.use_batch_statistics) {
    return fmt::format("batch normalization{} with the batch's own statistics (mean and biased variance over N and "
                       "every position, also in eval: track_running_stats=False), eps {}, {}",
                       channels, number_text(op.epsilon), affine_text(op.scale, op.center));
  }
  const std::string momentum =
      op.cumulative_average
          ? "training updates them with a cumulative average (PyTorch momentum=None)"
          : fmt::format("training updates them as (1 - {}) * old + {} * batch (PyTorch momentum {}, Keras momentum {})",
                        number_text(op.momentum_torch), number_text(op.momentum_torch), number_text(op.momentum_torch),
                        number_text(momentum_complement(op.momentum_torch)));
  return fmt::format("batch normalization{} with running statistics: (x - running_mean) / sqrt(running_var + {}), "
                     "{}; {}",
                     channels, number_text(op.epsilon), affine_text(op.scale, op.center), momentum);
}

std::vector<OpWeight> weights_of(const BatchNormOp& op, std::span<const int64_t> input_shape) {
  const int64_t channels = op.channels > 0 ? op.channels : input_shape.size() >= 2 ? input_shape[1] : kUnknownSize;
  std::vector<OpWeight> out;
  if (op.scale) out.push_back({"gamma", {channels}});
  if (op.center) out.push_back({"beta", {channels}});
  if (!op.use_batch_statistics) {
    out.push_back({"running_mean", {channels}});
    out.push_back({"running_var", {channels}});
  }
  return out;
}

int rank_of(const BatchNormOp& op) { return op.rank; }

std::string describe(const NormOp& op) {
  const std::string eps = number_text(op.epsilon);
  switch (op.axes) {
    case NormAxes::group: {
      const std::string channels = op.channels > 0 ? fmt::format("{}", op.channels) : "C";
      if (op.groups == 0 || (op.channels > 0 && op.groups == op.channels)) {
        return fmt::format("instance normalization: per sample and channel over every position (C={}), eps {}, {} "
                           "per channel",
                           channels, eps, affine_text(op.scale, op.center));
      }
      return fmt::format("group normalization: {} channels in {} contiguous groups, per sample over each group's "
                         "channels and every position, eps {}, {} per channel",
                         channels, op.groups, eps, affine_text(op.scale, op.center));
    }
    case NormAxes::trailing:
      return fmt::format("layer normalization over the trailing {} axes ({}) of (N, C, *spatial), per sample, eps {}, "
                         "elementwise {}",
                         op.normalized_shape.size(), fmt::join(op.normalized_shape, ", "), eps,
                         affine_text(op.scale, op.center));
    case NormAxes::channel:
      return fmt::format("channel layer normalization: over C alone at each position (Keras axis=-1 on channels_last), "
                         "eps {}, {} per channel",
                         eps, affine_text(op.scale, op.center));
  }
  return "normalization";
}

std::vector<OpWeight> weights_of(const NormOp& op, std::span<const int64_t> input_shape) {
  const std::vector<int64_t> shape = norm_parameter_shape(op, input_shape);
  std::vector<OpWeight> out;
  if (op.scale) out.push_back({"gamma", shape});
  if (op.center) out.push_back({"beta", shape});
  return out;
}

int rank_of(const NormOp& op) { return op.rank; }

}  // namespace ops
}  // namespace convbridge
