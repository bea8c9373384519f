// Emitters render a plan for people and programs. Generated Python is self-contained and runnable: it imports
// only numpy and keras (or tensorflow) and takes weights in PyTorch layout.
#pragma once

#include <string>

#include "convbridge/engine.hpp"
#include "convbridge/plan.hpp"

namespace convbridge {

// Human explanation: padding per side in both frameworks, output shapes, each step and why, the weight transform.
std::string explain_plan(const Plan& plan);

// Keras 3 source defining make_layer(weight, bias=None) -> a Keras layer (or keras.Sequential) with the weights
// loaded, computing on channels_last input.
std::string emit_keras(const Plan& plan);

// tf.nn source defining conv(x, weight, bias=None) -> output tensor, for channels_last x.
std::string emit_tf_nn(const Plan& plan);

// The plan as JSON (schema in README.md, "JSON plan"), with the verification report when there is one ("verification":
// null when the check did not run).
std::string emit_json(const Plan& plan, const VerificationReport* verification = nullptr);

// Keras/TF -> PyTorch: the explanation, PyTorch source defining make_module(<Keras weights>, bias=None) -> an
// nn.Module on channels_first input, and the plan as JSON.
std::string explain_plan(const TorchPlan& plan);
std::string emit_torch(const TorchPlan& plan);
std::string emit_json(const TorchPlan& plan, const VerificationReport* verification = nullptr);

// Plans of the op set (convbridge/layer_plan.hpp). Keras code defines make_layer(<source weights>=None) and tf code
// layer(x, <source weights>=None), both channels_last; PyTorch code defines make_module(<source weights>=None),
// channels_first, in eval mode. Weights are taken in the source framework's layout.
std::string explain_plan(const LayerPlan& plan);
std::string emit_keras(const LayerPlan& plan);
std::string emit_tf_nn(const LayerPlan& plan);
std::string emit_torch(const LayerPlan& plan);
std::string emit_json(const LayerPlan& plan, const VerificationReport* verification = nullptr);

// One line per verification case, for the CLI.
std::string describe_verification(const VerificationReport& report);

}  // namespace convbridge
