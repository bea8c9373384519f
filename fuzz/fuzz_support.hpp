// Shared by the libFuzzer targets: the PyTorch -> TF pipeline with its invariants checked, and a guard that keeps
// the reference engine's verification within the fuzzer's memory and time limits.
//
// Every invariant violation calls fuzz_fail(), which prints what broke and aborts, so libFuzzer records the input
// as a crash. Errors (Result values) are not failures: hostile input is expected to be rejected.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convbridge/conv_spec.hpp"
#include "convbridge/emit.hpp"
#include "convbridge/engine.hpp"
#include "convbridge/frontends.hpp"
#include "convbridge/layer_plan.hpp"
#include "convbridge/planner.hpp"

namespace convbridge::fuzz {

[[noreturn]] inline void fuzz_fail(const std::string& what, std::string_view context = {}) {
  std::fprintf(stderr, "\n*** convbridge fuzz invariant violated: %s\n", what.c_str());
  if (!context.empty()) {
    std::fprintf(stderr, "*** context (%zu bytes): %.*s\n", context.size(),
                 static_cast<int>(std::min<size_t>(context.size(), 2000)), context.data());
  }
  std::abort();
}

// An error must say something, and must not be absurdly long: the CLI prints it on one line (plus a caret
// excerpt for syntax errors). Messages may quote user text (at most the 64 KiB the parser accepts).
inline void check_error(const Error& error, std::string_view input) {
  if (error.message.empty()) fuzz_fail("an error with an empty message", input);
  if (error.message.size() > 4 * input.size() + 4096) {
    fuzz_fail("error message of " + std::to_string(error.message.size()) + " bytes", input);
  }
}

// Operations the reference engine may spend on one fuzz input: small enough that each input stays well under the
// fuzzer's timeout and memory limit in the sanitized build (the CLI's budget is sized for interactive use).
inline constexpr int64_t kFuzzWorkBudget = 2'000'000;

// A plan of the op set: the target's code defines its entry point, the JSON parses, and the reference engine
// (kFuzzWorkBudget) finds no mismatch.
inline void check_layer_plan(const LayerPlan& plan, std::string_view input) {
  if (plan.target == Framework::keras) {
    if (emit_keras(plan).find("def make_layer(") == std::string::npos) fuzz_fail("no make_layer", input);
    if (emit_tf_nn(plan).find("def layer(x") == std::string::npos) fuzz_fail("no tf layer()", input);
  } else if (emit_torch(plan).find("def make_module(") == std::string::npos) {
    fuzz_fail("no make_module", input);
  }
  if (!nlohmann::json::accept(emit_json(plan))) fuzz_fail("the JSON plan does not parse", input);
  if (explain_plan(plan).empty()) fuzz_fail("empty explanation", input);
  if (plan.steps.empty()) fuzz_fail("a plan without steps", input);
  auto report = verify_plan(plan, 0, kFuzzWorkBudget);
  if (!report) {
    check_error(report.error(), input);
    return;
  }
  if (!report->cases.empty() && !report->passed()) {
    fuzz_fail("the reference engine found a mismatch: " + describe_verification(*report), input);
  }
}

// A TF/Keras -> PyTorch plan: every emitter produces its output, and the reference engine (kFuzzWorkBudget) finds
// no mismatch.
inline void check_torch_plan(const TorchPlan& plan, std::string_view input) {
  const std::string torch = emit_torch(plan);
  if (torch.find("def make_module(") == std::string::npos) fuzz_fail("no make_module", input);
  if (!nlohmann::json::accept(emit_json(plan))) fuzz_fail("the JSON plan does not parse", input);
  if (explain_plan(plan).empty()) fuzz_fail("empty explanation", input);
  auto report = verify_plan(plan, 0, kFuzzWorkBudget);
  if (!report) {
    check_error(report.error(), input);
    return;
  }
  if (!report->cases.empty() && !report->passed()) {
    fuzz_fail("the reference engine found a mismatch: " + describe_verification(*report), input);
  }
}

// Generated Python must be printable ASCII lines: user text reaches it only inside sanitised comments.
inline void check_python_source(const std::string& source, const char* emitter, std::string_view input) {
  if (source.empty()) fuzz_fail(std::string(emitter) + " emitted nothing", input);
  for (char c : source) {
    const auto u = static_cast<unsigned char>(c);
    if (!(c == '\n' || (u >= 0x20 && u < 0x7f))) {
      fuzz_fail(std::string(emitter) + " emitted a byte outside printable ASCII", input);
    }
  }
}

// Upper bound on the work and memory verify_plan may spend on this plan, from the layer and the sizes it will try.
// verify_plan now budgets every tensor it materialises (padded inputs, transposed scatters, stride-1 convs before
// a subsample: src/engine/verify.cpp Cost), which the fuzz README's reproducers first showed it did not. This
// tighter guard only keeps each fuzz input fast; CONVBRIDGE_FUZZ_UNGUARDED=1 turns it off to fuzz the engine's
// own budget.
inline bool verification_is_cheap(const Plan& plan) {
  static const bool unguarded = [] {
    const char* v = std::getenv("CONVBRIDGE_FUZZ_UNGUARDED");
    return v != nullptr && v[0] == '1';
  }();
  if (unguarded) return true;
  constexpr double kMaxElements = 4e6;  // per tensor (doubles): 32 MB
  constexpr double kMaxWork = 2e7;      // multiply-adds per side
  const ConvSpec& s = plan.source;
  const auto rank = static_cast<size_t>(s.rank);
  const double batch = plan.input_shape ? std::min<double>(static_cast<double>((*plan.input_shape)[0]), 2) : 2;
  double input = batch * static_cast<double>(s.in_channels);
  double extent = batch * static_cast<double>(std::max(s.in_channels, s.out_channels));  // largest intermediate
  double taps = 1, eff_taps = 1;
  for (size_t a = 0; a < rank; ++a) {
    const double k = static_cast<double>(s.kernel[a]), d = static_cast<double>(s.dilation[a]);
    const double st = static_cast<double>(s.stride[a]);
    const double before = static_cast<double>(s.padding[a].before), after = static_cast<double>(s.padding[a].after);
    const double eff = (k - 1) * d + 1;
    // Sizes verify_plan tries: the given one, or the smallest valid size plus at most 2*stride + 1.
    const double size = plan.input_shape ? static_cast<double>((*plan.input_shape)[a + 2])
                                         : eff + before + after + 2 * st + 4;
    const double op = s.transposed ? static_cast<double>(s.output_padding[a]) : 0;
    input *= size;
    extent *= s.transposed ? (size - 1) * st + eff + st + op : size + before + after;
    taps *= k;
    eff_taps *= eff + st;  // transposed plans zero-dilate the kernel and may append up to stride - 1 taps
  }
  const double per_group_in = static_cast<double>(s.in_channels / s.groups);
  const double per_group_out = static_cast<double>(s.out_channels / s.groups);
  const double weights = static_cast<double>(s.out_channels) * per_group_in * eff_taps;
  const double work = s.transposed ? input * per_group_out * eff_taps  // every input element times every tap
                                   : extent * per_group_in * taps;    // a stride-1 conv over the padded input
  return input <= kMaxElements && extent <= kMaxElements && weights <= kMaxElements && work <= kMaxWork;
}

// parse -> plan -> every emitter -> verify, checking what each stage promises.
inline void run_pipeline(const TorchConvLayer& layer, const std::optional<std::vector<int64_t>>& input_shape,
                         std::string_view input) {
  auto valid = validate(layer.spec);
  if (!valid) fuzz_fail("parse_pytorch_layer accepted a spec that validate() rejects: " + valid.error().message, input);

  auto plan = plan_torch_to_tf(layer, input_shape);
  if (!plan) {
    check_error(plan.error(), input);
    return;
  }
  if (plan->steps.empty()) fuzz_fail("a plan without steps", input);

  if (input_shape) {
    // The plan's TF output shape must be PyTorch's output shape, moved to channels_last.
    auto torch_out = torch_conv_output_shape(layer.spec, *input_shape);
    if (!torch_out) fuzz_fail("planned for an input shape PyTorch rejects: " + torch_out.error().message, input);
    std::vector<int64_t> last{(*input_shape)[0]};
    last.insert(last.end(), input_shape->begin() + 2, input_shape->end());
    last.push_back((*input_shape)[1]);
    auto tf_out = plan_output_shape(*plan, last);
    if (!tf_out) fuzz_fail("plan_output_shape failed on the planned input shape: " + tf_out.error().message, input);
    std::vector<int64_t> expected{(*torch_out)[0]};
    expected.insert(expected.end(), torch_out->begin() + 2, torch_out->end());
    expected.push_back((*torch_out)[1]);
    if (*tf_out != expected) fuzz_fail("the plan's output shape differs from PyTorch's", input);
  }

  check_python_source(emit_keras(*plan), "emit_keras", input);
  check_python_source(emit_tf_nn(*plan), "emit_tf_nn", input);
  if (explain_plan(*plan).empty()) fuzz_fail("explain_plan returned nothing", input);
  const std::string json = emit_json(*plan);
  auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) fuzz_fail("emit_json produced invalid JSON", input);

  if (!verification_is_cheap(*plan)) return;
  auto report = verify_plan(*plan, 0);
  if (!report) fuzz_fail("verify_plan failed on a valid plan: " + report.error().message, input);
  if (!report->cases.empty() && !report->passed()) {
    fuzz_fail("the reference engine says the plan does not reproduce PyTorch:\n" + describe_verification(*report),
              input);
  }
}

}  // namespace convbridge::fuzz
