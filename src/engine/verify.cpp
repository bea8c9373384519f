#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "convbridge/checked_math.hpp"
#include "convbridge/engine.hpp"

namespace convbridge {
namespace {

// Elements of the largest tensor one verification may hold (128 MiB of float64): a UNet's 64-channel 256x256 maps,
// a 3-D ResNet's 64-channel 16x56x56 ones, with room; a check holds a handful of tensors of at most this size.
constexpr int64_t kElementBudget = int64_t{1} << 24;
constexpr int64_t kVerificationBatch = 2;
// A multiply-add inside dgemm costs this many times less than a scalar step (an element written, a copy into the
// column buffer, a multiply-add of a direct loop). Measured on the 2-core CI machine: dgemm runs 25-60 G
// multiply-adds/s (OpenBLAS 0.3.21, both cores), the engine's scalar loops 1-3 G steps/s (bench/, README).
constexpr int64_t kBlasMultiplyAddsPerOperation = 16;

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

// What one check costs on the GEMM engine, and the largest tensor it holds. Every tensor the engine materialises is
// counted (random inputs and their layout changes, materialised padding, stride-1 convolutions before a subsample,
// outputs), every element copied into or added from a column buffer, and every multiply-add, at its price: a
// scalar step in direct loops, 1/kBlasMultiplyAddsPerOperation inside dgemm. A check whose output is small but
// whose intermediate work is not stays within the budget; any overflow makes the check unaffordable.
struct Cost {
  int64_t scalar = 0;             // operations outside BLAS
  int64_t blas_multiply_adds = 0;
  int64_t largest = 0;
  bool overflow = false;

  void add_scalar(std::optional<int64_t> operations) {
    const auto total = operations ? checked_add(scalar, *operations) : std::nullopt;
    if (total) scalar = *total;
    overflow = overflow || !total;
  }
  // A tensor of `elements` values written once.
  void add_tensor(std::optional<int64_t> elements) {
    add_scalar(elements);
    if (elements) largest = std::max(largest, *elements);
  }
  // A convolution of `multiply_adds`, run by the direct loop (depthwise-like: one input channel per group) or by
  // dgemm, with `column_elements` copied into (im2col) or added out of (col2im) the column buffer.
  void add_conv(std::optional<int64_t> multiply_adds, std::optional<int64_t> column_elements, bool direct) {
    if (!multiply_adds || !column_elements) {
      overflow = true;
      return;
    }
    if (direct) {
      add_scalar(multiply_adds);
      return;
    }
    add_scalar(column_elements);
    const auto total = checked_add(blas_multiply_adds, *multiply_adds);
    if (total) blas_multiply_adds = *total;
    overflow = overflow || !total;
  }
  void add(const Cost& other) {
    add_scalar(other.scalar);
    add_conv(other.blas_multiply_adds, 0, false);
    largest = std::max(largest, other.largest);
    overflow = overflow || other.overflow;
  }
  std::optional<int64_t> work() const {
    if (overflow) return std::nullopt;
    return checked_add(scalar, blas_multiply_adds / kBlasMultiplyAddsPerOperation);
  }
  bool within_budget(int64_t work_budget) const {
    const auto total = work();
    return total && *total <= work_budget && largest <= kElementBudget;
  }
};

std::optional<int64_t> product_times(std::span<const int64_t> values, int64_t factor) {
  auto p = checked_product(values);
  return p ? checked_mul(*p, factor) : std::nullopt;
}

std::optional<int64_t> divided(std::optional<int64_t> value, int64_t divisor) {
  return value ? std::optional<int64_t>(*value / divisor) : std::nullopt;
}

// Multiply-adds and column-buffer traffic of a forward convolution (the GEMM kernel's choice of path included):
// im2col writes K = in_per_group * taps values per output position and group, none for a 1x1 stride-1 product.
void add_forward_conv(Cost& cost, std::optional<int64_t> out_elements, int64_t in_per_group, int64_t out_per_group,
                      int64_t groups, std::span<const int64_t> kernel, bool pointwise) {
  const auto taps_per_output = product_times(kernel, in_per_group);
  const auto multiply_adds = out_elements && taps_per_output ? checked_mul(*out_elements, *taps_per_output)
                                                             : std::nullopt;
  cost.add_conv(multiply_adds, pointwise ? std::optional<int64_t>(0) : divided(multiply_adds, out_per_group),
                in_per_group == 1 && groups > 1);
  cost.add_tensor(out_elements);
}

// A transposed convolution: col2im adds out_per_group * taps values per input position and group.
void add_transposed_conv(Cost& cost, std::optional<int64_t> in_elements, std::optional<int64_t> out_elements,
                         int64_t in_per_group, int64_t out_per_group, std::span<const int64_t> kernel) {
  const auto taps_per_input = product_times(kernel, out_per_group);
  const auto multiply_adds = in_elements && taps_per_input ? checked_mul(*in_elements, *taps_per_input)
                                                           : std::nullopt;
  cost.add_conv(multiply_adds, divided(multiply_adds, in_per_group), false);
  cost.add_tensor(out_elements);
}

bool all_ones(std::span<const int64_t> values) {
  return std::all_of(values.begin(), values.end(), [](int64_t v) { return v == 1; });
}

// TF steps on a channels_last shape, step by step (the input itself counted by the caller).
std::optional<Cost> tf_steps_cost(std::span<const PlanStep> steps, std::vector<int64_t> shape) {
  Cost cost;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto out = tf_steps_output_shape(steps.subspan(i, 1), shape);
    if (!out) return std::nullopt;
    const auto out_elements = checked_product(*out);
    if (const auto* conv = std::get_if<ConvStep>(&steps[i].op)) {
      const bool depthwise = conv->kind == TfConvKind::depthwise;
      const int64_t groups = depthwise ? conv->in_channels : conv->groups;
      const bool unpadded = conv->padding == TfPadding::valid ||
                            (conv->padding == TfPadding::explicit_pads &&
                             std::all_of(conv->explicit_pads.begin(), conv->explicit_pads.end(),
                                         [](const PadPair& p) { return p == PadPair{}; }));
      add_forward_conv(cost, out_elements, conv->in_channels / groups, conv->out_channels / groups, groups,
                       conv->kernel, all_ones(conv->kernel) && all_ones(conv->strides) && unpadded);
    } else if (const auto* t = std::get_if<TransposedConvStep>(&steps[i].op)) {
      add_transposed_conv(cost, checked_product(shape), out_elements, t->in_channels / t->groups,
                          t->out_channels / t->groups, t->kernel);
    } else {
      cost.add_tensor(out_elements);  // a padded or subsampled copy
    }
    shape = *out;
  }
  return cost;
}

// The PyTorch reference of a forward or transposed conv on a channels_first shape.
std::optional<Cost> torch_cost(const ConvSpec& spec, const std::vector<int64_t>& shape,
                               const std::vector<int64_t>& out) {
  Cost cost;
  const int64_t in_per_group = spec.in_channels / spec.groups, out_per_group = spec.out_channels / spec.groups;
  if (spec.transposed) {
    add_transposed_conv(cost, checked_product(shape), checked_product(out), in_per_group, out_per_group,
                        spec.kernel);
    return cost;
  }
  const bool unpadded = std::all_of(spec.padding.begin(), spec.padding.end(),
                                    [](const PadPair& p) { return p == PadPair{}; });
  if (spec.fill != PaddingFill::zeros) {  // reflect, replicate and circular padding is materialised
    std::vector<int64_t> padded = shape;
    for (size_t i = 0; i < spec.padding.size(); ++i) {
      auto size = checked_add(shape[i + 2], spec.padding[i].before);
      if (size) size = checked_add(*size, spec.padding[i].after);
      if (!size) return std::nullopt;
      padded[i + 2] = *size;
    }
    cost.add_tensor(checked_product(padded));
  }
  add_forward_conv(cost, checked_product(out), in_per_group, out_per_group, spec.groups, spec.kernel,
                   all_ones(spec.kernel) && all_ones(spec.stride) && unpadded);
  return cost;
}

// Random inputs drawn and moved between layouts, outputs moved back and compared: four passes over each.
void add_inputs_and_outputs(Cost& cost, std::optional<int64_t> input_elements, std::optional<int64_t> out_elements) {
  for (int pass = 0; pass < 2; ++pass) {
    cost.add_tensor(input_elements);
    cost.add_tensor(out_elements);
  }
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

// Each entry: the shapes to try in order, the first within the budget checked. A known input shape is tried at
// batch min(N, 2) and, when that is over the budget, at batch 1: the batch does not change the plan, and one sample
// of a real layer is still a complete check of its arithmetic.
std::vector<std::vector<std::vector<int64_t>>> alternatives(std::vector<std::vector<int64_t>> shapes,
                                                            bool known_shape) {
  std::vector<std::vector<std::vector<int64_t>>> out;
  for (std::vector<int64_t>& shape : shapes) {
    std::vector<std::vector<int64_t>> tries{shape};
    if (known_shape && shape[0] > 1) {
      shape[0] = 1;
      tries.push_back(shape);
    }
    out.push_back(std::move(tries));
  }
  return out;
}

// The checks to run: for each entry the first alternative whose cost fits, and the cheapest one that did not.
template <class CostOf>
PlannedChecks choose_checks(const std::vector<std::vector<std::vector<int64_t>>>& entries, int64_t work_budget,
                            CostOf cost_of) {
  PlannedChecks planned;
  for (const auto& tries : entries) {
    for (const std::vector<int64_t>& shape : tries) {
      const std::optional<Cost> cost = cost_of(shape);
      if (cost && cost->within_budget(work_budget)) {
        planned.within_budget.push_back({shape, *cost->work(), cost->largest});
        break;
      }
      const auto work = cost ? cost->work() : std::nullopt;
      if (work && (planned.cheapest_over_budget < 0 || *work < planned.cheapest_over_budget)) {
        planned.cheapest_over_budget = *work;
      }
    }
  }
  return planned;
}

}  // namespace

PlannedChecks plan_verification(const TorchPlan& plan, int64_t work_budget) {
  return choose_checks(alternatives(keras_candidate_shapes(plan), plan.input_shape.has_value()), work_budget,
                       [&](const std::vector<int64_t>& shape) -> std::optional<Cost> {
                         auto out = tf_steps_output_shape(plan.source_steps, shape);
                         // An empty output is no check.
                         if (!out || checked_product(*out) == int64_t{0}) return std::nullopt;
                         // The PyTorch side computes the same convolutions (plus padding): the TF side twice.
                         std::optional<Cost> cost = tf_steps_cost(plan.source_steps, shape);
                         if (!cost) return std::nullopt;
                         Cost total = *cost;
                         total.add(*cost);
                         add_inputs_and_outputs(total, checked_product(shape), checked_product(*out));
                         return total;
                       });
}

PlannedChecks plan_verification(const Plan& plan, int64_t work_budget) {
  const ConvSpec& spec = plan.source;
  return choose_checks(alternatives(candidate_shapes(plan), plan.input_shape.has_value()), work_budget,
                       [&](const std::vector<int64_t>& shape) -> std::optional<Cost> {
                         // A generated size can overflow for absurd kernels: that is work over the budget.
                         auto torch_out = torch_conv_output_shape(spec, shape);
                         std::optional<Cost> cost = torch_out ? torch_cost(spec, shape, *torch_out) : std::nullopt;
                         std::vector<int64_t> last{shape[0]};
                         last.insert(last.end(), shape.begin() + 2, shape.end());
                         last.push_back(shape[1]);
                         const auto tf = cost ? tf_steps_cost(plan.steps, last) : std::nullopt;
                         if (!tf) return std::nullopt;
                         cost->add(*tf);
                         add_inputs_and_outputs(*cost, checked_product(shape), checked_product(*torch_out));
                         return cost;
                       });
}

Result<VerificationReport> verify_plan(const TorchPlan& plan, uint64_t seed, int64_t work_budget) {
  VerificationReport report;
  report.seed = seed;
  std::mt19937_64 rng(seed);
  const PlannedChecks planned = plan_verification(plan, work_budget);
  for (const PlannedCheck& check : planned.within_budget) {
    const std::vector<int64_t>& shape = check.input_shape;
    CONVBRIDGE_TRY(std::vector<int64_t> out, tf_steps_output_shape(plan.source_steps, shape));
    std::vector<Tensor> weights, source_kernels;
    for (size_t i = 0; i < plan.weight_shapes.size(); ++i) {
      weights.push_back(random_tensor(plan.weight_shapes[i], rng));
      source_kernels.push_back(Tensor{plan.source_kernels[i].to_shape,
                                      apply_layout_change<double>(plan.source_kernels[i], weights.back().data)});
    }
    const Tensor input = random_tensor(shape, rng);  // channels_last, as Keras sees it
    std::vector<double> bias;
    if (plan.source.use_bias) bias = random_tensor({out.back()}, rng).data;
    CONVBRIDGE_TRY(Tensor expected, run_tf_steps(plan.source_steps, plan.source.rank, input, source_kernels, bias));
    if (plan.source.activation) apply_activation(*plan.source.activation, expected, /*channels_last=*/true);
    CONVBRIDGE_TRY(Tensor actual, run_torch_plan(plan, channels_last_to_first(input), weights, bias));
    compare_into(report, shape, expected, channels_first_to_last(actual));
  }
  if (report.cases.empty()) report.skipped_reason = over_budget(planned.cheapest_over_budget, work_budget);
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
  const PlannedChecks planned = plan_verification(plan, work_budget);
  for (const PlannedCheck& check : planned.within_budget) {
    const std::vector<int64_t>& shape = check.input_shape;
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
  if (report.cases.empty()) report.skipped_reason = over_budget(planned.cheapest_over_budget, work_budget);
  return report;
}

}  // namespace convbridge
