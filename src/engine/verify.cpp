#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "convbridge/checked_math.hpp"
#include "convbridge/engine.hpp"

namespace convbridge {
namespace {

// Multiply-adds one verification may spend; keeps `translate` interactive on any layer.
// (kDefaultWorkBudget in engine.hpp: operations one verification may spend.)
// Elements of the largest tensor one verification may hold (32 MiB of float64).
constexpr int64_t kElementBudget = 4'000'000;
constexpr int64_t kVerificationBatch = 2;

Tensor random_tensor(std::vector<int64_t> shape, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  Tensor t{std::move(shape), {}};
  t.data.resize(static_cast<size_t>(*checked_product(t.shape)));
  for (double& v : t.data) v = uniform(rng);
  return t;
}

// Smallest spatial size PyTorch accepts on this axis: the padded input covers the dilated kernel, reflect pads are
// smaller than the size, circular pads no larger.
int64_t smallest_valid_size(const ConvSpec& spec, size_t axis) {
  const PadPair pad = spec.padding[axis];
  const int64_t eff = (spec.kernel[axis] - 1) * spec.dilation[axis] + 1;
  if (spec.transposed) {  // (in-1)*s - before - after + eff + op >= 1
    const int64_t need = pad.before + pad.after + 1 - eff - spec.output_padding[axis];
    return need <= 0 ? 1 : 1 + (need + spec.stride[axis] - 1) / spec.stride[axis];
  }
  int64_t size = std::max<int64_t>(1, eff - pad.before - pad.after);
  if (spec.fill == PaddingFill::reflect) size = std::max(size, std::max(pad.before, pad.after) + 1);
  if (spec.fill == PaddingFill::circular) size = std::max(size, std::max(pad.before, pad.after));
  return size;
}

// What one check costs: multiply-adds plus elements written, and the largest tensor it holds. Every tensor the
// engine materialises is counted (padded inputs, stride-1 convolutions before a subsample, transposed scatters),
// so a layer whose output is small but whose intermediate work is not stays within the budget.
struct Cost {
  int64_t work = 0;
  int64_t largest = 0;

  bool add(std::optional<int64_t> elements, std::optional<int64_t> macs_per_element = 1) {
    if (!elements || !macs_per_element) return false;
    auto macs = checked_mul(*elements, *macs_per_element);
    if (!macs) return false;
    auto total = checked_add(work, *macs);
    if (total) total = checked_add(*total, *elements);
    if (!total) return false;
    work = *total;
    largest = std::max(largest, *elements);
    return true;
  }
  bool within_budget(int64_t work_budget) const { return work <= work_budget && largest <= kElementBudget; }
};

std::optional<int64_t> product_times(std::span<const int64_t> values, int64_t factor) {
  auto p = checked_product(values);
  return p ? checked_mul(*p, factor) : std::nullopt;
}

// TF steps on a channels_last shape, step by step.
std::optional<Cost> tf_steps_cost(std::span<const PlanStep> steps, std::vector<int64_t> shape) {
  Cost cost;
  if (!cost.add(checked_product(shape))) return std::nullopt;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto out = tf_steps_output_shape(steps.subspan(i, 1), shape);
    if (!out) return std::nullopt;
    std::optional<int64_t> per_output = 1;
    if (const auto* conv = std::get_if<ConvStep>(&steps[i].op)) {
      const int64_t per_group = conv->kind == TfConvKind::depthwise ? 1 : conv->in_channels / conv->groups;
      per_output = product_times(conv->kernel, per_group);
      // SAME/explicit padding is materialised before the valid convolution.
      if (!cost.add(product_times(std::span<const int64_t>(shape).subspan(0, shape.size() - 1), 1))) {
        return std::nullopt;
      }
    } else if (const auto* t = std::get_if<TransposedConvStep>(&steps[i].op)) {
      // The scatter touches every input element times every tap of its group's outputs.
      if (!cost.add(checked_product(shape), product_times(t->kernel, t->out_channels / t->groups))) {
        return std::nullopt;
      }
      per_output = 1;
    }
    if (!cost.add(checked_product(*out), per_output)) return std::nullopt;
    shape = *out;
  }
  return cost;
}

// The PyTorch reference of a forward or transposed conv on a channels_first shape.
std::optional<Cost> torch_cost(const ConvSpec& spec, const std::vector<int64_t>& shape,
                               const std::vector<int64_t>& out) {
  Cost cost;
  const auto taps = checked_product(spec.kernel);
  if (!taps) return std::nullopt;
  if (spec.transposed) {
    if (!cost.add(checked_product(shape), checked_mul(*taps, spec.out_channels / spec.groups))) return std::nullopt;
    if (!cost.add(checked_product(out))) return std::nullopt;
    return cost;
  }
  std::vector<int64_t> padded = shape;
  for (size_t i = 0; i < spec.padding.size(); ++i) {
    auto size = checked_add(shape[i + 2], spec.padding[i].before);
    if (size) size = checked_add(*size, spec.padding[i].after);
    if (!size) return std::nullopt;
    padded[i + 2] = *size;
  }
  if (!cost.add(checked_product(padded))) return std::nullopt;
  if (!cost.add(checked_product(out), checked_mul(*taps, spec.in_channels / spec.groups))) return std::nullopt;
  return cost;
}

std::vector<std::vector<int64_t>> candidate_shapes(const Plan& plan) {
  const ConvSpec& spec = plan.source;
  if (plan.input_shape) {
    std::vector<int64_t> shape = *plan.input_shape;
    shape[0] = std::min(shape[0], kVerificationBatch);  // batch does not change the plan
    return {shape};
  }
  // Unknown size: the smallest valid size, the next one, and sizes of both parities a few strides larger.
  std::vector<std::vector<int64_t>> shapes;
  for (int variant = 0; variant < 4; ++variant) {
    std::vector<int64_t> shape{kVerificationBatch, spec.in_channels};
    for (size_t a = 0; a < static_cast<size_t>(spec.rank); ++a) {
      const int64_t base = smallest_valid_size(spec, a);
      const int64_t offsets[4] = {0, 1, spec.stride[a] + 2 + static_cast<int64_t>(a), 2 * spec.stride[a] + 1};
      shape.push_back(base + offsets[variant]);
    }
    shapes.push_back(shape);
  }
  return shapes;
}

std::vector<std::vector<int64_t>> keras_candidate_shapes(const TorchPlan& plan) {
  const KerasConvLayer& k = plan.source;
  if (plan.input_shape) {
    std::vector<int64_t> shape = *plan.input_shape;
    shape[0] = shape[0] == kUnknownSize ? kVerificationBatch : std::min(shape[0], kVerificationBatch);
    return {shape};
  }
  std::vector<std::vector<int64_t>> shapes;
  for (int variant = 0; variant < 4; ++variant) {
    std::vector<int64_t> shape{kVerificationBatch};
    for (size_t a = 0; a < static_cast<size_t>(k.rank); ++a) {
      // The smallest size with a non-empty output: the kernel extent for 'valid', less the pads of an explicit
      // padding list (tf.nn), 1 where TF pads to fit ('same', 'causal') or for transposed convolutions.
      const int64_t extent = (k.kernel[a] - 1) * k.dilation[a] + 1;
      int64_t base = 1;
      if (k.kind != KerasLayerKind::conv_transpose && k.padding == KerasPadding::valid) base = extent;
      if (k.kind != KerasLayerKind::conv_transpose && k.padding == KerasPadding::explicit_pads) {
        base = std::max<int64_t>(1, extent - k.explicit_padding[a].before - k.explicit_padding[a].after);
      }
      const int64_t offsets[4] = {0, 1, k.strides[a] + 2 + static_cast<int64_t>(a), 2 * k.strides[a] + 1};
      shape.push_back(base + offsets[variant]);
    }
    shape.push_back(plan.in_channels);
    shapes.push_back(shape);
  }
  return shapes;
}

void compare_into(VerificationReport& report, const std::vector<int64_t>& input_shape, const Tensor& expected,
                  const Tensor& actual) {
  VerificationCase result;
  result.input_shape = input_shape;
  result.output_shape = expected.shape;
  result.shapes_match = expected.shape == actual.shape;
  if (result.shapes_match) {
    for (size_t i = 0; i < actual.data.size(); ++i) {
      result.max_abs_diff = std::max(result.max_abs_diff, std::abs(actual.data[i] - expected.data[i]));
    }
  } else {
    result.max_abs_diff = INFINITY;
  }
  report.cases.push_back(std::move(result));
}

std::string over_budget(int64_t cheapest, int64_t work_budget) {
  return fmt::format("skipped: the smallest check needs {} operations, over the reference engine's budget of {} "
                     "(and at most {} elements per tensor)",
                     cheapest < 0 ? std::string("more than 2^63") : fmt::format("{}", cheapest), work_budget,
                     kElementBudget);
}

}  // namespace

Result<VerificationReport> verify_plan(const TorchPlan& plan, uint64_t seed, int64_t work_budget) {
  VerificationReport report;
  report.seed = seed;
  std::mt19937_64 rng(seed);
  int64_t cheapest = -1;
  for (const std::vector<int64_t>& shape : keras_candidate_shapes(plan)) {
    auto out = tf_steps_output_shape(plan.source_steps, shape);
    // The PyTorch side computes the same convolutions (plus padding): count the TF side twice.
    std::optional<Cost> cost = out ? tf_steps_cost(plan.source_steps, shape) : std::nullopt;
    if (cost && !checked_add(cost->work, cost->work)) cost.reset();
    if (cost) cost->work *= 2;
    const bool empty = out && checked_product(*out) == int64_t{0};
    if (!cost || !cost->within_budget(work_budget) || empty) {
      if (cost && !empty && (cheapest < 0 || cost->work < cheapest)) cheapest = cost->work;
      continue;
    }
    std::vector<Tensor> weights, source_kernels;
    for (size_t i = 0; i < plan.weight_shapes.size(); ++i) {
      weights.push_back(random_tensor(plan.weight_shapes[i], rng));
      source_kernels.push_back(Tensor{plan.source_kernels[i].to_shape,
                                      apply_layout_change<double>(plan.source_kernels[i], weights.back().data)});
    }
    const Tensor input = random_tensor(shape, rng);  // channels_last, as Keras sees it
    std::vector<double> bias;
    if (plan.source.use_bias) bias = random_tensor({out->back()}, rng).data;
    CONVBRIDGE_TRY(Tensor expected, run_tf_steps(plan.source_steps, plan.source.rank, input, source_kernels, bias));
    if (plan.source.activation) apply_activation(*plan.source.activation, expected, /*channels_last=*/true);
    CONVBRIDGE_TRY(Tensor actual, run_torch_plan(plan, channels_last_to_first(input), weights, bias));
    compare_into(report, shape, expected, channels_first_to_last(actual));
  }
  if (report.cases.empty()) report.skipped_reason = over_budget(cheapest, work_budget);
  return report;
}

bool VerificationReport::passed() const {
  if (cases.empty()) return false;
  return std::all_of(cases.begin(), cases.end(),
                     [&](const VerificationCase& c) { return c.shapes_match && c.max_abs_diff <= tolerance; });
}

Result<VerificationReport> verify_plan(const Plan& plan, uint64_t seed, int64_t work_budget) {
  const ConvSpec& spec = plan.source;
  VerificationReport report;
  report.seed = seed;
  std::mt19937_64 rng(seed);
  const std::vector<int64_t> weight_shape = torch_weight_shape(spec);
  int64_t cheapest = -1;
  for (const std::vector<int64_t>& shape : candidate_shapes(plan)) {
    // A generated size can overflow for absurd kernels: that is work over the budget, not a user error.
    auto torch_out = torch_conv_output_shape(spec, shape);
    std::optional<Cost> cost = torch_out ? torch_cost(spec, shape, *torch_out) : std::nullopt;
    if (cost) {
      std::vector<int64_t> last{shape[0]};
      last.insert(last.end(), shape.begin() + 2, shape.end());
      last.push_back(shape[1]);
      const auto tf = tf_steps_cost(plan.steps, last);
      if (tf && checked_add(cost->work, tf->work)) {
        cost = Cost{cost->work + tf->work, std::max(cost->largest, tf->largest)};
      } else {
        cost.reset();
      }
    }
    if (!cost || !cost->within_budget(work_budget)) {
      if (cost && (cheapest < 0 || cost->work < cheapest)) cheapest = cost->work;
      continue;
    }
    const Tensor weight = random_tensor(weight_shape, rng);
    const Tensor input = random_tensor(shape, rng);
    std::vector<double> bias;
    if (spec.bias) bias = random_tensor({spec.out_channels}, rng).data;

    CONVBRIDGE_TRY(Tensor expected, reference_torch_conv(spec, input, weight, bias));
    const Tensor kernel{plan.kernel_layout.to_shape, apply_layout_change<double>(plan.kernel_layout, weight.data)};
    CONVBRIDGE_TRY(Tensor actual, run_tf_plan(plan, channels_first_to_last(input), kernel, bias));
    // Compared in PyTorch's layout, the source framework's.
    compare_into(report, shape, expected, channels_last_to_first(actual));
  }
  if (report.cases.empty()) report.skipped_reason = over_budget(cheapest, work_budget);
  return report;
}

}  // namespace convbridge
