// The reference engine: plainly correct, float64, no framework needed. It computes a convolution the way PyTorch
// defines it, executes a TF plan the way TensorFlow defines each step, and compares the two, so the CLI can verify
// a translation on its own. Convolutions run as matrix products on BLAS (ConvAlgorithm::gemm), fast enough to verify
// real layers at their real sizes; the naive loops (ConvAlgorithm::naive) stay as the obviously-correct reference
// that the fast path is tested against.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convbridge/activation.hpp"
#include "convbridge/conv_spec.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/ops/op.hpp"
#include "convbridge/plan.hpp"
#include "convbridge/result.hpp"

namespace convbridge {

struct Tensor {
  std::vector<int64_t> shape;  // row-major
  std::vector<double> data;
};

// How the engine computes convolutions: im2col + dgemm (the default), or the naive loops that read as the
// definition. Both compute the same sums in float64; only the order of the additions differs.
enum class ConvAlgorithm { gemm, naive };

// PyTorch semantics. input: (N, C_in, *spatial); weight: (C_out, C_in/groups, *kernel); bias: (C_out) or empty.
// Returns (N, C_out, *spatial_out).
Result<Tensor> reference_torch_conv(const ConvSpec& spec, const Tensor& input, const Tensor& weight,
                                    std::span<const double> bias, ConvAlgorithm algorithm = ConvAlgorithm::gemm);

// TensorFlow semantics for every step of `plan`. input: channels_last (N, *spatial, C_in); kernel: in
// plan.kernel_layout.to_shape; bias: (C_out) or empty. Returns channels_last (N, *spatial_out, C_out).
Result<Tensor> run_tf_plan(const Plan& plan, const Tensor& input, const Tensor& kernel, std::span<const double> bias,
                           ConvAlgorithm algorithm = ConvAlgorithm::gemm);

// TensorFlow semantics for a list of TF steps (kernels indexed by each step's `weight`).
Result<Tensor> run_tf_steps(std::span<const PlanStep> steps, int rank, const Tensor& input,
                            std::span<const Tensor> kernels, std::span<const double> bias,
                            ConvAlgorithm algorithm = ConvAlgorithm::gemm);

// PyTorch semantics for a TF/Keras -> PyTorch plan. input: channels_first (N, C_in, *spatial); keras_weights: the
// Keras weights in Keras layouts (TorchPlan::weight_shapes), converted here by each step's layout.
Result<Tensor> run_torch_plan(const TorchPlan& plan, const Tensor& input, std::span<const Tensor> keras_weights,
                              std::span<const double> bias, ConvAlgorithm algorithm = ConvAlgorithm::gemm);

// An activation with its neutral semantics (convbridge/activation.hpp), in place; softmax kinds run over the
// channel axis, last or second.
void apply_activation(const Activation& activation, Tensor& tensor, bool channels_last);

// An op of the op set with its neutral semantics on a channels_first tensor; weights in op_weights order.
Result<Tensor> run_op(const Op& op, const Tensor& input, std::span<const Tensor> weights);

// (N, C, *spatial) -> (N, *spatial, C), and back.
Tensor channels_first_to_last(const Tensor& tensor);
Tensor channels_last_to_first(const Tensor& tensor);

struct VerificationCase {
  std::vector<int64_t> input_shape;   // the source framework's layout
  std::vector<int64_t> output_shape;  // the source framework's layout
  bool shapes_match = false;
  double max_abs_diff = 0.0;
};

struct VerificationReport {
  uint64_t seed = 0;
  std::vector<VerificationCase> cases;
  std::string skipped_reason;  // non-empty when no case fitted the work budget
  double tolerance = 1e-9;     // float64 round-off bound for a pass
  bool passed() const;
};

// Runs the PyTorch reference and the plan on random inputs, weights and bias (fixed seed) and compares them:
// at the plan's input shape when it has one (batch min(N, 2), or 1 when 2 is over the budget), else at several sizes
// (the smallest valid one, odd and even sizes).
// Operations one verification may spend by default. An operation is a scalar step of the engine (an element
// written, copied into a column buffer, or a multiply-add of a direct loop); 16 multiply-adds inside dgemm count as
// one (verify.cpp). The engine runs about 2e9 of them a second on the 2-core CI machine, so the budget bounds a
// check to about a second; it fits every layer of ResNet-50 and MobileNetV2 at 224, a UNet at 256 and a 3-D
// ResNet-18 at 16x112x112 (bench/layer_shapes.json, the largest 0.9e9 operations and 0.6 s; a unit test checks
// that none is skipped). Checks over the budget, or holding a tensor over 2^24 elements, are skipped and say so.
inline constexpr int64_t kDefaultWorkBudget = 2'000'000'000;

// A check verify_plan will run: its input shape (the source framework's layout), its cost in operations, and the
// elements of the largest tensor it holds.
struct PlannedCheck {
  std::vector<int64_t> input_shape;
  int64_t work = 0;
  int64_t largest_tensor = 0;
};
struct PlannedChecks {
  std::vector<PlannedCheck> within_budget;
  int64_t cheapest_over_budget = -1;  // the least work among skipped checks; -1 if none (or each overflowed)
};

// What verify_plan(plan, seed, work_budget) will check and spend, without running it.
PlannedChecks plan_verification(const Plan& plan, int64_t work_budget = kDefaultWorkBudget);
PlannedChecks plan_verification(const TorchPlan& plan, int64_t work_budget = kDefaultWorkBudget);

Result<VerificationReport> verify_plan(const Plan& plan, uint64_t seed, int64_t work_budget = kDefaultWorkBudget);

// The same for a Keras -> PyTorch plan: the Keras layer run with TF semantics against the PyTorch modules.
Result<VerificationReport> verify_plan(const TorchPlan& plan, uint64_t seed,
                                      int64_t work_budget = kDefaultWorkBudget);

// The op set runs on naive loops (pooling, normalization, resizing, ...), about 1 G operations/s: its own budget.
inline constexpr int64_t kOpSetWorkBudget = 40'000'000;

// The same for a plan of the op set: the source op against the target steps' ops, in float64, with random
// weights (variances positive), at the plan's input shape or, when sizes are unknown, at the smallest valid
// size and a few larger odd and even ones, batch 2.
Result<VerificationReport> verify_plan(const LayerPlan& plan, uint64_t seed,
                                      int64_t work_budget = kOpSetWorkBudget);

}  // namespace convbridge
