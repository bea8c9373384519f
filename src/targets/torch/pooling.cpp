// Keras / TF pooling -> PyTorch (channels_first). Cheapest exact plan first:
//   'valid' -> nn.MaxPoolNd / nn.AvgPoolNd (dilation= for tf.nn.pool's dilations);
//   'same' at stride 1 with an odd (dilated) kernel: TF pads (k-1)/2 on both sides at every size -> padding= (average
//     with count_include_pad=False: TF averages over the input elements only);
//   'same' at a known size whose split is symmetric and within PyTorch's pad limit (pad <= kernel / 2) -> padding=,
//     for that size;
//   otherwise TFSamePool (ours): TF's split from the input size at run time, -inf padding for max, the valid count
//     as the average's divisor.
// Global pooling -> nn.AdaptiveXPoolNd(1) (+ nn.Flatten(1) for keepdims=False); adaptive -> nn.AdaptiveXPoolNd.
#include <fmt/format.h>

#include <algorithm>

#include "convbridge/frontends.hpp"
#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {

bool all_ones(const std::vector<int64_t>& values) {
  return std::all_of(values.begin(), values.end(), [](int64_t v) { return v == 1; });
}

std::string module_class(PoolKind kind, int rank) {
  return fmt::format("nn.{}Pool{}d", kind == PoolKind::max ? "Max" : "Avg", rank);
}

// nn.MaxPoolNd / nn.AvgPoolNd with symmetric pads `pad`, computing `computes`.
TargetStep native_pool(const PoolOp& computes, const std::vector<int64_t>& pad, std::string why) {
  std::vector<CallArgument> arguments = {arg("kernel_size", CallValue::ints(computes.kernel)),
                                         arg("stride", CallValue::ints(computes.stride))};
  const bool padded = std::any_of(pad.begin(), pad.end(), [](int64_t p) { return p != 0; });
  if (padded) arguments.push_back(arg("padding", CallValue::ints(pad)));
  if (computes.kind == PoolKind::max && !all_ones(computes.dilation)) {
    arguments.push_back(arg("dilation", CallValue::ints(computes.dilation)));
  }
  if (computes.kind == PoolKind::average && padded) arguments.push_back(arg("count_include_pad", CallValue::flag(false)));
  return torch_step(computes, module_class(computes.kind, computes.rank), std::move(arguments), std::move(why));
}

PoolOp explicit_version(const PoolOp& op, const std::vector<int64_t>& pad) {
  PoolOp out = op;
  out.input_covers_kernel = op.kind == PoolKind::average && op.rank == 3;  // what nn.AvgPool3d checks
  out.padding = PoolPadding::explicit_pads;
  out.pads.clear();
  for (const int64_t p : pad) out.pads.push_back(PadPair{p, p});
  out.ceil_mode = false;
  return out;
}

// TF 'SAME' pads at stride 1 are size independent: (eff-1)/2 each side when eff is odd. Empty if not symmetric.
std::vector<int64_t> stride_one_same_pads(const PoolOp& op) {
  std::vector<int64_t> pads;
  if (!all_ones(op.stride)) return {};
  for (int a = 0; a < op.rank; ++a) {
    const int64_t eff = pool_effective_kernel(op, a);
    if (eff % 2 == 0) return {};
    pads.push_back((eff - 1) / 2);
  }
  return pads;
}

// PyTorch accepts pad <= kernel / 2 (max_pool: the kernel itself, not the dilated extent).
bool torch_accepts_pads(const PoolOp& op, const std::vector<int64_t>& pads) {
  for (size_t a = 0; a < pads.size(); ++a) {
    if (pads[a] > op.kernel[a] / 2) return false;
  }
  return true;
}

}  // namespace

Result<TargetPlan> plan_torch(const PoolOp& op, const TargetInput& input) {
  TargetPlan plan;
  const std::string kind = op.kind == PoolKind::max ? "max" : "average";
  if (op.padding == PoolPadding::explicit_pads) {
    std::vector<int64_t> pad;
    for (const PadPair& p : op.pads) {
      if (p.before != p.after || op.ceil_mode) {
        return make_error(ErrorCode::unsupported, "asymmetric explicit pooling pads have no PyTorch module");
      }
      pad.push_back(p.before);
    }
    if (!torch_accepts_pads(op, pad)) {
      return make_error(ErrorCode::unsupported, "pooling pads above half the kernel have no PyTorch module");
    }
    plan.steps.push_back(native_pool(op, pad, "'valid' pooling is PyTorch's default (no padding, floor output size)"));
    return plan;
  }
  // tf_same. nn.AvgPool3d refuses inputs shorter than the kernel before padding (PoolOp::input_covers_kernel),
  // which TF pads: it serves only known sizes that cover the kernel; TFSamePool pools the padded input instead.
  bool avg3d_covered = !(op.kind == PoolKind::average && op.rank == 3);
  if (!avg3d_covered && input.sizes_known()) {
    avg3d_covered = true;
    for (int a = 0; a < op.rank; ++a) {
      avg3d_covered = avg3d_covered && input.shape[static_cast<size_t>(a) + 2] >= op.kernel[static_cast<size_t>(a)];
    }
  }
  const std::vector<int64_t> stride_one = avg3d_covered ? stride_one_same_pads(op) : std::vector<int64_t>{};
  if (!stride_one.empty() && torch_accepts_pads(op, stride_one)) {
    plan.steps.push_back(native_pool(
        explicit_version(op, stride_one), stride_one,
        op.kind == PoolKind::max ? "stride 1, odd kernel: TF 'same' pads (k-1)/2 on both sides at every size"
                                 : "stride 1, odd kernel: TF 'same' pads (k-1)/2 on both sides at every size and "
                                   "averages over the input elements only: count_include_pad=False"));
    plan.exact_for_every_input_size = avg3d_covered && !(op.kind == PoolKind::average && op.rank == 3);
    return plan;
  }
  if (input.sizes_known() && avg3d_covered) {
    std::vector<int64_t> pad;
    bool symmetric = true;
    for (int a = 0; a < op.rank && symmetric; ++a) {
      const int64_t in = input.shape[static_cast<size_t>(a) + 2];
      CONVBRIDGE_TRY(const PadPair p, pool_pads(op, a, in));
      symmetric = p.before == p.after;
      pad.push_back(p.before);
    }
    if (symmetric && torch_accepts_pads(op, pad)) {
      const PoolOp computes = explicit_version(op, pad);
      bool same_sizes = true;
      for (int a = 0; a < op.rank; ++a) {
        const int64_t in = input.shape[static_cast<size_t>(a) + 2];
        const auto torch_out = pool_output_size(computes, a, in);
        const auto tf_out = pool_output_size(op, a, in);
        same_sizes = same_sizes && torch_out && tf_out && *torch_out == *tf_out;
      }
      if (same_sizes) {
        plan.steps.push_back(native_pool(computes, pad,
                                         fmt::format("at this input size TF 'same' pads both sides alike{}",
                                                     op.kind == PoolKind::average
                                                         ? " and excludes the padding: count_include_pad=False"
                                                         : "")));
        plan.exact_for_every_input_size = false;
        return plan;
      }
    }
  }
  TargetStep step = torch_step(op, "convbridge.TFSamePool",
                               {arg("kind", CallValue::str(op.kind == PoolKind::max ? "max" : "avg")),
                                arg("kernel_size", CallValue::ints(op.kernel)),
                                arg("stride", CallValue::ints(op.stride)),
                                arg("dilation", CallValue::ints(op.dilation))},
                               fmt::format("TF 'same' {} pooling at stride > 1 splits its padding by the input size "
                                           "(the odd one after): TFSamePool computes the split at run time and {}",
                                           kind,
                                           op.kind == PoolKind::max
                                               ? "pads with -inf"
                                               : "divides each window by its input elements, as TF does"));
  step.helpers = {"TFSamePool"};
  plan.steps.push_back(std::move(step));
  return plan;
}

Result<TargetPlan> plan_torch(const AdaptivePoolOp& op, const TargetInput&) {
  TargetPlan plan;
  const bool max = op.kind == PoolKind::max;
  std::vector<CallValue> sizes;
  for (const int64_t v : op.output_size) sizes.push_back(v == kUnknownSize ? CallValue::none() : CallValue::of(v));
  const bool global = all_ones(op.output_size);
  AdaptivePoolOp pooled = op;
  pooled.keep_dims = true;
  plan.steps.push_back(torch_step(pooled, fmt::format("nn.Adaptive{}Pool{}d", max ? "Max" : "Avg", op.rank),
                                  {arg("output_size", global ? CallValue::of(int64_t{1}) : CallValue::tuple(sizes))},
                                  global ? "global pooling is adaptive pooling to size 1"
                                         : "Keras' adaptive pooling windows are PyTorch's [floor(i*n/out), "
                                           "ceil((i+1)*n/out))"));
  if (!op.keep_dims) {
    // Global pooling of the (N, C, 1, ...) result is the identity that drops the size-1 axes: nn.Flatten(1).
    plan.steps.push_back(torch_step(op, "nn.Flatten", {arg("", CallValue::of(int64_t{1}))},
                                    "keepdims=False: drop the size-1 spatial axes, (N, C)"));
  }
  return plan;
}

std::vector<FrameworkWeight> torch_weights(const PoolOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> torch_weights(const AdaptivePoolOp&, const TargetInput&) { return {}; }

}  // namespace convbridge::targets
