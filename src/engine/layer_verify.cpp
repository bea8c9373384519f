// verify_plan for the op set: the source op and the plan's steps, both with neutral semantics in float64, on random
// inputs and weights. It checks the planner's rewrites (a ceil_mode pool as -inf padding plus a valid pool, a
// Keras BatchNormalization(center only) as a PyTorch BatchNorm with unit gamma, ...); what each framework call
// computes is checked against the real frameworks by the differential tests.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "convbridge/checked_math.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"

namespace convbridge {
namespace {

constexpr int64_t kVerificationBatch = 2;
constexpr int64_t kLargestSampledSize = 40;

Tensor random_tensor(std::vector<int64_t> shape, std::mt19937_64& rng, double low, double high) {
  std::uniform_real_distribution<double> uniform(low, high);
  Tensor t{std::move(shape), {}};
  t.data.resize(static_cast<size_t>(*checked_product(t.shape)));
  for (double& v : t.data) v = uniform(rng);
  return t;
}

// The channel count to sample with when the plan leaves it open: the first that the op accepts (PixelShuffle
// needs a multiple of r*r).
int64_t sample_channels(const Op& op, int rank) {
  for (const int64_t channels : {3, 4, 8, 12, 16, 18, 27, 32, 48, 64}) {
    std::vector<int64_t> shape(static_cast<size_t>(rank) + 2, 16);
    shape[0] = 1;
    shape[1] = channels;
    if (op_output_shape(op, shape).ok()) return channels;
  }
  // A layer that fixes its channel count (nn.GroupNorm(2, 6)) takes only that one.
  for (int64_t channels = 1; channels <= 64; ++channels) {
    std::vector<int64_t> shape(static_cast<size_t>(rank) + 2, 16);
    shape[0] = 1;
    shape[1] = channels;
    if (op_output_shape(op, shape).ok()) return channels;
  }
  return 4;
}

// Input shapes to check: the plan's own when every size is known; otherwise, for each unknown spatial size, the
// smallest one the op accepts and three larger ones (odd and even), with batch 2.
std::vector<std::vector<int64_t>> sample_shapes(const LayerPlan& plan) {
  std::vector<int64_t> base = plan.channels_first_input;
  const int rank = base.empty() ? (op_rank(plan.source.op) > 0 ? op_rank(plan.source.op) : 2)
                                : static_cast<int>(base.size()) - 2;
  if (base.empty()) base.assign(static_cast<size_t>(rank) + 2, kUnknownSize);
  if (std::all_of(base.begin(), base.end(), [](int64_t v) { return v > 0; })) return {base};
  if (base[0] <= 0) base[0] = kVerificationBatch;
  if (base[1] <= 0) base[1] = sample_channels(plan.source.op, rank);
  // The smallest accepted size, all unknown axes at once (most ops' constraint is per axis and alike).
  int64_t smallest = 0;
  for (int64_t size = 1; size <= kLargestSampledSize && smallest == 0; ++size) {
    std::vector<int64_t> shape = base;
    for (size_t i = 2; i < shape.size(); ++i) {
      if (shape[i] <= 0) shape[i] = size;
    }
    if (op_output_shape(plan.source.op, shape).ok()) smallest = size;
  }
  if (smallest == 0) return {};
  std::vector<std::vector<int64_t>> shapes;
  for (const int64_t extra : {0, 1, 2, 5}) {
    std::vector<int64_t> shape = base;
    int64_t axis_offset = 0;
    for (size_t i = 2; i < shape.size(); ++i) {
      if (shape[i] <= 0) shape[i] = smallest + extra + axis_offset++;  // unequal sizes catch swapped axes
    }
    if (op_output_shape(plan.source.op, shape).ok()) shapes.push_back(shape);
  }
  return shapes;
}

// Rough operations of one op on one input: elements in and out times the work per output element.
int64_t op_cost(const Op& op, std::span<const int64_t> input, std::span<const int64_t> output) {
  int64_t per_element = 1;
  if (const auto* pool = std::get_if<PoolOp>(&op)) {
    per_element = std::max<int64_t>(1, checked_product(pool->kernel).value_or(1));
  } else if (std::holds_alternative<ResizeOp>(op) || std::holds_alternative<AdaptivePoolOp>(op)) {
    for (size_t i = 2; i < input.size(); ++i) per_element = std::max(per_element, input[i]);
  }
  const int64_t in = checked_product(input).value_or(INT64_MAX / 4);
  const int64_t out = checked_product(output).value_or(INT64_MAX / 4);
  return checked_mul(in + out, per_element).value_or(INT64_MAX);
}

std::string shape_text(std::span<const int64_t> shape) {
  return fmt::format("({})", fmt::join(shape, ", "));
}

// The weights a step's op reads, in its op_weights order: the source's neutral tensors (or a constant fill) that
// the step's framework weights name by role.
Result<std::vector<Tensor>> step_weights(const TargetStep& step, std::span<const int64_t> input,
                                         std::span<const Tensor> source_weights) {
  std::vector<Tensor> out;
  for (const OpWeight& wanted : op_weights(step.op, input)) {
    const auto found = std::find_if(step.weights.begin(), step.weights.end(),
                                    [&](const FrameworkWeight& w) { return w.role == wanted.role; });
    if (found == step.weights.end()) {
      return make_error(ErrorCode::unsupported, fmt::format("plan step {} lacks its weight '{}'", step.call.callee,
                                                            wanted.role));
    }
    Tensor t{wanted.shape, {}};
    if (found->neutral_index < 0) {
      t.data.assign(static_cast<size_t>(*checked_product(wanted.shape)), found->fill);
    } else {
      const Tensor& source = source_weights[static_cast<size_t>(found->neutral_index)];
      if (checked_product(source.shape) != checked_product(wanted.shape)) {
        return make_error(ErrorCode::unsupported,
                          fmt::format("plan step {}: weight '{}' is {}, the op reads {}", step.call.callee,
                                      wanted.role, shape_text(source.shape), shape_text(wanted.shape)));
      }
      t.data = source.data;
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Shapes in the source framework's layout, for the report.
std::vector<int64_t> source_layout(const LayerPlan& plan, std::vector<int64_t> shape) {
  if (plan.source.framework != Framework::pytorch && shape.size() > 2) {
    std::rotate(shape.begin() + 1, shape.begin() + 2, shape.end());
  }
  return shape;
}

}  // namespace

Result<VerificationReport> verify_plan(const LayerPlan& plan, uint64_t seed, int64_t work_budget) {
  VerificationReport report;
  report.seed = seed;
  std::mt19937_64 rng(seed);
  const auto shapes = sample_shapes(plan);
  if (shapes.empty()) {
    report.skipped_reason = "no input size up to 40 fits the layer";
    return report;
  }
  for (const auto& shape : shapes) {
    CONVBRIDGE_TRY(auto output_shape, op_output_shape(plan.source.op, shape));
    int64_t cost = op_cost(plan.source.op, shape, output_shape);
    std::vector<int64_t> current = shape;
    for (const TargetStep& step : plan.steps) {
      auto next = op_output_shape(step.op, current);
      if (!next) break;  // reported below, when the step runs
      cost = checked_add(cost, op_cost(step.op, current, *next)).value_or(INT64_MAX);
      current = *next;
    }
    if (cost > work_budget) {
      report.skipped_reason = fmt::format("checking input {} takes about {} operations, over the budget of {}",
                                          shape_text(source_layout(plan, shape)), cost, work_budget);
      continue;
    }
    std::vector<Tensor> weights;
    for (const OpWeight& weight : op_weights(plan.source.op, shape)) {
      const bool positive = weight.role == "running_var";
      weights.push_back(random_tensor(weight.shape, rng, positive ? 0.25 : -1.0, positive ? 2.0 : 1.0));
    }
    const Tensor input = random_tensor(shape, rng, -2.0, 2.0);
    CONVBRIDGE_TRY(Tensor expected, run_op(plan.source.op, input, weights));
    Tensor actual = input;
    for (const TargetStep& step : plan.steps) {
      CONVBRIDGE_TRY(auto step_inputs, step_weights(step, actual.shape, weights));
      CONVBRIDGE_TRY(actual, run_op(step.op, actual, step_inputs));
    }
    VerificationCase c;
    c.input_shape = source_layout(plan, shape);
    c.output_shape = source_layout(plan, expected.shape);
    c.shapes_match = actual.shape == expected.shape;
    if (c.shapes_match) {
      for (size_t i = 0; i < expected.data.size(); ++i) {
        const double a = actual.data[i];
        const double e = expected.data[i];
        if (std::isinf(a) && a == e) continue;  // both -inf (an all-padding max window)
        // Both NaN: the frameworks agree (epsilon=0 normalizing one element computes 0/0 in both).
        if (std::isnan(a) && std::isnan(e)) continue;
        c.max_abs_diff = std::max(c.max_abs_diff, std::isnan(a - e) ? INFINITY : std::abs(a - e));
      }
    }
    report.cases.push_back(std::move(c));
  }
  if (!report.cases.empty()) report.skipped_reason.clear();
  return report;
}

}  // namespace convbridge
