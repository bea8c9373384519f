// Reference engine for the normalization ops: float64, two passes (mean, then the biased variance as the mean of
// squared deviations), no fused formulas, so that it is plainly the definition in convbridge/ops/normalization.hpp.
#include <fmt/format.h>

#include <cmath>

#include "convbridge/ops/op.hpp"
#include "engine/ops/run_ops.hpp"

namespace convbridge::engine {
namespace {

// The weight of `role` among the op's OpWeights (op_weights order), or nullptr when the op has none.
const Tensor* weight_of(const Op& op, std::span<const int64_t> input_shape, std::span<const Tensor> weights,
                        std::string_view role) {
  const auto wanted = op_weights(op, input_shape);
  for (size_t i = 0; i < wanted.size() && i < weights.size(); ++i) {
    if (wanted[i].role == role) return &weights[i];
  }
  return nullptr;
}

Status check_weight_count(const Op& op, std::span<const int64_t> input_shape, std::span<const Tensor> weights) {
  const auto wanted = op_weights(op, input_shape);
  if (wanted.size() != weights.size()) {
    return make_error(ErrorCode::unsupported, fmt::format("{} takes {} weights, got {}", describe_op(op),
                                                          wanted.size(), weights.size()));
  }
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (static_cast<int64_t>(weights[i].data.size()) != element_count(wanted[i].shape)) {
      return make_error(ErrorCode::unsupported, fmt::format("weight '{}' has {} values, expected {}", wanted[i].role,
                                                            weights[i].data.size(), element_count(wanted[i].shape)));
    }
  }
  return Ok{};
}

struct Moments {
  double mean = 0.0;
  double variance = 0.0;  // biased: divided by the count
};

// Mean and biased variance of the elements at `offsets` of `data`.
Moments moments_of(const std::vector<double>& data, const std::vector<int64_t>& offsets) {
  Moments m;
  for (const int64_t o : offsets) m.mean += data[static_cast<size_t>(o)];
  m.mean /= static_cast<double>(offsets.size());
  for (const int64_t o : offsets) {
    const double d = data[static_cast<size_t>(o)] - m.mean;
    m.variance += d * d;
  }
  m.variance /= static_cast<double>(offsets.size());
  return m;
}

}  // namespace

Result<Tensor> run(const BatchNormOp& op, const Tensor& input, std::span<const Tensor> weights) {
  CONVBRIDGE_TRY(auto out_shape, output_shape(op, input.shape));
  const Op as_op = op;
  CONVBRIDGE_CHECK(check_weight_count(as_op, input.shape, weights));
  const int64_t batch = input.shape[0];
  const int64_t channels = input.shape[1];
  const int64_t positions = element_count(input.shape) / (batch * channels);
  const Tensor* gamma = weight_of(as_op, input.shape, weights, "gamma");
  const Tensor* beta = weight_of(as_op, input.shape, weights, "beta");
  const Tensor* running_mean = weight_of(as_op, input.shape, weights, "running_mean");
  const Tensor* running_var = weight_of(as_op, input.shape, weights, "running_var");
  Tensor out{out_shape, std::vector<double>(input.data.size())};
  for (int64_t c = 0; c < channels; ++c) {
    std::vector<int64_t> offsets;
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t p = 0; p < positions; ++p) offsets.push_back((n * channels + c) * positions + p);
    }
    Moments m;
    if (op.use_batch_statistics) {
      m = moments_of(input.data, offsets);
    } else {
      m.mean = running_mean->data[static_cast<size_t>(c)];
      m.variance = running_var->data[static_cast<size_t>(c)];
    }
    const double g = gamma ? gamma->data[static_cast<size_t>(c)] : 1.0;
    const double b = beta ? beta->data[static_cast<size_t>(c)] : 0.0;
    for (const int64_t o : offsets) {
      out.data[static_cast<size_t>(o)] =
          (input.data[static_cast<size_t>(o)] - m.mean) / std::sqrt(m.variance + op.epsilon) * g + b;
    }
  }
  return out;
}

Result<Tensor> run(const NormOp& op, const Tensor& input, std::span<const Tensor> weights) {
  CONVBRIDGE_TRY(auto out_shape, output_shape(op, input.shape));
  const Op as_op = op;
  CONVBRIDGE_CHECK(check_weight_count(as_op, input.shape, weights));
  const Tensor* gamma = weight_of(as_op, input.shape, weights, "gamma");
  const Tensor* beta = weight_of(as_op, input.shape, weights, "beta");
  const int64_t batch = input.shape[0];
  const int64_t channels = input.shape[1];
  const int64_t positions = element_count(input.shape) / (batch * channels);
  Tensor out{out_shape, std::vector<double>(input.data.size())};
  // Each normalization set (a list of element offsets) with, per element, the index into gamma/beta.
  auto normalize = [&](const std::vector<int64_t>& offsets, const std::vector<int64_t>& parameter_index) {
    const Moments m = moments_of(input.data, offsets);
    for (size_t i = 0; i < offsets.size(); ++i) {
      const auto o = static_cast<size_t>(offsets[i]);
      const auto p = static_cast<size_t>(parameter_index[i]);
      const double g = gamma ? gamma->data[p] : 1.0;
      const double b = beta ? beta->data[p] : 0.0;
      out.data[o] = (input.data[o] - m.mean) / std::sqrt(m.variance + op.epsilon) * g + b;
    }
  };
  switch (op.axes) {
    case NormAxes::group: {
      const int64_t groups = op.groups == 0 ? channels : op.groups;
      const int64_t per_group = channels / groups;
      for (int64_t n = 0; n < batch; ++n) {
        for (int64_t g = 0; g < groups; ++g) {
          std::vector<int64_t> offsets;
          std::vector<int64_t> index;
          for (int64_t c = g * per_group; c < (g + 1) * per_group; ++c) {
            for (int64_t p = 0; p < positions; ++p) {
              offsets.push_back((n * channels + c) * positions + p);
              index.push_back(c);
            }
          }
          normalize(offsets, index);
        }
      }
      break;
    }
    case NormAxes::channel:
      for (int64_t n = 0; n < batch; ++n) {
        for (int64_t p = 0; p < positions; ++p) {
          std::vector<int64_t> offsets;
          std::vector<int64_t> index;
          for (int64_t c = 0; c < channels; ++c) {
            offsets.push_back((n * channels + c) * positions + p);
            index.push_back(c);
          }
          normalize(offsets, index);
        }
      }
      break;
    case NormAxes::trailing: {
      // The trailing block is contiguous in row-major order: blocks of `block` elements, gamma indexed within it.
      const int64_t block = element_count(op.normalized_shape);
      const int64_t blocks = element_count(input.shape) / block;
      for (int64_t b = 0; b < blocks; ++b) {
        std::vector<int64_t> offsets;
        std::vector<int64_t> index;
        for (int64_t i = 0; i < block; ++i) {
          offsets.push_back(b * block + i);
          index.push_back(i);
        }
        normalize(offsets, index);
      }
      break;
    }
  }
  return out;
}

}  // namespace convbridge::engine
