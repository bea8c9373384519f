// PyTorch pooling -> Keras (channels_last). Cheapest exact plan first:
//   1. no padding, dilation or ceil tail: MaxPoolingND / AveragePoolingND 'valid';
//   2. stride 1 with TF's 'same' split equal to PyTorch's pads (odd kernel, pad (k-1)/2): 'same', for every size
//      (max; average only where TF's divisor, the input elements of the window, is PyTorch's: count_include_pad=
//      False);
//   3. explicit pads: max pooling pads with -inf (NegInfPadding, ours: zeros would win over negative inputs),
//      average with count_include_pad=True pads with zeros (ZeroPaddingND: the divisor counts them, like PyTorch)
//      and pools 'valid'; dilated max pooling is tf.nn.pool(dilations=, 'VALID') (DilatedMaxPool, ours);
//   4. the input size known: TF 'same' where its split and output size at that size are PyTorch's, or the -inf
//      padding extended by the ceil_mode tail window;
//   5. otherwise (ceil_mode with unknown sizes, divisor_override, count_include_pad=False with pads 'same' cannot
//      split alike, average ceil tails): TorchPool (ours), PyTorch's pooling on channels_last at every size.
// Adaptive: output 1 -> GlobalXPoolingND(keepdims=True); known sizes -> keras.layers.AdaptiveXPoolingND (measured
// equal to PyTorch's windows, tests/python/test_ops_pooling.py); unknown sizes or None entries -> TorchAdaptivePool
// (ours: Keras' adaptive layers read the static shape and fail on None sizes inside tf.function).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "convbridge/checked_math.hpp"
#include "convbridge/frontends.hpp"
#include "targets/targets.hpp"

namespace convbridge::targets {
namespace {

bool all_ones(const std::vector<int64_t>& values) {
  return std::all_of(values.begin(), values.end(), [](int64_t v) { return v == 1; });
}

bool no_pads(const std::vector<PadPair>& pads) {
  return std::all_of(pads.begin(), pads.end(), [](const PadPair& p) { return p.before == 0 && p.after == 0; });
}

std::string layer_class(PoolKind kind, int rank) {
  return fmt::format("keras.layers.{}Pooling{}D", kind == PoolKind::max ? "Max" : "Average", rank);
}

// ((0, 0), (b, a), ..., (0, 0)) for tf.pad on channels_last.
CallValue tf_paddings(const std::vector<PadPair>& pads) {
  std::vector<PadPair> all;
  all.push_back({});
  all.insert(all.end(), pads.begin(), pads.end());
  all.push_back({});
  return CallValue::pairs(all);
}

CallValue keras_padding_value(const std::vector<PadPair>& pads) {
  if (pads.size() == 1) {
    const int64_t pair[] = {pads[0].before, pads[0].after};
    return CallValue::ints(pair);
  }
  return CallValue::pairs(pads);
}

CallValue x_name() {
  CallValue x;
  x.kind = CallValue::Kind::name;
  x.text = "x";
  return x;
}

// A native 'valid' or 'same' pooling layer for `computes` (its op), with the tf.nn form.
TargetStep native_pool(const PoolOp& computes, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                       bool same, std::string why) {
  TargetStep step = keras_step(computes, layer_class(computes.kind, computes.rank),
                               {arg("pool_size", CallValue::ints(kernel)), arg("strides", CallValue::ints(stride)),
                                arg("padding", CallValue::str(same ? "same" : "valid"))},
                               std::move(why));
  step.function = FrameworkCall{
      fmt::format("tf.nn.{}_pool{}d", computes.kind == PoolKind::max ? "max" : "avg", computes.rank),
      {arg("", x_name()), arg("ksize", CallValue::ints(kernel)), arg("strides", CallValue::ints(stride)),
       arg("padding", CallValue::str(same ? "SAME" : "VALID"))}};
  return step;
}

// A kernel-1 pool that only pads (convbridge/ops/pool.hpp): max -> -inf, average with divisor 1 -> zeros.
PoolOp padding_op(PoolKind kind, int rank, std::vector<PadPair> pads) {
  PoolOp op;
  op.kind = kind;
  op.rank = rank;
  op.kernel.assign(static_cast<size_t>(rank), 1);
  op.stride = op.kernel;
  op.dilation = op.kernel;
  op.pads = std::move(pads);
  if (kind == PoolKind::average) {
    op.divisor = AverageDivisor::fixed;
    op.divisor_override = 1;
  }
  return op;
}

TargetStep neg_inf_padding(int rank, const std::vector<PadPair>& pads, std::string why) {
  TargetStep step = keras_step(padding_op(PoolKind::max, rank, pads), "convbridge.NegInfPadding",
                               {arg("padding", CallValue::pairs(pads))}, std::move(why));
  step.helpers = {"NegInfPadding"};
  step.function = FrameworkCall{"tf.pad", {arg("", x_name()), arg("paddings", tf_paddings(pads)),
                                           arg("constant_values", CallValue::of(-INFINITY))}};
  return step;
}

TargetStep zero_padding(int rank, const std::vector<PadPair>& pads) {
  TargetStep step = keras_step(padding_op(PoolKind::average, rank, pads),
                               fmt::format("keras.layers.ZeroPadding{}D", rank),
                               {arg("padding", keras_padding_value(pads))},
                               "count_include_pad=True divides by the window including its zero padding: pad with "
                               "zeros first, so that a 'valid' average counts them too");
  step.function = FrameworkCall{"tf.pad", {arg("", x_name()), arg("paddings", tf_paddings(pads))}};
  return step;
}

TargetStep dilated_max_pool(const PoolOp& computes) {
  TargetStep step = keras_step(computes, "convbridge.DilatedMaxPool",
                               {arg("pool_size", CallValue::ints(computes.kernel)),
                                arg("strides", CallValue::ints(computes.stride)),
                                arg("dilation_rate", CallValue::ints(computes.dilation))},
                               "Keras pooling has no dilation: tf.nn.pool(pooling_type='MAX', dilations=, "
                               "padding='VALID') is PyTorch's dilated max pooling (TF allows dilations only at "
                               "stride 1, so the layer pools at stride 1 and keeps every stride-th output)");
  step.helpers = {"DilatedMaxPool"};
  if (all_ones(computes.stride)) {
    step.function = FrameworkCall{"tf.nn.pool", {arg("", x_name()), arg("window_shape", CallValue::ints(computes.kernel)),
                                                 arg("pooling_type", CallValue::str("MAX")),
                                                 arg("strides", CallValue::ints(computes.stride)),
                                                 arg("padding", CallValue::str("VALID")),
                                                 arg("dilations", CallValue::ints(computes.dilation))}};
  }
  return step;
}

TargetStep torch_pool(const PoolOp& op, std::string why) {
  CallValue divisor = CallValue::none();
  if (op.divisor == AverageDivisor::fixed) divisor = CallValue::of(op.divisor_override);
  std::vector<CallArgument> arguments = {
      arg("kind", CallValue::str(op.kind == PoolKind::max ? "max" : "avg")),
      arg("pool_size", CallValue::ints(op.kernel)), arg("strides", CallValue::ints(op.stride)),
      arg("padding", CallValue::pairs(op.pads)), arg("dilation_rate", CallValue::ints(op.dilation)),
      arg("ceil_mode", CallValue::flag(op.ceil_mode))};
  if (op.kind == PoolKind::average) {  // the divisor arguments mean nothing to max pooling
    const bool include_pad = op.divisor == AverageDivisor::window_clipped_to_padding;
    arguments.push_back(arg("count_include_pad", CallValue::flag(include_pad)));
    arguments.push_back(arg("divisor_override", divisor));
  }
  TargetStep step = keras_step(op, "convbridge.TorchPool", std::move(arguments), std::move(why));
  step.helpers = {"TorchPool"};
  return step;
}

// Output sizes of `op` at the known spatial sizes, or nullopt when a size is unknown.
std::optional<std::vector<int64_t>> output_sizes(const PoolOp& op, const TargetInput& input) {
  if (!input.sizes_known()) return std::nullopt;
  std::vector<int64_t> out;
  for (int a = 0; a < op.rank; ++a) {
    auto size = pool_output_size(op, a, input.shape[static_cast<size_t>(a) + 2]);
    if (!size) return std::nullopt;
    out.push_back(*size);
  }
  return out;
}

// Whether ceil_mode adds a window on some axis: at the known sizes, or possibly at some size (stride > 1).
bool ceil_adds_window(const PoolOp& op, const TargetInput& input) {
  if (!op.ceil_mode) return false;
  PoolOp floor_op = op;
  floor_op.ceil_mode = false;
  const auto with_ceil = output_sizes(op, input);
  const auto without = output_sizes(floor_op, input);
  if (with_ceil && without) return *with_ceil != *without;
  return !all_ones(op.stride);
}

// A ceil_mode that adds no window at the known sizes may add one at others: the plan holds for this size only.
bool exact_everywhere_despite_ceil(const PoolOp& op) { return !op.ceil_mode || all_ones(op.stride); }

// TF 'SAME' for this op's kernel and strides computes PyTorch's windows at the known sizes (or, with stride 1,
// at every size): the same left pads and output sizes; the right pads only bound the last window, where max
// ignores -inf and a valid-elements average ignores padding.
bool tf_same_matches(const PoolOp& op, const TargetInput& input, bool every_size) {
  if (!all_ones(op.dilation)) return false;
  if (op.kind == PoolKind::average && op.divisor != AverageDivisor::valid_elements) return false;
  PoolOp same = op;
  same.padding = PoolPadding::tf_same;
  same.ceil_mode = false;
  if (every_size) {
    if (!all_ones(op.stride) || op.ceil_mode) return false;
    for (int a = 0; a < op.rank; ++a) {
      const int64_t k = op.kernel[static_cast<size_t>(a)];
      const PadPair p = op.pads[static_cast<size_t>(a)];
      // stride 1: need = k - 1, before = (k - 1) / 2; PyTorch's out = in + 2p - k + 1 = in needs 2p = k - 1.
      if (k % 2 == 0 || p.before != (k - 1) / 2 || p.after != p.before) return false;
    }
    return true;
  }
  if (!input.sizes_known()) return false;
  for (int a = 0; a < op.rank; ++a) {
    const int64_t in = input.shape[static_cast<size_t>(a) + 2];
    auto tf_pads = pool_pads(same, a, in);
    auto tf_out = pool_output_size(same, a, in);
    auto torch_out = pool_output_size(op, a, in);
    if (!tf_pads || !tf_out || !torch_out) return false;
    if (tf_pads->before != op.pads[static_cast<size_t>(a)].before || *tf_out != *torch_out) return false;
  }
  return true;
}

// Right pads that make a 'valid' pool after the padding produce PyTorch's ceil_mode tail window.
std::vector<PadPair> pads_with_tail(const PoolOp& op, const TargetInput& input, const std::vector<int64_t>& out) {
  std::vector<PadPair> pads = op.pads;
  for (int a = 0; a < op.rank; ++a) {
    const auto i = static_cast<size_t>(a);
    const int64_t needed = (out[i] - 1) * op.stride[i] + pool_effective_kernel(op, a);
    const int64_t have = input.shape[i + 2] + pads[i].before + pads[i].after;
    pads[i].after += std::max<int64_t>(0, needed - have);
  }
  return pads;
}

PoolOp valid_version(const PoolOp& op) {
  PoolOp valid = op;
  valid.pads.assign(static_cast<size_t>(op.rank), PadPair{});
  valid.ceil_mode = false;
  if (valid.kind == PoolKind::average && valid.divisor != AverageDivisor::fixed) {
    valid.divisor = AverageDivisor::valid_elements;
  }
  return valid;
}

// Max pooling with padding: -inf padding, then a 'valid' (or dilated) max pool.
std::vector<TargetStep> padded_max(const PoolOp& op, const std::vector<PadPair>& pads, bool tail) {
  std::vector<TargetStep> steps;
  if (!no_pads(pads)) {
    steps.push_back(neg_inf_padding(op.rank, pads,
                                    tail ? "Keras pooling has no ceil_mode: pad the right by the extra window's "
                                           "overhang with -inf so the window exists, then pool 'valid'"
                                         : "Keras pooling pads only as 'same' splits it: pad PyTorch's pads with -inf "
                                           "(padding never wins a max, as in PyTorch; zeros would for negative "
                                           "inputs), then pool 'valid'"));
  }
  const PoolOp valid = valid_version(op);
  if (all_ones(op.dilation)) {
    steps.push_back(native_pool(valid, op.kernel, op.stride, false, "a 'valid' max pool over the padded input"));
  } else {
    steps.push_back(dilated_max_pool(valid));
  }
  return steps;
}

}  // namespace

Result<TargetPlan> plan_keras(const PoolOp& op, const TargetInput& input) {
  TargetPlan plan;
  if (op.padding == PoolPadding::tf_same) {  // only from a TF source; kept for completeness
    if (!all_ones(op.dilation)) {
      return make_error(ErrorCode::unsupported, "TF 'SAME' pooling with dilations has no Keras layer");
    }
    plan.steps.push_back(native_pool(op, op.kernel, op.stride, true, "TF 'SAME' pooling is Keras padding='same'"));
    return plan;
  }
  const bool tail = ceil_adds_window(op, input);
  const bool every_size = exact_everywhere_despite_ceil(op);
  const bool divisor_is_window = op.divisor != AverageDivisor::fixed ||
                                 op.divisor_override == *checked_product(op.kernel);

  // 1. No padding and no tail window: every window lies inside the input, all divisors are the kernel size.
  if (no_pads(op.pads) && all_ones(op.dilation) && !tail && (op.kind == PoolKind::max || divisor_is_window)) {
    plan.steps.push_back(native_pool(valid_version(op), op.kernel, op.stride, false,
                                     op.ceil_mode ? "no padding, and ceil_mode adds no window at this size: "
                                                    "'valid' pooling is PyTorch's"
                                                  : "no padding: 'valid' pooling is PyTorch's"));
    plan.exact_for_every_input_size = every_size;
    return plan;
  }
  // 2. Stride 1, odd kernel, pad (k-1)/2: TF 'same' splits the same way at every size.
  if (tf_same_matches(op, input, /*every_size=*/true)) {
    plan.steps.push_back(native_pool(
        op, op.kernel, op.stride, true,
        op.kind == PoolKind::max
            ? "stride 1 and pad (k-1)/2: TF 'same' pads the same on both sides at every size; padding never wins a max"
            : "stride 1 and pad (k-1)/2: TF 'same' pads alike, and its average excludes the padding, as "
              "count_include_pad=False does"));
    return plan;
  }
  // 3. Explicit pads, no tail window.
  if (!tail && every_size) {
    if (op.kind == PoolKind::max) {
      plan.steps = padded_max(op, op.pads, false);
      return plan;
    }
    if (op.divisor == AverageDivisor::window_clipped_to_padding) {
      plan.steps.push_back(zero_padding(op.rank, op.pads));
      plan.steps.push_back(native_pool(valid_version(op), op.kernel, op.stride, false,
                                       "a 'valid' average over the zero-padded input divides by the whole window"));
      return plan;
    }
  }
  // 4. Known sizes.
  if (const auto out = output_sizes(op, input)) {
    if (tf_same_matches(op, input, /*every_size=*/false)) {
      plan.steps.push_back(native_pool(op, op.kernel, op.stride, true,
                                       op.ceil_mode ? "at this input size TF 'same' splits its padding as PyTorch "
                                                      "pads, and has ceil_mode's output size"
                                                    : "at this input size TF 'same' splits its padding as PyTorch pads"));
      plan.exact_for_every_input_size = false;
      return plan;
    }
    if (op.kind == PoolKind::max) {
      plan.steps = padded_max(op, pads_with_tail(op, input, *out), tail);
      plan.exact_for_every_input_size = !tail && every_size;
      return plan;
    }
    if (op.divisor == AverageDivisor::window_clipped_to_padding && !tail) {
      plan.steps.push_back(zero_padding(op.rank, op.pads));
      plan.steps.push_back(native_pool(valid_version(op), op.kernel, op.stride, false,
                                       "ceil_mode adds no window at this size: a 'valid' average over the "
                                       "zero-padded input divides by the whole window"));
      plan.exact_for_every_input_size = false;
      return plan;
    }
  }
  // 5. Ours.
  std::string why;
  if (op.divisor == AverageDivisor::fixed) {
    why = "Keras has no divisor_override: TorchPool sums each window and divides by the override";
  } else if (tail) {
    why = op.kind == PoolKind::max
              ? "ceil_mode's extra window depends on the input size, which is unknown: TorchPool computes PyTorch's "
                "output size and -inf pads from tf.shape at run time"
              : "Keras pooling has no ceil_mode, and PyTorch's average over the extra window never counts the ceil "
                "padding: TorchPool computes the windows and divisors from tf.shape at run time";
  } else {
    why = "count_include_pad=False with padding TF 'same' does not split alike: TorchPool divides each window by "
          "its input elements, as PyTorch does";
  }
  plan.steps.push_back(torch_pool(op, std::move(why)));
  return plan;
}

Result<TargetPlan> plan_keras(const AdaptivePoolOp& op, const TargetInput& input) {
  TargetPlan plan;
  const bool max = op.kind == PoolKind::max;
  const bool global = all_ones(op.output_size);
  if (global) {
    std::vector<int64_t> axes;
    for (int a = 1; a <= op.rank; ++a) axes.push_back(a);
    TargetStep step = keras_step(op, fmt::format("keras.layers.Global{}Pooling{}D", max ? "Max" : "Average", op.rank),
                                 {arg("keepdims", CallValue::flag(op.keep_dims))},
                                 "output size 1: the global pooling over the whole input, keeping the axes as "
                                 "PyTorch does");
    step.function = FrameworkCall{max ? "tf.reduce_max" : "tf.reduce_mean",
                                  {arg("", x_name()), arg("axis", CallValue::ints(axes)),
                                   arg("keepdims", CallValue::flag(op.keep_dims))}};
    plan.steps.push_back(std::move(step));
    return plan;
  }
  const bool keeps_a_size = std::any_of(op.output_size.begin(), op.output_size.end(),
                                        [](int64_t v) { return v == kUnknownSize; });
  // Keras 3.15's adaptive max pooling (keras/src/backend/tensorflow/nn.py _adaptive_max_pool*d) max-pools windows
  // of ceil(n/out) and ceil(n/out) + 1 'VALID'; a window longer than the axis (out 1, or n 1) kills the process with
  // SIGFPE inside TF's MaxPool (measured: 1-D 7 -> 1, 2-D (7, 5) -> (2, 1)). Those sizes go to our layer.
  bool keras_adaptive_safe = input.sizes_known();
  for (int a = 0; a < op.rank && keras_adaptive_safe && max; ++a) {
    const int64_t in = input.shape[static_cast<size_t>(a) + 2];
    const int64_t out = op.output_size[static_cast<size_t>(a)];
    keras_adaptive_safe = out > 0 && (in + out - 1) / out + 1 <= in;
  }
  if (!keeps_a_size && keras_adaptive_safe) {
    plan.steps.push_back(keras_step(
        op, fmt::format("keras.layers.Adaptive{}Pooling{}D", max ? "Max" : "Average", op.rank),
        {arg("output_size", CallValue::ints(op.output_size))},
        "Keras' adaptive pooling uses PyTorch's windows [floor(i*n/out), ceil((i+1)*n/out)) (measured equal); it "
        "reads the static input size"));
    return plan;
  }
  std::vector<CallValue> sizes;
  for (const int64_t v : op.output_size) sizes.push_back(v == kUnknownSize ? CallValue::none() : CallValue::of(v));
  TargetStep step = keras_step(op, "convbridge.TorchAdaptivePool",
                               {arg("kind", CallValue::str(max ? "max" : "avg")),
                                arg("output_size", CallValue::tuple(std::move(sizes)))},
                               keeps_a_size ? "output_size None keeps that axis, which Keras' adaptive layers cannot "
                                              "say: TorchAdaptivePool computes PyTorch's windows from tf.shape"
                                            : "the input size is unknown and Keras' adaptive layers need a static "
                                              "one: TorchAdaptivePool computes PyTorch's windows from tf.shape");
  step.helpers = {"TorchAdaptivePool"};
  plan.steps.push_back(std::move(step));
  return plan;
}

std::vector<FrameworkWeight> keras_weights(const PoolOp&, const TargetInput&) { return {}; }
std::vector<FrameworkWeight> keras_weights(const AdaptivePoolOp&, const TargetInput&) { return {}; }

}  // namespace convbridge::targets
