#include "convert_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "convbridge/io/weights.hpp"
#include "convbridge/model/graph.hpp"
#include "convbridge/model/torch_model.hpp"
#include "convbridge/port/keras_model_file.hpp"
#include "subcommand.hpp"

namespace convbridge::cli {
namespace {

constexpr int kExitInvalidInput = 2;

constexpr const char* kConvertExamples = R"TXT(Examples:
  convbridge convert model.keras -o torch_model/
  convbridge convert model.keras -o torch_model/ --explain

  then, in PyTorch:  from torch_model.model import load_model; model = load_model()

Reads a Keras 3 .keras file (model.save("model.keras")) as data, with no framework installed and nothing it names
imported or run, and writes DIR/model.py (a readable nn.Module, needing torch only) and DIR/model.safetensors (its
state_dict), as convbridge.convert(keras_model).save(DIR) writes them. Exit status: 0 written; 2 a file that is
unreadable, hostile or holds a layer convbridge does not convert (the message names it), or bad arguments.)TXT";

CliResult fail(const std::string& message) {
  return CliResult{kExitInvalidInput, "", fmt::format("convbridge: error: {}\n", message)};
}

template <class T>
std::vector<std::byte> bytes_of(std::span<const T> values) {
  std::vector<std::byte> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// The module's whole state_dict, as the live nn.Module has it (what model.py's load_model() loads strictly).
Status fill_state_dict(const model::TorchModelPlan& plan, const port::KerasModelFile& file, io::MemoryWeightFile& state) {
  for (const model::TorchAttribute& attribute : plan.attributes) {
    for (const model::TargetWeight& weight : attribute.weights) {
      std::vector<double> parameter;
      if (!weight.constant) {
        if (const auto constant = plan.constants.find(weight.parameter); constant != plan.constants.end()) {
          parameter = constant->second;
        } else {
          const auto it = file.parameter_tensor.find(weight.parameter);
          if (it == file.parameter_tensor.end()) {
            return make_error(ErrorCode::invalid_argument,
                              fmt::format("{}: no dataset holds Keras variable '{}'", file.weights->label(), weight.parameter));
          }
          const io::TensorInfo& info = file.weights->tensors()[it->second];
          if (info.shape != weight.change.from_shape) {
            return make_error(ErrorCode::invalid_argument,
                              fmt::format("{}: Keras variable '{}' has shape {} in model.weights.h5; its layer needs {}",
                                          file.weights->label(), weight.parameter, fmt::join(info.shape, "x"),
                                          fmt::join(weight.change.from_shape, "x")));
          }
          CONVBRIDGE_TRY(std::vector<std::byte> bytes, file.weights->read_tensor(it->second));
          CONVBRIDGE_TRY(parameter, port::decode_values(info.dtype, bytes, weight.parameter));
        }
      }
      const std::vector<double> converted = model::convert_torch_weight(plan, weight, parameter);
      const std::vector<float> narrowed(converted.begin(), converted.end());
      CONVBRIDGE_CHECK(state.add(weight.name, io::DType::float32, model::target_weight_shape(weight),
                                 bytes_of<float>(narrowed)));
    }
    // nn.BatchNorm*d's step counter is in its state_dict too (a 0-d int64, 0 for a module never trained).
    if (attribute.constructor.starts_with("nn.BatchNorm")) {
      const int64_t zero = 0;
      CONVBRIDGE_CHECK(state.add(attribute.attribute + ".num_batches_tracked", io::DType::int64, {},
                                 bytes_of<int64_t>(std::span<const int64_t>(&zero, 1))));
    }
  }
  return Ok{};
}

// model.py and model.safetensors under temporary names in `directory`, then both renamed: a failure leaves neither.
Status write_model_directory(const std::string& directory, const std::string& source, io::MemoryWeightFile& state) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(directory, error);
  if (error) return make_error(ErrorCode::invalid_argument, fmt::format("-o {}: cannot create it ({})", directory, error.message()));
  const fs::path dir(directory);
  const fs::path source_partial = dir / ".model.py.partial", weights_partial = dir / ".model.safetensors.partial";
  const auto cleanup = [&] {
    fs::remove(source_partial, error);
    fs::remove(weights_partial, error);
  };
  {
    std::ofstream out(source_partial, std::ios::binary);
    out << source;
    out.close();
    if (!out) {
      cleanup();
      return make_error(ErrorCode::invalid_argument, fmt::format("cannot write {}", source_partial.string()));
    }
  }
  if (auto written = io::write_safetensors(state, weights_partial.string()); !written) {
    cleanup();
    return written;
  }
  fs::rename(weights_partial, dir / "model.safetensors", error);
  if (!error) fs::rename(source_partial, dir / "model.py", error);
  if (error) {
    cleanup();
    return make_error(ErrorCode::invalid_argument, fmt::format("cannot write into {} ({})", directory, error.message()));
  }
  return Ok{};
}

}  // namespace

CliResult run_convert(const std::vector<std::string>& arguments) {
  CLI::App app{"Convert a Keras .keras model file to PyTorch (model.py + model.safetensors) with no framework installed.",
               "convbridge convert"};
  app.footer(kConvertExamples);
  std::string model_path, output;
  bool explain = false;
  app.add_option("model", model_path, "The Keras model: a .keras file (model.save)")->required();
  app.add_option("-o,--output", output, "The directory to write model.py and model.safetensors into")->required();
  app.add_flag("--explain", explain, "Also print, per layer, what it became and why");
  if (auto done = parse_subcommand(app, arguments, "convbridge convert")) return *done;
  auto file = port::open_keras_model_file(model_path);
  if (!file) return fail(file.error().message);
  auto graph = model::parse_keras_model_config(file->model_json);
  if (!graph) return fail(fmt::format("{}: {}", model_path, graph.error().message));
  auto plan = model::plan_torch_model(*graph);
  if (!plan) return fail(fmt::format("{}: {}", model_path, plan.error().message));
  io::MemoryWeightFile state(model_path);
  if (auto filled = fill_state_dict(*plan, *file, state); !filled) return fail(filled.error().message);
  if (auto written = write_model_directory(output, model::emit_torch_model_source(*plan), state); !written) {
    return fail(written.error().message);
  }
  std::string out = explain ? model::explain_torch_model(*plan) + "\n" : "";
  out += fmt::format("wrote {0}/model.py and {0}/model.safetensors ({1} tensors): class {2}, load it with "
                     "load_model() from {0}/model.py\n",
                     output, state.tensors().size(), plan->class_name);
  return CliResult{0, std::move(out), ""};
}

}  // namespace convbridge::cli
