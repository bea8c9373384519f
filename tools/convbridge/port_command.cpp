#include "port_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>


#include "convbridge/io/weights.hpp"
#include "convbridge/model/graph.hpp"
#include "convbridge/port/keras_model_file.hpp"
#include "convbridge/port/weight_port.hpp"
#include "subcommand.hpp"

namespace convbridge::cli {
namespace {

constexpr int kExitLint = 1;
constexpr int kExitInvalidInput = 2;

constexpr const char* kPortExamples = R"TXT(Examples:
  convbridge port resnet18.pth --into my_resnet.keras -o my_resnet.weights.h5
  convbridge port checkpoint.pt --into model.keras -o model.weights.h5 --json
  convbridge port model.safetensors --into model.keras -o model.weights.h5 --force

  then, in Keras:  model.load_weights("my_resnet.weights.h5")

CHECKPOINT: a torch.save file (a state_dict, or a training checkpoint such as {"model": ..., "optimizer": ...};
DDP's module. prefixes are removed), .safetensors or .npz; nothing in it is executed. MODEL.keras: your Keras
model as model.save("model.keras") writes it. Each Keras layer with weights is matched to a PyTorch module by the
graph's order and the tensors' shapes (layer names only as hints), every tensor is re-laid out exactly (conv
kernels, depthwise kernels, a Dense after a Flatten), and each pair is linted for what weights cannot fix: TF's
padding='same' at stride 2 (PyTorch pads both sides equally), BatchNorm epsilon (PyTorch's default 1e-5), a bias
only PyTorch has, zero padding before max pooling.

Exit status: 0 written; 1 lint errors or Keras weights nothing fills (the report says which; nothing is written
unless --force); 2 a file that is unreadable, hostile or not a Keras model, or bad arguments.)TXT";

CliResult fail(const std::string& message) {
  return CliResult{kExitInvalidInput, "", fmt::format("convbridge: error: {}\n", message)};
}

}  // namespace

CliResult run_port(const std::vector<std::string>& arguments) {
  CLI::App app{"Port trained PyTorch weights into a Keras model written by hand: match, lint, re-layout, write a "
               ".weights.h5 that model.load_weights() takes. No framework needed.",
               "convbridge port"};
  app.footer(kPortExamples);
  std::string checkpoint_path, model_path, output;
  bool as_json = false, force = false;
  app.add_option("checkpoint", checkpoint_path, "The PyTorch weights: .pt/.pth/.bin (torch.save), .safetensors, .npz")
      ->required();
  app.add_option("--into", model_path, "The Keras model to fill: a .keras file (model.save)")->required();
  app.add_option("-o,--output", output, "OUT.weights.h5 to write (atomically)")->required();
  app.add_flag("--json", as_json, "Print the report as JSON");
  app.add_flag("--force", force, "Write the weights even when the lint finds errors (they are still reported)");
  if (auto done = parse_subcommand(app, arguments, "convbridge port")) return *done;
  if (!output.ends_with(".weights.h5")) {
    return fail(fmt::format("-o {}: the output is a Keras weights file and must end in .weights.h5 (Keras' "
                            "load_weights refuses other names)", output));
  }

  auto checkpoint = io::open_weight_file(checkpoint_path);
  if (!checkpoint) return fail(checkpoint.error().message);
  auto model_file = port::open_keras_model_file(model_path);
  if (!model_file) return fail(model_file.error().message);
  auto graph = model::parse_keras_model_config(model_file->model_json);
  if (!graph) return fail(fmt::format("{}: {}", model_path, graph.error().message));

  std::vector<port::CheckpointTensor> tensors;
  for (const io::TensorInfo& t : (*checkpoint)->tensors()) tensors.push_back(port::CheckpointTensor{t.name, t.shape});
  auto plan = port::plan_port(*graph, tensors);
  if (!plan) return fail(fmt::format("{} into {}: {}", checkpoint_path, model_path, plan.error().message));

  std::string out = as_json ? port::port_report_json(*plan) : port::port_report(*plan);
  const bool any_matched = std::any_of(plan->layers.begin(), plan->layers.end(),
                                       [](const port::PortedLayer& l) { return !l.torch_module.empty(); });
  if (!any_matched && !plan->layers.empty()) {
    return CliResult{kExitInvalidInput, std::move(out),
                     fmt::format("convbridge: error: no tensor of {} fits any layer of {}: is it the weights of this "
                                 "architecture? Nothing written.\n", checkpoint_path, model_path)};
  }
  const int errors = plan->errors();
  if (errors > 0 && !force) {
    return CliResult{kExitLint, std::move(out),
                     fmt::format("convbridge: error: {} problem(s) above (lint errors or unfilled Keras weights): {} "
                                 "not written (--force writes it anyway)\n", errors, output)};
  }
  if (auto written = port::write_ported_weights(*plan, **checkpoint, *model_file, output); !written) {
    return fail(written.error().message);
  }
  std::string err = errors > 0 ? fmt::format("convbridge: warning: {} problem(s) above; {} written because of --force\n",
                                             errors, output)
                               : "";
  if (!as_json) out += fmt::format("wrote {}: load it with model.load_weights(\"{}\")\n", output, output);
  return CliResult{0, std::move(out), std::move(err)};
}

}  // namespace convbridge::cli
