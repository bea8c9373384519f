// Porting trained PyTorch weights into a Keras model the user wrote by hand (issue 14's `convbridge port`): the
// checkpoint's state_dict is matched to the Keras model's weighted layers by graph structure and shapes (names only
// break ties), every matched pair is linted for differences no weight can fix (TF 'same' padding at stride 2 where
// nn.Conv pads both sides equally, BatchNorm epsilon, a bias one side lacks, stride placement, zero padding before
// max pooling), and each tensor gets the exact re-layout into its Keras variable. Nothing here reads tensor data:
// the plan says, per Keras variable, which checkpoint tensor it takes and how its elements move.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "convbridge/model/graph.hpp"
#include "convbridge/result.hpp"
#include "convbridge/weight_layout.hpp"

namespace convbridge::port {

// One tensor of the checkpoint, named as the weight readers name it ("model.module.layer1.0.conv1.weight").
struct CheckpointTensor {
  std::string name;
  std::vector<int64_t> shape;
};

struct PortOptions {
  // The PyTorch modules' constructors by module path (relative to the state_dict root: "layer1.0.conv1" ->
  // "nn.Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)"), when the source module is
  // at hand (convbridge.port with torch_module). With them the lint compares stride, padding, dilation, groups and
  // eps exactly; without them it checks what the weights and PyTorch's conventions tell (nn.Conv pads
  // symmetrically, BatchNorm's default eps 1e-5).
  std::map<std::string, std::string> torch_modules;
};

enum class Severity { note, warning, error };

struct LintFinding {
  std::string layer;    // the Keras layer path
  std::string check;    // "padding", "epsilon", "bias", "stride", "dilation", "groups", "pool_padding", ...
  Severity severity = Severity::error;
  std::string message;  // names the Keras layer and the PyTorch module
};

// One Keras variable and where its values come from.
struct PortedWeight {
  std::string keras_name;               // the variable's name in its layer ("kernel", "moving_mean")
  std::string parameter;                // the graph parameter ("block1/conv/kernel")
  std::vector<int64_t> keras_shape;
  int source = -1;                      // index into the checkpoint tensors; -1: `fill` or kept
  std::string torch_name;               // the checkpoint tensor's name
  std::vector<int64_t> torch_shape;
  WeightLayoutChange change;            // torch_shape -> keras_shape, elements moved only
  bool fill = false;                    // no source tensor: every element `fill_value` (a bias PyTorch lacks)
  double fill_value = 0.0;
  bool kept = false;                    // no source by design: the Keras model's own value stays (Normalization)
};

struct PortedLayer {
  std::string keras_layer;   // layer path ("block1/conv")
  std::string keras_class;   // "Conv2D"
  std::string torch_module;  // the state_dict prefix it took ("layer1.0.conv1"), "" when unmatched
  std::string torch_kind;    // what the checkpoint's tensors look like: "conv", "batch_norm", "linear", "norm"
  std::vector<PortedWeight> weights;
  std::vector<LintFinding> lint;
  std::string note;          // how the elements move, for the report ("Flatten order: rows (C, H, W) -> (H, W, C)")
};

struct PortPlan {
  std::string model_name;
  std::string checkpoint_root;           // the prefix taken as the state_dict ("model.module."), "" for the root
  std::vector<PortedLayer> layers;       // Keras layers with weights, in graph order
  std::vector<LintFinding> model_lint;   // findings on layers without weights (pooling after zero padding)
  std::vector<std::string> missing;      // Keras variables with no source ("layer/kernel")
  std::vector<std::string> unused;       // checkpoint tensors under the root no Keras variable took
  std::vector<std::string> ignored;      // expected leftovers: num_batches_tracked, optimizer state, ...
  int errors() const;                    // lint errors + missing
  int warnings() const;
};

// Matches and lints. `tensors` is every tensor of the checkpoint (names as the readers give them). Errors only for
// what cannot be planned at all: a checkpoint with no tensor any Keras layer could take, or a Keras layer kind whose
// weights convbridge does not port (the message names it); lint problems and missing weights are in the plan.
Result<PortPlan> plan_port(const model::ModelGraph& keras_model, std::span<const CheckpointTensor> tensors,
                           const PortOptions& options = {});

// The per-layer report ("stem_conv <- conv1  kernel (7, 7, 3, 64) <- weight (64, 3, 7, 7)"), then the lint
// findings, missing and unused tensors; and the same as JSON (README "Porting weights" documents its fields).
std::string port_report(const PortPlan& plan);
std::string port_report_json(const PortPlan& plan);

// The Keras variable's values from its checkpoint tensor's (row-major, weight.torch_shape), or the fill; empty for
// a kept weight, whose values are the Keras model's own.
template <class T>
std::vector<T> ported_values(const PortedWeight& weight, std::span<const T> torch_values);

}  // namespace convbridge::port
